"""A job keeps the rates it was settled under, so a late call is charged at them.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28 04:00:00

A call still running when its job completes is charged when it is recorded (0015): the
job's charge over all its calls, less what was settled. That charge was computed at the
team's rates at the moment of the late record, so an operator changing the team's
tokens_per_credit, credits_per_dollar or budget mode in between re-priced the calls the
settlement had already charged: a lowered rate charged them again (a 14-token call cost
199 credits), a raised one or a switch to a job-based budget left the late call unbilled.

The settling statement now copies the team's budget mode and conversion rates, as its
row has them when the statement updates it (the rates the charge was decided on: checked
by the optimistic settlement, read under the team's lock otherwise), into the job's row,
and a late charge prices the job's calls at them (server/services/jobs.py,
charge_late_calls). The markup is not kept: it is in each call's billed cost, fixed when
the call starts. Jobs settled before this migration have NULL here and are charged at
the team's current rates, as before. Adding nullable columns without a default is a
catalog change only; no rewrite or scan of the table.
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE jobs ADD COLUMN settled_budget_mode TEXT,
    ADD COLUMN settled_tokens_per_credit INTEGER,
    ADD COLUMN settled_credits_per_dollar NUMERIC(20, 6);
"""

DOWNGRADE = """
ALTER TABLE jobs DROP COLUMN settled_budget_mode,
    DROP COLUMN settled_tokens_per_credit,
    DROP COLUMN settled_credits_per_dollar;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
