"""Usage analytics over the daily rollup.

Why a rollup and not indexes on llm_calls: a report sums every call in its range, so
even an index-only scan costs O(calls) (millions for a busy organization), and the job
type lives on jobs, which costs a join per call. usage_daily holds one row per team, UTC
day and job type, so a report reads O(teams x days x job types) rows, whatever the call
volume: a team's through the primary key (team_id, day, job_type), an organization's
through (organization_id, day) (the team's organization is copied in; teams never move).

How it stays exact: statement-level triggers on jobs and llm_calls (migration 0003)
append each change, aggregated per statement, to usage_deltas in the writer's own
transaction (an append: concurrent writers never wait on each other or deadlock on a
shared row). A refund is such a change: it sets its job's credits_refunded, once, under
the job's row lock, and the trigger counts it in credits_refunded (migration 0013). `compact()` moves the deltas into usage_daily in one transaction, and
reports add the few deltas not yet compacted, so a committed job or call is counted at
once and exactly once.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import text

from server.domain.analytics import DateRange, UsageFigures, UsageRow
from server.storage.database import Connection
from server.storage.tables import column_list, usage_daily, usage_deltas

MEASURES = [c.name for c in usage_daily.c if c.name not in ("team_id", "day", "job_type", "organization_id")]
_COUNTS = [m for m in MEASURES if not m.endswith("_usd")]
_COMPACTION_LOCK = 7_242_002  # pg advisory lock id: one compaction at a time

_COMPACT = text(
    f"""
    WITH moved AS (
        DELETE FROM usage_deltas
        WHERE delta_id IN (SELECT delta_id FROM usage_deltas ORDER BY delta_id LIMIT :batch)
        RETURNING {column_list(usage_deltas)}
    ), folded AS (
        INSERT INTO usage_daily AS u (team_id, day, job_type, organization_id, {", ".join(MEASURES)})
        SELECT team_id, day, job_type, min(organization_id), {", ".join(f"sum({m})" for m in MEASURES)}
        FROM moved GROUP BY team_id, day, job_type
        ON CONFLICT (team_id, day, job_type) DO UPDATE SET
            {", ".join(f"{m} = u.{m} + EXCLUDED.{m}" for m in MEASURES)}
    )
    SELECT count(*) FROM moved
    """
)


async def compact(conn: Connection, batch: int = 50_000) -> int | None:
    """Fold up to `batch` deltas into usage_daily. None if another process is compacting."""
    locked = (await conn.execute(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": _COMPACTION_LOCK})).scalar()
    if not locked:
        return None
    return (await conn.execute(_COMPACT, {"batch": batch})).scalar_one()


_TEAM_SCOPE = "team_id = :team_id"
_ORGANIZATION_SCOPE = "organization_id = :organization_id"


def _report_sql(scope: str, by_team: bool, job_type: bool) -> str:
    where = f"{scope} AND day BETWEEN :start AND :end" + (" AND job_type = :job_type" if job_type else "")
    columns = ", ".join(MEASURES)
    sets = "(), (day), (job_type), (day, job_type)" + (", (team_id)" if by_team else "")
    # GROUPING(day, job_type, team_id): bit set = not grouped by that column.
    grouping = "GROUPING(day, job_type, team_id)" if by_team else "GROUPING(day, job_type) * 2 + 1"
    team = "team_id" if by_team else "NULL::text AS team_id"
    return f"""
    WITH scope AS (
        SELECT team_id, day, job_type, {columns} FROM usage_daily WHERE {where}
        UNION ALL
        SELECT team_id, day, job_type, {columns} FROM usage_deltas WHERE {where}
    )
    SELECT day, job_type, {team}, {grouping} AS grouping,
           {", ".join(f"sum({m}) AS {m}" for m in MEASURES)}
    FROM scope
    GROUP BY GROUPING SETS ({sets})
    """


def report_query(*, organization: bool, job_type: bool) -> str:
    """The report's SQL (also for EXPLAIN in the tests)."""
    return _report_sql(_ORGANIZATION_SCOPE if organization else _TEAM_SCOPE, organization, job_type)


async def usage_rows(
    conn: Connection, *, span: DateRange, team_id: str = "", organization_id: str = "", job_type: str = ""
) -> list[UsageRow]:
    """Aggregates for the grouping sets (), (day), (job_type), (day, job_type), and
    (team_id) for an organization. Without any activity, only the () row (all zero)."""
    sql = report_query(organization=bool(organization_id), job_type=bool(job_type))
    params = {
        "start": span.start,
        "end": span.end,
        "team_id": team_id,
        "organization_id": organization_id,
        "job_type": job_type,
    }
    rows = await conn.execute(text(sql), params)
    return [_row(row) for row in rows]


def _row(row) -> UsageRow:
    bits = row.grouping
    values = {m: getattr(row, m) for m in MEASURES}
    figures = UsageFigures(
        **{m: int(values[m] or 0) for m in _COUNTS},
        provider_cost_usd=Decimal(values["provider_cost_usd"] or 0),
        billed_cost_usd=Decimal(values["billed_cost_usd"] or 0),
    )
    day: date | None = None if bits & 4 else row.day
    return UsageRow(
        day=day,
        job_type=None if bits & 2 else row.job_type,
        team_id=None if bits & 1 else row.team_id,
        figures=figures,
    )
