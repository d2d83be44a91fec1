"""The async client against the real stack: every public method, every model field the
server fills, and the typed errors real server failures become."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import pytest

from fakeprovider.replies import logprobs_for
from saas_litellm_client import (
    AuthenticationError,
    CompleteJobResponse,
    IdempotencyKeyReusedError,
    InsufficientCreditsError,
    Job,
    JobAlreadyFinishedError,
    JobNotFoundError,
    JobNotOpenError,
    JobStatus,
    LLMCallResponse,
    ModelNotAllowedError,
    SaasLiteLLMClient,
    TeamMismatchError,
    UpstreamRejectedError,
    ValidationError,
)
from tests.client.conftest import FAST_RETRIES, marker
from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import rest_team

USER = [{"role": "user", "content": "Analyze this document"}]


class Recorder:
    """Records the requests a client sends (an httpx event hook; the server is real)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)

    def to(self, path_end: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith(path_end)]


def recording_client(stack, team, recorder: Recorder, **kwargs) -> SaasLiteLLMClient:
    http = httpx.AsyncClient(timeout=30, event_hooks={"request": [recorder]})
    return SaasLiteLLMClient(
        base_url=stack.api_url, team_id=team.team_id, virtual_key=team.key, http_client=http, **kwargs
    )


async def test_a_job_from_create_to_complete_with_every_field(client, team):
    job = await client.create_job("document_analysis", user_id="user-7", metadata={"document": "q3", "pages": 12})
    assert isinstance(job, Job) and uuid.UUID(job.job_id)
    assert (job.team_id, job.job_type, job.user_id, job.status) == (
        team.team_id,
        "document_analysis",
        "user-7",
        JobStatus.PENDING,
    )
    assert job.metadata == {"document": "q3", "pages": 12}
    assert isinstance(job.created_at, datetime) and job.started_at is None and job.costs.credits_remaining is None

    reply = await client.llm_call(
        job_id=job.job_id, messages=USER, purpose="extract_text", call_metadata={"extracted": True}
    )
    assert isinstance(reply, LLMCallResponse) and reply.job_id == job.job_id and uuid.UUID(reply.call_id)
    assert reply.content == reply.response.content == "Hello from fake! You said: Analyze this document"
    assert (reply.response.finish_reason, reply.response.role, reply.response.tool_calls) == ("stop", "assistant", [])
    meta = reply.metadata
    assert meta.model == team.alias and meta.tokens_used == meta.prompt_tokens + meta.completion_tokens > 0
    assert meta.cost_usd > 0 and meta.latency_ms >= 0

    open_job = await client.get_job(job.job_id)
    assert open_job.status == JobStatus.IN_PROGRESS and isinstance(open_job.started_at, datetime)
    assert open_job.metadata == {"document": "q3", "pages": 12, "extracted": True}
    [call] = open_job.calls
    assert (call.call_id, call.purpose, call.status, call.streamed) == (
        reply.call_id,
        "extract_text",
        "SUCCEEDED",
        False,
    )
    assert call.usage.total_tokens == call.tokens == meta.tokens_used and call.cost_usd == meta.cost_usd

    result = await client.complete_job(job.job_id, "completed", metadata={"reviewed": "yes"})
    assert isinstance(result, CompleteJobResponse) and result.status == JobStatus.COMPLETED
    assert result.credits_remaining == result.costs.credits_remaining == 99
    costs = result.costs
    assert (costs.total_calls, costs.successful_calls, costs.failed_calls, costs.credits_charged) == (1, 1, 0, 1)
    assert costs.credit_applied and costs.total_cost_usd == meta.cost_usd and costs.total_tokens == meta.tokens_used
    assert [c.call_id for c in result.calls] == [reply.call_id] and isinstance(result.completed_at, datetime)

    again = await client.complete_job(job.job_id, "completed")  # idempotent: same result, never charged twice
    assert again.credits_remaining == 99 and again.costs.credits_charged == 1
    final = await client.get_job(job.job_id)
    assert final.status == JobStatus.COMPLETED and final.metadata["reviewed"] == "yes"
    assert final.costs.credits_remaining == 99


