"""Streaming against the real stack: typed chunks, the final chunk's usage and cost, and
the two ways a stream can fail (an in-band error, a stream cut without its final event)."""

from __future__ import annotations

import httpx
import pytest

from saas_litellm_client import (
    JobStatus,
    SaasLiteLLMClient,
    StreamChunk,
    StreamCutError,
    StreamInterruptedError,
)
from tests.client.conftest import marker


async def test_a_stream_yields_typed_chunks_and_a_final_chunk_with_usage_and_cost(client, team):
    job = await client.create_job("chat")
    stream = client.llm_call_stream(
        job_id=job.job_id, messages=[{"role": "user", "content": "story [fake tokens=12 chunks=4]"}], purpose="story"
    )
    chunks = [chunk async for chunk in stream]
    assert all(isinstance(c, StreamChunk) for c in chunks)
    first, last = chunks[0], chunks[-1]
    assert first.job_id == job.job_id and first.call_id and first.model == team.alias
    assert [c.done for c in chunks].count(True) == 1 and last.done
    text = "".join(c.content for c in chunks)
    assert len(text.split()) == 12 and stream.text == text
    assert "".join(c.delta.content or "" for c in chunks if c.delta) == text
    assert last.finish_reason == "stop" and last.usage.completion_tokens == 12 and not last.usage.estimated
    assert last.cost_usd > 0 and stream.final is last and stream.cost_usd == last.cost_usd

    recorded = await client.get_job(job.job_id)
    [call] = recorded.calls
    assert recorded.status == JobStatus.IN_PROGRESS
    assert (call.call_id, call.streamed, call.purpose, call.status) == (first.call_id, True, "story", "SUCCEEDED")
    assert call.tokens == last.usage.total_tokens and call.cost_usd == last.cost_usd


async def test_an_upstream_cut_arrives_in_band_and_raises_a_typed_error(client):
    job = await client.create_job("chat")
    received = []
    with pytest.raises(StreamInterruptedError) as interrupted:
        async for chunk in client.llm_call_stream(
            # Chunks 100 ms apart, cut after the third: the first two are read long before
            # the reset; the third may be lost with it (aiohttp drops bytes that arrive in the
            # same instant as a reset, in LiteLLM and in our server).
            job.job_id,
            [{"role": "user", "content": "story [fake tokens=12 chunks=4 drop_after=3 delay_ms=100]"}],
        ):
            received.append(chunk.content)
    error = interrupted.value
    assert (error.reason, error.code, error.http_status) == ("UPSTREAM_STREAM_INTERRUPTED", 14, None)
    assert error.partial_content == "".join(received) and len(error.partial_content.split()) in (6, 9)
    [call] = (await client.get_job(job.job_id)).calls
    assert call.call_id == error.call_id and call.status != "SUCCEEDED"


async def test_a_stream_that_stops_without_its_final_event_is_cut(stack, team):
    """The provider goes silent mid-stream; the client's read timeout ends the stream,
    which never got its `done` event: StreamCutError with what arrived."""
    async with SaasLiteLLMClient(
        base_url=stack.api_url, virtual_key=team.key, timeout=httpx.Timeout(10.0, read=0.5)
    ) as client:
        job = await client.create_job("chat")
        word = marker()
        stream = client.llm_call_stream(
            job.job_id, [{"role": "user", "content": f"{word} [fake tokens=12 chunks=4 stall_after=2]"}]
        )
        with pytest.raises(StreamCutError) as cut:
            async for _ in stream:
                pass
        assert isinstance(cut.value.__cause__, httpx.ReadTimeout)
        assert len(cut.value.content.split()) == 6 and cut.value.call_id == stream.call_id
        assert stream.final is None
        await client.complete_job(job.job_id, "failed")


async def test_leaving_a_stream_early_releases_it(client):
    job = await client.create_job("chat")
    async with client.llm_call_stream(job.job_id, [{"role": "user", "content": "x [fake tokens=40 chunks=8]"}]) as s:
        async for chunk in s:
            if chunk.content:
                break
    assert s.final is None and s.text
    done = await client.llm_call(job.job_id, [{"role": "user", "content": "still usable"}])
    assert done.content
