"""A team's limit on LLM calls per job, exact under concurrent calls.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 18:10:00

A job-based job costs one credit however many calls it makes, so a runaway client (an
agent in a loop) could make the operator pay for thousands of provider calls for one
credit. teams.max_calls_per_job bounds that (0: no limit); job_call_counts counts the
calls a limited team's job has begun, one row per such job, taken with one conditional
upsert under that row's lock (server/storage/jobs.py), so concurrent calls in one job
cannot overshoot. A table of its own rather than a column of jobs: an update of jobs
would run the usage rollup's statement trigger on every call. Teams without a limit
never write it.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE teams ADD COLUMN max_calls_per_job INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD CONSTRAINT ck_teams_max_calls_per_job CHECK (max_calls_per_job >= 0);
CREATE TABLE job_call_counts (
    job_id UUID NOT NULL,
    calls INTEGER NOT NULL,
    CONSTRAINT pk_job_call_counts PRIMARY KEY (job_id),
    CONSTRAINT fk_job_call_counts_job_id FOREIGN KEY (job_id) REFERENCES jobs (job_id) ON DELETE CASCADE
);
"""

DOWNGRADE = """
DROP TABLE job_call_counts;
ALTER TABLE teams DROP CONSTRAINT ck_teams_max_calls_per_job;
ALTER TABLE teams DROP COLUMN max_calls_per_job;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
