"""The usage rollup at volume: 200k calls seeded in one INSERT ... SELECT, reports equal
to the raw rows (before and after compaction, and after jobs change), and report
queries planned on the rollup's primary key, never on llm_calls or jobs."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from devstack.postgres import Postgres
from server.domain.analytics import DateRange
from server.services.analytics import AnalyticsUseCases, RollupCompactor
from server.storage import analytics as usage_store
from server.storage import migrate
from server.storage.database import Database

TEAMS, JOBS, CALLS_PER_JOB = 50, 20_000, 10

SEED = [
    "INSERT INTO organizations (organization_id, name) VALUES ('org-seed', 'Seed'), ('org-other', 'Other')",
    f"""INSERT INTO teams (team_id, organization_id)
        SELECT 'team-' || i, CASE WHEN i <= 40 THEN 'org-seed' ELSE 'org-other' END FROM generate_series(1, {TEAMS}) i""",
    f"""INSERT INTO jobs (job_id, team_id, job_type, status, credits_charged, created_at)
        SELECT gen_random_uuid(), 'team-' || (i % {TEAMS} + 1),
               (ARRAY['summarise', 'classify', 'extract', 'translate'])[i % 4 + 1],
               CASE WHEN i % 10 = 0 THEN 'failed' WHEN i % 10 = 1 THEN 'in_progress' ELSE 'completed' END,
               CASE WHEN i % 10 > 1 THEN 1 + i % 3 ELSE 0 END,
               now() - (i % 60) * interval '1 day'
        FROM generate_series(1, {JOBS}) i""",
    f"""INSERT INTO llm_calls (call_id, job_id, team_id, status, model_alias, prompt_tokens, completion_tokens,
                               provider_cost_usd, billed_cost_usd, created_at)
        SELECT gen_random_uuid(), j.job_id, j.team_id, CASE WHEN k = 1 THEN 'failed' ELSE 'succeeded' END, 'Agent',
               100 + k, 20 * k, (100 + k) * 0.000001 + 20 * k * 0.000002,
               ((100 + k) * 0.000001 + 20 * k * 0.000002) * 1.25, j.created_at + k * interval '1 second'
        FROM jobs j CROSS JOIN generate_series(1, {CALLS_PER_JOB}) k""",
]

# Rollup rows of other tenants (1,000 teams in 100 organizations, 200 days each), so that
# the planner has to choose between scanning a real-sized rollup and using its indexes.
OTHER_TENANTS = """
    INSERT INTO usage_daily (team_id, day, job_type, organization_id, jobs, calls, prompt_tokens, provider_cost_usd)
    SELECT 'bulk-' || t, current_date - d, 'bulk', 'bulk-org-' || t % 100, 10, 100, 10000, 0.01
    FROM generate_series(1, 1000) t CROSS JOIN generate_series(0, 199) d
"""

RAW = """
SELECT
    (SELECT count(*) FROM jobs WHERE team_id = ANY(:teams)) AS jobs,
    (SELECT count(*) FROM jobs WHERE team_id = ANY(:teams) AND status = 'completed') AS completed,
    (SELECT count(*) FROM jobs WHERE team_id = ANY(:teams) AND status = 'in_progress') AS in_progress,
    (SELECT coalesce(sum(credits_charged), 0) FROM jobs WHERE team_id = ANY(:teams)) AS credits,
    (SELECT count(*) FROM llm_calls WHERE team_id = ANY(:teams)) AS calls,
    (SELECT count(*) FROM llm_calls WHERE team_id = ANY(:teams) AND status <> 'succeeded') AS failed_calls,
    (SELECT coalesce(sum(prompt_tokens), 0) FROM llm_calls WHERE team_id = ANY(:teams)) AS prompt,
    (SELECT coalesce(sum(completion_tokens), 0) FROM llm_calls WHERE team_id = ANY(:teams)) AS completion,
    (SELECT coalesce(sum(provider_cost_usd), 0) FROM llm_calls WHERE team_id = ANY(:teams)) AS provider,
    (SELECT coalesce(sum(billed_cost_usd), 0) FROM llm_calls WHERE team_id = ANY(:teams)) AS billed
