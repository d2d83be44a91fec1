"""`python -m server` stopped at start-up says why, in one line, never with a traceback or
silently: a DATABASE_URL it cannot use (before any connection is tried), an error from the
database step that is not the database's, and a gRPC or metrics port already taken (with
the database up: binding comes after it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from devstack.processes import free_port
from devstack.stack import ROOT
from tests.conftest import ADMIN_KEY


def run_server(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {"SAAS_ADMIN_KEY": ADMIN_KEY, "SAAS_METRICS_PORT": "off", "SAAS_DB_STARTUP_TIMEOUT_SECONDS": "0"}
    command = [sys.executable, *(args or ("-m", "server"))]
    return subprocess.run(
        command,
        env={**os.environ, **base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket is listening on."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


@pytest.mark.parametrize("url", ["mysql://x/y", "postgresql://user@db:port/saas"])
def test_a_database_url_the_server_cannot_use_is_a_configuration_error(url):
    result = run_server({"DATABASE_URL": url})
    assert result.returncode == 2, result.stderr
    assert "server: configuration error: DATABASE_URL " in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unexpected_error_while_reaching_the_database_is_logged_not_swallowed():
    # It was `except Exception: return 3`: exit 3 and not a word.
    script = (
        "import sys, server.__main__ as main;"
        "from server.storage import database;"
        "database.wait_until_reachable = lambda *a: (_ for _ in ()).throw(ValueError('the reason'));"
        "sys.exit(main.main())"
    )
    result = run_server({"DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}, "-c", script)
    assert result.returncode == 3, result.stderr
    assert "cannot use the database (DATABASE_URL): the reason" in result.stdout + result.stderr


def test_a_grpc_port_in_use_is_said_so(database_url, taken_port):
    result = run_server(
        {"DATABASE_URL": database_url, "SAAS_GRPC_PORT": str(taken_port), "SAAS_MIGRATE_ON_START": "false"}
    )
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert f"could not bind 127.0.0.1:{taken_port} (SAAS_GRPC_HOST / SAAS_GRPC_PORT); is it in use" in output
    assert "Traceback" not in output and "Unclosed" not in output  # what start-up opened is closed


def test_a_metrics_port_in_use_is_said_so(database_url, taken_port):
    env = {
        "DATABASE_URL": database_url,
        "SAAS_GRPC_PORT": str(free_port()),
        "SAAS_METRICS_PORT": str(taken_port),
        "SAAS_MIGRATE_ON_START": "false",
    }
    result = run_server(env)
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert f"could not serve metrics on 127.0.0.1:{taken_port}" in output and "Address already in use" in output
    assert "Traceback" not in output and "Unclosed" not in output


def test_a_migration_blocked_by_a_long_transaction_is_said_so_and_exits_3(database_url):
    """migrate.upgrade gives up after its retries, having logged the table, its holder and
    what to do (tests/integration/test_migration_locks.py): start-up ends there, exit 3,
    no traceback."""
    script = (
        "import sys, server.__main__ as main;"
        "from server.storage import migrate;"
        "migrate.upgrade = lambda *a, **k: (_ for _ in ()).throw("
        "migrate.MigrationBlocked('a long transaction holds teams: end it or retry the start'));"
        "sys.exit(main.main())"
    )
    result = run_server({"DATABASE_URL": database_url}, "-c", script)
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "Traceback" not in output and "MigrationBlocked" not in output
