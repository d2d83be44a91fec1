"""Apply the Alembic migrations, exactly once even when several processes start together.

The migration runs inside one transaction that first takes a PostgreSQL advisory lock:
concurrent starters queue on the lock, and each finds the schema already at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from server.storage.database import sqlalchemy_url

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
_LOCK_ID = 7_242_001  # any constant shared by every process of this service


def upgrade(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url), connect_args={"connect_timeout": 10})
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        engine.dispose()
