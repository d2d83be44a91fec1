"""A server started without migrations (SAAS_MIGRATE_ON_START=false) on a database that
lacks some of its release's refuses to start (exit 3, saying what to do), rather than
serve requests that fail, or lose the record of a call the provider already answered. A
schema newer than its release (another release migrated it during a rolling upgrade) is
served."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from devstack.postgres import Postgres
from devstack.stack import ROOT
from server.storage import migrate
from tests.conftest import ADMIN_KEY
from tests.integration.test_admin_migration import _alembic, scratch_engine

HEAD = ScriptDirectory(str(migrate.MIGRATIONS)).get_current_head()


def start_without_migrations(url: str) -> subprocess.CompletedProcess:
    """`python -m server` without migrations; a start that passes the check then fails to
    listen (exit 4) on a port this test holds, rather than serve."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": url,
        "SAAS_ADMIN_KEY": ADMIN_KEY,
        "SAAS_MIGRATE_ON_START": "false",
        "SAAS_GRPC_PORT": str(taken.getsockname()[1]),
        "SAAS_METRICS_PORT": "off",
        "SAAS_LOG_FORMAT": "text",
    }
    with taken:
        return subprocess.run(
            [sys.executable, "-m", "server"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )


@pytest.mark.parametrize("revision", ["0020", None])
def test_a_start_without_migrations_on_a_schema_behind_is_refused(pg: Postgres, revision: str | None):
    with scratch_engine(pg) as engine:
        if revision is not None:
            with engine.begin() as conn:
                _alembic(conn, command.upgrade, revision)
        started = start_without_migrations(engine.url.render_as_string(hide_password=False))
    assert started.returncode == 3, started.stderr
    said = f"schema is at {revision or 'nothing (an empty database)'}, this release needs {HEAD}"
    assert said in started.stderr and "SAAS_MIGRATE_ON_START" in started.stderr


def test_a_schema_at_head_or_newer_passes_the_check(pg: Postgres):
    with scratch_engine(pg) as engine:
        url = engine.url.render_as_string(hide_password=False)
        migrate.upgrade(url)
        migrate.check_schema(url)
        with engine.begin() as conn:  # as a newer release would leave it
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": f"9{uuid.uuid4().hex[:3]}"})
        migrate.check_schema(url)
        started = start_without_migrations(url)
    assert started.returncode == 4, started.stderr  # past the check, then its port is taken
