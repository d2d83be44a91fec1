"""Tests against a real fakeprovider server (port 0) using httpx."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

import fakeprovider
from fakeprovider.replies import generated_text

CHAT = "/v1/chat/completions"
PROJECT_ROOT = Path(fakeprovider.__file__).resolve().parent.parent
DONE = "[DONE]"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
        },
    },
}


def chat_body(content: Any, model: str = "fake-gpt", **extra: Any) -> dict[str, Any]:
    """A chat completion request with one user message."""
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


async def complete(client: httpx.AsyncClient, content: Any, **extra: Any) -> dict[str, Any]:
    """Non-streaming completion that must succeed; returns the JSON body."""
    response = await client.post(CHAT, json=chat_body(content, **extra))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


async def stream_events(
    client: httpx.AsyncClient, body: dict[str, Any], *, timed: bool = False, **kwargs: Any
) -> list[Any]:
    """The parsed ``data:`` events of a streaming request (``"[DONE]"`` kept).

    With ``timed`` each item is ``(arrival_seconds, event)``.  Events read
    before an exception are available as the exception's ``events``.
    """
    events: list[Any] = []
    try:
        async with client.stream("POST", CHAT, json={**body, "stream": True}, **kwargs) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if not line:
                    continue
                assert line.startswith("data: "), line
                payload = line[len("data: ") :]
                event = payload if payload == DONE else json.loads(payload)
                events.append((time.perf_counter(), event) if timed else event)
    except Exception as exc:
        exc.events = events  # type: ignore[attr-defined]
        raise
    return events


def contents(events: list[Any]) -> list[str]:
    """The ``delta.content`` strings of content chunks (role chunk excluded)."""
    return [
        event["choices"][0]["delta"]["content"]
        for event in events
        if isinstance(event, dict)
        and event["choices"]
        and "content" in event["choices"][0]["delta"]
        and "role" not in event["choices"][0]["delta"]
    ]


async def wait_until(condition: Callable[[], bool], limit_s: float = 3.0) -> None:
    """Yield to the loop until ``condition()`` holds (fails after ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def handler_tasks(app: web.Application) -> list[asyncio.Task[Any]]:
    """aiohttp request-handling tasks still running in this loop for ``app``.

    Tasks whose app cannot be told yet (not routed) count too, to be safe.
    """
    tasks = []
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        if getattr(coro, "__qualname__", "") != "RequestHandler._handle_request":
            continue
        frame = getattr(coro, "cr_frame", None)
        request = frame.f_locals.get("request") if frame is not None else None
        match_info = getattr(request, "_match_info", None)
        if match_info is None or match_info.current_app is app:
            tasks.append(task)
    return tasks


# ---------------------------------------------------------------------------
# Basic endpoints
# ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_health_and_models(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    models = (await client.get("/v1/models")).json()
    assert models["object"] == "list"
    assert [model["id"] for model in models["data"]] == ["fake-gpt", "fake-gpt-backup"]
    assert all(model["object"] == "model" for model in models["data"])
    assert (await client.get("/v1/models/anything")).json()["id"] == "anything"
    info = (await client.get("/v1/model/info")).json()["data"]
    priced = {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}
    assert info == [{"model_name": name, "model_info": priced} for name in ("fake-gpt", "fake-gpt-backup")]


@pytest.mark.asyncio
async def test_default_completion_shape(client: httpx.AsyncClient) -> None:
    body = await complete(client, "Hi there, how are you doing today friend?", model="some-other-model")
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "some-other-model"
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["message"] == {
        "role": "assistant",
        "content": "Hello from fake! You said: Hi there, how are you doing",
    }
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 9, "completion_tokens": 11, "total_tokens": 20}


@pytest.mark.asyncio
async def test_routes_without_v1_prefix(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat_body("hi"))
    assert response.status_code == 200
    assert (await client.get("/models")).status_code == 200


