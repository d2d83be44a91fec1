"""The append-only credit ledger: one row per credit movement.

Invariant (checked by the tests): for every team, the sum of `amount` equals
credits_allocated - credits_used, and the sum of `reserved_delta` equals credits_reserved.
"""

from __future__ import annotations

import uuid

from sqlalchemy import insert

from server.domain.credits import Balance
from server.storage.database import Connection
from server.storage.tables import credit_ledger


async def append(
    conn: Connection,
    *,
    team_id: str,
    kind: str,
    amount: int,
    balance_after: Balance,
    actor: str,
    reserved_delta: int = 0,
    job_id: uuid.UUID | None = None,
    reason: str = "",
) -> None:
    await conn.execute(
        insert(credit_ledger).values(
            team_id=team_id,
            job_id=job_id,
            kind=kind,
            amount=amount,
            reserved_delta=reserved_delta,
            remaining_after=balance_after.remaining,
            reserved_after=balance_after.reserved,
            reason=reason,
            actor=actor,
        )
    )
