"""Credits stay exact when many clients race over two server processes on one PostgreSQL.

The two gRPC servers are real processes (devstack), each with its own connection pool, so
the races are the ones production sees: PostgreSQL is the only thing they share.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import grpc
import psycopg
import pytest
from google.protobuf import struct_pb2

from devstack.postgres import Postgres
from devstack.stack import Stack
from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import (
    admin_service_pb2_grpc,
    chat_pb2,
    job_pb2,
    job_service_pb2_grpc,
    tenancy_pb2,
    webhook_service_pb2_grpc,
)
from saaslitellm.v1 import job_service_pb2 as pb
from saaslitellm.v1 import webhook_service_pb2 as webhook_pb
from tests.conftest import ADMIN_KEY, own_stack, unique

ADMIN = (("x-admin-key", ADMIN_KEY),)


@pytest.fixture(scope="module")
def two_servers(pg: Postgres, tmp_path_factory) -> Iterator[Stack]:
    with own_stack(pg, tmp_path_factory, "race", with_litellm=False, server_processes=2, health_interval="1s") as stack:
        yield stack


@contextlib.asynccontextmanager
async def channels_to(ports) -> AsyncIterator[list[grpc.aio.Channel]]:
    """A channel to each server process (by gRPC port), closed afterwards."""
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for port in ports]
    try:
        yield channels
    finally:
        for channel in channels:
            await channel.close()


async def make_team(channel: grpc.aio.Channel, credits: int, **team_fields) -> tuple[str, tuple]:
    admin = admin_service_pb2_grpc.AdminServiceStub(channel)
    org, group, alias, team = unique("org"), unique("grp"), unique("A"), unique("team")
    await admin.CreateOrganization(admin_pb.CreateOrganizationRequest(organization_id=org, name="o"), metadata=ADMIN)
    await admin.CreateModelAccessGroup(admin_pb.CreateModelAccessGroupRequest(group_name=group), metadata=ADMIN)
    await admin.CreateModel(
        admin_pb.CreateModelRequest(model_alias=alias, actual_model="fake-gpt", access_groups=[group]), metadata=ADMIN
    )
    created = await admin.CreateTeam(
        admin_pb.CreateTeamRequest(
            organization_id=org, team_id=team, access_groups=[group], credits_allocated=credits, **team_fields
        ),
        metadata=ADMIN,
    )
    return team, (("authorization", f"Bearer {created.virtual_key}"),)


def invariants(url: str, team_id: str) -> tuple[int, int, int, int, int]:
    """(remaining, ledger sum of amount, reserved, ledger sum of reserved_delta, charged jobs)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            """
            SELECT t.credits_allocated - t.credits_used,
                   (SELECT coalesce(sum(amount), 0) FROM credit_ledger WHERE team_id = t.team_id),
                   t.credits_reserved,
                   (SELECT coalesce(sum(reserved_delta), 0) FROM credit_ledger WHERE team_id = t.team_id),
                   (SELECT count(*) FROM credit_ledger WHERE team_id = t.team_id AND kind = 'charge' AND amount < 0)
            FROM teams t WHERE t.team_id = %s
            """,
            (team_id,),
        ).fetchone()


async def test_200_jobs_racing_for_50_credits_over_two_processes(two_servers):
    targets = [f"127.0.0.1:{port}" for port in two_servers.grpc_ports]
    channels = [grpc.aio.insecure_channel(t) for t in targets]
    try:
        team_id, auth = await make_team(channels[0], credits=50)
        stubs = itertools.cycle([job_service_pb2_grpc.JobServiceStub(c) for c in channels])
        creates = [next(stubs).CreateJob(pb.CreateJobRequest(job_type="race"), metadata=auth) for _ in range(200)]
        outcomes = await asyncio.gather(*creates, return_exceptions=True)
        created = [o for o in outcomes if isinstance(o, job_pb2.Job)]
        refused = [o for o in outcomes if not isinstance(o, job_pb2.Job)]
        assert len(created) == 50
        assert all(
            isinstance(e, grpc.aio.AioRpcError) and e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused
        )

        # Complete them all, several times each, from both processes at once: 40 completed, 10 failed.
        completions = []
        for index, job in enumerate(created):
            status = job_pb2.Job.FAILED if index % 5 == 0 else job_pb2.Job.COMPLETED
            request = pb.CompleteJobRequest(job_id=job.job_id, status=status)
            completions += [next(stubs).CompleteJob(request, metadata=auth) for _ in range(3)]
        results = await asyncio.gather(*completions)
        assert sum(1 for r in results if r.costs.credit_applied) == 40 * 3  # repeats report the same charge
        remaining, ledger_amount, reserved, ledger_reserved, charges = invariants(two_servers.postgres.url, team_id)
        assert (remaining, ledger_amount) == (10, 10)
        assert (reserved, ledger_reserved) == (0, 0)
        assert charges == 40
    finally:
        for channel in channels:
            await channel.close()


