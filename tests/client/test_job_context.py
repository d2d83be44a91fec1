"""The job context manager against the real stack: completed on success (1 credit),
failed on an exception (no credit), which propagates unchanged."""

from __future__ import annotations

import pytest

from saas_litellm_client import JobStatus, ModelNotAllowedError

USER = [{"role": "user", "content": "hi"}]


async def test_a_block_that_succeeds_completes_the_job(client):
    async with client.job("analysis", metadata={"source": "ctx"}) as job:
        assert job.job.status == JobStatus.PENDING and job.job.metadata == {"source": "ctx"}
        with pytest.raises(RuntimeError, match="still open"):
            job.result  # noqa: B018
        await job.llm_call(USER, purpose="one")
        await job.llm_call(USER, purpose="two")
        assert (await job.refresh()).costs.total_calls == 2
    assert job.result.status == JobStatus.COMPLETED and job.result.credits_remaining == 99
    assert job.result.costs.credits_charged == 1 and [c.purpose for c in job.result.calls] == ["one", "two"]
    assert (await client.get_job(job.job_id)).status == JobStatus.COMPLETED


async def test_a_block_that_raises_fails_the_job_and_reraises_the_same_exception(client):
    boom = RuntimeError("the parser broke")
    with pytest.raises(RuntimeError) as raised:
        async with client.job("analysis") as job:
            await job.llm_call(USER)
            raise boom
    assert raised.value is boom
    failed = await client.get_job(job.job_id)
    assert failed.status == JobStatus.FAILED and failed.error_message == "RuntimeError: the parser broke"
    assert job.result.credits_remaining == 100 and job.result.costs.credits_charged == 0  # nothing charged


async def test_an_api_error_inside_the_block_fails_the_job(client):
    with pytest.raises(ModelNotAllowedError):
        async with client.job("analysis") as job:
            await job.llm_call(USER, model="NoSuchModel")
    assert job.result.status == JobStatus.FAILED and job.result.costs.credits_charged == 0
    assert (await client.get_job(job.job_id)).error_message.startswith("ModelNotAllowedError: MODEL_NOT_ALLOWED")


async def test_a_job_completed_inside_the_block_is_left_as_it_is(client):
    async with client.job("analysis") as job:
        await job.llm_call(USER)
        early = await job.complete("failed", error_message="not worth it")
    assert job.result is early and early.status == JobStatus.FAILED
    assert (await client.get_job(job.job_id)).error_message == "not worth it"


async def test_streams_and_structured_calls_work_inside_the_block(client):
    from pydantic import BaseModel

    class City(BaseModel):
        city: str

    async with client.job("mixed") as job:
        text = "".join([c.content async for c in job.llm_call_stream(USER)])
        city = await job.structured_call([{"role": "user", "content": "Where?"}], City)
    assert text.startswith("Hello from fake!") and city.city == "London"
    assert [c.streamed for c in job.result.calls] == [True, False]
