"""This release keeps serving while a later release's additive migration runs under it
(a rolling upgrade: old and new processes share the database, the first new one
migrates). Its connections are already open and its statements prepared when columns are
added to every table its hot paths read; then the whole flow still works, and every
balance still equals its ledger.

What broke before: statements that read `*` (RETURNING * / j.* / job.*) handed the row
builders an unexpected column (`Job(**row)`: TypeError), so creating a job without an
idempotency key and CreateAndCall answered INTERNAL after their transaction had committed
the job and its reservation, and CompleteJob answered INTERNAL after settling. A prepared
`*` also fails once its columns change (PostgreSQL: "cached plan must not change result
type")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import psycopg
import pytest
from aiohttp import web
from google.protobuf import struct_pb2

from saaslitellm.v1 import admin_job_service_pb2 as admin_job_pb
from saaslitellm.v1 import (
    admin_job_service_pb2_grpc,
    admin_service_pb2_grpc,
    credit_service_pb2_grpc,
    job_pb2,
    job_service_pb2_grpc,
    webhook_service_pb2_grpc,
)
from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import credit_service_pb2 as cpb
from saaslitellm.v1 import job_service_pb2 as pb
from saaslitellm.v1 import webhook_service_pb2 as wpb
from server.storage.database import Statement
from tests.api.conftest import ADMIN, TeamFixture, create_team, ledger_mismatches, past_first_content, private_app
from tests.api.test_credits import set_billing
from tests.api.test_job_flow import user

# What the next release's migration might add: a nullable column and one with a default,
# to each table this release reads or writes on its hot paths.
TABLES = (
    "organizations",
    "model_access_groups",
    "model_aliases",
    "teams",
    "api_keys",
    "jobs",
    "llm_calls",
    "llm_calls_archive",
    "job_limits",
    "team_call_rates",
    "credit_ledger",
    "credit_ledger_archive",
    "usage_deltas",
    "usage_daily",
    "admin_audit_log",
    "webhook_endpoints",
    "webhook_deliveries",
)
ADD_COLUMNS = (
    "ALTER TABLE {} ADD COLUMN next_release_note text, ADD COLUMN next_release_rank integer NOT NULL DEFAULT 7"
)

# The second chunk comes 800 ms after the first: the job is completed in between, and the
# stream's call is recorded (and charged) late.
LATE = "late [fake tokens=4 chunks=2 first_delay_ms=0 delay_ms=800]"
EVENTS = ["job.completed", "job.failed", "job.late_charge", "job.refunded"]


@dataclass
class Receiver:
    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, count: int) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.bodies) >= count), timeout=20)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        async with state.arrived:
            state.bodies.append(body)
            state.arrived.notify_all()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    yield state
    await runner.cleanup()


@dataclass
class Clients:
    jobs: job_service_pb2_grpc.JobServiceStub
    admin_jobs: admin_job_service_pb2_grpc.AdminJobServiceStub
    credits: credit_service_pb2_grpc.CreditServiceStub
    hooks: webhook_service_pb2_grpc.WebhookServiceStub


async def flow(clients: Clients, team: TeamFixture, round_: int) -> list[str]:
    """Everything a client does, each way a job is made and ended; the ids of the jobs
    whose end sends a webhook event."""
    jobs, auth = clients.jobs, team.auth
    ended = []

    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=auth)
    for prompt in ("one [fake tokens=20]", "two [fake tokens=20]"):
        call = await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user(prompt)]), metadata=auth)
        assert call.response.content
    streamed = [
        event
        async for event in jobs.LLMCallStream(
            pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user("three [fake tokens=20 chunks=3]")]),
            metadata=auth,
        )
    ]
    assert streamed[-1].done and not streamed[-1].HasField("error")
    patch = struct_pb2.Struct()
    patch.update({"round": round_})
    updated = await jobs.UpdateJobMetadata(
        pb.UpdateJobMetadataRequest(job_id=job.job_id, metadata=patch), metadata=auth
    )
    assert updated.metadata["round"] == round_
    got = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=auth)
    assert got.status == job_pb2.Job.IN_PROGRESS
    calls = await jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job.job_id), metadata=auth)
    assert len(calls.calls) == 3
    done = await jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=auth)
    assert done.costs.total_calls == 3 and done.costs.credits_charged > 0
    ended.append(job.job_id)

    key = f"round-{round_}"
    keyed = await jobs.CreateJob(pb.CreateJobRequest(job_type="t", idempotency_key=key), metadata=auth)
    again = await jobs.CreateJob(pb.CreateJobRequest(job_type="t", idempotency_key=key), metadata=auth)
    assert again.job_id == keyed.job_id
    await jobs.LLMCall(pb.LLMCallRequest(job_id=keyed.job_id, messages=[user("four [fake tokens=20]")]), metadata=auth)
    failed = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=keyed.job_id, status=job_pb2.Job.FAILED, error_message="given up"), metadata=auth
    )
    assert failed.status == job_pb2.Job.FAILED
    ended.append(keyed.job_id)

    for idempotency_key in ("", f"single-{round_}"):
        single = await jobs.CreateAndCall(
            pb.CreateAndCallRequest(
                job_type="t", idempotency_key=idempotency_key, messages=[user("five [fake tokens=20]")]
            ),
            metadata=auth,
        )
        assert single.status == job_pb2.Job.COMPLETED and single.response.content
        ended.append(single.job_id)

    listed = await clients.admin_jobs.ListTeamJobs(
        admin_job_pb.ListTeamJobsRequest(team_id=team.team_id, page_size=4), metadata=ADMIN
    )
    assert {j.job_id for j in listed.jobs} == set(ended)

    credits = clients.credits
    await credits.AddCredits(
        cpb.AddCreditsRequest(team_id=team.team_id, credits=10, idempotency_key=f"topup-{round_}"), metadata=ADMIN
    )
    refunded = await credits.RefundJob(cpb.RefundJobRequest(team_id=team.team_id, job_id=job.job_id), metadata=ADMIN)
    assert refunded.transaction.amount == done.costs.credits_charged
    ended.append(job.job_id)  # job.refunded
    history = await credits.ListCreditTransactions(
        cpb.ListCreditTransactionsRequest(team_id=team.team_id, page_size=5), metadata=auth
    )
    assert history.transactions and history.balance.open_jobs == 0
    return ended


async def late_charge(clients: Clients, team: TeamFixture) -> str:
    """A job completed while its stream runs: the stream's call is charged late."""
    jobs, auth = clients.jobs, team.auth
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=auth)
    stream = jobs.LLMCallStream(pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user(LATE)]), metadata=auth)
    events, _ = await past_first_content(stream)
    done = await jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=auth)
    assert done.costs.total_calls == 0
    last = [event async for event in events][-1]
    assert last.done and not last.HasField("error")
    costs = (await jobs.GetJobCosts(pb.GetJobCostsRequest(job_id=job.job_id), metadata=auth)).costs
    assert costs.total_calls == 1 and costs.credits_charged > 0  # charged late
    return job.job_id


