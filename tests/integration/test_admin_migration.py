"""Migration 0003 (admin) and server/storage/tables.py agree, and 0003 downgrades cleanly and
rolls existing jobs and calls up when applied to a database that already has them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from devstack.postgres import Postgres
from server.storage import migrate
from server.storage.database import sqlalchemy_url
from server.storage.tables import metadata


def test_the_migrated_schema_matches_the_tables(database_url: str):
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


@contextlib.contextmanager
def scratch_engine(pg: Postgres) -> Iterator[Engine]:
    """An engine on a new, empty database, dropped afterwards: for a migration's own test."""
    name = f"saas_migration_{uuid.uuid4().hex[:10]}"
    engine = create_engine(sqlalchemy_url(pg.create_database(name)))
    try:
        yield engine
    finally:
        engine.dispose()
        pg.drop_database(name)


def _alembic(conn, action, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    config.attributes["connection"] = conn
    action(config, revision)


def test_0003_backfills_the_rollup_and_downgrades(pg: Postgres):
    with scratch_engine(pg) as engine:
        with engine.begin() as conn:
            _alembic(conn, command.upgrade, "0002")
            conn.execute(
                text(
                    "INSERT INTO organizations (organization_id, name) VALUES ('o', 'O');"
                    "INSERT INTO teams (team_id, organization_id) VALUES ('t', 'o');"
                    "INSERT INTO jobs (job_id, team_id, job_type, status, credits_charged)"
                    "  VALUES ('00000000-0000-4000-8000-000000000001', 't', 'old', 'completed', 1);"
                    "INSERT INTO llm_calls (call_id, job_id, team_id, status, model_alias, prompt_tokens, provider_cost_usd)"
                    "  VALUES (gen_random_uuid(), '00000000-0000-4000-8000-000000000001', 't', 'succeeded', 'A', 7, 0.5)"
                )
            )
            _alembic(conn, command.upgrade, "0003")
            rolled = conn.execute(
                text(
                    "SELECT sum(jobs), sum(jobs_completed), sum(credits_charged), sum(calls), sum(prompt_tokens),"
                    " sum(provider_cost_usd), min(organization_id) FROM usage_deltas WHERE team_id = 't'"
                )
            ).one()
            assert tuple(rolled) == (1, 1, 1, 1, 7, 0.5, "o")
            _alembic(conn, command.downgrade, "0002")
            left = conn.execute(
                text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'usage_%' AND NOT tgisinternal")
            ).scalar()
            assert left == 0
            assert conn.execute(text("SELECT to_regclass('usage_daily')")).scalar() is None
            _alembic(conn, command.upgrade, "head")


def test_a_downgrade_refuses_to_drop_the_only_copy_of_archived_money_and_the_audit_log(pg: Postgres):
    """Retention's archives and the audit log exist nowhere else: migrations 0004 and 0003
    refuse to drop them while they hold rows, and downgrade once they are empty."""
    with scratch_engine(pg) as engine:
        with engine.begin() as conn:
            _alembic(conn, command.upgrade, "head")
            conn.execute(
                text(
                    "INSERT INTO credit_ledger_archive (entry_id, team_id, kind, amount, reserved_delta,"
                    " remaining_after, reserved_after, actor, reason, created_at)"
                    " VALUES (1, 't', 'charge', -1, -1, 0, 0, 'k', '', now());"
                    "INSERT INTO admin_audit_log (actor, action, resource_type, resource_id)"
                    " VALUES ('admin', 'create', 'team', 't')"
                )
            )
        for table, refusing, below in (("credit_ledger_archive", "0004", "0003"), ("admin_audit_log", "0003", "0002")):
            with pytest.raises(Exception, match=f"{table} .* before downgrading below {refusing}"):
                with engine.begin() as conn:
                    _alembic(conn, command.downgrade, below)
            with engine.begin() as conn:
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 1  # nothing dropped
                conn.execute(text(f"DELETE FROM {table}"))
                _alembic(conn, command.downgrade, below)
                _alembic(conn, command.upgrade, "head")
