"""The OpenAI service as a native gRPC client reaches it, without Envoy: the answer's
initial metadata names the job and the call, and carries the request id the server made
(initial metadata is sent once, so both must travel together). And an OpenAI stream that
fails after it began ends with an `error` event, as OpenAI's own streams do, never with an
RPC error the SDKs would not read: also when what fails is settling the single-call job
after the answer streamed (the fault is injected into the job's completion; everything
else is real)."""

from __future__ import annotations

import json

import grpc
from google.api import httpbody_pb2

from saaslitellm.v1 import openai_service_pb2_grpc
from server.domain.errors import DomainError, Kind, Reason


def _events(messages: list[httpbody_pb2.HttpBody]) -> list[str]:
    text = b"".join(m.data for m in messages).decode()
    return [block.removeprefix("data: ") for block in text.strip().split("\n\n")]


async def test_a_native_grpc_client_gets_the_jobs_headers_and_a_request_id(channel, team):
    openai = openai_service_pb2_grpc.OpenAIServiceStub(channel)
    for stream in (False, True):
        body = {"model": team.alias, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
        call = openai.CreateChatCompletion(httpbody_pb2.HttpBody(data=json.dumps(body).encode()), metadata=team.auth)
        messages = [m async for m in call]
        headers = dict(await call.initial_metadata())
        assert messages and headers["x-job-id"] and headers["x-call-id"] and len(headers["x-request-id"]) == 32
        assert await call.code() == grpc.StatusCode.OK


async def test_a_single_call_stream_whose_settlement_fails_ends_with_an_error_event(app, channel, team, monkeypatch):
    async def unavailable(*args, **kwargs):
        raise DomainError(Kind.UNAVAILABLE, Reason.DATABASE_UNAVAILABLE, "the database is unavailable; retry shortly")

    monkeypatch.setattr(app.jobs, "complete", unavailable)
    openai = openai_service_pb2_grpc.OpenAIServiceStub(channel)
    body = {"model": team.alias, "stream": True, "messages": [{"role": "user", "content": "x [fake tokens=6]"}]}
    messages = [
        m
        async for m in openai.CreateChatCompletion(
            httpbody_pb2.HttpBody(data=json.dumps(body).encode()), metadata=team.auth
        )
    ]
    events = _events(messages)
    assert json.loads(events[0])["object"] == "chat.completion.chunk"  # the stream began
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "DATABASE_UNAVAILABLE"