@pytest.mark.asyncio
async def test_prompt_tokens_count_all_messages(client: httpx.AsyncClient) -> None:
    response = await client.post(
        CHAT,
        json={
            "model": "fake-gpt",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "one two"}, {"type": "image_url", "image_url": {"url": "x"}}],
                },
                {"role": "assistant", "content": "three"},
                {"role": "user", "content": "four five six [fake tokens=2]"},
            ],
        },
    )
    assert response.json()["usage"]["prompt_tokens"] == (3 + 1) + (2 + 1) + (1 + 1) + (5 + 1)


@pytest.mark.asyncio
async def test_large_request_body_is_accepted(client: httpx.AsyncClient) -> None:
    big = "word " * 600_000  # ~3 MB, above aiohttp's 1 MiB default
    body = await complete(client, big + "[fake tokens=1]")
    assert body["usage"]["prompt_tokens"] == 600_000 + 2 + 1


# ---------------------------------------------------------------------------
# Request errors
# ---------------------------------------------------------------------------


def assert_openai_error(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == error_type
    assert isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.asyncio
async def test_malformed_json_and_missing_messages(client: httpx.AsyncClient) -> None:
    bad = await client.post(CHAT, content=b"{not json", headers={"content-type": "application/json"})
    assert_openai_error(bad, 400, "invalid_request_error")
    assert_openai_error(await client.post(CHAT, json=[1, 2]), 400, "invalid_request_error")
    missing = assert_openai_error(await client.post(CHAT, json={"model": "fake-gpt"}), 400, "invalid_request_error")
    assert missing["param"] == "messages"
    empty = await client.post(CHAT, json={"model": "fake-gpt", "messages": []})
    assert_openai_error(empty, 400, "invalid_request_error")


@pytest.mark.asyncio
async def test_unknown_directive_key_and_bad_value(client: httpx.AsyncClient) -> None:
    unknown = assert_openai_error(
        await client.post(CHAT, json=chat_body("hi [fake tokns=5]")), 400, "invalid_request_error"
    )
    assert "tokns" in unknown["message"] and unknown["param"] == "tokns"
    bad = assert_openai_error(
        await client.post(CHAT, json=chat_body("hi [fake tokens=abc]", stream=True)), 400, "invalid_request_error"
    )
    assert "tokens" in bad["message"] and bad["param"] == "tokens"


@pytest.mark.asyncio
async def test_unknown_tool_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=chat_body("x [fake tool=nope]", tools=[WEATHER_TOOL]))
    error = assert_openai_error(response, 400, "invalid_request_error")
    assert "nope" in error["message"]


# ---------------------------------------------------------------------------
# tokens / echo / finish / stop / max_tokens
# ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_tokens_directive(client: httpx.AsyncClient) -> None:
    body = await complete(client, "Tell me [fake tokens=25]")
    content = body["choices"][0]["message"]["content"]
    assert len(content.split(" ")) == 25
    assert content == generated_text(25, "Tell me")
    assert body["usage"]["completion_tokens"] == 25
    assert (await complete(client, "Tell me [fake tokens=25]"))["choices"][0]["message"]["content"] == content


@pytest.mark.asyncio
async def test_echo_with_content_parts(client: httpx.AsyncClient) -> None:
    parts = [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this  picture [fake echo=1] ünïcode ✓"},
    ]
    body = await complete(client, parts)
    assert body["choices"][0]["message"]["content"] == "Describe\nthis  picture ünïcode ✓"


@pytest.mark.asyncio
@pytest.mark.parametrize("reason", ["length", "content_filter", "stop"])
async def test_finish_directive(client: httpx.AsyncClient, reason: str) -> None:
    body = await complete(client, f"x [fake finish={reason}]")
    assert body["choices"][0]["finish_reason"] == reason
    events = await stream_events(client, chat_body(f"x [fake finish={reason}]"))
    assert events[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}


