"""The balance cap and refunds stay exact when top-ups, adjustments, refunds and charges
race over two server processes on one PostgreSQL: a team never holds more than
MAX_CREDITS, the ledger always equals the balance, a job is refunded at most once, and
the usage rollup counts each refund once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import grpc
import psycopg
import pytest
from grpc_status import rpc_status

from devstack.postgres import Postgres
from devstack.stack import Stack
from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import admin_service_pb2_grpc, credit_service_pb2_grpc, job_pb2, job_service_pb2_grpc
from saaslitellm.v1 import credit_service_pb2 as cpb
from saaslitellm.v1 import job_service_pb2 as pb
from server.domain.credits import MAX_CREDITS
from tests.conftest import own_stack
from tests.integration.test_credit_races import ADMIN, channels_to, invariants, make_team


@pytest.fixture(scope="module")
def two_servers(pg: Postgres, tmp_path_factory) -> Iterator[Stack]:
    with own_stack(pg, tmp_path_factory, "cap", with_litellm=False, server_processes=2, health_interval="1s") as stack:
        yield stack


def reason(error: BaseException) -> str:
    from google.rpc import error_details_pb2

    assert isinstance(error, grpc.aio.AioRpcError), error
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


def held_ever(url: str, team_id: str) -> int:
    """The most the team held after any ledger entry."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT max(remaining_after) FROM credit_ledger WHERE team_id = %s", (team_id,)).fetchone()[
            0
        ]


async def test_top_ups_and_charges_racing_at_the_cap_never_overshoot_it(two_servers):
    async with channels_to(two_servers.grpc_ports) as channels:
        start = MAX_CREDITS - 1_000
        team_id, auth = await make_team(channels[0], credits=start)
        credit_stubs = itertools.cycle([credit_service_pb2_grpc.CreditServiceStub(c) for c in channels])
        job_stubs = itertools.cycle([job_service_pb2_grpc.JobServiceStub(c) for c in channels])

        async def charge() -> None:  # a job-based job: 1 credit, freeing room under the cap
            job = await next(job_stubs).CreateJob(pb.CreateJobRequest(job_type="race"), metadata=auth)
            request = pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED)
            await next(job_stubs).CompleteJob(request, metadata=auth)

        top_ups = [
            next(credit_stubs).AddCredits(cpb.AddCreditsRequest(team_id=team_id, credits=7), metadata=ADMIN)
            for _ in range(300)
        ]
        outcomes = await asyncio.gather(*top_ups, *(charge() for _ in range(60)), return_exceptions=True)
        added = [o for o in outcomes[:300] if isinstance(o, cpb.AddCreditsResponse)]
        refused = [o for o in outcomes[:300] if not isinstance(o, cpb.AddCreditsResponse)]
        assert all(o is None for o in outcomes[300:]), outcomes[300:]
        assert refused and all(reason(e) == "INVALID_REQUEST" for e in refused)

        remaining, ledger_amount, reserved, ledger_reserved, charges = invariants(two_servers.postgres.url, team_id)
        assert charges == 60 and (reserved, ledger_reserved) == (0, 0)
        assert remaining == ledger_amount == start + 7 * len(added) - 60
        # The room there was (1,000), plus what the charges freed (60), filled as far as 7s go.
        assert 1_000 // 7 <= len(added) <= 1_060 // 7 and remaining <= MAX_CREDITS
        assert held_ever(two_servers.postgres.url, team_id) <= MAX_CREDITS


async def test_refunds_racing_with_top_ups_at_the_cap_count_once_and_never_overshoot(two_servers):
    async with channels_to(two_servers.grpc_ports) as channels:
        team_id, auth = await make_team(channels[0], credits=40)
        credit_stubs = itertools.cycle([credit_service_pb2_grpc.CreditServiceStub(c) for c in channels])
        job_stub = job_service_pb2_grpc.JobServiceStub(channels[1])
        done = []
        for _ in range(30):
            job = await job_stub.CreateJob(pb.CreateJobRequest(job_type="refundable"), metadata=auth)
            request = pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED)
            done.append((await job_stub.CompleteJob(request, metadata=auth)).job_id)
        # Holds 10: filled to 5 below the cap, so that only some of the 30 refunds fit (at
        # most 5 + the 10 the adjustments below take out).
        fill = MAX_CREDITS - 5 - 10
        await next(credit_stubs).AddCredits(cpb.AddCreditsRequest(team_id=team_id, credits=fill), metadata=ADMIN)

        refunds = [
            next(credit_stubs).RefundJob(cpb.RefundJobRequest(team_id=team_id, job_id=job_id), metadata=ADMIN)
            for job_id in done
            for _ in range(3)  # each asked for three times, from both processes
        ]
        changes = [
            next(credit_stubs).AdjustCredits(
                cpb.AdjustCreditsRequest(team_id=team_id, credits=-1 if i % 2 else 1, reason="race"), metadata=ADMIN
            )
            for i in range(20)
        ]
        outcomes = await asyncio.gather(*refunds, *changes, return_exceptions=True)
        refund_outcomes = outcomes[: len(refunds)]
        firsts = [o for o in refund_outcomes if isinstance(o, cpb.RefundJobResponse) and not o.already_refunded]
        repeats = [o for o in refund_outcomes if isinstance(o, cpb.RefundJobResponse) and o.already_refunded]
        refused = [o for o in refund_outcomes if not isinstance(o, cpb.RefundJobResponse)]
        assert {reason(e) for e in refused} <= {"CREDIT_CAP_EXCEEDED"}
        refunded_jobs = {o.transaction.job_id for o in firsts}
        assert len(refunded_jobs) == len(firsts)  # each job refunded at most once
        assert {o.transaction.job_id for o in repeats} <= refunded_jobs
        assert 0 < len(firsts) <= 15 and refused
        adjusted = [o for o in outcomes[len(refunds) :] if isinstance(o, cpb.AdjustCreditsResponse)]
        assert {reason(e) for e in outcomes[len(refunds) :] if isinstance(e, BaseException)} <= {"INVALID_REQUEST"}

        url = two_servers.postgres.url
        remaining, ledger_amount, reserved, ledger_reserved, _ = invariants(url, team_id)
        assert remaining == ledger_amount <= MAX_CREDITS and (reserved, ledger_reserved) == (0, 0)
        assert remaining == MAX_CREDITS - 5 + len(firsts) + sum(o.transaction.amount for o in adjusted)
        assert held_ever(url, team_id) <= MAX_CREDITS
        with psycopg.connect(url) as conn:
            ledger_refunds, jobs_refunded = conn.execute(
                """
                SELECT (SELECT count(*) FROM credit_ledger WHERE team_id = %(t)s AND kind = 'refund'),
                       (SELECT count(*) FROM jobs WHERE team_id = %(t)s AND credits_refunded = 1)
                """,
                {"t": team_id},
            ).fetchone()
        assert ledger_refunds == jobs_refunded == len(firsts)

        admin = admin_service_pb2_grpc.AdminServiceStub(channels[0])
        usage = await admin.GetTeamUsage(admin_pb.GetTeamUsageRequest(team_id=team_id), metadata=ADMIN)
        assert (usage.totals.credits_charged, usage.totals.credits_refunded) == (30, len(firsts))
