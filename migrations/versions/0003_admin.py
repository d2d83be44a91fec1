"""Admin API: team archiving, key lifecycle, audit log, usage rollup.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 07:35:49.982612

The usage rollup (usage_daily) is kept by statement-level triggers on jobs and llm_calls:
each INSERT or UPDATE appends its aggregated effect to usage_deltas in the writer's own
transaction (an append, so concurrent writers never wait on a shared row and cannot
deadlock on it), and the server folds the deltas into usage_daily every few seconds
(server/storage/analytics.py). Existing jobs and calls are rolled up here once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Jobs count on the UTC day they were created, with their current status; calls on the
# UTC day they were recorded.
_JOB_MEASURES = """
    count(*) * s,
    count(*) FILTER (WHERE x.status = 'pending') * s,
    count(*) FILTER (WHERE x.status = 'in_progress') * s,
    count(*) FILTER (WHERE x.status = 'completed') * s,
    count(*) FILTER (WHERE x.status = 'failed') * s,
    count(*) FILTER (WHERE x.status = 'expired') * s,
    sum(x.credits_charged) * s
"""
_JOB_COLUMNS = (
    "team_id, day, job_type, organization_id, jobs, jobs_pending, jobs_in_progress, jobs_completed, jobs_failed, jobs_expired, "
    "credits_charged"
)
_CALL_COLUMNS = "team_id, day, job_type, organization_id, calls, calls_failed, prompt_tokens, completion_tokens, provider_cost_usd, billed_cost_usd"
_CALL_MEASURES = """
    count(*),
    count(*) FILTER (WHERE c.status <> 'succeeded'),
    sum(c.prompt_tokens),
    sum(c.completion_tokens),
    sum(c.provider_cost_usd),
    sum(c.billed_cost_usd)
"""


def _jobs_select(source: str, sign: str = "1") -> str:
    return f"""
    SELECT x.team_id, (x.created_at AT TIME ZONE 'UTC')::date AS day, x.job_type, t.organization_id,
           {_JOB_MEASURES.replace("* s", f"* {sign}")}
    FROM {source} x JOIN teams t ON t.team_id = x.team_id
    GROUP BY 1, 2, 3, 4
    """


def _calls_select(source: str) -> str:
    return f"""
    SELECT c.team_id, (c.created_at AT TIME ZONE 'UTC')::date AS day, j.job_type, t.organization_id, {_CALL_MEASURES}
    FROM {source} c JOIN jobs j ON j.job_id = c.job_id JOIN teams t ON t.team_id = c.team_id
    GROUP BY 1, 2, 3, 4
    """


# A job row changed in a way the rollup sees: take its old self out, put its new self in.
_CHANGED = """
    JOIN new_jobs n ON n.job_id = o.job_id
    WHERE (o.status, o.credits_charged, o.job_type, o.team_id, o.created_at)
          IS DISTINCT FROM (n.status, n.credits_charged, n.job_type, n.team_id, n.created_at)
"""

TRIGGERS = f"""
CREATE FUNCTION usage_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_deltas ({_JOB_COLUMNS}) {_jobs_select("new_jobs")};
    RETURN NULL;
END $$;

CREATE FUNCTION usage_jobs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_deltas ({_JOB_COLUMNS})
    {_jobs_select("(SELECT o.* FROM old_jobs o " + _CHANGED + ")", "-1")}
    UNION ALL
    {_jobs_select("(SELECT n.* FROM old_jobs o " + _CHANGED + ")")};
    RETURN NULL;
END $$;

CREATE FUNCTION usage_calls_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_deltas ({_CALL_COLUMNS}) {_calls_select("new_calls")};
    RETURN NULL;
END $$;

CREATE TRIGGER usage_jobs_inserted AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION usage_jobs_inserted();
CREATE TRIGGER usage_jobs_updated AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION usage_jobs_updated();
CREATE TRIGGER usage_calls_inserted AFTER INSERT ON llm_calls
    REFERENCING NEW TABLE AS new_calls FOR EACH STATEMENT EXECUTE FUNCTION usage_calls_inserted();
