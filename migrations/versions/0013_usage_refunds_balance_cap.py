"""Usage reports count refunds; a team's balance, not its lifetime allocation, is capped.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 14:00:00

Refunds in the usage rollup. A refund sets jobs.credits_refunded, which the rollup's
trigger on jobs neither summed nor looked at, so reports showed a refunded job's credits
as charged and the ledger disagreed with them. usage_deltas, usage_daily and
usage_totals gain credits_refunded (next to credits_charged, on the job's creation day as
its credits are); the jobs triggers sum it and see a change of it. A refund is one UPDATE
of its job under the job's row lock, at most once per job (the ledger's unique (job_id,
kind) and RefundJob's check), and the statement trigger appends its delta in the
refunding transaction: counted exactly once, whatever runs concurrently. Jobs refunded
before this migration are rolled up here once. jobs is locked (SHARE: reads go on,
writes wait) before the triggers change and the backfill reads it, so a refund is counted
either by the backfill or by the new trigger, never by both or neither. The locks are
taken in the order writers take them (teams, jobs, then the rollup tables).

The balance cap. A team may hold at most 1,000,000,000 credits (credits_allocated -
credits_used); the lifetime totals are unbounded (BIGINT, as they were). The server
refuses a change that would exceed it (server/storage/credits.py); this CHECK makes it
hold whatever path writes the row. Rows already satisfy it: the old rule capped
credits_allocated itself at that number, and credits_used is never negative.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_JOB_COLUMNS = [
    "jobs",
    "jobs_pending",
    "jobs_in_progress",
    "jobs_completed",
    "jobs_failed",
    "jobs_expired",
    "credits_charged",
]
_JOB_SUMS = [
    "count(*)",
    "count(*) FILTER (WHERE x.status = 'pending')",
    "count(*) FILTER (WHERE x.status = 'in_progress')",
    "count(*) FILTER (WHERE x.status = 'completed')",
    "count(*) FILTER (WHERE x.status = 'failed')",
    "count(*) FILTER (WHERE x.status = 'expired')",
    "sum(x.credits_charged)",
]
_WATCHED = ["status", "credits_charged", "job_type", "team_id", "created_at"]
_TOTALS = [
    "jobs",
    "jobs_pending",
    "jobs_in_progress",
    "jobs_completed",
    "jobs_failed",
    "jobs_expired",
    "credits_charged",
    "calls",
    "calls_failed",
    "prompt_tokens",
    "completion_tokens",
    "provider_cost_usd",
    "billed_cost_usd",
]


def _functions(refunds: bool) -> str:
    """The rollup's trigger functions on jobs and usage_daily (as 0003 and 0004 made
    them, plus credits_refunded when `refunds`)."""
    columns = _JOB_COLUMNS + (["credits_refunded"] if refunds else [])
    sums = _JOB_SUMS + (["sum(x.credits_refunded)"] if refunds else [])
    watched = _WATCHED + (["credits_refunded"] if refunds else [])
    totals = _TOTALS + (["credits_refunded"] if refunds else [])

    def jobs_select(source: str, sign: str) -> str:
        measures = ", ".join(f"{s} * {sign}" for s in sums)
        return f"""
        SELECT x.team_id, (x.created_at AT TIME ZONE 'UTC')::date AS day, x.job_type, t.organization_id, {measures}
        FROM {source} x JOIN teams t ON t.team_id = x.team_id
        GROUP BY 1, 2, 3, 4"""

    insert = f"INSERT INTO usage_deltas (team_id, day, job_type, organization_id, {', '.join(columns)})"
    changed = f"""(SELECT {{side}}.* FROM old_jobs o JOIN new_jobs n ON n.job_id = o.job_id
        WHERE ({", ".join(f"o.{c}" for c in watched)}) IS DISTINCT FROM ({", ".join(f"n.{c}" for c in watched)}))"""
    total_columns = ", ".join(totals)
    total_sums = ", ".join(f"coalesce(sum({m}), 0)" for m in totals)
    total_add = ", ".join(f"{m} = t.{m} + EXCLUDED.{m}" for m in totals)
    total_negated = ", ".join(f"-{m}" for m in totals)
    return f"""
CREATE OR REPLACE FUNCTION usage_jobs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {insert} {jobs_select("new_jobs", "1")};
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION usage_jobs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {insert}
    {jobs_select(changed.format(side="o"), "-1")}
    UNION ALL
    {jobs_select(changed.format(side="n"), "1")};
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION usage_totals_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_totals AS t (total_id, {total_columns}) SELECT 1, {total_sums} FROM new_rows
    ON CONFLICT (total_id) DO UPDATE SET {total_add};
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION usage_totals_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_totals AS t (total_id, {total_columns})
    SELECT 1, {total_sums} FROM (SELECT {total_columns} FROM new_rows UNION ALL SELECT {total_negated} FROM old_rows) d
    ON CONFLICT (total_id) DO UPDATE SET {total_add};
    RETURN NULL;
END $$;
"""


UPGRADE = f"""
ALTER TABLE teams ADD CONSTRAINT ck_teams_balance_cap CHECK (credits_allocated - credits_used <= 1000000000);
LOCK TABLE jobs IN SHARE MODE;
ALTER TABLE usage_deltas ADD COLUMN credits_refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN credits_refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_totals ADD COLUMN credits_refunded BIGINT NOT NULL DEFAULT 0;
{_functions(refunds=True)}
INSERT INTO usage_deltas (team_id, day, job_type, organization_id, credits_refunded)
SELECT j.team_id, (j.created_at AT TIME ZONE 'UTC')::date, j.job_type, t.organization_id, sum(j.credits_refunded)
FROM jobs j JOIN teams t ON t.team_id = j.team_id
WHERE j.credits_refunded <> 0
GROUP BY 1, 2, 3, 4;
"""

DOWNGRADE = f"""
ALTER TABLE teams DROP CONSTRAINT ck_teams_balance_cap;
LOCK TABLE jobs IN SHARE MODE;
{_functions(refunds=False)}
ALTER TABLE usage_totals DROP COLUMN credits_refunded;
ALTER TABLE usage_daily DROP COLUMN credits_refunded;
ALTER TABLE usage_deltas DROP COLUMN credits_refunded;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
