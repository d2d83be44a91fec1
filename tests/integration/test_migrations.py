"""The migrations and the SQLAlchemy tables describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from server.storage.database import sqlalchemy_url
from server.storage.tables import metadata


def test_migrated_schema_matches_the_tables(database_url):
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == [], "tables.py and migrations/ disagree; write a migration:\n" + "\n".join(
        map(str, differences)
    )


def test_migrations_run_again_as_a_no_op(database_url):
    from server.storage import migrate

    migrate.upgrade(database_url)  # already at head: must not fail or change anything
