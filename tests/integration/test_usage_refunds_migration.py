"""Migration 0013: refunds made before it are rolled up once, refunds after it by the
trigger, the balance cap is a CHECK, and it downgrades cleanly."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import exc, text

from devstack.postgres import Postgres
from tests.integration.test_admin_migration import _alembic, scratch_engine

JOB_A = "00000000-0000-4000-8000-00000000000a"
JOB_B = "00000000-0000-4000-8000-00000000000b"


def _refunded(conn) -> tuple:
    return conn.execute(
        text("SELECT sum(credits_charged), sum(credits_refunded), sum(jobs) FROM usage_deltas WHERE team_id = 't'")
    ).one()


def test_0013_rolls_up_earlier_refunds_and_downgrades(pg: Postgres):
    with scratch_engine(pg) as engine:
        with engine.begin() as conn:
            _alembic(conn, command.upgrade, "0012")
            conn.execute(
                text(
                    "INSERT INTO organizations (organization_id, name) VALUES ('o', 'O');"
                    "INSERT INTO teams (team_id, organization_id, credits_allocated, credits_used)"
                    "  VALUES ('t', 'o', 999999999, 10);"
                    "INSERT INTO jobs (job_id, team_id, job_type, status, credits_charged)"
                    f"  VALUES ('{JOB_A}', 't', 'a', 'completed', 6), ('{JOB_B}', 't', 'b', 'completed', 4);"
                    f"UPDATE jobs SET credits_refunded = 6 WHERE job_id = '{JOB_A}'"
                )
            )
            _alembic(conn, command.upgrade, "0013")
            assert tuple(_refunded(conn)) == (10, 6, 2)  # the refund before 0013, rolled up once

            conn.execute(text(f"UPDATE jobs SET credits_refunded = 4 WHERE job_id = '{JOB_B}'"))
            assert tuple(_refunded(conn)) == (10, 10, 2)  # the trigger sees a refund alone
            conn.execute(text(f"UPDATE jobs SET credits_refunded = 4 WHERE job_id = '{JOB_B}'"))
            assert tuple(_refunded(conn)) == (10, 10, 2)  # and a no-op as nothing

            with pytest.raises(exc.IntegrityError, match="ck_teams_balance_cap"), conn.begin_nested():
                conn.execute(text("UPDATE teams SET credits_allocated = 1000000011 WHERE team_id = 't'"))
            conn.execute(text("UPDATE teams SET credits_allocated = 3000000000, credits_used = 2000000000"))

            _alembic(conn, command.downgrade, "0012")
            columns = conn.execute(
                text(
                    "SELECT count(*) FROM information_schema.columns WHERE column_name = 'credits_refunded'"
                    " AND table_name IN ('usage_deltas', 'usage_daily', 'usage_totals')"
                )
            ).scalar()
            assert columns == 0
            conn.execute(text(f"UPDATE jobs SET status = 'failed' WHERE job_id = '{JOB_A}'"))  # old triggers work
            _alembic(conn, command.upgrade, "head")
