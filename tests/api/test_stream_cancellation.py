"""A stream whose client goes away while the server waits to write.

gRPC cancels a server-streaming handler wherever it is suspended. When the client is gone
while the server's next write waits on HTTP/2 flow control (a client that stopped reading),
that is inside gRPC's write, outside our generators. The server's handler chain must then
still close innermost first: the call is recorded (cancelled, with what it produced) before
a single-call job is settled from its calls, and before the RPC ends.

The handlers here are the server's own (both interceptors, the servicers, the use cases, the
database, the fake provider upstream). Only the transport is played by `_LeavingClient`,
which does what gRPC does when a client leaves during a write: the write raises
CancelledError. Nothing is polled afterwards: what must have happened has happened when the
handler returns.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

import grpc
import pytest
from google.api import httpbody_pb2
from prometheus_client import REGISTRY
from sqlalchemy import text

from saaslitellm.v1 import job_service_pb2 as pb
from saaslitellm.v1 import tenancy_pb2
from server.api.errors import ErrorInterceptor
from server.api.job_servicer import JobServicer
from server.api.openai_servicer import OpenAIServicer
from server.app import Application
from server.observability.interceptor import ObservabilityInterceptor
from server.services.auth import Authenticator
from server.services.single_call import SingleCallUseCases
from server.services.team_models import TeamModels
from tests.api.conftest import create_team
from tests.api.test_job_flow import user
from tests.conftest import ADMIN_KEY

LONG = "x [fake tokens=400 chunks=200 delay_ms=1]"  # far more responses than the client reads


class _LeavingClient:
    """The server side of an RPC whose client reads `reads` responses, then stops reading
    and goes away while the server's next write waits: gRPC cancels the handler there."""

    def __init__(self, metadata: tuple[tuple[str, str], ...], reads: int) -> None:
        self._metadata = metadata
        self._reads = reads
        self.written: list[Any] = []

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def time_remaining(self) -> None:
        return None

    async def send_initial_metadata(self, metadata: Any) -> None:
        pass

    async def write(self, message: Any) -> None:
        if len(self.written) == self._reads:
            raise asyncio.CancelledError
        self.written.append(message)

    async def abort_with_status(self, status: Any) -> None:
        raise AssertionError(f"the RPC failed: {status}")


async def _served(handler, request: Any, context: _LeavingClient) -> None:
    """Run a server-streaming handler as grpc.aio does (grpc/_cython/_cygrpc/aio/server.pyx.pxi,
    _finish_handler_with_stream_responses): a coroutine writes its responses itself; an
    async generator is iterated and each response written."""
    with pytest.raises(asyncio.CancelledError):
        if inspect.iscoroutinefunction(handler):
            await handler(request, context)
        else:
            async for response in handler(request, context):
                await context.write(response)


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def _handler(method: str, behavior):
    """`behavior` wrapped by the server's interceptors, in the server's order."""
    observability, errors = ObservabilityInterceptor(), ErrorInterceptor()

    async def raw(details):
        return grpc.unary_stream_rpc_method_handler(behavior)

    async def observed(details):
        return await observability.intercept_service(raw, details)

    return (await errors.intercept_service(observed, _Details(method))).unary_stream


def _servicers(app: Application) -> tuple[JobServicer, OpenAIServicer]:
    auth = Authenticator(app.db, ADMIN_KEY, app.key_cache)
    single = SingleCallUseCases(app.jobs, app.calls, app.background)
    team_models = TeamModels(app.db)
    return (
        JobServicer(auth, app.jobs, app.calls, single, team_models, app.analytics),
        OpenAIServicer(auth, app.calls, single, team_models),
    )


async def stored_job(app: Application, job_id: str) -> tuple[str, int, list[tuple[str, int]]]:
    """(status, credits charged, [(call status, completion tokens)]) as stored."""
    async with app.db.transaction() as conn:
        status, charged = (
            await conn.execute(text("SELECT status, credits_charged FROM jobs WHERE job_id = :j"), {"j": job_id})
        ).one()
        calls = await conn.execute(
            text("SELECT status, completion_tokens FROM llm_calls WHERE job_id = :j"), {"j": job_id}
        )
        return status, charged, [tuple(row) for row in calls]