@pytest.mark.asyncio
async def test_stop_and_max_tokens_truncate(client: httpx.AsyncClient) -> None:
    full = generated_text(12, "Go")
    stop_word = full.split()[5]
    expected = full[: full.find(stop_word)]
    body = await complete(client, "Go [fake tokens=12]", stop=["never-appears", stop_word])
    assert body["choices"][0]["message"]["content"] == expected
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == len(expected.split())

    body = await complete(client, "Go [fake tokens=12]", stop=stop_word)
    assert body["choices"][0]["message"]["content"] == expected

    body = await complete(client, "Go [fake tokens=12]", max_tokens=4)
    assert body["choices"][0]["message"]["content"] == " ".join(full.split()[:4])
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 4

    body = await complete(client, "Go [fake tokens=12]", max_completion_tokens=2)
    assert body["usage"]["completion_tokens"] == 2

    events = await stream_events(client, chat_body("Go [fake tokens=12]", max_tokens=4))
    assert "".join(contents(events)) == " ".join(full.split()[:4])
    assert events[-2]["choices"][0]["finish_reason"] == "length"


# ---------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stream_sequence_with_usage(client: httpx.AsyncClient) -> None:
    body = chat_body("Stream please [fake tokens=10 chunks=4]", stream_options={"include_usage": True})
    events = await stream_events(client, body)
    assert events[-1] == DONE
    chunks = events[:-1]
    first = chunks[0]
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert (chunk["id"], chunk["created"], chunk["model"]) == (first["id"], first["created"], "fake-gpt")
    assert first["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    ]
    pieces = contents(chunks)
    assert len(pieces) == 4
    assert [len(piece.split()) for piece in pieces] == [3, 3, 2, 2]
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks[1:5])
    assert chunks[5]["choices"][0]["delta"] == {} and chunks[5]["choices"][0]["finish_reason"] == "stop"
    assert chunks[6]["choices"] == []
    assert chunks[6]["usage"] == {"prompt_tokens": 6, "completion_tokens": 10, "total_tokens": 16}
    assert len(chunks) == 7


@pytest.mark.asyncio
async def test_usage_chunk_only_when_requested(client: httpx.AsyncClient) -> None:
    without = await stream_events(client, chat_body("x [fake tokens=3]"))
    assert not any("usage" in event for event in without if isinstance(event, dict))
    suppressed = await stream_events(
        client, chat_body("x [fake tokens=3 usage=none]", stream_options={"include_usage": True})
    )
    assert not any("usage" in event for event in suppressed if isinstance(event, dict))
    assert suppressed[-1] == DONE
    assert "usage" not in await complete(client, "x [fake usage=none]")


@pytest.mark.asyncio
async def test_default_chunk_count(client: httpx.AsyncClient) -> None:
    assert len(contents(await stream_events(client, chat_body("x [fake tokens=3]")))) == 3
    assert len(contents(await stream_events(client, chat_body("x [fake tokens=30]")))) == 8
    assert len(contents(await stream_events(client, chat_body("x [fake tokens=5 chunks=50]")))) == 5
    empty = await stream_events(client, chat_body("x [fake tokens=0]"))
    assert contents(empty) == [] and empty[-2]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content", "extra"),
    [
        ("Some words here [fake tokens=13 chunks=5]", {}),
        ("Hello there, general Kenobi", {}),
        ("keep\n  this [fake echo=1 chunks=2]", {}),
        ("Go [fake tokens=40]", {"max_tokens": 9}),
        (
            "who [fake chunks=3]",
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "p",
                        "schema": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                        },
                    },
                }
            },
        ),
    ],
)
async def test_streamed_content_equals_non_streamed(
    client: httpx.AsyncClient, content: str, extra: dict[str, Any]
) -> None:
    body = chat_body(content, stream_options={"include_usage": True}, **extra)
    plain = await complete(client, content, **extra)
    events = await stream_events(client, body)
    assert "".join(contents(events)) == plain["choices"][0]["message"]["content"]
    assert events[-2]["usage"] == plain["usage"]


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_delay_ms_spaces_chunks(client: httpx.AsyncClient) -> None:
    events = await stream_events(client, chat_body("x [fake tokens=4 chunks=4 delay_ms=50]"), timed=True)
    role_time = events[0][0]
    content_times = [at for at, event in events if isinstance(event, dict) and contents([event])]
    assert len(content_times) == 4
    assert 0.040 <= content_times[0] - role_time <= 0.150
    for earlier, later in itertools.pairwise(content_times):
        assert 0.040 <= later - earlier <= 0.150


