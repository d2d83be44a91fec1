"""Usage reports agree with the ledger after refunds: credits_charged counts every charge
(as each job shows it), credits_refunded what refunds gave back, and the provider cost
per credit divides by the credits kept. The team's own report, the admin's team report
and the organization's report; before and after the rollup's compaction; a refund
repeated at once is counted once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import credit_service_pb2 as cpb
from saaslitellm.v1 import credit_service_pb2_grpc, job_pb2
from saaslitellm.v1 import job_service_pb2 as pb
from server.domain.analytics import COST_QUANTUM
from tests.api.admin_support import bearer, new_alias, new_group, new_org, new_team, user
from tests.api.conftest import ADMIN
from tests.api.test_credits import set_billing

LEDGER = """
SELECT coalesce(-sum(amount) FILTER (WHERE kind = 'charge'), 0) AS charged,
       coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunded
FROM credit_ledger WHERE team_id = ANY(:teams)
"""
PROVIDER = "SELECT coalesce(sum(provider_cost_usd), 0) FROM llm_calls WHERE team_id = ANY(:teams)"


@pytest.fixture(scope="session")
def credits(channel) -> credit_service_pb2_grpc.CreditServiceStub:
    return credit_service_pb2_grpc.CreditServiceStub(channel)


async def completed_job(jobs, team: admin_pb.CreateTeamResponse, job_type: str, *prompts: str):
    auth = bearer(team.virtual_key)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type=job_type), metadata=auth)
    for prompt in prompts:
        await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user(prompt)]), metadata=auth)
    return await jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=auth)


async def ledger(app, *teams: str) -> tuple[int, int, Decimal]:
    """(credits charged, credits refunded) as the ledger has them, and the provider cost."""
    async with app.db.transaction() as conn:
        row = (await conn.execute(text(LEDGER), {"teams": list(teams)})).one()
        provider = (await conn.execute(text(PROVIDER), {"teams": list(teams)})).scalar_one()
    return row.charged, row.refunded, Decimal(provider)


def per_credit(provider: Decimal, kept: int) -> Decimal | None:
    return (provider / kept).quantize(COST_QUANTUM) if kept > 0 else None


def reported(value: str) -> Decimal | None:
    return Decimal(value) if value else None


async def test_usage_reports_agree_with_the_ledger_after_refunds(app, admin, jobs, credits):
    org, group = await new_org(admin), await new_group(admin)
    await new_alias(admin, group)
    # Two teams of one organization: one charged by tokens (6 and 3 credits), one per job.
    tokens = await new_team(admin, org, group, credits=100)
    await set_billing(app, tokens.team_id, budget_mode="consumption_tokens", tokens_per_credit=10)
    per_job = await new_team(admin, org, group, credits=100)

    six = await completed_job(jobs, tokens, "analysis", "a [fake tokens=25]", "b [fake tokens=25]")
    three = await completed_job(jobs, tokens, "summary", "c [fake tokens=25]")
    assert (six.costs.credits_charged, three.costs.credits_charged) == (6, 3)
    ones = [await completed_job(jobs, per_job, "analysis", "d [fake tokens=5]") for _ in range(2)]

    # Refunds, each asked for several times at once: each counted once.
    refunds = [(tokens, six.job_id)] * 4 + [(per_job, ones[0].job_id)] * 3
    answers = await asyncio.gather(
        *(
            credits.RefundJob(cpb.RefundJobRequest(team_id=team.team_id, job_id=job_id), metadata=ADMIN)
            for team, job_id in refunds
        )
    )
    assert sum(not a.already_refunded for a in answers) == 2

    for compacted in (False, True):
        charged, refunded, provider = await ledger(app, tokens.team_id)
        assert (charged, refunded) == (9, 6)
        own = (await jobs.GetUsage(pb.GetUsageRequest(), metadata=bearer(tokens.virtual_key))).totals
        assert (own.credits_charged, own.credits_refunded) == (9, 6)
        report = await admin.GetTeamUsage(admin_pb.GetTeamUsageRequest(team_id=tokens.team_id), metadata=ADMIN)
        assert (report.totals.credits_charged, report.totals.credits_refunded) == (9, 6)
        assert reported(report.totals.provider_cost_usd_per_credit) == per_credit(provider, 3)  # the 3 credits kept
        by_type = {t.job_type: t.usage for t in report.job_types}
        assert {name: (u.credits_charged, u.credits_refunded) for name, u in by_type.items()} == {
            "analysis": (6, 6),
            "summary": (3, 0),
        }
        assert by_type["analysis"].provider_cost_usd_per_credit == ""  # all refunded: no credit kept
        assert [(d.usage.credits_charged, d.usage.credits_refunded) for d in report.days] == [(9, 6)]

        summed = await admin.GetOrganizationUsage(
            admin_pb.GetOrganizationUsageRequest(organization_id=org), metadata=ADMIN
        )
        charged, refunded, provider = await ledger(app, tokens.team_id, per_job.team_id)
        assert (summed.totals.credits_charged, summed.totals.credits_refunded) == (charged, refunded) == (11, 7)
        assert reported(summed.totals.provider_cost_usd_per_credit) == per_credit(provider, 4)
        assert {t.team_id: (t.usage.credits_charged, t.usage.credits_refunded) for t in summed.teams} == {
            tokens.team_id: (9, 6),
            per_job.team_id: (2, 1),
        }
        if not compacted:
            await app.rollup.compact()
