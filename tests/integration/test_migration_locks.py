"""Migrations against a database in use: a long transaction on a table a pending migration
must lock (a report, a backup) stalls neither the service's clients nor, for long, the
start (server/storage/migrate.py).

Each database starts at 0014, so that 0015 (credit_ledger) and 0017 (jobs) are applied
before 0020 waits for teams, which the test's blocker transaction reads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from devstack.postgres import Postgres
from server.storage import migrate
from server.storage.database import sqlalchemy_url

ROOT = Path(__file__).resolve().parents[2]
HEAD = max(p.stem.split("_", 1)[0] for p in (migrate.MIGRATIONS / "versions").glob("0*.py"))
WAITING_FOR_TEAMS = """
    SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE NOT l.granted AND l.relation = 'teams'::regclass AND a.application_name LIKE %s
"""


@contextlib.contextmanager
def database(pg: Postgres, revision: str | None = "0014") -> Iterator[str]:
    """A new database migrated to `revision` (None: empty), dropped afterwards."""
    name = f"saas_locks_{uuid.uuid4().hex[:10]}"
    url = pg.create_database(name)
    try:
        if revision is not None:
            engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
            with engine.connect() as conn:
                config = Config()
                config.set_main_option("script_location", str(migrate.MIGRATIONS))
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                conn.commit()
            engine.dispose()
        yield url
    finally:
        pg.drop_database(name)


@contextlib.contextmanager
def blocker(url: str) -> Iterator[psycopg.Connection]:
    """A transaction that reads teams until the block ends (or the test ends it)."""
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE teams IN ACCESS SHARE MODE")
        try:
            yield conn
        finally:
            conn.rollback()


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.02)
    raise AssertionError(f"{what} within {seconds} s")


def query(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def version(url: str) -> str:
    return query(url, "SELECT version_num FROM alembic_version")[0][0]


def probe_earlier_tables(url: str) -> float:
    """Read and write what 0015 and 0017 locked; the seconds the reads took. A write of jobs
    also reads teams (a trigger keeps usage_deltas), so it may queue behind the migration's
    wait for teams, but for one lock_timeout at most. statement_timeout: a probe that would
    queue for longer fails instead."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("SET statement_timeout = '1s'")
            started = time.monotonic()
            conn.execute("SELECT count(*) FROM jobs")
            conn.execute("SELECT count(*) FROM credit_ledger")
            reads = time.monotonic() - started
            conn.execute(f"SET statement_timeout = '{migrate.LOCK_TIMEOUT_SECONDS + 2}s'")
            conn.execute("UPDATE jobs SET status = status WHERE false")
        except psycopg.errors.QueryCanceled:
            raise AssertionError("jobs or credit_ledger stayed locked while the migration waited for teams") from None
        return reads


def test_a_migration_waiting_for_a_table_leaves_the_tables_earlier_ones_locked_free(pg: Postgres):
    with database(pg) as url, ThreadPoolExecutor(1) as pool:
        application = f"migrator-{uuid.uuid4().hex[:8]}"
        with blocker(url):
            migrating = pool.submit(_upgrade_as, application, url)
            wait_for(lambda: query(url, WAITING_FOR_TEAMS, application), 30, "the migration waits for teams")
            assert probe_earlier_tables(url) < 1.0
            assert version(url) == "0019"  # 0015 and 0017 applied, and committed
        migrating.result(timeout=60)  # then it completes, the blocker ended
        assert version(url) == HEAD


def _upgrade_as(application: str, url: str) -> None:
    """migrate.upgrade, its sessions named `application` (to be told apart from the test's)."""
    separator = "&" if "?" in url else "?"
    migrate.upgrade(f"{url}{separator}application_name={application}")


def test_a_migration_that_cannot_lock_its_table_retries_then_fails_the_start_saying_why(pg: Postgres, caplog):
    caplog.set_level(logging.INFO, logger="server.storage.migrate")
    with database(pg) as url:
        with blocker(url) as holding:
            holder = holding.info.backend_pid
            with pytest.raises(migrate.MigrationBlocked) as blocked:
                migrate.upgrade(url, lock_timeout_seconds=0.2, attempts=3, pause_seconds=0.1)
            assert probe_earlier_tables(url) < 1.0  # nothing left locked
        assert re.fullmatch(
            rf"migration 0020 could not lock teams in 3 attempts of 0.2 s; a long transaction holds teams"
            rf" \((\S+, )?pid {holder}, in a transaction for \d+ s\): end it or retry the start",
            str(blocked.value),
        ), str(blocked.value)
        progress = [r.getMessage() for r in caplog.records if r.name == "server.storage.migrate"]
        assert [re.search(r"attempt \d of \d", line)[0] for line in progress[:2]] == [
            "attempt 1 of 3",
            "attempt 2 of 3",
        ]
        assert all(line.startswith("migration 0020 waits for a lock on teams") for line in progress[:2])
        assert progress[2] == str(blocked.value)
        assert version(url) == "0019"  # what was applied stays applied
        advisory = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert query(url, advisory, migrate._LOCK_ID) == [(0,)]  # released
        migrate.upgrade(url)  # the start retried once the transaction ended
        assert version(url) == HEAD


def test_the_backend_of_a_migrating_process_killed_while_it_waits_lets_go_of_the_tables(pg: Postgres):
    """kill -9 of a process whose migration waits for a lock: PostgreSQL does not notice
    the client is gone while its backend waits, so without a lock_timeout the backend kept
    waiting (and queueing every client of the table behind it) until the blocker ended."""
    with database(pg) as url, blocker(url):
        application = f"migrator-{uuid.uuid4().hex[:8]}"
        process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from server.storage import migrate; migrate.upgrade(sys.argv[1])", url],
            cwd=ROOT,
            env={**os.environ, "PGAPPNAME": application},
        )
        try:
            [(backend,)] = wait_for(lambda: query(url, WAITING_FOR_TEAMS, application), 60, "the migration waits")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        wait_for(lambda: query(url, alive, backend) == [(0,)], 10, "the killed migration's backend ends")
        assert probe_earlier_tables(url) < 1.0


def test_migrations_started_together_are_applied_once(pg: Postgres, caplog):
    caplog.set_level(logging.INFO, logger="alembic")
    with database(pg, revision=None) as url:
        start = threading.Barrier(4)

        def starter() -> None:
            start.wait()
            migrate.upgrade(url)

        with ThreadPoolExecutor(4) as pool:
            for done in [pool.submit(starter) for _ in range(4)]:
                done.result(timeout=120)
        applied = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Running upgrade")]
        revisions = sorted(p.stem.split("_", 1)[0] for p in (migrate.MIGRATIONS / "versions").glob("0*.py"))
        assert sorted(re.search(r"-> (\w+),", line)[1] for line in applied) == revisions  # each once
        assert version(url) == HEAD


def test_the_alembic_command_line_upgrades_and_downgrades(pg: Postgres):
    """README's `.venv/bin/alembic upgrade head` / `downgrade <revision>` with DATABASE_URL."""
    with database(pg, revision="0019") as url:
        alembic = [str(Path(sys.executable).with_name("alembic"))]
        env = {**os.environ, "DATABASE_URL": url}
        for args, expected in (
            (["upgrade", "head"], HEAD),
            (["downgrade", "0017"], "0017"),
            (["upgrade", "head"], HEAD),
        ):
            subprocess.run([*alembic, *args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
            assert version(url) == expected