@pytest.mark.asyncio
async def test_first_delay_ms_overrides_first_gap(client: httpx.AsyncClient) -> None:
    events = await stream_events(client, chat_body("x [fake tokens=3 first_delay_ms=150]"), timed=True)
    content_times = [at for at, event in events if isinstance(event, dict) and contents([event])]
    assert content_times[0] - events[0][0] >= 0.130
    assert content_times[-1] - content_times[0] < 0.100

    started = time.perf_counter()
    await complete(client, "x [fake delay_ms=10 first_delay_ms=120]")
    assert time.perf_counter() - started >= 0.110


@pytest.mark.asyncio
async def test_delay_ms_non_streaming(client: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    await complete(client, "x [fake delay_ms=100]")
    assert 0.090 <= time.perf_counter() - started <= 1.0


# ---------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
        (500, "server_error"),
        (503, "server_error"),
    ],
)
async def test_status_directive(client: httpx.AsyncClient, status: int, error_type: str) -> None:
    for stream in (False, True):
        response = await client.post(CHAT, json=chat_body(f"x [fake status={status}]", stream=stream))
        error = assert_openai_error(response, status, error_type)
        assert error["param"] is None and error["code"]
        if status == 429:
            assert response.headers["retry-after"] == "1"
        else:
            assert "retry-after" not in response.headers


@pytest.mark.asyncio
async def test_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=chat_body("x [fake status=429 retry_after=7]"))
    assert response.headers["retry-after"] == "7"


@pytest.mark.asyncio
async def test_fail_primary_only_fails_fake_gpt(client: httpx.AsyncClient) -> None:
    primary = await client.post(CHAT, json=chat_body("x [fake fail=primary]", model="fake-gpt"))
    assert_openai_error(primary, 500, "server_error")
    backup = await client.post(CHAT, json=chat_body("x [fake fail=primary]", model="fake-gpt-backup"))
    assert backup.status_code == 200
    assert backup.json()["model"] == "fake-gpt-backup"
    limited = await client.post(CHAT, json=chat_body("x [fake fail=primary status=429]", model="fake-gpt"))
    assert_openai_error(limited, 429, "rate_limit_error")
    events = await stream_events(client, chat_body("x [fake fail=primary tokens=3]", model="fake-gpt-backup"))
    assert events[-1] == DONE


@pytest.mark.asyncio
async def test_drop_after_cuts_the_stream(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    body = chat_body("x [fake tokens=10 chunks=5 drop_after=2]", stream_options={"include_usage": True})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)) as caught:
        await stream_events(client, body)
    events = caught.value.events  # type: ignore[attr-defined]
    assert len(contents(events)) == 2
    assert DONE not in events
    assert all(event["choices"][0]["finish_reason"] is None for event in events)
    assert (await client.get("/health")).status_code == 200
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


@pytest.mark.asyncio
async def test_drop_after_beyond_content_drops_before_finish(client: httpx.AsyncClient) -> None:
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)) as caught:
        await stream_events(client, chat_body("x [fake tokens=3 drop_after=99]"))
    events = caught.value.events  # type: ignore[attr-defined]
    assert len(contents(events)) == 3 and DONE not in events


