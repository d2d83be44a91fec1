"""Settings read from the environment: the event loop choice is checked at start-up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.settings import Settings, SettingsError

BASE = {"DATABASE_URL": "postgresql://u@127.0.0.1/db", "SAAS_ADMIN_KEY": "sk-admin-0123456789abcdef"}


def test_the_event_loop_is_uvloop_unless_asked_otherwise():
    assert Settings.from_env(BASE).event_loop == "uvloop"
    assert Settings.from_env({**BASE, "SAAS_EVENT_LOOP": " AsyncIO "}).event_loop == "asyncio"


def test_an_unknown_event_loop_is_refused_with_the_variable_named():
    with pytest.raises(SettingsError, match="SAAS_EVENT_LOOP must be uvloop or asyncio"):
        Settings.from_env({**BASE, "SAAS_EVENT_LOOP": "trio"})


def test_every_variable_the_server_reads_has_a_row_in_the_readme():
    root = Path(__file__).resolve().parents[2]
    read = set(
        re.findall(r'"((?:SAAS|OTEL|LITELLM)_[A-Z_]+|DATABASE_URL)"', (root / "server" / "settings.py").read_text())
    )
    section = (root / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {
        name for line in section.splitlines() if line.startswith("| `") for name in re.findall(r"`([A-Z_]+)`", line)
    }
    assert read and read <= rows, sorted(read - rows)
