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

The new CHECK replaces the old one in one ALTER TABLE, which takes an ACCESS EXCLUSIVE
lock on credit_ledger: it is added NOT VALID, then validated, and the lock is held through
the validation's scan of the ledger until the migration commits (each migration commits on
its own, server/storage/migrate.py), so the ledger is neither read nor written meanwhile
(VALIDATE alone would take only SHARE UPDATE EXCLUSIVE; here it saves nothing). At start-up,
waiting for the lock is bounded by the migration lock_timeout, then retried. A downgrade
fails while late_charge entries exist.
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