@pytest.mark.asyncio
async def test_drop_non_streaming(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.post(CHAT, json=chat_body("x [fake drop_after=0]"))
    assert (await client.get("/health")).status_code == 200
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []


@pytest.mark.asyncio
async def test_stall_after_holds_stream_open(client: httpx.AsyncClient, fake_runner: web.AppRunner) -> None:
    with pytest.raises(httpx.ReadTimeout) as caught:
        await stream_events(
            client, chat_body("x [fake tokens=6 chunks=3 stall_after=1]"), timeout=httpx.Timeout(5.0, read=0.3)
        )
    events = caught.value.events  # type: ignore[attr-defined]
    assert len(contents(events)) == 1
    await wait_until(lambda: not handler_tasks(fake_runner.app))  # the handler ends once we left
    assert (await client.get("/health")).status_code == 200


@pytest.mark.asyncio
async def test_stall_non_streaming_never_responds(client: httpx.AsyncClient, fake_runner: web.AppRunner) -> None:
    with pytest.raises(httpx.ReadTimeout):
        await client.post(CHAT, json=chat_body("x [fake stall_after=0]"), timeout=httpx.Timeout(5.0, read=0.3))
    await wait_until(lambda: not handler_tasks(fake_runner.app))


@pytest.mark.asyncio
async def test_client_disconnect_mid_stream_is_quiet(
    client: httpx.AsyncClient, fake_runner: web.AppRunner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    caplog.set_level(logging.DEBUG, logger="asyncio")
    body = chat_body("x [fake tokens=40 chunks=40 delay_ms=20]", stream=True)
    received = 0
    async with client.stream("POST", CHAT, json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and '"content":"' in line and '"role"' not in line:
                received += 1
                if received == 2:
                    assert handler_tasks(fake_runner.app)  # the stream is being served
                    break
    await wait_until(lambda: not handler_tasks(fake_runner.app))
    assert fake_runner.server is not None and not fake_runner.server.connections
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert (await client.get("/health")).status_code == 200


# ---------------------------------------------------------------------------
# JSON replies
# ---------------------------------------------------------------------------


def schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "Person", "schema": schema, "strict": False}}


@pytest.mark.asyncio
async def test_json_schema_reply_validates(
    client: httpx.AsyncClient, person_schema: dict[str, Any], check_schema: Callable[..., list[str]]
) -> None:
    body = await complete(client, "who? [fake tokens=500]", response_format=schema_format(person_schema))
    content = body["choices"][0]["message"]["content"]
    value = json.loads(content)
    assert check_schema(value, person_schema) == []
    assert (value["name"], value["email"], value["age"]) == ("Ada Lovelace", "user@example.com", 36)
    assert body["usage"]["completion_tokens"] == len(content.split())


@pytest.mark.asyncio
async def test_json_invalid_and_mismatch(
    client: httpx.AsyncClient, person_schema: dict[str, Any], check_schema: Callable[..., list[str]]
) -> None:
    invalid = await complete(client, "who? [fake json=invalid]", response_format=schema_format(person_schema))
    with pytest.raises(ValueError):
        json.loads(invalid["choices"][0]["message"]["content"])
    mismatch = await complete(client, "who? [fake json=mismatch]", response_format=schema_format(person_schema))
    assert check_schema(json.loads(mismatch["choices"][0]["message"]["content"]), person_schema) != []


@pytest.mark.asyncio
async def test_json_object_reply(client: httpx.AsyncClient) -> None:
    body = await complete(client, "hello json", response_format={"type": "json_object"})
    assert json.loads(body["choices"][0]["message"]["content"]) == {"result": "Hello from fake! You said: hello json"}


# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_tool_call_non_streaming(client: httpx.AsyncClient, check_schema: Callable[..., list[str]]) -> None:
    body = await complete(client, "weather? [fake tool=get_weather]", tools=[WEATHER_TOOL])
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    [call] = message["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    arguments = json.loads(call["function"]["arguments"])
    assert check_schema(arguments, WEATHER_TOOL["function"]["parameters"]) == []
    assert body["usage"]["completion_tokens"] == len(call["function"]["arguments"].split())

    forced = await complete(
        client, "weather?", tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}}
    )
    assert forced["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    required = await complete(client, "weather?", tools=[WEATHER_TOOL], tool_choice="required")
    assert required["choices"][0]["finish_reason"] == "tool_calls"
    auto = await complete(client, "weather?", tools=[WEATHER_TOOL], tool_choice="auto")
    assert auto["choices"][0]["message"]["content"].startswith("Hello from fake!")
    assert "tool_calls" not in auto["choices"][0]["message"]


@pytest.mark.asyncio
async def test_tool_call_streaming_deltas_reassemble(client: httpx.AsyncClient) -> None:
    plain = await complete(client, "weather? [fake chunks=3]", tools=[WEATHER_TOOL], tool_choice="required")
    expected_call = plain["choices"][0]["message"]["tool_calls"][0]
    events = await stream_events(
        client,
        chat_body(
            "weather? [fake chunks=3]",
            tools=[WEATHER_TOOL],
            tool_choice="required",
            stream_options={"include_usage": True},
        ),
    )
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    tool_deltas = [
        event["choices"][0]["delta"]["tool_calls"][0]
        for event in events
        if isinstance(event, dict) and event["choices"] and "tool_calls" in event["choices"][0]["delta"]
    ]
    header, *fragments = tool_deltas
    assert header == {
        "index": 0,
        "id": expected_call["id"],
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert len(fragments) == 3
    assert all(set(fragment) == {"index", "function"} and fragment["index"] == 0 for fragment in fragments)
    arguments = "".join(fragment["function"]["arguments"] for fragment in fragments)
    assert arguments == expected_call["function"]["arguments"]
    assert json.loads(arguments)["city"] == "London"
    assert events[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-2]["usage"] == plain["usage"]
    assert events[-1] == DONE


# ---------------------------------------------------------------------------
# Request log
# ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_request_log_records_bodies_and_headers(client: httpx.AsyncClient) -> None:
    assert (await client.delete("/_fake/requests")).status_code == 200
    body = chat_body(
        "log me",
        model="fake-gpt-backup",
        temperature=0.25,
        top_p=0.5,
        seed=1234,
        user="tenant-7",
        stop=["\n\n"],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        response_format={"type": "json_object"},
        metadata={"nested": [1, {"a": None}]},
    )
    await client.post(CHAT, json=body, headers={"X-Request-ID": "req-42"})
    await client.post(CHAT, json=chat_body("second"))
    log = (await client.get("/_fake/requests")).json()["requests"]
    assert [entry["model"] for entry in log] == ["fake-gpt-backup", "fake-gpt"]
    assert log[0]["body"] == body
    headers = log[0]["headers"]
    assert headers["x-request-id"] == "req-42"
    assert "authorization" not in headers
    assert all(name == name.lower() for name in headers)

    assert (await client.delete("/_fake/requests")).json() == {"cleared": 2}
    assert (await client.get("/_fake/requests")).json() == {"requests": []}


@pytest.mark.asyncio
async def test_request_log_is_bounded(client: httpx.AsyncClient) -> None:
    for index in range(205):
        await client.post(CHAT, json=chat_body(f"message {index}"))
    log = (await client.get("/_fake/requests")).json()["requests"]
    assert len(log) == 200
    assert log[0]["body"]["messages"][0]["content"] == "message 5"
    assert log[-1]["body"]["messages"][0]["content"] == "message 204"


# ---------------------------------------------------------------------------
# python -m fakeprovider
# ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_module_entry_point(signum: signal.Signals) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakeprovider",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=15)).decode().strip()
        prefix = "fakeprovider listening on http://127.0.0.1:"
        assert line.startswith(prefix), line
        port = int(line[len(prefix) :])
        assert port > 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/health")).json() == {"status": "ok"}
        process.send_signal(signum)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
        assert process.stderr is not None
        assert (await process.stderr.read()) == b""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
