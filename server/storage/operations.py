"""Queries for operations: the fleet-wide usage totals, and retention.

Usage totals: usage_totals (one row, kept by triggers on usage_daily, migration 0004)
plus the deltas not compacted yet, so the figures are exact at once and cost O(pending
deltas) to read, whatever the volume of jobs and calls.

Retention moves old rows to the archive tables in batches, oldest first, in one
statement per batch (DELETE ... RETURNING into INSERT), so a row is always in exactly
one of the two tables. Rows are locked with SKIP LOCKED: several processes may run it
at once without waiting on each other or moving a row twice.

- Call records (llm_calls): every row older than the cutoff. The usage rollup counted
  each call when it was inserted (migration 0003), so archiving changes no report.
- Ledger entries (credit_ledger): only the job flow (reservation, charge, release) of
  finished jobs. Refunds, top-ups, adjustments and allocations stay: they are few, and
  a refund's or an idempotent top-up's uniqueness is checked against the live table.
  A finished job cannot be charged or released again (its status is final under a row
  lock), so its entries are no longer needed to keep that guarantee.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import text

from server.storage.analytics import MEASURES
from server.storage.database import Connection
from server.storage.tables import column_list, credit_ledger, llm_calls

_TOTALS = text(
    f"""
    SELECT {", ".join(f"coalesce(sum({m}), 0) AS {m}" for m in MEASURES)}
    FROM (
        SELECT {", ".join(MEASURES)} FROM usage_totals
        UNION ALL
        SELECT {", ".join(MEASURES)} FROM usage_deltas
    ) x
    """
)


async def usage_totals(conn: Connection) -> dict[str, int | Decimal]:
    row = (await conn.execute(_TOTALS)).one()
    return {m: (Decimal(row._mapping[m]) if m.endswith("_usd") else int(row._mapping[m])) for m in MEASURES}


_ARCHIVE_CALLS = text(
    f"""
    WITH doomed AS (
        SELECT c.call_id FROM llm_calls c JOIN jobs j ON j.job_id = c.job_id
        WHERE c.created_at < :cutoff
          AND j.status IN ('completed', 'failed', 'expired')
          AND j.completed_at < :cutoff
        ORDER BY c.created_at
        LIMIT :batch
        FOR UPDATE OF c SKIP LOCKED
    ), moved AS (
        DELETE FROM llm_calls c USING doomed d WHERE c.call_id = d.call_id RETURNING {column_list(llm_calls, "c")}
    ), archived AS (
        INSERT INTO llm_calls_archive ({column_list(llm_calls)}) SELECT {column_list(llm_calls)} FROM moved RETURNING 1
    )
    SELECT count(*) FROM archived
    """
)

_ARCHIVE_LEDGER = text(
    f"""
    WITH doomed AS (
        SELECT l.entry_id FROM credit_ledger l JOIN jobs j ON j.job_id = l.job_id
        WHERE l.created_at < :cutoff
          AND l.kind IN ('reservation', 'charge', 'release', 'late_charge')
          AND j.status IN ('completed', 'failed', 'expired')
        ORDER BY l.created_at
        LIMIT :batch
        FOR UPDATE OF l SKIP LOCKED
    ), moved AS (
        DELETE FROM credit_ledger l USING doomed d WHERE l.entry_id = d.entry_id RETURNING {column_list(credit_ledger, "l")}
    ), archived AS (
        INSERT INTO credit_ledger_archive ({column_list(credit_ledger)})
        SELECT {column_list(credit_ledger)} FROM moved RETURNING 1
    )
    SELECT count(*) FROM archived
    """
)


async def archive_calls(conn: Connection, cutoff: datetime, batch: int) -> int:
    """Move up to `batch` call records created before `cutoff` to llm_calls_archive, of
    jobs that finished before `cutoff` too: an open job is settled from its calls. A late
    charge (a call that ends after its job's completion is charged by what the job's
    charge over all its calls adds) reads the archived ones too, as a stream may outlive
    its job's completion by more than the retention."""
    return (await conn.execute(_ARCHIVE_CALLS, {"cutoff": cutoff, "batch": batch})).scalar_one()


async def archive_ledger(conn: Connection, cutoff: datetime, batch: int) -> int:
    """Move up to `batch` job-flow entries of finished jobs, made before `cutoff`, to
    credit_ledger_archive."""
    return (await conn.execute(_ARCHIVE_LEDGER, {"cutoff": cutoff, "batch": batch})).scalar_one()
