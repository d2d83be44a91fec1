"""Retries against the real stack: transient provider failures (the fake's 429 and 503) are
retried with backoff, counted by the requests that really reached the provider."""

from __future__ import annotations

import time

import pytest

from saas_litellm_client import (
    RateLimitedError,
    RetryPolicy,
    SaasLiteLLMClient,
    StreamInterruptedError,
    UpstreamUnavailableError,
)
from tests.client.conftest import marker


def say(word: str, directive: str) -> list[dict]:
    return [{"role": "user", "content": f"{word} [fake {directive}]"}]


async def test_a_rate_limited_call_is_retried_up_to_the_attempt_budget(client, fake):
    job = await client.create_job("a")
    word = marker()
    with pytest.raises(RateLimitedError) as limited:
        await client.llm_call(job.job_id, say(word, "status=429 retry_after=0"))
    assert len(fake.bodies(word)) == 3  # FAST_RETRIES: 3 attempts
    assert (limited.value.reason, limited.value.http_status, limited.value.retry_after) == (
        "UPSTREAM_RATE_LIMITED",
        429,
        0.0,
    )
    calls = (await client.get_job(job.job_id)).calls
    assert [c.status for c in calls] == ["FAILED"] * 3 and sum(c.cost_usd for c in calls) == 0


async def test_an_unavailable_provider_is_retried_up_to_the_attempt_budget(client, fake):
    job = await client.create_job("a")
    word = marker()
    with pytest.raises(UpstreamUnavailableError) as unavailable:
        await client.llm_call(job.job_id, say(word, "status=503"))
    assert len(fake.bodies(word)) == 3 and unavailable.value.http_status == 503


async def test_retries_can_be_turned_off(stack, team, fake):
    async with SaasLiteLLMClient(
        base_url=stack.api_url, virtual_key=team.key, retry=RetryPolicy(max_attempts=1)
    ) as client:
        job = await client.create_job("a")
        word = marker()
        with pytest.raises(UpstreamUnavailableError):
            await client.llm_call(job.job_id, say(word, "status=503"))
    assert len(fake.bodies(word)) == 1


async def test_the_servers_retry_delay_is_waited_and_a_longer_one_than_allowed_is_not(stack, team, fake):
    patient = RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=5.0)
    async with SaasLiteLLMClient(base_url=stack.api_url, virtual_key=team.key, retry=patient) as client:
        job = await client.create_job("a")
        word = marker()
        started = time.monotonic()
        with pytest.raises(RateLimitedError) as limited:
            await client.llm_call(job.job_id, say(word, "status=429 retry_after=1"))
        assert time.monotonic() - started >= 1.0  # RetryInfo said 1s: the client waited at least that
        assert limited.value.retry_after == 1.0 and len(fake.bodies(word)) == 2

    hasty = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.5)
    async with SaasLiteLLMClient(base_url=stack.api_url, virtual_key=team.key, retry=hasty) as client:
        word = marker()
        with pytest.raises(RateLimitedError):
            await client.llm_call(job.job_id, say(word, "status=429 retry_after=1"))
    assert len(fake.bodies(word)) == 1  # the server asked for longer than max_delay: raised at once


async def test_a_stream_is_retried_before_its_first_event_only(client, fake):
    job = await client.create_job("a")
    refused = marker()
    with pytest.raises(UpstreamUnavailableError):
        async for _ in client.llm_call_stream(job.job_id, say(refused, "status=503")):
            pass
    assert len(fake.bodies(refused)) == 3  # refused before the stream began: retried like a call

    cut = marker()
    received = []
    with pytest.raises(StreamInterruptedError) as interrupted:
        # Chunks 100 ms apart: the first is read long before the reset (bytes that arrive in
        # the same instant as a reset are dropped by aiohttp, in LiteLLM and in our server).
        async for chunk in client.llm_call_stream(job.job_id, say(cut, "tokens=12 chunks=4 drop_after=2 delay_ms=100")):
            received.append(chunk)
    assert len(fake.bodies(cut)) == 1  # broke after it began: never repeated
    assert interrupted.value.call_id == received[0].call_id
    assert interrupted.value.partial_content == "".join(c.content for c in received) != ""
