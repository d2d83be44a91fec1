"""The synchronous client against the real stack: same methods, models and errors."""

from __future__ import annotations

import _thread
import threading

import pytest
import requests
from pydantic import BaseModel

from saas_litellm_client import (
    JobNotFoundError,
    JobStatus,
    StreamInterruptedError,
    StructuredOutputError,
    SyncSaasLiteLLMClient,
)
from tests.client.conftest import FAST_RETRIES

USER = [{"role": "user", "content": "hi"}]


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture
def sync_client(stack, team):
    with SyncSaasLiteLLMClient(
        base_url=stack.api_url, team_id=team.team_id, virtual_key=team.key, retry=FAST_RETRIES
    ) as client:
        yield client


def test_the_whole_flow_without_asyncio(sync_client):
    job = sync_client.create_job("document_analysis", idempotency_key="sync-1")
    assert sync_client.create_job("document_analysis", idempotency_key="sync-1").job_id == job.job_id
    reply = sync_client.llm_call(job.job_id, USER)
    assert reply.content.startswith("Hello from fake!")
    stream = sync_client.llm_call_stream(job.job_id, [{"role": "user", "content": "x [fake tokens=6 chunks=3]"}])
    chunks = list(stream)
    assert chunks[-1].done and len(stream.text.split()) == 6 and stream.usage.completion_tokens == 6
    assert sync_client.structured_call(job.job_id, USER, Person) == Person(name="Ada Lovelace", age=36)
    assert sync_client.get_job(job.job_id).costs.total_calls == 3
    result = sync_client.complete_job(job.job_id, "completed")
    assert result.credits_remaining == 99 and result.status == JobStatus.COMPLETED


def test_errors_are_the_same_typed_exceptions(sync_client):
    with pytest.raises(JobNotFoundError):
        sync_client.get_job("3f2b1c9e-8a41-4d2b-9a7e-0c5d6e7f8a9b")
    job = sync_client.create_job("a")
    with pytest.raises(StructuredOutputError) as failed:
        sync_client.structured_call(job.job_id, [{"role": "user", "content": "x [fake json=invalid]"}], Person)
    assert failed.value.raw_content.startswith("{")
    with (
        pytest.raises(StreamInterruptedError),
        sync_client.llm_call_stream(
            job.job_id, [{"role": "user", "content": "x [fake tokens=6 chunks=3 drop_after=1]"}]
        ) as stream,
    ):
        for _ in stream:
            pass


def test_the_job_context_manager_both_ways(sync_client):
    with sync_client.job("analysis") as job:
        job.llm_call(USER)
        assert "".join(c.content for c in job.llm_call_stream(USER)).startswith("Hello")
        assert job.structured_call(USER, Person).age == 36
    assert job.result.status == JobStatus.COMPLETED and job.result.costs.total_calls == 3

    with pytest.raises(KeyError), sync_client.job("analysis") as failing:
        failing.llm_call(USER)
        raise KeyError("missing")
    assert failing.result.status == JobStatus.FAILED
    assert sync_client.get_job(failing.job_id).error_message == "KeyError: 'missing'"


def test_close_is_idempotent_and_a_closed_client_refuses_work(stack, team):
    client = SyncSaasLiteLLMClient(base_url=stack.api_url, virtual_key=team.key)
    assert client.create_job("a").status == JobStatus.PENDING
    client.close()
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.create_job("a")


async def test_it_refuses_to_run_inside_a_running_loop(stack, team):
    client = SyncSaasLiteLLMClient(base_url=stack.api_url, virtual_key=team.key)
    try:
        with pytest.raises(RuntimeError, match="use SaasLiteLLMClient"):
            client.create_job("a")
    finally:
        await client.aio.aclose()
        client._loop.close()  # close() itself needs a thread without a running loop


def test_ctrl_c_during_a_stream_in_a_job_block_fails_the_job(sync_client, stack, team):
    """KeyboardInterrupt left the private loop with the stream's task still running on it:
    the job block's completion then failed ('aclose(): asynchronous generator is already
    running') and the job stayed open, holding its credit."""
    with pytest.raises(KeyboardInterrupt), sync_client.job("interrupted") as job:
        stream = job.llm_call_stream([{"role": "user", "content": "x [fake tokens=40 chunks=20 delay_ms=200]"}])
        for n, _ in enumerate(stream):
            if n == 2:  # Ctrl-C while the client waits for the next chunk
                threading.Timer(0.05, _thread.interrupt_main).start()
    assert job.completed
    assert sync_client.get_job(job.job_id).status == JobStatus.FAILED
    balance = requests.get(
        f"{stack.api_url}/api/credits/teams/{team.team_id}/balance", headers={"Authorization": f"Bearer {team.key}"}
    ).json()
    assert balance["credits_reserved"] == 0


def test_threads_sharing_a_client_take_turns(sync_client):
    """They ran one loop at once: all but one raised 'This event loop is already running'."""
    job = sync_client.create_job("threads")
    replies, errors = [], []

    def call() -> None:
        try:
            replies.append(sync_client.llm_call(job.job_id, [{"role": "user", "content": "x [fake delay_ms=100]"}]))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(replies) == 4
    assert sync_client.get_job(job.job_id).costs.total_calls == 4
