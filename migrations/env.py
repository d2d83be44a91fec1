"""Alembic environment: each migration runs in its own transaction, so the tables one
locks are released when it commits, not held until the last migration ends.

The server runs migrations itself (server/storage/migrate.py) and passes its connection
in, outside any transaction, holding the migration lock. `alembic upgrade head` (or
`downgrade <revision>`) from the command line uses DATABASE_URL and takes the same lock,
so it never runs alongside a starting server. A caller that passes a connection inside a
transaction (the tests of a migration) keeps everything in that transaction."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from server.storage.database import sqlalchemy_url
from server.storage.migrate import exclusive
from server.storage.tables import metadata

config = context.config


def run(connection) -> None:
    context.configure(
        connection=connection, target_metadata=metadata, compare_type=True, transaction_per_migration=True
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = create_engine(sqlalchemy_url(os.environ["DATABASE_URL"]), poolclass=NullPool)
    with engine.connect() as conn, exclusive(conn):
        run(conn)
    engine.dispose()
