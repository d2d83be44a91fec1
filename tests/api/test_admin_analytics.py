"""Usage reports per team and per organization, against the raw jobs and calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as pb
from saaslitellm.v1 import job_pb2
from saaslitellm.v1 import job_service_pb2 as job_pb
from tests.api.admin_support import bearer, fails, new_alias, new_group, new_org, new_team, user
from tests.api.conftest import ADMIN

RAW = """
SELECT
    (SELECT count(*) FROM jobs j WHERE j.team_id = ANY(:teams)) AS jobs,
    (SELECT count(*) FROM jobs j WHERE j.team_id = ANY(:teams) AND status = 'completed') AS completed,
    (SELECT count(*) FROM jobs j WHERE j.team_id = ANY(:teams) AND status = 'failed') AS failed,
    (SELECT count(*) FROM jobs j WHERE j.team_id = ANY(:teams) AND status = 'pending') AS pending,
    (SELECT coalesce(sum(credits_charged), 0) FROM jobs j WHERE j.team_id = ANY(:teams)) AS credits,
    (SELECT count(*) FROM llm_calls c WHERE c.team_id = ANY(:teams)) AS calls,
    (SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM llm_calls c WHERE c.team_id = ANY(:teams)) AS tokens,
    (SELECT coalesce(sum(provider_cost_usd), 0) FROM llm_calls c WHERE c.team_id = ANY(:teams)) AS provider,
    (SELECT coalesce(sum(billed_cost_usd), 0) FROM llm_calls c WHERE c.team_id = ANY(:teams)) AS billed
