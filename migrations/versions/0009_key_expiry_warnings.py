"""Webhook event `team_key.expiring`: a key's expiry is near.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 18:40:00

api_keys.expiry_warned_at marks a key whose warning was written. Every server process
looks for keys expiring within SAAS_KEY_EXPIRY_WARNING_DAYS now and then; the statement
that marks them also writes their events, so each key is warned of once, whichever
process finds it (server/storage/webhooks.py). Revoked keys and keys retired by a
rotation (their expiry is the rotation's grace period) are not warned of.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE api_keys ADD COLUMN expiry_warned_at TIMESTAMP WITH TIME ZONE")


def downgrade() -> None:
    op.execute("ALTER TABLE api_keys DROP COLUMN expiry_warned_at")
