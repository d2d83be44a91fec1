"""Single-call jobs are marked, so that one abandoned by a crashed process expires soon.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28 03:00:00

A single-call request (CreateAndCall) creates its job, makes its call and settles the job
in one request. When the process running it dies (or loses the database) in between, the
job stayed open, holding its credit and its idempotency key, for the whole expiry TTL
(24 h by default): the client's retry under the same key was refused as a duplicate all
that time. A process refreshes the jobs of the calls it runs every activity resolution,
so a single-call job idle for five of them has no process running its call: the reaper
expires it then (server/services/jobs.py). The partial index finds such jobs without
reading the open jobs of the three-step flow, however many clients leave idle. Adding
the column with a constant default is a catalog change, but it takes an ACCESS EXCLUSIVE
lock on jobs, which the migration holds while it builds the index (a scan of the table,
about a second per million rows) until it commits (each migration commits on its own,
server/storage/migrate.py): jobs are neither read nor written meanwhile. At start-up,
waiting for the lock is bounded by the migration lock_timeout, then retried.
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE jobs ADD COLUMN single_call BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX ix_jobs_open_single_call_last_activity_at ON jobs (last_activity_at)
    WHERE single_call AND status IN ('pending', 'in_progress');
"""

DOWNGRADE = """
DROP INDEX ix_jobs_open_single_call_last_activity_at;
ALTER TABLE jobs DROP COLUMN single_call;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