"""

BACKFILL = f"""
INSERT INTO usage_deltas ({_JOB_COLUMNS}) {_jobs_select("jobs")};
INSERT INTO usage_deltas ({_CALL_COLUMNS}) {_calls_select("llm_calls")};
"""


def upgrade() -> None:
    op.create_table(
        "admin_audit_log",
        sa.Column("audit_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), server_default="", nullable=False),
        sa.Column("peer", sa.Text(), server_default="", nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name=op.f("pk_admin_audit_log")),
    )
    op.create_index(
        op.f("ix_admin_audit_log_resource_type_resource_id_audit_id"),
        "admin_audit_log",
        ["resource_type", "resource_id", "audit_id"],
        unique=False,
    )
    op.create_table(
        "usage_daily",
        sa.Column("team_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("job_type", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Text(), nullable=False),
        sa.Column("jobs", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("jobs_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("jobs_in_progress", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("jobs_completed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("jobs_failed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("jobs_expired", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_charged", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("calls", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("calls_failed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("provider_cost_usd", sa.Numeric(precision=24, scale=10), server_default="0", nullable=False),
        sa.Column("billed_cost_usd", sa.Numeric(precision=24, scale=10), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("team_id", "day", "job_type", name=op.f("pk_usage_daily")),
    )
    op.create_table(
        "usage_deltas",
        sa.Column("delta_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("team_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("job_type", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Text(), nullable=False),
        sa.Column("jobs", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("jobs_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("jobs_in_progress", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("jobs_completed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("jobs_failed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("jobs_expired", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_charged", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("calls", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("calls_failed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("provider_cost_usd", sa.Numeric(precision=24, scale=10), server_default="0", nullable=False),
        sa.Column("billed_cost_usd", sa.Numeric(precision=24, scale=10), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("delta_id", name=op.f("pk_usage_deltas")),
    )
    op.create_index(op.f("ix_usage_deltas_team_id_day"), "usage_deltas", ["team_id", "day"], unique=False)
    op.create_index(
        op.f("ix_usage_deltas_organization_id_day"), "usage_deltas", ["organization_id", "day"], unique=False
    )
    op.create_index(op.f("ix_usage_daily_organization_id_day"), "usage_daily", ["organization_id", "day"], unique=False)
    op.add_column("api_keys", sa.Column("last_used_at", postgresql.TIMESTAMP(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("replaced_by", sa.UUID(), nullable=True))
    op.add_column("teams", sa.Column("archived_at", postgresql.TIMESTAMP(timezone=True), nullable=True))
    for statement in (TRIGGERS, BACKFILL):
        op.execute(statement)


def downgrade() -> None:
    # The audit log has no other copy: refuse to drop it while it holds entries.
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM admin_audit_log) THEN
                RAISE EXCEPTION 'admin_audit_log holds entries, the only record of admin changes: export them '
                    'and empty the table before downgrading below 0003';
            END IF;
        END $$
        """
    )
    for name, table in (
        ("usage_jobs_inserted", "jobs"),
        ("usage_jobs_updated", "jobs"),
        ("usage_calls_inserted", "llm_calls"),
    ):
        op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute(f"DROP FUNCTION {name}()")
    op.drop_column("teams", "archived_at")
    op.drop_column("api_keys", "replaced_by")
    op.drop_column("api_keys", "last_used_at")
    op.drop_index(op.f("ix_usage_daily_organization_id_day"), table_name="usage_daily")
    op.drop_index(op.f("ix_usage_deltas_organization_id_day"), table_name="usage_deltas")
    op.drop_index(op.f("ix_usage_deltas_team_id_day"), table_name="usage_deltas")
    op.drop_table("usage_deltas")
    op.drop_table("usage_daily")
    op.drop_index(op.f("ix_admin_audit_log_resource_type_resource_id_audit_id"), table_name="admin_audit_log")
    op.drop_table("admin_audit_log")