async def test_100_repeated_completes_of_one_job_charge_once(two_servers):
    async with channels_to(two_servers.grpc_ports) as channels:
        team_id, auth = await make_team(channels[0], credits=5)
        stubs = [job_service_pb2_grpc.JobServiceStub(c) for c in channels]
        job = await stubs[0].CreateJob(pb.CreateJobRequest(job_type="t"), metadata=auth)
        request = pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED)
        results = await asyncio.gather(*(stubs[i % 2].CompleteJob(request, metadata=auth) for i in range(100)))
        assert {r.costs.credits_remaining for r in results} == {4}
        assert len({r.SerializeToString() for r in results}) == 1  # the same answer every time
        assert invariants(two_servers.postgres.url, team_id) == (4, 4, 0, 0, 1)


async def test_idempotent_creates_across_processes_reserve_once(two_servers):
    async with channels_to(two_servers.grpc_ports) as channels:
        team_id, auth = await make_team(channels[0], credits=5)
        stubs = [job_service_pb2_grpc.JobServiceStub(c) for c in channels]
        request = pb.CreateJobRequest(job_type="t", idempotency_key="same-order-123")
        jobs = await asyncio.gather(*(stubs[i % 2].CreateJob(request, metadata=auth) for i in range(40)))
        assert len({j.job_id for j in jobs}) == 1
        assert invariants(two_servers.postgres.url, team_id)[2:4] == (1, 1)


async def test_consumption_jobs_settling_at_once_charge_exactly_what_the_team_can_pay(two_servers):
    """12 jobs of 29 tokens (3 credits each at 10 tokens per credit) settle at once over two
    processes; the team can pay 30 + 5 overdraft = 35 of the 36 due. Completions decide
    their charge without the team's lock and fall back to deciding under it when the
    balance moved or caps the charge: the total must still be exactly 35, each job's charge
    plus shortfall exactly 3, and the ledger equal to the balance."""
    async with channels_to(two_servers.grpc_ports) as channels:
        team_id, auth = await make_team(channels[0], credits=30)
        admin = admin_service_pb2_grpc.AdminServiceStub(channels[0])
        await admin.UpdateTeam(
            admin_pb.UpdateTeamRequest(
                team_id=team_id,
                budget_mode=tenancy_pb2.Team.CONSUMPTION_TOKENS,
                tokens_per_credit=10,
                credits_overdraft_limit=5,
            ),
            metadata=ADMIN,
        )
        stubs = [job_service_pb2_grpc.JobServiceStub(c) for c in channels]
        jobs = [await stubs[i % 2].CreateJob(pb.CreateJobRequest(job_type="t"), metadata=auth) for i in range(12)]
        for i, job in enumerate(jobs):
            message = chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value="a [fake tokens=25]"))
            await stubs[i % 2].LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[message]), metadata=auth)
        done = await asyncio.gather(
            *(
                stubs[(i + k) % 2].CompleteJob(
                    pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=auth
                )
                for i, job in enumerate(jobs)
                for k in range(2)  # each job completed twice, from both processes
            )
        )
        settled = {r.job_id: r.costs for r in done}
        assert len(settled) == 12
        assert {c.prompt_tokens + c.completion_tokens for c in settled.values()} == {29}
        assert {c.credits_charged + c.credits_shortfall for c in settled.values()} == {3}
        assert sum(c.credits_charged for c in settled.values()) == 35
        remaining, ledger_amount, reserved, ledger_reserved, _ = invariants(two_servers.postgres.url, team_id)
        assert (remaining, ledger_amount, reserved, ledger_reserved) == (-5, -5, 0, 0)