@pytest.fixture
async def by_tokens(admin):
    """A team billed one credit per 10 tokens: what a job is charged depends on its calls."""
    return await create_team(admin, budget_mode=tenancy_pb2.Team.CONSUMPTION_TOKENS, tokens_per_credit=10)


async def test_a_single_call_stream_cut_in_a_write_records_the_call_before_charging_the_job(app, by_tokens):
    servicer, _ = _servicers(app)
    handler = await _handler("/saaslitellm.v1.JobService/CreateAndCallStream", servicer.CreateAndCallStream)
    client = _LeavingClient(by_tokens.auth, reads=4)
    await _served(handler, pb.CreateAndCallStreamRequest(job_type="t", messages=[user(LONG)]), client)

    job_id = client.written[0].job_id
    status, charged, calls = await stored_job(app, job_id)
    assert len(calls) == 1, "the cut call is recorded by the time the RPC ends"
    call_status, written = calls[0]
    assert call_status == "cancelled" and 3 <= written < 400
    async with app.db.transaction() as conn:
        prompt = (
            await conn.execute(text("SELECT prompt_tokens FROM llm_calls WHERE job_id = :j"), {"j": job_id})
        ).scalar_one()
    # The job produced content, so it is completed and charged for what its call used.
    assert status == "completed" and charged == -(-(prompt + written) // 10)


async def test_a_single_call_stream_left_after_reasoning_alone_is_charged(app, team):
    # The client read the job's first event and the model's reasoning, then left before
    # the answer: reasoning is what the model produced (its first token), so it is paid.
    servicer, _ = _servicers(app)
    handler = await _handler("/saaslitellm.v1.JobService/CreateAndCallStream", servicer.CreateAndCallStream)
    client = _LeavingClient(team.auth, reads=4)
    prompt = "x [fake reasoning=50 tokens=5 first_delay_ms=2000]"
    await _served(handler, pb.CreateAndCallStreamRequest(job_type="t", messages=[user(prompt)]), client)

    reasoning = [m for m in client.written if m.choices and m.choices[0].delta.reasoning_content]
    assert reasoning and not any(m.content for m in client.written)
    status, charged, calls = await stored_job(app, client.written[0].job_id)
    assert [c[0] for c in calls] == ["cancelled"]
    assert (status, charged) == ("completed", 1)


async def test_an_openai_stream_cut_in_a_write_records_the_call_before_charging_the_job(app, by_tokens):
    _, servicer = _servicers(app)
    handler = await _handler("/saaslitellm.v1.OpenAIService/CreateChatCompletion", servicer.CreateChatCompletion)
    client = _LeavingClient(by_tokens.auth, reads=4)
    body = {"model": by_tokens.alias, "stream": True, "messages": [{"role": "user", "content": LONG}]}
    await _served(handler, httpbody_pb2.HttpBody(data=json.dumps(body).encode()), client)

    async with app.db.transaction() as conn:
        job_id = (
            await conn.execute(
                text("SELECT job_id FROM jobs WHERE team_id = :t ORDER BY created_at DESC LIMIT 1"),
                {"t": by_tokens.team_id},
            )
        ).scalar_one()
    status, charged, calls = await stored_job(app, str(job_id))
    assert [c[0] for c in calls] == ["cancelled"], "the cut call is recorded by the time the RPC ends"
    assert status == "completed" and charged >= 1


def _handled(code: str) -> float:
    labels = {"grpc_type": "server_stream", "grpc_service": "saaslitellm.v1.JobService", "grpc_method": "LLMCallStream"}
    return REGISTRY.get_sample_value("grpc_server_handled_total", {**labels, "grpc_code": code}) or 0.0


async def test_a_stream_in_a_job_cut_in_a_write_is_recorded_and_counted_as_cancelled(app, jobs, team):
    servicer, _ = _servicers(app)
    handler = await _handler("/saaslitellm.v1.JobService/LLMCallStream", servicer.LLMCallStream)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    cancelled, internal = _handled("CANCELLED"), _handled("INTERNAL")
    await _served(
        handler, pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user(LONG)]), _LeavingClient(team.auth, reads=3)
    )
    _, _, calls = await stored_job(app, job.job_id)
    assert len(calls) == 1 and calls[0][0] == "cancelled"
    # The access log and metrics say the client went away, not that the server failed.
    assert (_handled("CANCELLED"), _handled("INTERNAL")) == (cancelled + 1, internal)
