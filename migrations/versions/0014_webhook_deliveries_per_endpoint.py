"""Webhook deliveries are claimed per endpoint, through an index per endpoint.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 16:00:00

The sender claimed the earliest due deliveries over all endpoints, a batch at a time, and
sent each batch to its end before claiming again, so one receiver that did not answer
held up every other endpoint's deliveries (server/services/webhooks.py). It now claims,
for each endpoint, its earliest due deliveries up to that endpoint's free slots. Found
through ix_webhook_deliveries_due (next_attempt_at), an endpoint's rows are behind every
row due before them, a dead endpoint's whole backlog included: about 70 ms per claim with
100k due to one dead endpoint and ten endpoints, against 0.3 ms through
ix_webhook_deliveries_pending (endpoint_id, next_attempt_at, delivery_id) WHERE pending,
which reads only the rows it claims. The new index replaces the old one, which nothing
else reads. Building it locks webhook_deliveries against writes (SHARE), so statements
that enqueue events (job completions among them) wait for the build: a scan of the
table, about a second per million rows.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE INDEX ix_webhook_deliveries_pending ON webhook_deliveries (endpoint_id, next_attempt_at, delivery_id)
    WHERE status = 'pending';
DROP INDEX ix_webhook_deliveries_due;
"""

DOWNGRADE = """
CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
DROP INDEX ix_webhook_deliveries_pending;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