"""


async def run_jobs(jobs, key: str, job_type: str, calls: int, status: int) -> None:
    auth = bearer(key)
    job = await jobs.CreateJob(job_pb.CreateJobRequest(job_type=job_type), metadata=auth)
    for index in range(calls):
        await jobs.LLMCall(
            job_pb.LLMCallRequest(job_id=job.job_id, messages=[user(f"call {index} [fake tokens={10 * (index + 1)}]")]),
            metadata=auth,
        )
    if status:
        await jobs.CompleteJob(job_pb.CompleteJobRequest(job_id=job.job_id, status=status), metadata=auth)


def matches(figures, raw) -> None:
    assert figures.jobs == raw.jobs
    assert (figures.jobs_completed, figures.jobs_failed, figures.jobs_pending) == (
        raw.completed,
        raw.failed,
        raw.pending,
    )
    assert figures.credits_charged == raw.credits and figures.calls == raw.calls
    assert figures.total_tokens == raw.tokens == figures.prompt_tokens + figures.completion_tokens
    assert Decimal(figures.provider_cost_usd) == raw.provider and Decimal(figures.billed_cost_usd) == raw.billed
    assert Decimal(figures.margin_usd) == raw.billed - raw.provider


async def test_team_and_organization_reports_match_the_raw_rows(app, admin, jobs):
    org, group = await new_org(admin), await new_group(admin)
    await new_alias(admin, group)
    t1 = await new_team(admin, org, group, credits=50, markup_percent="20")
    t2 = await new_team(admin, org, group, credits=50)
    await run_jobs(jobs, t1.virtual_key, "summarise", 3, job_pb2.Job.COMPLETED)
    await run_jobs(jobs, t1.virtual_key, "summarise", 1, job_pb2.Job.FAILED)
    await run_jobs(jobs, t1.virtual_key, "classify", 1, job_pb2.Job.COMPLETED)
    await run_jobs(jobs, t1.virtual_key, "classify", 0, 0)  # still pending
    await run_jobs(jobs, t2.virtual_key, "translate", 2, job_pb2.Job.COMPLETED)

    async def raw(teams):
        async with app.db.transaction() as conn:
            return (await conn.execute(text(RAW), {"teams": teams})).one()

    today = datetime.now(UTC).date().isoformat()
    for compacted in (False, True):  # pending deltas, then folded into usage_daily
        report = await admin.GetTeamUsage(pb.GetTeamUsageRequest(team_id=t1.team_id), metadata=ADMIN)
        matches(report.totals, await raw([t1.team_id]))
        assert report.end_date == today and [d.date for d in report.days] == [today]
        assert {t.job_type for t in report.job_types} == {"summarise", "classify"}
        assert report.job_types[0].job_type == "summarise"  # 4 calls cost more than 1
        assert {(d.date, d.job_type) for d in report.daily_job_types} == {(today, "summarise"), (today, "classify")}
        assert list(report.teams) == []

        summed = await admin.GetOrganizationUsage(pb.GetOrganizationUsageRequest(organization_id=org), metadata=ADMIN)
        matches(summed.totals, await raw([t1.team_id, t2.team_id]))
        assert {t.team_id for t in summed.teams} == {t1.team_id, t2.team_id}
        if not compacted:  # (the server's own compaction may have run already)
            await app.rollup.compact()
            async with app.db.transaction() as conn:
                pending = "SELECT count(*) FROM usage_deltas WHERE team_id IN (:a, :b)"
                assert (await conn.execute(text(pending), {"a": t1.team_id, "b": t2.team_id})).scalar() == 0

    one_type = await admin.GetTeamUsage(pb.GetTeamUsageRequest(team_id=t1.team_id, job_type="classify"), metadata=ADMIN)
    assert one_type.totals.jobs == 2 and one_type.totals.calls == 1 and one_type.totals.jobs_pending == 1
    top = await admin.GetOrganizationUsage(pb.GetOrganizationUsageRequest(organization_id=org, limit=1), metadata=ADMIN)
    assert len(top.job_types) == 1 and len(top.teams) == 1
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    empty = await admin.GetTeamUsage(
        pb.GetTeamUsageRequest(team_id=t1.team_id, start_date=yesterday, end_date=yesterday), metadata=ADMIN
    )
    assert empty.totals.jobs == 0 and empty.totals.provider_cost_usd == "0" and list(empty.days) == []
    assert empty.totals.provider_cost_usd_per_credit == ""


async def test_bad_report_requests_name_the_field(admin):
    org = await new_org(admin)
    team = await new_team(admin, org)
    for request, field in (
        (pb.GetTeamUsageRequest(team_id=team.team_id, start_date="2026-13-01"), "start_date"),
        (pb.GetTeamUsageRequest(team_id=team.team_id, end_date="yesterday"), "end_date"),
        (pb.GetTeamUsageRequest(team_id=team.team_id, start_date="20261128"), "start_date"),  # not YYYY-MM-DD
        (pb.GetTeamUsageRequest(team_id=team.team_id, end_date="2026-W48-6"), "end_date"),
        (pb.GetTeamUsageRequest(team_id=team.team_id, start_date="2026-02-01", end_date="2026-01-01"), "start_date"),
        (pb.GetTeamUsageRequest(team_id=team.team_id, start_date="2024-01-01", end_date="2026-01-01"), "start_date"),
        (pb.GetTeamUsageRequest(team_id=team.team_id, limit=5000), "limit"),
    ):
        await fails(
            admin.GetTeamUsage(request, metadata=ADMIN), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", field
        )
    await fails(
        admin.GetOrganizationUsage(pb.GetOrganizationUsageRequest(organization_id="no-such-org"), metadata=ADMIN),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )


async def test_a_team_reads_its_own_usage_without_provider_costs(app, admin, jobs):
    org, group = await new_org(admin), await new_group(admin)
    await new_alias(admin, group)
    team = await new_team(admin, org, group, credits=50, markup_percent="20")
    other = await new_team(admin, org, group, credits=50)
    await run_jobs(jobs, team.virtual_key, "extract", 2, job_pb2.Job.COMPLETED)
    await run_jobs(jobs, team.virtual_key, "summarize", 1, job_pb2.Job.FAILED)
    await run_jobs(jobs, other.virtual_key, "extract", 3, job_pb2.Job.COMPLETED)

    summary = await jobs.GetUsage(job_pb.GetUsageRequest(), metadata=bearer(team.virtual_key))
    async with app.db.transaction() as conn:
        raw = (await conn.execute(text(RAW), {"teams": [team.team_id]})).one()
    totals = summary.totals
    assert summary.team_id == team.team_id and totals.jobs == raw.jobs == 2
    assert (totals.jobs_completed, totals.jobs_failed, totals.credits_charged) == (1, 1, raw.credits)
    assert totals.calls == raw.calls == 3 and totals.total_tokens == raw.tokens
    assert Decimal(totals.billed_cost_usd) == raw.billed > raw.provider  # the 20% markup, not the provider cost
    assert {t.job_type: t.usage.calls for t in summary.job_types} == {"extract": 2, "summarize": 1}
    assert [d.date for d in summary.days] == [datetime.now(UTC).date().isoformat()]
    assert not [f for f in job_pb.BilledUsage.DESCRIPTOR.fields if "provider" in f.name or "margin" in f.name]

    only = await jobs.GetUsage(job_pb.GetUsageRequest(job_type="summarize"), metadata=bearer(team.virtual_key))
    assert only.totals.jobs == 1 and only.totals.calls == 1
    await fails(
        jobs.GetUsage(job_pb.GetUsageRequest(start_date="2026-13-01"), metadata=bearer(team.virtual_key)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        field="start_date",
    )


async def test_a_team_s_own_report_ranks_its_job_types_by_what_it_was_billed(app, admin, jobs):
    """The team's report never shows provider costs, so it must not rank by them either: a
    job type billed more (here at a higher markup) comes first even though it cost the
    provider less; the operator's report still ranks by provider cost."""
    org, group = await new_org(admin), await new_group(admin)
    await new_alias(admin, group)
    team = await new_team(admin, org, group, credits=50, markup_percent="0")
    await run_jobs(jobs, team.virtual_key, "cheap_to_bill", 4, job_pb2.Job.COMPLETED)
    await admin.UpdateTeam(pb.UpdateTeamRequest(team_id=team.team_id, markup_percent="500"), metadata=ADMIN)
    await run_jobs(jobs, team.virtual_key, "dear_to_bill", 2, job_pb2.Job.COMPLETED)

    own = await jobs.GetUsage(job_pb.GetUsageRequest(limit=1), metadata=bearer(team.virtual_key))
    operators = await admin.GetTeamUsage(pb.GetTeamUsageRequest(team_id=team.team_id, limit=1), metadata=ADMIN)
    assert [t.job_type for t in own.job_types] == ["dear_to_bill"]
    assert [t.job_type for t in operators.job_types] == ["cheap_to_bill"]
    full = await admin.GetTeamUsage(pb.GetTeamUsageRequest(team_id=team.team_id), metadata=ADMIN)
    by_type = {t.job_type: t.usage for t in full.job_types}
    assert Decimal(by_type["dear_to_bill"].billed_cost_usd) > Decimal(by_type["cheap_to_bill"].billed_cost_usd)
    assert Decimal(by_type["dear_to_bill"].provider_cost_usd) < Decimal(by_type["cheap_to_bill"].provider_cost_usd)
