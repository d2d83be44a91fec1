"""Retention: keep llm_calls and credit_ledger small by archiving what is old.

Why retention with archives and not partitioning: every request-path query on these
tables is an index lookup by job (a job's calls; a job's ledger entry of a kind), and
the ledger's money guarantees rest on unique indexes over (job_id, kind). Partitioning
by time would make each lookup probe every partition (the queries know no date) and
cannot keep those unique indexes global; retention keeps both tables to the recent
window with no change to any query or constraint, and the archive keeps every row (for
audits and disputes) where the request path never looks. Reports are unaffected: they
read the usage rollup.

Webhook deliveries (the outbox, one row per event and endpoint, with its payload) are
deleted, not archived, once finished (delivered or failed) for longer than their
retention: they are a record of sending, not of money, and the endpoint's receiver has
what they held. Pending ones stay, however old.

Every server process runs the task; SKIP LOCKED lets them share the work.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from server.services.background import Periodic
from server.storage import operations
from server.storage import webhooks as webhook_store
from server.storage.database import Database

log = logging.getLogger(__name__)


class Retention:
    BATCH = 5_000

    def __init__(
        self,
        db: Database,
        *,
        call_days: float,
        ledger_days: float,
        webhook_delivery_days: float,
        interval_seconds: float,
    ) -> None:
        self._db = db
        self._call_days = call_days
        self._ledger_days = ledger_days
        self._delivery_days = webhook_delivery_days
        self.active = (call_days > 0 or ledger_days > 0 or webhook_delivery_days > 0) and interval_seconds > 0
        self._periodic = Periodic("retention", self.run_once, interval_seconds if self.active else 0)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def run_once(self, now: datetime | None = None) -> tuple[int, int, int]:
        """Archive (calls, ledger) or delete (webhook deliveries) everything past its
        retention; returns (calls, ledger entries, deliveries) moved or deleted."""
        now = now or datetime.now(UTC)
        calls = entries = deliveries = 0
        if self._call_days > 0:
            calls = await self._drain(operations.archive_calls, now - timedelta(days=self._call_days))
        if self._ledger_days > 0:
            entries = await self._drain(operations.archive_ledger, now - timedelta(days=self._ledger_days))
        if self._delivery_days > 0:
            deliveries = await self._drain(
                webhook_store.delete_finished_deliveries, now - timedelta(days=self._delivery_days)
            )
        if calls or entries:
            log.info("retention archived %d call record(s) and %d ledger entr(ies)", calls, entries)
        if deliveries:
            log.info("retention deleted %d finished webhook deliveries", deliveries)
        return calls, entries, deliveries

    async def _drain(self, archive, cutoff: datetime) -> int:
        moved = 0
        while True:
            async with self._db.transaction() as conn:
                batch = await archive(conn, cutoff, self.BATCH)
            moved += batch
            if batch < self.BATCH:
                return moved
