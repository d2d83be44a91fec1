"""The client exposes a reasoning model's reasoning: `reasoning_content` on a call's result
and on each streamed chunk (and its delta), against the real stack (`[fake reasoning=N]`)."""

from __future__ import annotations

PROMPT = "think first [fake reasoning=4 tokens=3 chunks=3]"


async def test_a_calls_result_carries_its_reasoning(client):
    job = await client.create_job("chat")
    result = await client.llm_call(job.job_id, [{"role": "user", "content": PROMPT}])
    assert len(result.reasoning_content.split()) == 4 and result.reasoning_content == result.response.reasoning_content
    assert len(result.content.split()) == 3


async def test_a_create_and_call_result_carries_its_reasoning(client):
    result = await client.create_and_call(job_type="chat", messages=[{"role": "user", "content": PROMPT}])
    assert len(result.reasoning_content.split()) == 4 and len(result.content.split()) == 3


async def test_a_stream_yields_reasoning_chunks_before_the_content(client):
    job = await client.create_job("chat")
    whole = await client.llm_call(job.job_id, [{"role": "user", "content": PROMPT}])
    chunks = [c async for c in client.llm_call_stream(job.job_id, [{"role": "user", "content": PROMPT}])]
    reasoning = [c for c in chunks if c.reasoning_content]
    assert len(reasoning) == 4 and all(c.delta.reasoning_content == c.reasoning_content for c in reasoning)
    assert "".join(c.reasoning_content for c in reasoning) == whole.reasoning_content
    first_content = next(i for i, c in enumerate(chunks) if c.content)
    assert chunks.index(reasoning[-1]) < first_content
    assert "".join(c.content for c in chunks) == whole.content
