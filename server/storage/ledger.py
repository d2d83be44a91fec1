"""The append-only credit ledger: one row per credit movement.

Invariant (checked by the tests): for every team, the sum of `amount` equals
credits_allocated - credits_used, and the sum of `reserved_delta` equals credits_reserved.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from server.domain.credits import Balance
from server.storage.database import Connection
from server.storage.tables import credit_ledger, known_fields


@dataclass(frozen=True)
class LedgerEntry:
    entry_id: int
    team_id: str
    job_id: uuid.UUID | None
    kind: str
    amount: int
    reserved_delta: int
    remaining_after: int
    reserved_after: int
    reason: str
    actor: str
    created_at: datetime


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
    idempotency_key: str | None = None,
) -> LedgerEntry | None:
    """Append one entry. None when an entry with the same idempotency key exists (nothing
    written; the caller rolls back and returns the first entry)."""
    row = (
        await conn.execute(
            pg_insert(credit_ledger)
            .values(
                team_id=team_id,
                job_id=job_id,
                kind=kind,
                amount=amount,
                reserved_delta=reserved_delta,
                remaining_after=balance_after.remaining,
                reserved_after=balance_after.reserved,
                reason=reason,
                actor=actor,
                idempotency_key=idempotency_key,
            )
            # Only an idempotency-key repeat is expected; a second charge or release of a
            # job must fail loudly (unique index on job_id, kind), never be skipped.
            .on_conflict_do_nothing(
                index_elements=[credit_ledger.c.team_id, credit_ledger.c.idempotency_key],
                index_where=credit_ledger.c.idempotency_key.is_not(None),
            )
            .returning(*credit_ledger.c)
        )
    ).first()
    return None if row is None else _entry(row)


async def find_by_idempotency_key(conn: Connection, team_id: str, key: str) -> LedgerEntry | None:
    row = (
        await conn.execute(
            select(credit_ledger).where(
                and_(credit_ledger.c.team_id == team_id, credit_ledger.c.idempotency_key == key)
            )
        )
    ).first()
    return None if row is None else _entry(row)


async def find_for_job(conn: Connection, job_id: uuid.UUID, kind: str) -> LedgerEntry | None:
    row = (
        await conn.execute(
            select(credit_ledger).where(and_(credit_ledger.c.job_id == job_id, credit_ledger.c.kind == kind))
        )
    ).first()
    return None if row is None else _entry(row)


async def list_entries(conn: Connection, team_id: str, *, before: int | None, limit: int) -> list[LedgerEntry]:
    """The team's entries, newest first, with entry_id < before (keyset pagination)."""
    query = select(credit_ledger).where(credit_ledger.c.team_id == team_id)
    if before is not None:
        query = query.where(credit_ledger.c.entry_id < before)
    rows = await conn.execute(query.order_by(credit_ledger.c.entry_id.desc()).limit(limit))
    return [_entry(row) for row in rows]


def _entry(row: Any) -> LedgerEntry:
    return LedgerEntry(**known_fields(LedgerEntry, row))