"""

WIDE = DateRange(start=(datetime.now(UTC) - timedelta(days=365)).date(), end=datetime.now(UTC).date())


@pytest.fixture(scope="module")
async def db(pg: Postgres) -> AsyncIterator[Database]:
    name = f"saas_rollup_{uuid.uuid4().hex[:10]}"
    url = pg.create_database(name)
    migrate.upgrade(url)
    database = Database(url)
    async with database.transaction() as conn:
        for statement in SEED:
            await conn.execute(text(statement))
    yield database
    await database.close()
    pg.drop_database(name)


async def raw(db: Database, teams: list[str]):
    async with db.transaction() as conn:
        return (await conn.execute(text(RAW), {"teams": teams})).one()


def assert_matches(figures, row) -> None:
    assert figures.jobs == row.jobs and figures.jobs_completed == row.completed
    assert figures.jobs_in_progress == row.in_progress and figures.credits_charged == row.credits
    assert figures.calls == row.calls and figures.calls_failed == row.failed_calls
    assert (figures.prompt_tokens, figures.completion_tokens) == (row.prompt, row.completion)
    assert figures.provider_cost_usd == row.provider and figures.billed_cost_usd == row.billed
    assert figures.margin_usd == row.billed - row.provider > 0


async def test_reports_equal_the_raw_rows_before_and_after_compaction(db):
    analytics = AnalyticsUseCases(db)
    seed_teams = [f"team-{i}" for i in range(1, 41)]
    async with db.transaction() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM llm_calls"))).scalar() == JOBS * CALLS_PER_JOB
    for step in ("deltas", "compacted", "jobs changed", "compacted again"):
        start, end = WIDE.start.isoformat(), WIDE.end.isoformat()
        team = await analytics.team_usage("team-7", start, end, "", 10)
        assert_matches(team.totals, await raw(db, ["team-7"]))
        org = await analytics.organization_usage("org-seed", start, end, "", 1000)
        assert_matches(org.totals, await raw(db, seed_teams))
        assert len(org.teams) == 40 and sum(t.calls for _, t in org.teams) == org.totals.calls
        assert sum(f.calls for _, f in org.days) == org.totals.calls == sum(f.calls for _, f in org.job_types)
        assert [name for name, _ in org.job_types] == sorted(
            (name for name, _ in org.job_types), key=lambda n: -dict(org.job_types)[n].provider_cost_usd
        )
        if step in ("deltas", "jobs changed"):
            assert await RollupCompactor(db, 0).compact() > 0
        if step == "compacted":
            async with db.transaction() as conn:
                await conn.execute(
                    text("UPDATE jobs SET status = 'completed', credits_charged = 5 WHERE status = 'in_progress'")
                )


async def test_report_queries_use_the_rollup_index_not_the_raw_tables(db):
    async with db.transaction() as conn:
        await conn.execute(text(OTHER_TENANTS))
    await RollupCompactor(db, 0).compact()
    async with db.transaction() as conn:
        await conn.execute(text("ANALYZE"))
        assert (await conn.execute(text("SELECT count(*) FROM usage_daily"))).scalar() > 200_000
    params = {"start": WIDE.start, "end": WIDE.end, "team_id": "team-7", "organization_id": "org-seed", "job_type": ""}
    for organization in (False, True):
        sql = usage_store.report_query(organization=organization, job_type=False)
        async with db.transaction() as conn:
            plan = (await conn.execute(text("EXPLAIN (FORMAT JSON) " + sql), params)).scalar()
        nodes = list(_nodes(plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"]))
        relations = {n.get("Relation Name") for n in nodes} - {None}
        assert {"llm_calls", "jobs"}.isdisjoint(relations), relations
        index = "ix_usage_daily_organization_id_day" if organization else "pk_usage_daily"
        scans = [n["Node Type"] for n in nodes if n.get("Relation Name") == "usage_daily"]
        assert "Seq Scan" not in scans, scans
        assert any(n.get("Index Name") == index for n in nodes), [(n["Node Type"], n.get("Index Name")) for n in nodes]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)
