"""Archived call records are found by their job: a late charge counts them.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-28 11:30:00

A call that ends after its job was completed is charged by what the job's charge over all
its calls adds to what was settled. Retention moves a finished job's calls to
llm_calls_archive once the job completed more than SAAS_CALL_RETENTION_DAYS ago; a stream
still running then (its job completed under it) was charged by its live calls alone, which
its own tokens rarely lift above the settled charge: its late charge was lost (an expiry
hunt). The late charge now reads the archived calls too, by this index.
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_llm_calls_archive_job_id ON llm_calls_archive (job_id)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_llm_calls_archive_job_id")
