"""A job of more calls than a response embeds (MAX_EMBEDDED_CALLS): every job view stays
within SAAS_MAX_MESSAGE_BYTES, embeds the first calls and counts them all, CompleteJob
answers the completion it committed, and ListJobCalls pages through every call once.

The calls are written into PostgreSQL directly, as the server records them: making
thousands through the API would only be slower. The server runs with a message limit that
the bound's calls fit in and the job's all calls do not."""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy import text

from saaslitellm.v1 import admin_job_service_pb2 as admin_jobs_pb
from saaslitellm.v1 import admin_job_service_pb2_grpc, job_pb2, job_service_pb2_grpc, tenancy_pb2
from saaslitellm.v1 import job_service_pb2 as pb
from server.api import convert
from server.app import Application
from server.services.jobs import MAX_EMBEDDED_CALLS
from tests.api.admin_support import fails
from tests.api.conftest import ADMIN, TeamFixture, create_team, extra_app

CALLS = 2 * MAX_EMBEDDED_CALLS + 500
# A seeded call's summary is about 250 bytes: the bound's calls (250 KB) fit, the job's all
# calls (600 KB) would not.
MAX_MESSAGE_BYTES = 400_000
TOKENS_PER_CREDIT = 1000


@pytest.fixture(scope="module")
async def small(database_url: str, fake_url: str) -> AsyncIterator[tuple[Application, grpc.aio.Channel]]:
    async with extra_app(database_url, fake_url, max_message_bytes=MAX_MESSAGE_BYTES) as running:
        yield running


@pytest.fixture(scope="module")
def jobs(small) -> job_service_pb2_grpc.JobServiceStub:
    return job_service_pb2_grpc.JobServiceStub(small[1])


@pytest.fixture(scope="module")
def admin_jobs(small) -> admin_job_service_pb2_grpc.AdminJobServiceStub:
    return admin_job_service_pb2_grpc.AdminJobServiceStub(small[1])


@pytest.fixture
async def team(admin) -> TeamFixture:
    """A team billed by tokens: a completion's charge counts every call's tokens."""
    return await create_team(
        admin, budget_mode=tenancy_pb2.Team.CONSUMPTION_TOKENS, tokens_per_credit=TOKENS_PER_CREDIT
    )


async def seed_calls(app: Application, job_id: str, team: TeamFixture, count: int) -> None:
    """`count` calls recorded in the open job, three at each created_at (ties are ordered by
    call_id), with answers (`content`) that no view shows."""
    async with app.db.transaction() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO llm_calls (call_id, job_id, team_id, status, purpose, model_alias, prompt_tokens,
                                       completion_tokens, provider_cost_usd, billed_cost_usd, latency_ms,
                                       error_message, content, created_at)
                SELECT gen_random_uuid(), :job_id, :team_id,
                       CASE WHEN n % 10 = 0 THEN 'failed' ELSE 'succeeded' END,
                       'step ' || n || ' ' || repeat('p', 150), :alias, 3, n % 7, 0.0000005 * n, 0.000001 * n,
                       10 + n % 50, CASE WHEN n % 10 = 0 THEN 'the model provider is unavailable' ELSE '' END,
                       repeat('answer ', 500), now() - interval '1 hour' + (n / 3) * interval '1 millisecond'
                  FROM generate_series(1, :count) AS n
                """
            ),
            {"job_id": job_id, "team_id": team.team_id, "alias": team.alias, "count": count},
        )
        await conn.execute(
            text("UPDATE jobs SET status = 'in_progress', started_at = now() - interval '1 hour' WHERE job_id = :j"),
            {"j": job_id},
        )


async def recorded(app: Application, job_id: str) -> tuple[list[str], int, float]:
    """The job's call ids oldest first, as the views order them, and its tokens and billed cost."""
    async with app.db.transaction() as conn:
        ids = (
            await conn.execute(
                text("SELECT call_id FROM llm_calls WHERE job_id = :j ORDER BY created_at, call_id"), {"j": job_id}
            )
        ).scalars()
        tokens, cost = (
            await conn.execute(
                text(
                    "SELECT sum(prompt_tokens + completion_tokens), sum(billed_cost_usd) FROM llm_calls WHERE job_id = :j"
                ),
                {"j": job_id},
            )
        ).one()
    return [str(i) for i in ids], int(tokens), float(cost)


