"""One event has one id on every endpoint that receives it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 03:00:00

webhook_enqueue wrote one delivery per endpoint wanting the event, each meant to carry the
event's one id (sent as `webhook-id`, documented as "the same on every retry and every
endpoint" so that receivers deduplicate on it). Its id came from a subquery
`(SELECT gen_random_uuid() AS event_id)` joined to the endpoints, which PostgreSQL
flattens into the join and evaluates per endpoint: two endpoints (a global one and an
organization's, or an old one and its replacement) pointed at one billing receiver got
one job.completed with two ids, and could not tell it was one event. The id is now drawn
once, into a variable, before the insert. Replacing the function changes no data.
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE OR REPLACE FUNCTION webhook_enqueue(kind TEXT, organization TEXT, data JSONB) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    the_event UUID := gen_random_uuid();
BEGIN
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload)
    SELECT e.endpoint_id, the_event, kind,
           jsonb_build_object(
               'type', kind,
               'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'data', data)
    FROM webhook_endpoints e
    WHERE kind = ANY (e.event_types) AND (e.organization_id IS NULL OR e.organization_id = organization);
END
$$;
"""

# 0006's definition.
DOWNGRADE = """
CREATE OR REPLACE FUNCTION webhook_enqueue(kind TEXT, organization TEXT, data JSONB) RETURNS VOID
LANGUAGE sql AS $$
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload)
    SELECT e.endpoint_id, ev.event_id, kind,
           jsonb_build_object(
               'type', kind,
               'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'data', data)
    FROM webhook_endpoints e, (SELECT gen_random_uuid() AS event_id) ev
    WHERE kind = ANY (e.event_types) AND (e.organization_id IS NULL OR e.organization_id = organization)
$$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
