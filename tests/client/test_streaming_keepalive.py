"""Unit: the keep-alive events a stream sends while the model is silent (`"keepalive": true`,
with every other field at its default as the REST transcoder prints them) are skipped by
the decoder and never yielded by a stream, wherever they come."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from saas_litellm_client import CreateAndCallChunk, LLMStream
from saas_litellm_client.streaming import StreamDecoder
from tests.client.test_streaming import FIRST, LAST, TEXT, sse

# As Envoy's transcoder prints one (always_print_primitive_fields).
KEEPALIVE = {"content": "", "choices": [], "done": False, "keepalive": True}


def test_the_decoder_skips_keepalives_and_counts_no_event():
    decoder = StreamDecoder()
    decoder.feed(json.dumps(FIRST))
    assert decoder.feed(json.dumps(KEEPALIVE)) is None
    assert decoder.feed(json.dumps({"keepalive": True})) is None
    assert decoder.events == 1 and decoder.final is None


async def test_a_stream_yields_no_keepalives():
    wire = sse(FIRST, KEEPALIVE, KEEPALIVE, TEXT[0], KEEPALIVE, TEXT[1], LAST)

    async def open_response() -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            yield wire

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    for model in (None, CreateAndCallChunk):
        stream = LLMStream(open_response) if model is None else LLMStream(open_response, model)
        chunks = [chunk async for chunk in stream]
        assert [c.content for c in chunks] == ["", "Once upon", " a time", ""]
        assert not any(getattr(c, "keepalive", False) for c in chunks)
        assert stream.text == "Once upon a time" and chunks[-1].done