@pytest.fixture
async def big_job(small, jobs, team) -> tuple[str, list[str], int, float]:
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="loop"), metadata=team.auth)
    await seed_calls(small[0], job.job_id, team, CALLS)
    return (job.job_id, *await recorded(small[0], job.job_id))


def assert_shows_the_first_calls(calls, costs: job_pb2.JobCosts, ids: list[str], tokens: int, cost: float) -> None:
    assert [c.call_id for c in calls] == ids[:MAX_EMBEDDED_CALLS]
    assert costs.total_calls == CALLS > len(calls)  # how a client tells the list is cut
    assert costs.failed_calls == CALLS // 10 and costs.successful_calls == CALLS - CALLS // 10
    assert costs.total_tokens == tokens
    assert costs.total_cost_usd == pytest.approx(cost)


async def test_every_job_view_embeds_the_first_calls_and_counts_them_all(jobs, admin_jobs, team, big_job) -> None:
    job_id, ids, tokens, cost = big_job

    job = await jobs.GetJob(pb.GetJobRequest(job_id=job_id), metadata=team.auth)
    assert_shows_the_first_calls(job.calls, job.costs, ids, tokens, cost)
    assert job.ByteSize() < MAX_MESSAGE_BYTES

    costs = await jobs.GetJobCosts(pb.GetJobCostsRequest(job_id=job_id), metadata=team.auth)
    assert_shows_the_first_calls(costs.calls, costs.costs, ids, tokens, cost)

    patched = await jobs.UpdateJobMetadata(
        pb.UpdateJobMetadataRequest(job_id=job_id, metadata=convert.dict_to_struct({"looping": True})),
        metadata=team.auth,
    )
    assert_shows_the_first_calls(patched.calls, patched.costs, ids, tokens, cost)

    for auth in (team.auth, ADMIN):  # the team's own list, and the dashboard's
        listed = await admin_jobs.ListTeamJobs(admin_jobs_pb.ListTeamJobsRequest(team_id=team.team_id), metadata=auth)
        (shown,) = listed.jobs
        assert shown == patched


async def test_complete_job_answers_the_completion_it_committed(small, jobs, team, big_job) -> None:
    job_id, ids, tokens, cost = big_job
    charge = math.ceil(tokens / TOKENS_PER_CREDIT)  # every call's tokens, not only those shown
    assert charge > 1

    done = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    assert done.status == job_pb2.Job.COMPLETED
    assert_shows_the_first_calls(done.calls, done.costs, ids, tokens, cost)
    assert done.costs.credits_charged == charge and done.costs.credits_remaining == 100 - charge

    again = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    assert again == done  # the same answer, charged once
    async with small[0].db.transaction() as conn:
        used = await conn.execute(text("SELECT credits_used FROM teams WHERE team_id = :t"), {"t": team.team_id})
        assert used.scalar_one() == charge


async def list_all(jobs, job_id: str, auth, page_size: int = 0) -> tuple[list[str], int]:
    """Every call ListJobCalls lists, and how many pages it took."""
    seen: list[str] = []
    token, pages = "", 0
    while True:
        page = await jobs.ListJobCalls(
            pb.ListJobCallsRequest(job_id=job_id, page_size=page_size, page_token=token), metadata=auth
        )
        pages += 1
        assert len(page.calls) <= (page_size or 50)
        seen += [c.call_id for c in page.calls]
        token = page.next_page_token
        if not token:
            return seen, pages


