"""Apply the Alembic migrations, exactly once even when several processes start together,
without stalling the service's clients behind a migration that waits for a lock.

One connection takes a session-level PostgreSQL advisory lock and keeps it for the whole
run: concurrent starters queue on it, and each finds the schema at head or applies what
is left. Each migration then runs in its own transaction (migrations/env.py), so the
tables it locks are released when it commits, not when the last migration does.

A migration's ALTER or DROP asks for an ACCESS EXCLUSIVE lock, and while it waits for one
every other session's access to that table queues behind it. So the migrating session has
a lock_timeout (LOCK_TIMEOUT_SECONDS): a migration that cannot have its lock that soon (a
long transaction, or a backup, reads the table) gives up and is tried again after a pause,
ATTEMPTS times in all, with a line in the log each time; then the start fails with
MigrationBlocked, saying which table and what to do. The timeout also ends the wait of a
backend whose process was killed while it waited: it would otherwise keep waiting, and
everyone behind it, until the holder ended.

The advisory lock and the lock_timeout belong to a PostgreSQL session: behind a connection
pooler, DATABASE_URL must reach PostgreSQL directly or through a session-mode pool
(PgBouncer's transaction pooling would run the migrations without either).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from server.storage.database import sqlalchemy_url

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
_LOCK_ID = 7_242_001  # any constant shared by every process of this service
# How long a migration waits for a table's lock, how many times it tries, and the pause
# between tries: about 50 s in all, within the start-up probe of deploy/k8s.
LOCK_TIMEOUT_SECONDS = 2.0
ATTEMPTS = 8
PAUSE_SECONDS = 5.0
_LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout

log = logging.getLogger(__name__)


class MigrationBlocked(RuntimeError):
    """A migration could not lock a table in ATTEMPTS tries; the message says which and
    what to do."""


def upgrade(
    database_url: str,
    *,
    lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS,
    attempts: int = ATTEMPTS,
    pause_seconds: float = PAUSE_SECONDS,
) -> None:
    """Apply the pending migrations; raise MigrationBlocked when one could not lock a
    table `attempts` times in a row."""
    # NullPool: closing the connection ends its session, and with it the advisory lock.
    engine = create_engine(sqlalchemy_url(database_url), poolclass=NullPool, connect_args={"connect_timeout": 10})
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.connect() as conn, exclusive(conn):
            conn.execute(
                text("SELECT set_config('lock_timeout', :timeout, false)"),
                {"timeout": f"{round(lock_timeout_seconds * 1000)}ms"},
            )
            conn.commit()  # out of a transaction, so that each migration runs in its own
            config.attributes["connection"] = conn
            blocked, attempt = None, 0
            while True:
                try:
                    command.upgrade(config, "head")
                    return
                except OperationalError as error:
                    if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                        raise
                    conn.rollback()
                    revision = _next_revision(conn, config)
                    attempt = attempt + 1 if revision == blocked else 1
                    blocked = revision
                    table, holder = _holder(conn, error.statement or "", revision)
                    conn.rollback()
                    advice = f"a long transaction holds {table}{holder}: end it or retry the start"
                    if attempt >= attempts:
                        message = (
                            f"migration {revision} could not lock {table} in {attempts} attempts"
                            f" of {lock_timeout_seconds:g} s; {advice}"
                        )
                        log.error("%s", message)
                        raise MigrationBlocked(message) from error
                    log.warning(
                        "migration %s waits for a lock on %s (attempt %d of %d, retrying in %g s): %s",
                        revision,
                        table,
                        attempt,
                        attempts,
                        pause_seconds,
                        advice,
                    )
                    time.sleep(pause_seconds)
    finally:
        engine.dispose()


class SchemaBehind(RuntimeError):
    """The database's schema is older than this release's (migrations not applied); the
    message says which revisions and what to do."""


def check_schema(database_url: str) -> None:
    """For a start without migrations (SAAS_MIGRATE_ON_START=false): raise SchemaBehind
    when the database lacks migrations of this release, which would fail its requests
    (or lose the record of a call the provider already answered). A schema newer than
    this release (another release migrated it, during a rolling upgrade) is served:
    migrations are expand/contract (README)."""
    engine = create_engine(sqlalchemy_url(database_url), poolclass=NullPool, connect_args={"connect_timeout": 10})
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    known = {revision.revision for revision in script.walk_revisions()}
    if current == head:
        return
    if current is not None and current not in known:
        log.info("the database's schema (%s) is newer than this release's (%s): served as it is", current, head)
        return
    raise SchemaBehind(
        f"the database's schema is at {current or 'nothing (an empty database)'}, this release needs {head}; "
        "SAAS_MIGRATE_ON_START is false: apply the migrations (`alembic upgrade head`, or start one process "
        "with SAAS_MIGRATE_ON_START=true) and start again"
    )


@contextlib.contextmanager
def exclusive(conn: Connection) -> Iterator[None]:
    """Hold this service's migration lock on `conn`'s session (waiting for any other
    holder), out of any transaction: the migrations commit one by one under it. Released
    on the way out; if the connection is lost instead, its session ends and PostgreSQL
    releases the lock with it."""
    conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _LOCK_ID})
    conn.commit()
    try:
        yield
    finally:
        if not conn.invalidated:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})
            conn.commit()


def _next_revision(conn: Connection, config: Config) -> str:
    """The first migration not applied yet: the one that waited."""
    current = MigrationContext.configure(conn).get_current_revision()
    script = ScriptDirectory.from_config(config)
    return next((r.revision for r in script.walk_revisions() if r.down_revision == current), "head")


_HOLDERS = text(
    """
    SELECT c.relname, a.pid, a.application_name, extract(epoch FROM now() - a.xact_start)
    FROM pg_locks l
    JOIN pg_class c ON c.oid = l.relation
    JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.granted AND l.locktype = 'relation' AND c.relkind IN ('r', 'p')
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.pid <> pg_backend_pid()
    ORDER BY a.xact_start
    """
)


def _holder(conn: Connection, statement: str, revision: str) -> tuple[str, str]:
    """The table the timed-out statement names that another session holds (the one whose
    transaction is oldest), and who holds it; just after the timeout, it most likely still
    does."""
    for table, pid, application, seconds in conn.execute(_HOLDERS):
        if re.search(rf"\b{re.escape(table)}\b", statement, re.IGNORECASE):
            who = f" ({application}, " if application else " ("
            return table, f"{who}pid {pid}, in a transaction for {seconds or 0:.0f} s)"
    return f"a table of migration {revision}", ""
