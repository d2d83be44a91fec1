"""Credits: expiry by last activity, consumption shortfall, refunds, idempotent ledger entries.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = "status IN ('pending', 'in_progress')"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("credits_shortfall", sa.Integer(), server_default="0", nullable=False))
    op.add_column("jobs", sa.Column("credits_refunded", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "jobs",
        sa.Column(
            "last_activity_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
    )
    op.execute("UPDATE jobs SET last_activity_at = coalesce(started_at, created_at)")
    op.drop_index("ix_jobs_open_created_at", table_name="jobs", postgresql_where=sa.text(OPEN))
    op.create_index("ix_jobs_open_last_activity_at", "jobs", ["last_activity_at"], postgresql_where=sa.text(OPEN))
    op.add_column("credit_ledger", sa.Column("idempotency_key", sa.Text(), nullable=True))
    op.drop_index("uq_credit_ledger_job_kind", table_name="credit_ledger")
    op.create_index(
        "uq_credit_ledger_job_kind",
        "credit_ledger",
        ["job_id", "kind"],
        unique=True,
        postgresql_where=sa.text("job_id IS NOT NULL AND kind IN ('reservation', 'charge', 'release', 'refund')"),
    )
    op.create_index(
        "uq_credit_ledger_idempotency_key",
        "credit_ledger",
        ["team_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_credit_ledger_idempotency_key", table_name="credit_ledger")
    op.drop_index("uq_credit_ledger_job_kind", table_name="credit_ledger")
    op.create_index(
        "uq_credit_ledger_job_kind",
        "credit_ledger",
        ["job_id", "kind"],
        unique=True,
        postgresql_where=sa.text("job_id IS NOT NULL AND kind IN ('reservation', 'charge', 'release')"),
    )
    op.drop_column("credit_ledger", "idempotency_key")
    op.drop_index("ix_jobs_open_last_activity_at", table_name="jobs")
    op.create_index("ix_jobs_open_created_at", "jobs", ["created_at"], postgresql_where=sa.text(OPEN))
    op.drop_column("jobs", "last_activity_at")
    op.drop_column("jobs", "credits_refunded")
    op.drop_column("jobs", "credits_shortfall")
