"""The team's other routes against the real stack: single-call jobs (plain and streamed), a
job's costs, the team's usage, its models and its jobs, async and sync; and the typed
error of a call over the team's cost per job. Every test has a
fresh team (100 credits, one alias on `fake-gpt` without fallback)."""

from __future__ import annotations

import socket
import uuid
from datetime import date, datetime
from decimal import Decimal

import httpx
import pytest

from saas_litellm_client import (
    APIConnectionError,
    CreateAndCallChunk,
    CreateAndCallResponse,
    GetJobCostsResponse,
    Job,
    JobCostLimitReachedError,
    JobNotFoundError,
    JobStatus,
    ListTeamJobsResponse,
    ListTeamModelsResponse,
    ModelNotAllowedError,
    RateLimitedError,
    RequestAlreadyProcessedError,
    SaasLiteLLMClient,
    StreamInterruptedError,
    SyncSaasLiteLLMClient,
    TeamMismatchError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
    UsageSummary,
    ValidationError,
)
from tests.client.conftest import FAST_RETRIES, marker
from tests.e2e.conftest import ADMIN_HEADERS


def say(word: str, directive: str = "") -> list[dict]:
    return [{"role": "user", "content": f"{word} [fake {directive}]" if directive else word}]


def balance(stack, team) -> int:
    """The team's remaining credits, read through the API (CreditService, with the team's key)."""
    response = httpx.get(f"{stack.api_url}/api/credits/teams/{team.team_id}/balance", headers=team.headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["credits_remaining"]


# ---------------------------------------------------------------- create-and-call


async def test_create_and_call_is_one_completed_job_charged_one_credit(client, stack, team, fake):
    word = marker()
    reply = await client.create_and_call(
        "one_shot",
        say(word),
        user_id="user-7",
        metadata={"document": "q3"},
        purpose="summarize",
        call_metadata={"summarized": True},
        temperature=0.2,
        n=1,  # not a field of the API: sent in extra_body
    )
    assert isinstance(reply, CreateAndCallResponse) and uuid.UUID(reply.job_id) and uuid.UUID(reply.call_id)
    assert reply.status == JobStatus.COMPLETED and isinstance(reply.completed_at, datetime)
    assert reply.content == reply.response.content == f"Hello from fake! You said: {word}"
    assert reply.response.finish_reason == "stop" and reply.metadata.model == team.alias
    assert reply.metadata.tokens_used == reply.metadata.prompt_tokens + reply.metadata.completion_tokens > 0
    costs = reply.costs
    assert (costs.total_calls, costs.successful_calls, costs.failed_calls) == (1, 1, 0)
    assert costs.credit_applied and costs.credits_charged == 1 and costs.total_tokens == reply.metadata.tokens_used
    assert costs.total_cost_usd == reply.metadata.cost_usd > 0
    assert reply.credits_remaining == costs.credits_remaining == 99 == balance(stack, team)

    [body] = fake.bodies(word)  # one request reached the provider, with the call's options
    assert body["temperature"] == 0.2 and body["n"] == 1

    job = await client.get_job(reply.job_id)
    assert (job.team_id, job.job_type, job.user_id, job.status) == (
        team.team_id,
        "one_shot",
        "user-7",
        JobStatus.COMPLETED,
    )
    assert job.metadata == {"document": "q3", "summarized": True}  # job_metadata, then call_metadata
    [call] = job.calls
    assert (call.call_id, call.purpose, call.status, call.streamed) == (reply.call_id, "summarize", "SUCCEEDED", False)


async def test_a_failed_create_and_call_names_its_failed_job_and_charges_nothing(client, stack, team, fake):
    # Refused before any job is made (a model the team cannot use): no job, none named.
    with pytest.raises(ModelNotAllowedError) as refused:
        await client.create_and_call("one_shot", say("hi"), model="NotOurs")
    assert "job_id" not in refused.value.metadata
    assert not (await client.list_jobs(job_type="one_shot")).jobs

    # A transient failure is retried as an llm_call is: each attempt a new job, failed for free.
    word = marker()
    with pytest.raises(RateLimitedError) as limited:
        await client.create_and_call("limited", say(word, "status=429 retry_after=0"))
    assert len(fake.bodies(word)) == 3  # FAST_RETRIES: 3 attempts
    jobs = (await client.list_jobs(job_type="limited")).jobs
    assert len(jobs) == 3 and {j.status for j in jobs} == {JobStatus.FAILED}
    assert limited.value.metadata["job_id"] == jobs[0].job_id  # the last attempt's job, newest first
    assert balance(stack, team) == 100


async def test_a_create_and_call_with_an_idempotency_key_runs_once(client, stack, team, fake):
    key = f"order-{uuid.uuid4().hex}"
    word = marker()
    first = await client.create_and_call("keyed", say(word), idempotency_key=key)
    with pytest.raises(RequestAlreadyProcessedError) as again:
        await client.create_and_call("keyed", say(word), idempotency_key=key)
    assert again.value.metadata["job_id"] == first.job_id and again.value.metadata["status"] == "completed"
    assert len(fake.bodies(word)) == 1 and balance(stack, team) == 99

    # A transient failure is retried under the key: each try is a job, failed and free.
    word, key = marker(), f"order-{uuid.uuid4().hex}"
    with pytest.raises(UpstreamUnavailableError):
        await client.create_and_call("keyed", say(word, "status=503"), idempotency_key=key)
    assert len(fake.bodies(word)) == 3 and balance(stack, team) == 99  # FAST_RETRIES: 3 attempts
    # Once one succeeds, the key's request is done: charged once, then refused.
    done = await client.create_and_call("keyed", say(marker()), idempotency_key=key)
    with pytest.raises(RequestAlreadyProcessedError) as again:
        await client.create_and_call("keyed", say(marker()), idempotency_key=key)
    assert again.value.metadata["job_id"] == done.job_id and balance(stack, team) == 98


async def test_a_keyed_create_and_call_that_never_left_is_retried():
    with socket.socket() as probe:  # a port nothing listens on: every attempt is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    attempts = []

    async def count(request: httpx.Request) -> None:
        attempts.append(request.headers["idempotency-key"])

    http = httpx.AsyncClient(event_hooks={"request": [count]})
    async with SaasLiteLLMClient(
        base_url=f"http://127.0.0.1:{port}", virtual_key="sk-offline", retry=FAST_RETRIES, http_client=http
    ) as offline:
        with pytest.raises(APIConnectionError) as failed:
            await offline.create_and_call("keyed", say("hi"), idempotency_key="order-1")
    await http.aclose()
    assert not failed.value.request_sent and attempts == ["order-1"] * 3


async def test_create_and_call_sends_the_clients_team_id(stack, team):
    async with SaasLiteLLMClient(base_url=stack.api_url, team_id="someone-else", virtual_key=team.key) as other:
        with pytest.raises(TeamMismatchError):
            await other.create_and_call("one_shot", say("hi"))
    async with SaasLiteLLMClient(base_url=stack.api_url, virtual_key=team.key) as anonymous:
        assert (await anonymous.create_and_call("one_shot", say("hi"))).status == JobStatus.COMPLETED


async def test_create_and_call_stream_yields_chunks_and_a_final_event_with_the_settled_job(client, stack, team):
    stream = client.create_and_call_stream("story", say("story", "tokens=12 chunks=4"), purpose="tell", user_id="u-2")
    chunks = [chunk async for chunk in stream]
    assert all(isinstance(c, CreateAndCallChunk) for c in chunks) and len(chunks) >= 5
    first, last = chunks[0], chunks[-1]
    assert uuid.UUID(first.job_id) and first.call_id and first.model == team.alias
    assert stream.job_id == first.job_id and stream.call_id == first.call_id
    assert [c.done for c in chunks].count(True) == 1 and last.done and stream.final is last
    text = "".join(c.content for c in chunks)
    assert len(text.split()) == 12 and stream.text == text
    assert last.finish_reason == "stop" and last.usage.completion_tokens == 12 and last.cost_usd > 0
    assert last.job_status == JobStatus.COMPLETED and last.costs.credits_charged == 1 and last.costs.credit_applied
    assert last.costs.total_cost_usd == last.cost_usd
    assert last.credits_remaining == last.costs.credits_remaining == 99 == balance(stack, team)

    job = await client.get_job(stream.job_id)
    [call] = job.calls
    assert (job.status, job.job_type, job.user_id) == (JobStatus.COMPLETED, "story", "u-2")
    assert (call.call_id, call.purpose, call.streamed, call.tokens) == (
        first.call_id,
        "tell",
        True,
        last.usage.total_tokens,
    )


async def test_a_create_and_call_stream_cut_upstream_fails_its_job_for_free(client, stack, team):
    received = []
    stream = client.create_and_call_stream("story", say("story", "tokens=12 chunks=4 drop_after=2 delay_ms=100"))
    with pytest.raises(StreamInterruptedError) as interrupted:
        async for chunk in stream:
            received.append(chunk)
    assert interrupted.value.partial_content == "".join(c.content for c in received) != ""
    assert stream.final.job_status == JobStatus.FAILED and stream.final.costs.credits_charged == 0
    assert (await client.get_job(received[0].job_id)).status == JobStatus.FAILED
    assert balance(stack, team) == 100


# ---------------------------------------------------------------- costs


async def test_a_jobs_costs_match_the_calls_made(client):
    job = await client.create_job("costed")
    one = await client.llm_call(job.job_id, say("first"), purpose="one")
    two = await client.llm_call(job.job_id, say("second call"), purpose="two")
    with pytest.raises(UpstreamRejectedError):
        await client.llm_call(job.job_id, say(marker(), "bogus=1"), purpose="bad")

    costs = await client.get_job_costs(job.job_id)
    assert isinstance(costs, GetJobCostsResponse)
    assert (costs.job_id, costs.job_type, costs.status) == (job.job_id, "costed", JobStatus.IN_PROGRESS)
    assert [c.purpose for c in costs.calls] == ["one", "two", "bad"]
    assert [c.call_id for c in costs.calls[:2]] == [one.call_id, two.call_id]
    assert [c.status for c in costs.calls] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    assert [c.cost_usd for c in costs.calls] == [one.metadata.cost_usd, two.metadata.cost_usd, 0]
    assert [c.tokens for c in costs.calls[:2]] == [one.metadata.tokens_used, two.metadata.tokens_used]
    totals = costs.costs
    assert (totals.total_calls, totals.successful_calls, totals.failed_calls) == (3, 2, 1)
    assert totals.total_tokens == one.metadata.tokens_used + two.metadata.tokens_used
    assert totals.prompt_tokens == one.metadata.prompt_tokens + two.metadata.prompt_tokens
    assert totals.total_cost_usd == pytest.approx(one.metadata.cost_usd + two.metadata.cost_usd)
    assert not totals.credit_applied and totals.credits_charged == 0 and totals.credits_remaining is None

    await client.complete_job(job.job_id, "completed")
    settled = await client.get_job_costs(job.job_id)
    assert settled.status == JobStatus.COMPLETED and settled.costs.credit_applied
    assert (settled.costs.credits_charged, settled.costs.credits_remaining) == (1, 99)
    assert settled.calls == costs.calls

    with pytest.raises(JobNotFoundError):
        await client.get_job_costs(str(uuid.uuid4()))


async def test_a_refunded_jobs_costs_carry_credits_refunded_as_a_typed_field(client, stack, team):
    job = await client.create_job("refunded")
    await client.llm_call(job.job_id, say("first"))
    settled = await client.complete_job(job.job_id, "completed")
    assert settled.costs.credits_refunded == 0 and "credits_refunded" not in (settled.costs.model_extra or {})

    async with httpx.AsyncClient(timeout=10) as admin:
        refund = await admin.post(
            f"{stack.api_url}/api/credits/teams/{team.team_id}/jobs/{job.job_id}/refund",
            json={"reason": "client test"},
            headers=ADMIN_HEADERS,
        )
    assert refund.status_code == 200, refund.text

    costs = (await client.get_job_costs(job.job_id)).costs
    assert type(costs.credits_refunded) is int and costs.credits_refunded == 1 == costs.credits_charged
    assert "credits_refunded" not in (costs.model_extra or {})  # a declared field, not an extra one
    assert (await client.get_job(job.job_id)).costs.credits_refunded == 1


# ---------------------------------------------------------------- usage


async def test_usage_counts_the_teams_jobs_calls_and_credits(client):
    a1 = await client.create_and_call("alpha", say("one"))
    a2 = await client.create_and_call("alpha", say("two words"))
    await client.create_job("alpha")  # open: pending
    failed = await client.create_job("beta")
    await client.complete_job(failed.job_id, "failed", error_message="gave up")

    usage = await client.get_usage()
    assert isinstance(usage, UsageSummary) and usage.team_id == client.team_id
    assert (usage.end_date - usage.start_date).days == 29  # the default range
    totals = usage.totals
    assert (totals.jobs, totals.jobs_completed, totals.jobs_pending, totals.jobs_failed) == (4, 2, 1, 1)
    assert (totals.jobs_in_progress, totals.jobs_expired, totals.calls, totals.calls_failed) == (0, 0, 2, 0)
    assert totals.total_tokens == a1.metadata.tokens_used + a2.metadata.tokens_used
    assert totals.prompt_tokens + totals.completion_tokens == totals.total_tokens
    assert totals.credits_charged == 2
    assert isinstance(totals.billed_cost_usd, Decimal)
    assert float(totals.billed_cost_usd) == pytest.approx(a1.metadata.cost_usd + a2.metadata.cost_usd)
    assert sum(day.usage.jobs for day in usage.days) == 4
    assert all(usage.start_date <= day.date <= usage.end_date for day in usage.days)
    assert [t.job_type for t in usage.job_types] == ["alpha", "beta"]  # by cost
    assert (usage.job_types[0].usage.jobs, usage.job_types[1].usage.jobs_failed) == (3, 1)

    alpha = await client.get_usage(job_type="alpha")
    assert (alpha.totals.jobs, alpha.totals.calls, [t.job_type for t in alpha.job_types]) == (3, 2, ["alpha"])
    assert len((await client.get_usage(limit=1)).job_types) == 1
    same = await client.get_usage(start_date=usage.start_date, end_date=usage.end_date.isoformat())
    assert same.totals == usage.totals
    past = await client.get_usage(start_date="2020-01-01", end_date=date(2020, 1, 31))
    assert (past.start_date, past.end_date, past.totals.jobs, past.days) == (date(2020, 1, 1), date(2020, 1, 31), 0, [])

    with pytest.raises(ValidationError) as invalid:
        await client.get_usage(start_date="01/02/2026")
    assert invalid.value.field == "start_date"
    with pytest.raises(TypeError, match="start_date"):
        await client.get_usage(start_date=datetime(2026, 1, 1))


# ---------------------------------------------------------------- models


async def test_list_models_returns_the_teams_alias(client, stack, team):
    models = await client.list_models()
    assert isinstance(models, ListTeamModelsResponse)
    assert models.aliases == [team.alias] and models.default_model == team.alias
    [model] = models.models
    assert model.is_default and model.display_name == team.alias
    assert await client.list_models(team.team_id) == models
    with pytest.raises(TeamMismatchError):
        await client.list_models("someone-else")

    async with SaasLiteLLMClient(base_url=stack.api_url, virtual_key=team.key) as anonymous:
        with pytest.raises(ValueError, match="pass team_id"):
            await anonymous.list_models()
        assert (await anonymous.list_models(team.team_id)).aliases == [team.alias]


# ---------------------------------------------------------------- jobs


async def test_list_jobs_pages_through_the_teams_jobs(client, stack, team):
    created = [await client.create_job("paged", metadata={"n": n}) for n in range(5)]
    for job in created[:2]:
        await client.complete_job(job.job_id, "failed")
    await client.create_job("other")
    newest_first = [j.job_id for j in reversed(created)]

    pages: list[ListTeamJobsResponse] = []
    token = None
    while True:
        page = await client.list_jobs(job_type="paged", page_size=2, page_token=token)
        pages.append(page)
        token = page.next_page_token
        if not token:
            break
    assert [len(p.jobs) for p in pages] == [2, 2, 1]
    assert [j.job_id for p in pages for j in p.jobs] == newest_first
    listed = pages[-1].jobs[0]
    assert isinstance(listed, Job) and listed == await client.get_job(created[0].job_id)  # as get_job shows it
    assert listed.metadata == {"n": 0} and listed.status == JobStatus.FAILED

    assert [j.job_id async for j in client.iter_jobs(job_type="paged", page_size=2)] == newest_first
    assert len([j async for j in client.iter_jobs()]) == 6  # every job of the team
    failed = await client.list_jobs(status="failed")
    assert [j.job_id for j in failed.jobs] == newest_first[3:] and failed.next_page_token == ""
    pending = await client.list_jobs(status=JobStatus.PENDING, job_type="paged")
    assert [j.job_id for j in pending.jobs] == newest_first[:3]

    with pytest.raises(ValidationError) as invalid:
        await client.list_jobs(page_token="not-a-token")
    assert invalid.value.field == "page_token"
    with pytest.raises(TeamMismatchError):
        await client.list_jobs("someone-else")
    async with SaasLiteLLMClient(base_url=stack.api_url, virtual_key=team.key) as anonymous:
        with pytest.raises(ValueError, match="pass team_id"):
            await anonymous.list_jobs()
        assert len((await anonymous.list_jobs(team.team_id, job_type="paged")).jobs) == 5


# ---------------------------------------------------------------- sync


def test_the_sync_client_has_the_same_team_routes(stack, team):
    with SyncSaasLiteLLMClient(
        base_url=stack.api_url, team_id=team.team_id, virtual_key=team.key, retry=FAST_RETRIES
    ) as client:
        reply = client.create_and_call("sync_one", say("hello"), metadata={"via": "sync"})
        assert reply.status == JobStatus.COMPLETED and reply.content == "Hello from fake! You said: hello"
        assert reply.credits_remaining == 99

        stream = client.create_and_call_stream("sync_stream", say("story", "tokens=6 chunks=3"))
        chunks = list(stream)
        assert all(isinstance(c, CreateAndCallChunk) for c in chunks) and chunks[-1].done
        assert len(stream.text.split()) == 6 and stream.job_id == chunks[0].job_id
        assert stream.final.job_status == JobStatus.COMPLETED and stream.final.credits_remaining == 98

        costs = client.get_job_costs(reply.job_id)
        assert [c.call_id for c in costs.calls] == [reply.call_id] and costs.costs.credits_charged == 1

        usage = client.get_usage()
        assert (usage.totals.jobs, usage.totals.calls, usage.totals.credits_charged) == (2, 2, 2)
        assert client.list_models().aliases == [team.alias]

        page = client.list_jobs(page_size=1)
        assert [j.job_id for j in page.jobs] == [stream.job_id] and page.next_page_token
        assert [j.job_id for j in client.iter_jobs(page_size=1)] == [stream.job_id, reply.job_id]
        with pytest.raises(TeamMismatchError):
            client.list_models("someone-else")
        assert client.estimate_call(say("hello"), max_tokens=10).output_tokens_bound == 10
    assert balance(stack, team) == 98


async def test_a_call_over_the_teams_cost_per_job_is_a_typed_error_with_the_figures(client, api, team):
    async with httpx.AsyncClient() as admin:
        patched = await admin.patch(
            f"{api}/teams/{team.team_id}", json={"max_cost_usd_per_job": "0.0001"}, headers=ADMIN_HEADERS, timeout=10
        )
    assert patched.status_code == 200, patched.text
    job = await client.create_job("capped")
    with pytest.raises(ValidationError) as unbounded:
        await client.llm_call(job.job_id, [{"role": "user", "content": "hi"}])
    assert unbounded.value.field == "max_tokens"
    with pytest.raises(JobCostLimitReachedError) as refused:
        await client.llm_call(job.job_id, [{"role": "user", "content": "hi"}], max_tokens=1000)
    assert refused.value.spent_usd == 0 and refused.value.call_worst_case_usd > Decimal("0.002")
    answered = await client.llm_call(job.job_id, [{"role": "user", "content": "hi"}], max_tokens=10)
    assert answered.content


async def test_an_estimate_bounds_the_call_and_says_whether_the_job_can_pay_for_it(client, api, team):
    async with httpx.AsyncClient() as admin:
        patched = await admin.patch(
            f"{api}/teams/{team.team_id}", json={"max_cost_usd_per_job": "0.001"}, headers=ADMIN_HEADERS, timeout=10
        )
    assert patched.status_code == 200, patched.text
    job = await client.create_job("quoted")
    ask = say("quote", "tokens=100")
    quote = await client.estimate_call(ask, job_id=job.job_id, max_tokens=100)
    assert quote.model and quote.output_tokens_bound == 100 and quote.max_credits == 1
    assert Decimal("0.0002") < quote.max_cost_usd < Decimal("0.0004") and quote.likely_max_cost_usd < quote.max_cost_usd
    assert quote.job_cost_remaining_usd == Decimal("0.001") and quote.fits_job_cost_limit is True
    made = await client.llm_call(job.job_id, ask, max_tokens=100)
    assert made.metadata.cost_usd <= quote.max_cost_usd
    again = await client.estimate_call(ask, job_id=job.job_id, max_tokens=100)
    assert again.job_cost_remaining_usd == Decimal("0.001") - Decimal(str(made.metadata.cost_usd))
    with pytest.raises(ValidationError) as unbounded:
        await client.estimate_call(ask)
    assert unbounded.value.field == "max_tokens"
