"""Unit: decoding the SSE events of llm-call-stream into typed chunks, and the end-of-stream
contract (pure decoding, then the same over HTTP bytes split at awkward places)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from saas_litellm_client import (
    LLMStream,
    StreamChunk,
    StreamCutError,
    StreamInterruptedError,
    UnavailableError,
)
from saas_litellm_client.streaming import StreamDecoder

FIRST = {
    "call_id": "c1",
    "job_id": "j1",
    "model": "ChatAgent",
    "content": "",
    "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": []}}],
    "done": False,
}
TEXT = [
    {"content": "Once upon", "choices": [{"index": 0, "delta": {"content": "Once upon"}}], "done": False},
    {"content": " a time", "choices": [{"index": 0, "delta": {"content": " a time"}}], "done": False},
]
LAST = {
    "content": "",
    "choices": [],
    "done": True,
    "finish_reason": "stop",
    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9, "estimated": False},
    "cost_usd": 1.3e-05,
    "latency_ms": 40,
}
IN_BAND_ERROR = {
    "content": "",
    "choices": [],
    "done": True,
    "finish_reason": "error",
    "error": {
        "code": 14,
        "message": "the stream broke",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "UPSTREAM_STREAM_INTERRUPTED",
                "domain": "saaslitellm",
                "metadata": {},
            }
        ],
    },
}


def sse(*events: dict) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


def test_a_complete_stream_decodes_to_typed_chunks():
    decoder = StreamDecoder()
    chunks = [decoder.feed(json.dumps(e)) for e in (FIRST, *TEXT, LAST)]
    assert all(isinstance(c, StreamChunk) for c in chunks)
    assert (chunks[0].call_id, chunks[0].job_id, chunks[0].model) == ("c1", "j1", "ChatAgent")
    assert chunks[0].delta.role == "assistant" and chunks[1].delta.content == "Once upon"
    assert decoder.text == "Once upon a time" and decoder.call_id == "c1"
    final = decoder.finish()
    assert final is chunks[-1] and final.done and final.delta is None
    assert (final.usage.total_tokens, final.cost_usd, final.finish_reason) == (9, 1.3e-05, "stop")


def test_a_stream_without_its_final_event_is_cut():
    decoder = StreamDecoder()
    for event in (FIRST, *TEXT):
        decoder.feed(json.dumps(event))
    with pytest.raises(StreamCutError) as cut:
        decoder.finish()
    assert cut.value.content == "Once upon a time" and cut.value.call_id == "c1"
    assert "done" in str(cut.value)


def test_an_empty_stream_is_cut_too():
    with pytest.raises(StreamCutError) as cut:
        StreamDecoder().finish()
    assert cut.value.content == "" and cut.value.call_id is None


def test_an_in_band_error_raises_its_typed_exception_with_what_arrived():
    decoder = StreamDecoder()
    decoder.feed(json.dumps(FIRST))
    decoder.feed(json.dumps(TEXT[0]))
    with pytest.raises(StreamInterruptedError) as error:
        decoder.feed(json.dumps(IN_BAND_ERROR))
    assert error.value.reason == "UPSTREAM_STREAM_INTERRUPTED" and error.value.code == 14
    assert error.value.http_status is None
    assert (error.value.call_id, error.value.partial_content) == ("c1", "Once upon")


def test_an_in_band_error_with_an_unknown_reason_maps_by_its_code():
    event = {**IN_BAND_ERROR, "error": {"code": 14, "message": "gone", "details": []}}
    with pytest.raises(UnavailableError):
        StreamDecoder().feed(json.dumps(event))


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '{"done": "maybe"}'])
def test_a_malformed_event_is_a_cut_stream(data):
    decoder = StreamDecoder()
    decoder.feed(json.dumps(FIRST))
    with pytest.raises(StreamCutError) as cut:
        decoder.feed(data)
    assert cut.value.call_id == "c1"


def test_nothing_may_follow_the_final_event_and_keep_alives_are_skipped():
    decoder = StreamDecoder()
    assert decoder.feed("") is None and decoder.feed("  ") is None
    decoder.feed(json.dumps(LAST))
    with pytest.raises(StreamCutError):
        decoder.feed(json.dumps(TEXT[0]))


def response_of(pieces: list[bytes], *, fail: Exception | None = None) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece
        if fail is not None:
            raise fail

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
async def test_llm_stream_over_bytes_split_anywhere(size):
    wire = sse(FIRST, *TEXT) + b": a comment line\n\n" + sse(LAST).replace(b"\n", b"\r\n")
    response = response_of(split(wire, size))

    async def open_response() -> httpx.Response:
        return response

    stream = LLMStream(open_response)
    chunks = [chunk async for chunk in stream]
    assert [c.content for c in chunks] == ["", "Once upon", " a time", ""]
    assert stream.text == "Once upon a time" and stream.final is chunks[-1]
    assert stream.usage.completion_tokens == 4 and stream.cost_usd == 1.3e-05 and stream.call_id == "c1"
    assert response.is_closed


async def test_llm_stream_ending_mid_event_is_cut():
    wire = sse(FIRST, TEXT[0]) + b'data: {"content": " a ti'
    response = response_of([wire])

    async def open_response() -> httpx.Response:
        return response

    received = []
    with pytest.raises(StreamCutError) as cut:
        async for chunk in LLMStream(open_response):
            received.append(chunk.content)
    assert received == ["", "Once upon"] and cut.value.content == "Once upon"
    assert response.is_closed


async def test_llm_stream_whose_connection_breaks_is_cut():
    response = response_of([sse(FIRST, TEXT[0])], fail=httpx.RemoteProtocolError("peer closed connection"))

    async def open_response() -> httpx.Response:
        return response

    with pytest.raises(StreamCutError) as cut:
        async for _ in LLMStream(open_response):
            pass
    assert isinstance(cut.value.__cause__, httpx.RemoteProtocolError) and cut.value.content == "Once upon"


async def test_llm_stream_closed_early_releases_the_response():
    response = response_of([sse(FIRST, *TEXT, LAST)])

    async def open_response() -> httpx.Response:
        return response

    async with LLMStream(open_response) as stream:
        async for chunk in stream:
            if chunk.content:
                break
    assert response.is_closed and stream.final is None
    assert [c async for c in stream] == []  # a closed stream yields nothing more
