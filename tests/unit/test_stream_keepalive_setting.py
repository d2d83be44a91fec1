"""SAAS_STREAM_KEEPALIVE_SECONDS: 15 s unless told, 0 turns keep-alives off, and it is
validated as the other durations are."""

from __future__ import annotations

import pytest

from server.settings import Settings, SettingsError
from tests.unit.test_settings import BASE


def test_keepalives_come_every_15_seconds_unless_told_otherwise():
    assert Settings.from_env(BASE).stream_keepalive_seconds == 15
    assert Settings.from_env({**BASE, "SAAS_STREAM_KEEPALIVE_SECONDS": "0.5"}).stream_keepalive_seconds == 0.5
    assert Settings.from_env({**BASE, "SAAS_STREAM_KEEPALIVE_SECONDS": "0"}).stream_keepalive_seconds == 0


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_a_keepalive_interval_that_is_no_duration_is_refused_with_its_name(value):
    with pytest.raises(SettingsError, match="SAAS_STREAM_KEEPALIVE_SECONDS"):
        Settings.from_env({**BASE, "SAAS_STREAM_KEEPALIVE_SECONDS": value})