async def test_job_metadata_is_merged_after_the_fact(client):
    job = await client.create_job("review", metadata={"document": "q3"})
    updated = await client.update_job_metadata(job.job_id, {"reviewer": "ann"})
    assert isinstance(updated, Job) and updated.metadata == {"document": "q3", "reviewer": "ann"}
    assert (await client.get_job(job.job_id)).metadata == updated.metadata


async def test_openai_parameters_reach_the_provider_and_unknown_ones_travel_in_extra_body(client, fake):
    job = await client.create_job("params")
    word = marker()
    await client.llm_call(
        job.job_id,
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": f"hi {word}"}],
        temperature=0.3,
        max_tokens=50,
        top_p=0.9,
        seed=7,
        stop=["zzz"],
        n=1,  # not a field of the API: the client sends it in extra_body
    )
    [body] = fake.bodies(word)
    assert {k: body[k] for k in ("temperature", "max_tokens", "top_p", "seed", "stop", "n")} == {
        "temperature": 0.3,
        "max_tokens": 50,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["zzz"],
        "n": 1,
    }
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


async def test_logprobs_asked_for_come_back_typed_through_envoy_and_litellm(client):
    job = await client.create_job("logprobs")
    result = await client.llm_call(
        job.job_id, [{"role": "user", "content": "x [fake tokens=3]"}], logprobs=True, top_logprobs=2
    )
    assert result.response.logprobs["content"] == logprobs_for(result.response.content, 2)
    plain = await client.llm_call(job.job_id, [{"role": "user", "content": "x"}])
    assert plain.response.logprobs is None and plain.response.refusal == ""


async def test_creates_carry_a_fresh_idempotency_key_unless_one_is_given(stack, team):
    recorder = Recorder()
    async with recording_client(stack, team, recorder) as client:
        first = await client.create_job("a")
        second = await client.create_job("a")
        given = await client.create_job("a", idempotency_key="order-1234")
        repeated = await client.create_job("a", idempotency_key="order-1234")
    keys = [r.headers.get("idempotency-key") for r in recorder.to("/jobs/create")]
    assert keys[0] and keys[1] and keys[0] != keys[1] and keys[2:] == ["order-1234", "order-1234"]
    assert first.job_id != second.job_id and given.job_id == repeated.job_id

    recorder = Recorder()
    async with recording_client(stack, team, recorder, auto_idempotency_keys=False) as client:
        await client.create_job("a")
    assert "idempotency-key" not in recorder.to("/jobs/create")[0].headers


async def test_a_repeated_idempotency_key_reserves_once_and_cannot_be_reused_for_another_job(stack, api):
    team = rest_team(api, credits=1)
    async with SaasLiteLLMClient(base_url=stack.api_url, team_id=team.team_id, virtual_key=team.key) as client:
        job = await client.create_job("a", idempotency_key="k-1")
        assert (await client.create_job("a", idempotency_key="k-1")).job_id == job.job_id
        with pytest.raises(InsufficientCreditsError):  # the one credit is reserved once, by the one job
            await client.create_job("a")
        with pytest.raises(IdempotencyKeyReusedError) as reused:
            await client.create_job("b", idempotency_key="k-1")
    assert reused.value.code == 6 and reused.value.http_status == 409 and reused.value.metadata["job_id"] == job.job_id


async def test_no_credits_is_a_typed_error_with_the_balance_never_retried_and_changes_nothing(stack, api):
    team = rest_team(api, credits=1)
    recorder = Recorder()
    async with recording_client(stack, team, recorder, retry=FAST_RETRIES) as client:
        await client.create_job("a")
        with pytest.raises(InsufficientCreditsError) as refused:
            await client.create_job("b")
    error = refused.value
    assert (error.reason, error.code, error.http_status, error.credits_available) == ("INSUFFICIENT_CREDITS", 8, 429, 0)
    assert "credits" in error.message and not error.retryable
    assert len(recorder.to("/jobs/create")) == 2  # one per create: the refusal was not retried
    async with httpx.AsyncClient(timeout=10) as admin:
        balance = (await admin.get(f"{api}/teams/{team.team_id}", headers={"X-Admin-Key": ADMIN_KEY})).json()
    assert balance["credits_remaining"] == 1  # nothing charged; one credit reserved by the open job


