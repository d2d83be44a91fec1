"""A team's jobs list in the order their creations committed, so paging never skips one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 10:00:00

ListTeamJobs paged by (created_at, job_id). created_at is the creating transaction's
start, taken before it commits, so a job could commit after a reader had already paged
past its place: a transaction that began before another but created its job after it
(waiting on the team's row, or doing other work first) landed inside a page the reader
had read without it, and no later page showed it.

jobs.creation_seq is now the list's order. The job takes it from an identity sequence
when it is inserted, and both ways of creating a job (server/storage/jobs.py
create_reserving; the idempotent path in server/services/jobs.py) insert it only after
reserving its credit, an UPDATE of the team's row whose lock they hold until they commit.
So a team's creations take their numbers one at a time, in the order they commit: a
reader sees a team's jobs as a prefix of that order and a job committed later can only
come after every one it saw. It costs job creation a nextval and nothing else (no new
lock, no new round trip); the (team_id, creation_seq) index replaces (team_id,
created_at), which only the list used. The sequence must keep CACHE 1: numbers cached per
session would no longer follow the lock's order.

Existing jobs are numbered in their old list order (created_at, then job_id); the usage
rollup's update trigger is off while they are, since numbering changes nothing it sums.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE jobs ADD COLUMN creation_seq BIGINT;
ALTER TABLE jobs DISABLE TRIGGER usage_jobs_updated;
UPDATE jobs SET creation_seq = ordered.n
  FROM (SELECT job_id, row_number() OVER (ORDER BY created_at, job_id) AS n FROM jobs) AS ordered
 WHERE jobs.job_id = ordered.job_id;
ALTER TABLE jobs ENABLE TRIGGER usage_jobs_updated;
ALTER TABLE jobs
    ALTER COLUMN creation_seq SET NOT NULL,
    ALTER COLUMN creation_seq ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('jobs', 'creation_seq'), COALESCE(max(creation_seq), 0) + 1, false) FROM jobs;
CREATE INDEX ix_jobs_team_id_creation_seq ON jobs (team_id, creation_seq);
DROP INDEX ix_jobs_team_id_created_at;
"""

DOWNGRADE = """
CREATE INDEX ix_jobs_team_id_created_at ON jobs (team_id, created_at);
DROP INDEX ix_jobs_team_id_creation_seq;
ALTER TABLE jobs DROP COLUMN creation_seq;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
