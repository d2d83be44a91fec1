"""team.credits_low also fires when the threshold is raised to or above the balance, and
for a team created at or below its threshold.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28 03:10:00

The alert fired only when a charge (or an adjustment) took a team's remaining credits from
above its threshold to it or below. A team created below its threshold, or one whose
threshold an operator raised above its balance, was low and never said so until a top-up
lifted it and a later charge crossed again (a bug hunt). The crossing is now judged
against the threshold before the change and after it, and a new team that starts at or
below its threshold alerts at once. Replacing triggers changes no data.
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

UPGRADE = """
DROP TRIGGER teams_credits_low ON teams;
CREATE TRIGGER teams_credits_low AFTER UPDATE OF credits_used, credits_allocated, low_credit_threshold ON teams
FOR EACH ROW WHEN (
    NEW.low_credit_threshold > 0
    AND OLD.credits_allocated - OLD.credits_used > OLD.low_credit_threshold
    AND NEW.credits_allocated - NEW.credits_used <= NEW.low_credit_threshold
) EXECUTE FUNCTION webhook_team_credits_low();
CREATE TRIGGER teams_credits_low_at_creation AFTER INSERT ON teams
FOR EACH ROW WHEN (
    NEW.low_credit_threshold > 0
    AND NEW.credits_allocated - NEW.credits_used <= NEW.low_credit_threshold
) EXECUTE FUNCTION webhook_team_credits_low();
"""

# 0006's trigger.
DOWNGRADE = """
DROP TRIGGER teams_credits_low_at_creation ON teams;
DROP TRIGGER teams_credits_low ON teams;
CREATE TRIGGER teams_credits_low AFTER UPDATE OF credits_used, credits_allocated ON teams
FOR EACH ROW WHEN (
    NEW.low_credit_threshold > 0
    AND OLD.credits_allocated - OLD.credits_used > NEW.low_credit_threshold
    AND NEW.credits_allocated - NEW.credits_used <= NEW.low_credit_threshold
) EXECUTE FUNCTION webhook_team_credits_low();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
