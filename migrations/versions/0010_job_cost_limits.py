"""A team's limit on the cost of a job, exact under concurrent calls.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 20:30:00

teams.max_cost_usd_per_job (0: no limit) bounds what one job's calls may cost the team
(billed dollars: provider cost plus markup), as max_calls_per_job bounds their number.
Before a call goes upstream it reserves its worst-case cost in its job's row, under that
row's lock, only if the job's spent plus reserved plus this worst case stays within the
limit; the statement that records the call moves its reservation to spent at the actual
cost (server/storage/jobs.py).

job_call_counts becomes job_limits: one row per job of a limited team, holding what each
per-job limit counts (calls begun; dollars reserved and spent), so a team with both
limits takes its place in one statement.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE teams ADD COLUMN max_cost_usd_per_job NUMERIC(20, 10) NOT NULL DEFAULT 0;
ALTER TABLE teams ADD CONSTRAINT ck_teams_max_cost_usd_per_job CHECK (max_cost_usd_per_job >= 0);
ALTER TABLE job_call_counts RENAME TO job_limits;
ALTER TABLE job_limits RENAME CONSTRAINT pk_job_call_counts TO pk_job_limits;
ALTER TABLE job_limits RENAME CONSTRAINT fk_job_call_counts_job_id TO fk_job_limits_job_id;
ALTER TABLE job_limits
    ADD COLUMN cost_reserved_usd NUMERIC(24, 10) NOT NULL DEFAULT 0,
    ADD COLUMN cost_spent_usd NUMERIC(24, 10) NOT NULL DEFAULT 0;
"""

DOWNGRADE = """
ALTER TABLE job_limits DROP COLUMN cost_spent_usd, DROP COLUMN cost_reserved_usd;
ALTER TABLE job_limits RENAME CONSTRAINT fk_job_limits_job_id TO fk_job_call_counts_job_id;
ALTER TABLE job_limits RENAME CONSTRAINT pk_job_limits TO pk_job_call_counts;
ALTER TABLE job_limits RENAME TO job_call_counts;
ALTER TABLE teams DROP CONSTRAINT ck_teams_max_cost_usd_per_job;
ALTER TABLE teams DROP COLUMN max_cost_usd_per_job;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
