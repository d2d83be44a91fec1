"""Keep-alives while the model is silent (SAAS_STREAM_KEEPALIVE_SECONDS).

A started stream that has sent its client nothing for the interval sends a keep-alive, and
again after as long: a native stream a response with only `keepalive` set, an OpenAI
stream an SSE comment. They are sent to the client only: the call is recorded and charged
as any other, and the upstream's idle timeout (SAAS_STREAM_IDLE_TIMEOUT_SECONDS) still cuts
a model silent for longer. The provider here is the fake, silent before its first chunk
and between chunks as its directive says.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
import pytest
from google.api import httpbody_pb2

from saaslitellm.v1 import job_pb2, job_service_pb2_grpc, openai_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from server.app import Application
from tests.api.conftest import create_team, extra_app
from tests.api.test_job_flow import user
from tests.api.test_stream_cancellation import stored_job

# Two pieces of text, each after 0.8 s of silence: room for keep-alives at 0.2 s before each.
SILENT = "x [fake tokens=4 chunks=2 first_delay_ms=800 delay_ms=800]"
KEEPALIVE_SECONDS = 0.2


@pytest.fixture
async def keeping_alive(database_url: str, fake_url: str) -> AsyncIterator[tuple[Application, grpc.aio.Channel]]:
    async with extra_app(database_url, fake_url, stream_keepalive_seconds=KEEPALIVE_SECONDS) as running:
        yield running


def _runs(responses: list, empty) -> list[int]:
    """How many keep-alives came before each response with content, and before the last."""
    runs, count = [], 0
    for response in responses:
        if response.keepalive:
            assert response == empty.__class__(keepalive=True), "a keep-alive carries nothing else"
            count += 1
        elif response.content or response.done:
            runs.append(count)
            count = 0
    return runs


async def test_a_native_stream_sends_keep_alives_while_the_model_is_silent(keeping_alive, admin):
    _app, channel = keeping_alive
    team = await create_team(admin)
    stub = job_service_pb2_grpc.JobServiceStub(channel)
    job = await stub.CreateJob(pb.CreateJobRequest(job_type="keepalive"), metadata=team.auth)
    request = pb.LLMCallStreamRequest(job_id=job.job_id, model=team.alias, messages=[user(SILENT)])
    responses = [r async for r in stub.LLMCallStream(request, metadata=team.auth)]

    assert responses[0].call_id and not responses[0].keepalive
    assert responses[-1].done and not responses[-1].keepalive
    before_first, before_second, before_done = _runs(responses, pb.LLMCallStreamResponse())
    assert before_first >= 2 and before_second >= 2, "keep-alives before the first chunk and between chunks"
    assert before_done == 0
    assert "".join(r.content for r in responses)
    assert responses[-1].usage.completion_tokens == 4


async def test_a_single_call_stream_with_keep_alives_is_recorded_and_charged_as_any_other(keeping_alive, admin):
    app, channel = keeping_alive
    team = await create_team(admin)
    stub = job_service_pb2_grpc.JobServiceStub(channel)
    request = pb.CreateAndCallStreamRequest(job_type="keepalive", model=team.alias, messages=[user(SILENT)])
    responses = [r async for r in stub.CreateAndCallStream(request, metadata=team.auth)]

    assert sum(r.keepalive for r in responses) >= 4
    assert _runs(responses, pb.CreateAndCallStreamResponse())[:2] >= [2, 2]
    final = responses[-1]
    assert final.done and final.job_status == job_pb2.Job.COMPLETED
    status, charged, calls = await stored_job(app, responses[0].job_id)
    assert status == "completed" and charged == final.costs.credits_charged >= 1
    assert calls == [("succeeded", 4)]


async def test_an_openai_stream_sends_sse_comments_while_the_model_is_silent(keeping_alive, admin):
    app, channel = keeping_alive
    team = await create_team(admin)
    openai = openai_service_pb2_grpc.OpenAIServiceStub(channel)
    body = {"model": team.alias, "stream": True, "messages": [{"role": "user", "content": SILENT}]}
    call = openai.CreateChatCompletion(httpbody_pb2.HttpBody(data=json.dumps(body).encode()), metadata=team.auth)
    sent = b"".join([m.data async for m in call]).decode()
    job_id = dict(await call.initial_metadata())["x-job-id"]

    blocks = sent.removesuffix("\n\n").split("\n\n")
    assert blocks.count(": keep-alive") >= 4
    data = [b.removeprefix("data: ") for b in blocks if b != ": keep-alive"]
    assert all(b.startswith("data: ") for b in blocks if b != ": keep-alive")
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    status, charged, calls = await stored_job(app, job_id)
    assert status == "completed" and charged >= 1 and calls == [("succeeded", 4)]


async def test_keep_alives_do_not_reset_the_upstream_idle_timeout(database_url, fake_url, admin):
    async with extra_app(database_url, fake_url, stream_keepalive_seconds=0.1, stream_idle_timeout_seconds=0.6) as (
        _app,
        channel,
    ):
        team = await create_team(admin)
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        request = pb.CreateAndCallStreamRequest(
            job_type="keepalive", model=team.alias, messages=[user("x [fake tokens=4 chunks=2 first_delay_ms=5000]")]
        )
        responses = [r async for r in stub.CreateAndCallStream(request, metadata=team.auth)]

    assert sum(r.keepalive for r in responses) >= 3
    assert responses[-1].done and responses[-1].error.message
    assert "idle" in responses[-1].error.message


async def test_no_keep_alives_when_they_are_off(database_url, fake_url, admin):
    async with extra_app(database_url, fake_url, stream_keepalive_seconds=0) as (_app, channel):
        team = await create_team(admin)
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        request = pb.CreateAndCallStreamRequest(
            job_type="keepalive", model=team.alias, messages=[user("x [fake tokens=4 chunks=2 first_delay_ms=500]")]
        )
        responses = [r async for r in stub.CreateAndCallStream(request, metadata=team.auth)]

    assert not any(r.keepalive for r in responses)
    assert responses[-1].done and not responses[-1].error.message