async def test_list_job_calls_pages_through_every_call_once(jobs, team, big_job) -> None:
    job_id, ids, _, _ = big_job

    seen, pages = await list_all(jobs, job_id, team.auth, page_size=MAX_EMBEDDED_CALLS)
    assert seen == ids and pages == 3
    seen, pages = await list_all(jobs, job_id, team.auth, page_size=7)  # pages that end between ties
    assert seen == ids and pages == math.ceil(CALLS / 7)

    first = await jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job_id, page_size=1), metadata=team.auth)
    shown = await jobs.GetJob(pb.GetJobRequest(job_id=job_id), metadata=team.auth)
    assert first.calls[0] == shown.calls[0]  # each call as the job views show it
    default = await jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job_id), metadata=team.auth)
    assert len(default.calls) == 50 and default.next_page_token
    capped = await jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job_id, page_size=10**6), metadata=team.auth)
    assert len(capped.calls) == 1000


async def test_a_job_without_calls_lists_none(jobs, team) -> None:
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="idle"), metadata=team.auth)
    page = await jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job.job_id), metadata=team.auth)
    assert list(page.calls) == [] and page.next_page_token == ""


async def test_the_admin_key_reads_any_teams_calls_and_another_team_none(admin, jobs, team, big_job) -> None:
    job_id, ids, _, _ = big_job
    seen, _ = await list_all(jobs, job_id, ADMIN, page_size=MAX_EMBEDDED_CALLS)
    assert seen == ids
    bearer = (("authorization", f"Bearer {ADMIN[0][1]}"),)  # the admin key as a bearer token, as elsewhere
    assert len((await jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job_id), metadata=bearer)).calls) == 50

    other = await create_team(admin)
    error = await fails(
        jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job_id), metadata=other.auth),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )
    assert "step" not in error.details()
    await fails(
        jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=str(uuid.uuid4())), metadata=ADMIN),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )
    await fails(
        jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job_id), metadata=(("x-admin-key", "wrong"), *team.auth)),
        grpc.StatusCode.UNAUTHENTICATED,
        "ADMIN_KEY_REQUIRED",
    )
    await fails(
        jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job_id)), grpc.StatusCode.UNAUTHENTICATED, "MISSING_API_KEY"
    )


def token(position: object, issued_for: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"a": position, "f": issued_for}).encode()).decode().rstrip("=")


async def test_bad_requests_are_invalid_argument(jobs, team, big_job) -> None:
    job_id, _, _, _ = big_job
    page = await jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job_id, page_size=5), metadata=team.auth)
    issued_for = json.loads(base64.urlsafe_b64decode(page.next_page_token + "=" * (-len(page.next_page_token) % 4)))[
        "f"
    ]
    other_job = await jobs.CreateJob(pb.CreateJobRequest(job_type="other"), metadata=team.auth)
    bad = {
        "garbage": "not-a-token",
        "another job's": page.next_page_token,
        "a number for a time": token([1, str(uuid.uuid4())], issued_for),
        "no time": token(["yesterday", str(uuid.uuid4())], issued_for),
        "a time without its zone": token(["2026-01-01T00:00:00", str(uuid.uuid4())], issued_for),
        "no call id": token(["2026-01-01T00:00:00+00:00", "call"], issued_for),
        "one value": token(["2026-01-01T00:00:00+00:00"], issued_for),
    }
    for why, bad_token in bad.items():
        target = other_job.job_id if why == "another job's" else job_id
        await fails(
            jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=target, page_token=bad_token), metadata=team.auth),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            "page_token",
        )
    await fails(
        jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job_id, page_size=-1), metadata=team.auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "page_size",
    )
    await fails(
        jobs.ListJobCalls(pb.ListJobCallsRequest(job_id="not-a-job"), metadata=team.auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "job_id",
    )
    # A token forged to point anywhere only moves the cursor: past every call, nothing.
    beyond = token(["9999-01-01T00:00:00+00:00", str(uuid.uuid4())], issued_for)
    empty = await jobs.ListJobCalls(pb.ListJobCallsRequest(job_id=job_id, page_token=beyond), metadata=team.auth)
    assert list(empty.calls) == [] and empty.next_page_token == ""
