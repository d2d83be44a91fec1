"""A call recorded after its job was completed is charged then: ledger kind late_charge.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 01:00:00

A call still running when its job completes is recorded when it ends, after the
settlement that did not count it. Under a token- or dollar-based budget the team was
then never charged for its usage (server/services/jobs.py, charge_late_calls). Such a
call now charges the job what it adds, as a `late_charge` entry: one per late call, so
it is kept out of the unique (job_id, kind) index that makes each of a job's
reservation, charge, release and refund happen once.

The new CHECK allows more than the old one, so it is added NOT VALID (no lock against
writes while the ledger is scanned) and validated in the same migration, which takes
only a SHARE UPDATE EXCLUSIVE lock. A downgrade fails while late_charge entries exist.
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_KINDS = "'allocation', 'top_up', 'reservation', 'charge', 'release', 'adjustment', 'refund'"

UPGRADE = f"""
ALTER TABLE credit_ledger DROP CONSTRAINT ck_credit_ledger_kind,
    ADD CONSTRAINT ck_credit_ledger_kind CHECK (kind IN ({_KINDS}, 'late_charge')) NOT VALID;
ALTER TABLE credit_ledger VALIDATE CONSTRAINT ck_credit_ledger_kind;
"""

DOWNGRADE = f"""
ALTER TABLE credit_ledger DROP CONSTRAINT ck_credit_ledger_kind,
    ADD CONSTRAINT ck_credit_ledger_kind CHECK (kind IN ({_KINDS}));
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
