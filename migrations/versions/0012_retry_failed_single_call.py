"""A single-call request whose job failed may be retried with the same idempotency key.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 12:00:00

A team's idempotency key named exactly one job (unique (team_id, idempotency_key)). A
create-and-call (or an OpenAI completion) whose call failed left its job failed and free,
yet a retry with the same key, which is how a client repeats a request it could not
complete, was refused with REQUEST_ALREADY_PROCESSED forever.

The key is now unique among a team's jobs that are not failed or expired: those cost
nothing, and a single-call retry over one runs as a new job under the same key (the
attempts stay visible, each a job with the key). At most one job per key can be open or
charged, so a request is still charged at most once; two retries at once still make one
job (the partial unique index refuses the second, which answers as a replay). CreateJob
keeps returning the key's job whatever its status. A second, plain index finds all of a
key's jobs, settled ones included (the unique one holds only the others).
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE jobs DROP CONSTRAINT uq_jobs_team_id_idempotency_key;
CREATE UNIQUE INDEX uq_jobs_team_id_idempotency_key ON jobs (team_id, idempotency_key)
    WHERE status NOT IN ('failed', 'expired');
CREATE INDEX ix_jobs_team_id_idempotency_key ON jobs (team_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
"""

# Only one job per key can stay: the downgrade fails if a key has several (retried) jobs.
DOWNGRADE = """
DROP INDEX ix_jobs_team_id_idempotency_key;
DROP INDEX uq_jobs_team_id_idempotency_key;
ALTER TABLE jobs ADD CONSTRAINT uq_jobs_team_id_idempotency_key UNIQUE (team_id, idempotency_key);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
