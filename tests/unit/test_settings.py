"""Settings read from the environment: the event loop choice is checked at start-up."""

from __future__ import annotations

import pytest

from server.settings import Settings, SettingsError

BASE = {"DATABASE_URL": "postgresql://u@127.0.0.1/db", "SAAS_ADMIN_KEY": "sk-admin-0123456789abcdef"}


def test_the_event_loop_is_uvloop_unless_asked_otherwise():
    assert Settings.from_env(BASE).event_loop == "uvloop"
    assert Settings.from_env({**BASE, "SAAS_EVENT_LOOP": " AsyncIO "}).event_loop == "asyncio"


def test_an_unknown_event_loop_is_refused_with_the_variable_named():
    with pytest.raises(SettingsError, match="SAAS_EVENT_LOOP must be uvloop or asyncio"):
        Settings.from_env({**BASE, "SAAS_EVENT_LOOP": "trio"})
