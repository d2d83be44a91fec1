"""Usage reports per team and per organization, and the periodic rollup compaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from server.domain import analytics, validation
from server.domain.analytics import UsageReport
from server.services.background import Periodic
from server.storage import analytics as usage_store
from server.storage import catalog
from server.storage import teams as team_store
from server.storage.database import Database


def _today() -> date:
    return datetime.now(UTC).date()


class AnalyticsUseCases:
    def __init__(self, db: Database, today: Callable[[], date] = _today) -> None:
        self._db = db
        self._today = today

    async def team_usage(
        self, team_id: str, start_date: str, end_date: str, job_type: str, limit: int, *, billed: bool = False
    ) -> UsageReport:
        """A team's usage; `billed`: as the team sees it, its job types ranked by what it was
        billed (the operator's report ranks them by provider cost)."""
        validation.identifier("team_id", team_id)
        span, top = self._span(start_date, end_date, job_type, limit)
        async with self._db.transaction() as conn:
            await team_store.get_team(conn, team_id)
            rows = await usage_store.usage_rows(conn, span=span, team_id=team_id, job_type=job_type)
        return analytics.build_report(span, rows, top, billed=billed)

    async def organization_usage(
        self, organization_id: str, start_date: str, end_date: str, job_type: str, limit: int
    ) -> UsageReport:
        validation.identifier("organization_id", organization_id)
        span, top = self._span(start_date, end_date, job_type, limit)
        async with self._db.transaction() as conn:
            await catalog.get_organization(conn, organization_id)
            rows = await usage_store.usage_rows(conn, span=span, organization_id=organization_id, job_type=job_type)
        return analytics.build_report(span, rows, top)

    def _span(self, start_date: str, end_date: str, job_type: str, limit: int) -> tuple[analytics.DateRange, int]:
        validation.label("job_type", job_type)
        return analytics.date_range(start_date, end_date, self._today()), analytics.limit(limit)


class RollupCompactor:
    """Folds usage deltas into the daily rollup every `interval` seconds, in the
    background of every server process (an advisory lock lets one at a time work)."""

    BATCH = 50_000

    def __init__(self, db: Database, interval_seconds: float) -> None:
        self._db = db
        self._periodic = Periodic("usage rollup compaction", self.compact, interval_seconds, wait_first=True)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def compact(self) -> int:
        """Compact until fewer than a batch of deltas is left (or another process holds
        the lock); returns how many deltas this call moved."""
        moved = 0
        while True:
            async with self._db.transaction() as conn:
                batch = await usage_store.compact(conn, self.BATCH)
            moved += batch or 0
            if batch is None or batch < self.BATCH:
                return moved
