"""Alembic environment. The server runs migrations itself (server/storage/migrate.py)
and passes its connection in; `alembic upgrade head` from the command line uses
DATABASE_URL instead."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from server.storage.database import sqlalchemy_url
from server.storage.tables import metadata

config = context.config


def run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = create_engine(sqlalchemy_url(os.environ["DATABASE_URL"]))
    with engine.begin() as conn:
        run(conn)
    engine.dispose()
