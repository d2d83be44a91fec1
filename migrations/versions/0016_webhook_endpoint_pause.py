"""Webhook endpoints can be paused: by the operator, or by the sender when one is dead.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 02:00:00

An endpoint whose receiver is gone kept being tried: every event for it was attempted 12
times over about 7 hours, and its backlog grew without bound. `paused_at` set holds its
deliveries (events are still written, none is claimed); the sender sets it itself, with
`pause_reason`, when a delivery failed for good and nothing was delivered to the endpoint
since that delivery's event: `last_delivered_at`, written by a successful attempt only
when it is a minute old or more (one write of the endpoint's row a minute at most, not
one per delivery), tells. Adding nullable columns and a constant default is a catalog
change only; no rewrite of the table.
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE webhook_endpoints ADD COLUMN paused_at TIMESTAMPTZ, ADD COLUMN pause_reason TEXT NOT NULL DEFAULT '',
    ADD COLUMN last_delivered_at TIMESTAMPTZ;
"""

DOWNGRADE = """
ALTER TABLE webhook_endpoints DROP COLUMN paused_at, DROP COLUMN pause_reason, DROP COLUMN last_delivered_at;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