async def test_calls_ending_after_their_job_completed_are_charged_exactly_over_two_processes(two_servers):
    """40 jobs under a token budget (1 token a credit), each with a call in flight while
    the other process completes it at a random moment: before the call starts (it is
    refused), while it runs, or after it was recorded. However each race falls, a completed
    job is charged exactly what all its recorded calls consumed, a call recorded after the
    settlement being charged then (a late_charge entry), and the ledger equals the balance."""
    rng = random.Random(8)
    async with channels_to(two_servers.grpc_ports) as channels:
        team_id, auth = await make_team(channels[0], credits=10_000)
        admin = admin_service_pb2_grpc.AdminServiceStub(channels[0])
        await admin.UpdateTeam(
            admin_pb.UpdateTeamRequest(
                team_id=team_id, budget_mode=tenancy_pb2.Team.CONSUMPTION_TOKENS, tokens_per_credit=1
            ),
            metadata=ADMIN,
        )
        stubs = [job_service_pb2_grpc.JobServiceStub(c) for c in channels]
        message = chat_pb2.ChatMessage(
            role="user", content=struct_pb2.Value(string_value="a [fake tokens=5 delay_ms=30]")
        )

        async def race(i: int) -> None:
            job = await stubs[i % 2].CreateJob(pb.CreateJobRequest(job_type="t"), metadata=auth)

            async def complete_at_random() -> None:
                await asyncio.sleep(rng.uniform(0, 0.05))  # jitter: where the completion lands in the call
                request = pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED)
                await stubs[(i + 1) % 2].CompleteJob(request, metadata=auth)

            call = stubs[i % 2].LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[message]), metadata=auth)
            outcome, _ = await asyncio.gather(call, complete_at_random(), return_exceptions=True)
            if isinstance(outcome, grpc.aio.AioRpcError):  # the job completed before the call started
                assert outcome.code() == grpc.StatusCode.FAILED_PRECONDITION, outcome.details()
            costs = (await stubs[0].GetJobCosts(pb.GetJobCostsRequest(job_id=job.job_id), metadata=auth)).costs
            consumed = costs.prompt_tokens + costs.completion_tokens
            assert (costs.credits_charged, costs.credits_shortfall) == (max(1, consumed), 0), job.job_id

        await asyncio.gather(*(race(i) for i in range(40)))
        remaining, ledger_amount, reserved, ledger_reserved, _ = invariants(two_servers.postgres.url, team_id)
        assert (remaining, reserved) == (ledger_amount, ledger_reserved) and reserved == 0
        with psycopg.connect(two_servers.postgres.url) as conn:
            (late,) = conn.execute(
                "SELECT count(*) FROM credit_ledger WHERE team_id = %s AND kind = 'late_charge'", (team_id,)
            ).fetchone()
        assert late > 0, "no call ended after its job completed: the race was not run"