async def test_a_model_outside_the_teams_groups_is_model_not_allowed(client):
    job = await client.create_job("a")
    with pytest.raises(ModelNotAllowedError) as refused:
        await client.llm_call(job.job_id, USER, model="gpt-4")
    assert (refused.value.reason, refused.value.http_status, refused.value.metadata) == (
        "MODEL_NOT_ALLOWED",
        403,
        {"model": "gpt-4"},
    )
    with pytest.raises(ModelNotAllowedError):
        async for _ in client.llm_call_stream(job.job_id, USER, model="gpt-4"):
            pass
    assert (await client.get_job(job.job_id)).costs.total_calls == 0


async def test_an_unknown_job_is_job_not_found(client):
    unknown = str(uuid.uuid4())
    for attempt in (
        client.get_job(unknown),
        client.llm_call(unknown, USER),
        client.complete_job(unknown, "completed"),
    ):
        with pytest.raises(JobNotFoundError) as missing:
            await attempt
        assert missing.value.reason == "NOT_FOUND" and missing.value.http_status == 404
        assert missing.value.metadata == {"resource": "job", "id": unknown}


async def test_a_bad_key_is_an_authentication_error_that_does_not_echo_the_key(stack, team):
    async with SaasLiteLLMClient(base_url=stack.api_url, virtual_key="sk-not-a-real-key") as client:
        with pytest.raises(AuthenticationError) as refused:
            await client.create_job("a")
    assert (refused.value.reason, refused.value.code, refused.value.http_status) == ("INVALID_API_KEY", 16, 401)
    assert "sk-not-a-real-key" not in str(refused.value) and "sk-not-a-real-key" not in repr(client)
    with pytest.raises(ValueError, match="virtual_key"):
        SaasLiteLLMClient(base_url=stack.api_url, virtual_key="")


async def test_another_teams_id_is_team_mismatch(stack, team):
    async with SaasLiteLLMClient(base_url=stack.api_url, team_id="someone-else", virtual_key=team.key) as client:
        with pytest.raises(TeamMismatchError) as refused:
            await client.create_job("a")
    assert refused.value.http_status == 403


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c, job: c.llm_call(job, USER, max_tokens=0), "max_tokens"),
        (lambda c, job: c.llm_call(job, []), "messages"),
        (lambda c, job: c.create_job(""), "job_type"),
        (lambda c, job: c.get_job("not-a-uuid"), "job_id"),
        (lambda c, job: c.complete_job(job, "bogus"), "status"),  # Envoy's own error: no reason, field in message
    ],
)
async def test_bad_input_is_a_validation_error_naming_the_field_and_changes_nothing(client, call, field):
    job = await client.create_job("a")
    with pytest.raises(ValidationError) as refused:
        await call(client, job.job_id)
    assert refused.value.field == field and refused.value.code == 3 and refused.value.http_status == 400
    after = await client.get_job(job.job_id)
    assert after.status == JobStatus.PENDING and after.costs.total_calls == 0


async def test_a_finished_job_refuses_calls_and_the_other_completion(client):
    job = await client.create_job("a")
    await client.complete_job(job.job_id, "completed")
    with pytest.raises(JobNotOpenError) as not_open:
        await client.llm_call(job.job_id, USER)
    assert not_open.value.metadata["status"] == "completed" and not_open.value.code == 9
    with pytest.raises(JobAlreadyFinishedError):
        await client.complete_job(job.job_id, "failed")


async def test_a_provider_rejection_is_typed_and_not_retried(client, fake):
    job = await client.create_job("a")
    word = marker()
    with pytest.raises(UpstreamRejectedError) as rejected:
        await client.llm_call(job.job_id, [{"role": "user", "content": f"{word} [fake bogus=1]"}])
    assert rejected.value.reason == "UPSTREAM_REJECTED" and rejected.value.http_status == 400
    assert len(fake.bodies(word)) == 1
