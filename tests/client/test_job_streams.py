"""Streams left early inside a job block, against the real stack: the block closes them
before it completes the job, and completes it only once the server has recorded their
calls (as cancelled), so a consumption-mode job is charged for what they consumed. And a
stream left open is released when its client closes, at the latest."""

from __future__ import annotations

import gc
import math
import warnings

import pytest

from saas_litellm_client import CallStatus, JobStatus, SaasLiteLLMClient, SyncSaasLiteLLMClient
from tests.client.conftest import FAST_RETRIES
from tests.e2e.conftest import RestTeam, rest_team

TOKENS_PER_CREDIT = 10
LONG = [{"role": "user", "content": "tell me a long story [fake tokens=400 chunks=40 delay_ms=100]"}]
"""A streamed reply of 400 words in 40 chunks, 100 ms apart: still running when the test leaves it."""


@pytest.fixture
def billed_team(api: str) -> RestTeam:
    """A team billed by tokens (1 credit per 10), 1000 credits, one alias on `fake-gpt`."""
    return rest_team(
        api, credits=1000, models=("fake-gpt",), budget_mode="CONSUMPTION_TOKENS", tokens_per_credit=TOKENS_PER_CREDIT
    )


@pytest.fixture
async def billed_client(stack, billed_team):
    async with SaasLiteLLMClient(
        base_url=stack.api_url, team_id=billed_team.team_id, virtual_key=billed_team.key, retry=FAST_RETRIES
    ) as client:
        yield client


def assert_settled_with_the_cut_call(result, later) -> None:
    """The completion counted the cut call and charged its tokens; nothing came after it."""
    costs = result.costs
    assert costs.total_calls == 1 and [c.status for c in result.calls] == [CallStatus.CANCELLED]
    assert costs.total_tokens > TOKENS_PER_CREDIT  # more than the 1 credit reserved
    assert costs.credits_charged == math.ceil(costs.total_tokens / TOKENS_PER_CREDIT)
    assert costs.credits_remaining == 1000 - costs.credits_charged
    assert later.costs.total_calls == 1 and later.costs.total_tokens == costs.total_tokens
    assert later.costs.credits_charged == costs.credits_charged


async def test_a_break_out_of_a_stream_in_a_job_block_is_charged_with_the_job(billed_client):
    async with billed_client.job("story") as job:
        stream = job.llm_call_stream(LONG)  # held: nothing but the block may close it
        async for chunk in stream:
            if chunk.content:
                break
    assert job.result.status == JobStatus.COMPLETED
    assert_settled_with_the_cut_call(job.result, await billed_client.get_job_costs(job.job_id))
    assert job.result.calls[0].call_id == stream.call_id and stream.closed


async def test_a_job_block_that_raises_after_a_break_records_the_call_before_failing_the_job(billed_client):
    with pytest.raises(RuntimeError, match="enough"):
        async with billed_client.job("story") as job:
            stream = job.llm_call_stream(LONG)
            async for chunk in stream:
                if chunk.content:
                    raise RuntimeError("enough")
    assert job.result.status == JobStatus.FAILED and job.result.costs.credits_charged == 0
    assert [c.status for c in job.result.calls] == [CallStatus.CANCELLED] and stream.closed


async def test_completing_the_job_inside_the_block_closes_its_streams_first(billed_client):
    async with billed_client.job("story") as job:
        stream = job.llm_call_stream(LONG)
        async for chunk in stream:
            if chunk.content:
                break
        result = await job.complete("completed")
    assert_settled_with_the_cut_call(result, await billed_client.get_job_costs(job.job_id))


async def test_aclose_of_a_job_stream_waits_until_the_server_recorded_the_call(billed_client):
    job = await billed_client.create_job("story")
    stream = billed_client.llm_call_stream(job.job_id, LONG)
    async for chunk in stream:
        if chunk.content:
            break
    await stream.aclose()
    assert [c.call_id for c in (await billed_client.get_job_costs(job.job_id)).calls] == [stream.call_id]
    result = await billed_client.complete_job(job.job_id, "completed")
    assert_settled_with_the_cut_call(result, await billed_client.get_job_costs(job.job_id))


def test_a_break_out_of_a_stream_in_a_sync_job_block_is_charged_with_the_job(stack, billed_team):
    with SyncSaasLiteLLMClient(
        base_url=stack.api_url, team_id=billed_team.team_id, virtual_key=billed_team.key, retry=FAST_RETRIES
    ) as client:
        with client.job("story") as job:
            stream = job.llm_call_stream(LONG)
            for chunk in stream:
                if chunk.content:
                    break
        assert job.result.status == JobStatus.COMPLETED
        assert_settled_with_the_cut_call(job.result, client.get_job_costs(job.job_id))


def test_a_sync_stream_left_with_break_is_released_when_the_client_closes(stack, team):
    gc.collect()  # earlier tests' garbage is not this test's
    client = SyncSaasLiteLLMClient(base_url=stack.api_url, team_id=team.team_id, virtual_key=team.key)
    job = client.create_job("story")
    stream = client.llm_call_stream(job.job_id, LONG)
    for chunk in stream:
        if chunk.content:
            break
    response = stream.aio._response
    assert response is not None and not response.is_closed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client.close()
        assert response.is_closed and stream.aio._response is None
        del stream, response
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_an_async_stream_left_with_break_is_released_when_the_client_closes(stack, team):
    client = SaasLiteLLMClient(base_url=stack.api_url, team_id=team.team_id, virtual_key=team.key)
    job = await client.create_job("story")
    stream = client.llm_call_stream(job.job_id, LONG)
    async for chunk in stream:
        if chunk.content:
            break
    response = stream._response
    assert response is not None and not response.is_closed
    await client.aclose()
    assert response.is_closed and stream._response is None