async def test_a_call_limit_admits_exactly_its_minute_over_two_processes(two_servers):
    """60 calls at once, spread over both processes, against a limit of 6 a minute: exactly
    6 are made and recorded (one more per 10 s the burst lasts), the rest refused."""
    async with channels_to(two_servers.grpc_ports) as channels:
        _, auth = await make_team(channels[0], credits=5, calls_per_minute=6)
        stubs = [job_service_pb2_grpc.JobServiceStub(c) for c in channels]
        job = await stubs[0].CreateJob(pb.CreateJobRequest(job_type="burst"), metadata=auth)
        message = chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value="hi"))
        request = pb.LLMCallRequest(job_id=job.job_id, messages=[message])
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(stubs[i % 2].LLMCall(request, metadata=auth) for i in range(60)), return_exceptions=True
        )
        elapsed = time.monotonic() - started
        made = [o for o in outcomes if isinstance(o, pb.LLMCallResponse)]
        refused = [o for o in outcomes if not isinstance(o, pb.LLMCallResponse)]
        assert 6 <= len(made) <= 6 + int(elapsed // 10), elapsed
        assert all(
            isinstance(e, grpc.aio.AioRpcError) and e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused
        ), [
            e
            for e in refused
            if not isinstance(e, grpc.aio.AioRpcError) or e.code() != grpc.StatusCode.FAILED_PRECONDITION
        ][:1]
        assert all("6 LLM calls a minute" in e.details() for e in refused)
        with psycopg.connect(two_servers.postgres.url) as conn:
            recorded = conn.execute("SELECT count(*) FROM llm_calls WHERE job_id = %s", (job.job_id,)).fetchone()[0]
        assert recorded == len(made)


async def test_a_low_credit_alert_fires_once_when_many_charges_cross_it_at_once(two_servers):
    """50 completions over two processes take a team from 50 to 0 credits through its
    threshold of 25: the trigger runs under the team's row lock, so exactly one of them
    sees the crossing, and exactly one event is written."""
    async with channels_to(two_servers.grpc_ports) as channels:
        team_id, auth = await make_team(channels[0], credits=50, low_credit_threshold=25)
        hooks = webhook_service_pb2_grpc.WebhookServiceStub(channels[0])
        endpoint = await hooks.CreateWebhookEndpoint(
            # Nothing listens there: the deliveries fail and are retried later; only the
            # events are counted here.
            webhook_pb.CreateWebhookEndpointRequest(url="http://127.0.0.1:9/hooks", event_types=["team.credits_low"]),
            metadata=ADMIN,
        )
        stubs = [job_service_pb2_grpc.JobServiceStub(c) for c in channels]
        jobs = await asyncio.gather(
            *(stubs[i % 2].CreateJob(pb.CreateJobRequest(job_type="t"), metadata=auth) for i in range(50))
        )
        await asyncio.gather(
            *(
                stubs[i % 2].CompleteJob(
                    pb.CompleteJobRequest(job_id=j.job_id, status=job_pb2.Job.COMPLETED), metadata=auth
                )
                for i, j in enumerate(jobs)
            )
        )
        assert invariants(two_servers.postgres.url, team_id)[:2] == (0, 0)
        with psycopg.connect(two_servers.postgres.url) as conn:
            events = conn.execute(
                "SELECT payload FROM webhook_deliveries WHERE endpoint_id = %s AND payload->'data'->>'team_id' = %s",
                (endpoint.endpoint.endpoint_id, team_id),
            ).fetchall()
        assert len(events) == 1
        assert events[0][0]["data"]["credits_remaining"] == 25


async def calls_at_once_in_one_job(stack: Stack, team_fields: dict, text_: str, **params) -> tuple[str, int]:
    """30 calls at once in one new job of a team with `team_fields`, spread over both
    processes: (the job, how many were made). Every other one must be refused as
    FAILED_PRECONDITION."""
    async with channels_to(stack.grpc_ports) as channels:
        _, auth = await make_team(channels[0], credits=5, **team_fields)
        stubs = [job_service_pb2_grpc.JobServiceStub(c) for c in channels]
        job = await stubs[0].CreateJob(pb.CreateJobRequest(job_type="loop"), metadata=auth)
        message = chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text_))
        request = pb.LLMCallRequest(job_id=job.job_id, messages=[message], **params)
        outcomes = await asyncio.gather(
            *(stubs[i % 2].LLMCall(request, metadata=auth) for i in range(30)), return_exceptions=True
        )
    made = [o for o in outcomes if isinstance(o, pb.LLMCallResponse)]
    unexpected = [
        o
        for o in outcomes
        if not isinstance(o, pb.LLMCallResponse)
        and not (isinstance(o, grpc.aio.AioRpcError) and o.code() == grpc.StatusCode.FAILED_PRECONDITION)
    ]
    assert not unexpected, unexpected[:1]
    return job.job_id, len(made)


async def test_a_job_call_limit_admits_exactly_its_calls_over_two_processes(two_servers):
    """30 calls at once in one job, spread over both processes, against a limit of 5 calls
    per job: exactly 5 are made and recorded, the rest refused."""
    job_id, made = await calls_at_once_in_one_job(two_servers, {"max_calls_per_job": 5}, "hi")
    assert made == 5
    with psycopg.connect(two_servers.postgres.url) as conn:
        recorded = conn.execute("SELECT count(*) FROM llm_calls WHERE job_id = %s", (job_id,)).fetchone()[0]
    assert recorded == 5


async def test_a_job_cost_limit_is_never_exceeded_by_concurrent_calls_over_two_processes(two_servers):
    """30 calls at once in one job, over both processes, each costing about $0.002 of its
    worst case of about $0.00207 (1000 output tokens asked and written), against a limit of
    $0.011 per job: 5 worst cases fit, a sixth does not fit beside 5 actual costs, so
    exactly 5 are made whatever the timing, and what the job spent stays within the limit.
    Without the reservations, every call would see nothing spent and go."""
    job_id, made = await calls_at_once_in_one_job(
        two_servers, {"max_cost_usd_per_job": "0.011"}, "go [fake tokens=1000]", max_tokens=1000
    )
    assert made == 5
    with psycopg.connect(two_servers.postgres.url) as conn:
        recorded, cost = conn.execute(
            "SELECT count(*), sum(billed_cost_usd) FROM llm_calls WHERE job_id = %s", (job_id,)
        ).fetchone()
        spent, reserved = conn.execute(
            "SELECT cost_spent_usd, cost_reserved_usd FROM job_limits WHERE job_id = %s", (job_id,)
        ).fetchone()
    assert recorded == 5 and cost <= Decimal("0.011")
    assert spent == cost and reserved == 0
