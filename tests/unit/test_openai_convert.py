"""OpenAI's wire format in and out (server/api/openai_convert.py): pure functions."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from server.api import openai_convert as wire
from server.domain.completion import Answer, Delta, Usage
from server.domain.errors import DomainError, FieldViolation, Kind, Reason
from server.services.calls import CallResult

HI = [{"role": "user", "content": "hi"}]


def parse(**body) -> wire.CompletionRequest:
    return wire.parse_request(json.dumps({"messages": HI, **body}).encode())


def refused_field(body: bytes) -> str:
    with pytest.raises(DomainError) as raised:
        wire.parse_request(body)
    assert raised.value.kind is Kind.INVALID_ARGUMENT
    return raised.value.violations[0].field


def test_known_parameters_are_typed_and_the_rest_pass_through():
    parsed = parse(
        model="ChatAgent",
        temperature=0,
        max_tokens=10,
        stop="END",
        tools=[{"type": "function", "function": {"name": "f"}}],
        top_k=3,
        store=False,
        presence_penalty=None,  # null is "not set", as OpenAI reads it
    )
    assert parsed.chat.model == "ChatAgent" and parsed.chat.messages == tuple(HI)
    assert parsed.chat.params == {
        "temperature": 0,
        "max_tokens": 10,
        "stop": "END",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "top_k": 3,
        "store": False,
    }
    assert (parsed.stream, parsed.include_usage, parsed.user) == (False, False, "")


def test_stream_usage_user_and_metadata_are_read():
    parsed = parse(stream=True, stream_options={"include_usage": True}, user="u-1", metadata={"k": "v"}, n=1)
    assert (parsed.stream, parsed.include_usage, parsed.user) == (True, True, "u-1")
    assert parsed.chat.call_metadata == {"k": "v"} and "metadata" not in parsed.chat.params
    assert parsed.chat.params == {"user": "u-1"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "body"),
        (b"[1]", "body"),
        (b"\xff", "body"),
        (b'{"messages": []}', "messages"),
        (b'{"model": "m"}', "messages"),
        (b'{"messages": ["hi"]}', "messages[0]"),
        (b'{"messages": [{"role": {}, "content": "x"}]}', "messages[0].role"),
        (b'{"messages": [{"role": "user"}]}', "messages[0].content"),
        (b'{"messages": [{"role": "user", "content": "x"}], "n": 2}', "n"),
        (b'{"messages": [{"role": "user", "content": "x"}], "n": true}', "n"),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": true}', "temperature"),
        (b'{"messages": [{"role": "user", "content": "x"}], "temperature": 3}', "temperature"),
        (b'{"messages": [{"role": "user", "content": "x"}], "seed": "1"}', "seed"),
        (b'{"messages": [{"role": "user", "content": "x"}], "logprobs": 1}', "logprobs"),
        (b'{"messages": [{"role": "user", "content": "x"}], "tools": [1]}', "tools[0]"),
        (b'{"messages": [{"role": "user", "content": "x"}], "tool_choice": 1}', "tool_choice"),
        (b'{"messages": [{"role": "user", "content": "x"}], "stop": [""]}', "stop"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": 1}}',
            "stream_options.include_usage",
        ),
        (b'{"messages": [{"role": "user", "content": "x"}], "model": 5}', "model"),
        (b'{"messages": [{"role": "user", "content": "x"}], "num_retries": 3}', "num_retries"),
        (b'{"messages": [{"role": "user", "content": "x"}], "api_key": "sk-x"}', "api_key"),
        (b'{"messages": [{"role": "user", "content": "x"}], "base_url": "http://evil"}', "base_url"),
        # Python's JSON parser takes NaN, Infinity and 1e400 (inf); the upstream request's
        # encoding then failed: 500, a call recorded with a cost though nothing was sent.
        (b'{"messages": [{"role": "user", "content": "x"}], "foo": NaN}', "foo"),
        (b'{"messages": [{"role": "user", "content": "x"}], "logit_bias": {"1": 1e400}}', "logit_bias.1"),
        (
            b'{"messages": [{"role": "user", "content": "x"}], "response_format": {"m": [1, -Infinity]}}',
            "response_format.m[1]",
        ),
    ],
)
def test_bad_requests_name_their_field(body, field):
    assert refused_field(body) == field


def result(answer: Answer) -> CallResult:
    return CallResult(
        call_id=uuid.UUID(int=1),
        job_id=uuid.UUID(int=2),
        model_alias="ChatAgent",
        answer=answer,
        usage=Usage(3, 4),
        latency_ms=5,
        billed_cost_usd=Decimal("0.001"),
    )


def test_a_completion_has_openai_shape_and_tool_calls_null_the_content():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}, "extra": 1}
    body = wire.completion(result(Answer("", "tool_calls", (call,))), created=7)
    assert body == {
        "id": f"chatcmpl-{uuid.UUID(int=1)}",
        "object": "chat.completion",
        "created": 7,
        "model": "ChatAgent",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }


def test_chunks_repeat_the_header_and_carry_the_delta():
    header = wire.ChunkHeader("chatcmpl-x", 7, "ChatAgent")
    assert header.first()["choices"][0]["delta"] == {"role": "assistant"}  # no content yet: a tool call has none
    fragment = {"index": 0, "id": "c", "function": {"arguments": "{"}}
    chunk = header.delta(Delta(content="a", tool_calls=(fragment,), finish_reason="stop"))
    first = {"index": 0, "id": "c", "type": "function", "function": {"arguments": "{"}}
    assert chunk["choices"] == [{"index": 0, "delta": {"content": "a", "tool_calls": [first]}, "finish_reason": "stop"}]
    # Later fragments carry neither id nor type, as OpenAI's (LiteLLM repeats the type).
    later = {"index": 0, "type": "function", "function": {"arguments": "}"}}
    chunk = header.delta(Delta(tool_calls=(later,)))
    assert chunk["choices"][0]["delta"]["tool_calls"] == [{"index": 0, "function": {"arguments": "}"}}]
    # A first fragment with the name alone has arguments "", as OpenAI's (the SDK showed None).
    named = {"index": 1, "id": "d", "function": {"name": "get_weather"}}
    chunk = header.delta(Delta(tool_calls=(named,)))
    assert chunk["choices"][0]["delta"]["tool_calls"] == [
        {"index": 1, "id": "d", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    ]
    last = header.usage(Usage(1, 2))
    assert (last["choices"], last["usage"]["total_tokens"], last["id"]) == ([], 3, "chatcmpl-x")
    assert wire.event({"a": 1}) == b'data: {"a":1}\n\n'


def test_a_stream_error_is_openai_error_event_typed_as_before_the_stream():
    error = DomainError(Kind.UNAVAILABLE, Reason.UPSTREAM_STREAM_INTERRUPTED, "the stream failed")
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "UPSTREAM_STREAM_INTERRUPTED"}
    info["domain"] = "saaslitellm"
    assert wire.stream_error(error) == {
        "error": {
            "message": "the stream failed",
            "type": "server_error",  # OpenAI's, as the gateway types a 503 before the stream
            "param": None,
            "code": "UPSTREAM_STREAM_INTERRUPTED",
            "details": [info],
        }
    }
    timeout = DomainError(Kind.DEADLINE_EXCEEDED, Reason.UPSTREAM_TIMEOUT, "no chunk for 60 s")
    limited = DomainError(Kind.RESOURCE_EXHAUSTED, Reason.TEAM_RATE_LIMITED, "later")
    bad = DomainError(
        Kind.INVALID_ARGUMENT, Reason.INVALID_REQUEST, "x", violations=(FieldViolation("max_tokens", "x"),)
    )
    types = [wire.stream_error(e)["error"]["type"] for e in (timeout, limited, bad)]
    assert types == ["server_error", "rate_limit_error", "invalid_request_error"]
    assert wire.stream_error(bad)["error"]["param"] == "max_tokens"
