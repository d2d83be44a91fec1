"""Webhook event `job.completed`, with what the job was charged.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 18:20:00

An operator that bills its own customers per job (Stripe usage records, credit grants)
wants each completion as it happens, with the credits charged. The job trigger of 0006
now also fires for `completed`, and every job event carries `credits_charged` and
`credits_shortfall`. The function returns at once when no endpoint wants the event, so a
completion without subscribers costs a function call and a look at an index.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE OR REPLACE FUNCTION webhook_job_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM webhook_endpoints WHERE 'job.' || NEW.status = ANY (event_types)) THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_enqueue('job.' || NEW.status, t.organization_id, jsonb_build_object(
        'job_id', NEW.job_id,
        'team_id', NEW.team_id,
        'organization_id', t.organization_id,
        'job_type', NEW.job_type,
        'status', upper(NEW.status),
        'error_message', NEW.error_message,
        'credits_charged', NEW.credits_charged,
        'credits_shortfall', NEW.credits_shortfall))
    FROM teams t WHERE t.team_id = NEW.team_id;
    RETURN NULL;
END
$$;
DROP TRIGGER jobs_ended ON jobs;
CREATE TRIGGER jobs_ended AFTER UPDATE OF status ON jobs
FOR EACH ROW WHEN (
    NEW.status IN ('completed', 'failed', 'expired') AND OLD.status IN ('pending', 'in_progress')
) EXECUTE FUNCTION webhook_job_ended();
"""

DOWNGRADE = """
DROP TRIGGER jobs_ended ON jobs;
CREATE TRIGGER jobs_ended AFTER UPDATE OF status ON jobs
FOR EACH ROW WHEN (
    NEW.status IN ('failed', 'expired') AND OLD.status IN ('pending', 'in_progress')
) EXECUTE FUNCTION webhook_job_ended();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