async def test_this_release_serves_on_while_a_later_one_adds_columns(pg, fake_url, receiver):
    settings = dict(
        secrets_key="s" * 32, webhook_interval_seconds=0.05, webhook_allow_private_targets=True, metrics_port=None
    )
    async with private_app(pg, fake_url, "expand", **settings) as (app, channel):
        clients = Clients(
            job_service_pb2_grpc.JobServiceStub(channel),
            admin_job_service_pb2_grpc.AdminJobServiceStub(channel),
            credit_service_pb2_grpc.CreditServiceStub(channel),
            webhook_service_pb2_grpc.WebhookServiceStub(channel),
        )
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        team = await create_team(admin, credits=10_000)
        await set_billing(app, team.team_id, budget_mode="consumption_tokens", tokens_per_credit=10)
        endpoint = await clients.hooks.CreateWebhookEndpoint(
            wpb.CreateWebhookEndpointRequest(url=receiver.url, event_types=EVENTS), metadata=ADMIN
        )
        endpoint_id = endpoint.endpoint.endpoint_id

        # Open connections with prepared statements: psycopg prepares a statement on a
        # connection at its fifth run, and the server reuses its most recent connection.
        # Which kept connection a statement gets depends on what else ran meanwhile (the
        # webhook sender, the rollup), so flows run until the one handed out has some
        # (bounded: by the sixth run every connection in use has prepared its statements).
        sent, round_ = [], 0
        for round_ in range(24):
            sent += await flow(clients, team, round_)
            async with app.db.statements() as conn:
                prepared = await conn.first(Statement("SELECT count(*) AS n FROM pg_prepared_statements"), {})
            if round_ >= 5 and prepared.n > 0:
                break
        assert prepared.n > 0, "no connection the server hands out has prepared statements"
        await receiver.wait_for(len(sent))

        # The next release's migration, from another process, under the open connections.
        async with await psycopg.AsyncConnection.connect(app.settings.database_url, autocommit=True) as other:
            for table in TABLES:
                await other.execute(ADD_COLUMNS.format(table))

        first = round_ + 1
        for round_ in range(first, first + 3):
            sent += await flow(clients, team, round_)
        sent.append(await late_charge(clients, team))
        await receiver.wait_for(len(sent))

        # Keys and webhooks' own records, read and written after the change.
        created = await admin.CreateTeamKey(
            admin_pb.CreateTeamKeyRequest(team_id=team.team_id, name="after"), metadata=ADMIN
        )
        keys = await admin.ListTeamKeys(admin_pb.ListTeamKeysRequest(team_id=team.team_id), metadata=ADMIN)
        assert created.key.key_id in {key.key_id for key in keys.keys}
        new_auth = (("authorization", f"Bearer {created.virtual_key}"),)
        job = await clients.jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=new_auth)
        await clients.jobs.CompleteJob(
            pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=new_auth
        )
        test = await clients.hooks.SendTestWebhook(wpb.SendTestWebhookRequest(endpoint_id=endpoint_id), metadata=ADMIN)
        await receiver.wait_for(len(sent) + 2)
        deliveries = await clients.hooks.ListWebhookDeliveries(
            wpb.ListWebhookDeliveriesRequest(endpoint_id=endpoint_id, page_size=3), metadata=ADMIN
        )
        assert deliveries.deliveries[0].delivery_id == test.delivery_id

        balance = await clients.credits.GetCreditBalance(
            cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=team.auth
        )
        assert balance.credits_reserved == 0 and balance.open_jobs == 0
        assert await ledger_mismatches(app) == []
        async with app.db.statements() as conn:
            open_jobs = await conn.first(Statement("SELECT count(*) AS n FROM jobs WHERE completed_at IS NULL"), {})
        assert open_jobs.n == 0
