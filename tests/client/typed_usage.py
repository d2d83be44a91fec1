"""Documented usage of the client, type-checked by `mypy --strict` in test_typing.py (never run).

A line that must be a type error carries `# type: ignore[code]`: under `--strict`
(`--warn-unused-ignores`), an ignore that is not needed fails the check, so both what must
type-check and what must not are checked.
"""

from __future__ import annotations

from typing import assert_type

from pydantic import BaseModel

from saas_litellm_client import (
    CreditBalance,
    CreditTransaction,
    JobStatus,
    LLMCallResponse,
    SaasLiteLLMClient,
    SyncSaasLiteLLMClient,
)

MESSAGES = [{"role": "user", "content": "Analyze..."}]


class Person(BaseModel):
    name: str


async def the_async_client(client: SaasLiteLLMClient) -> None:
    job = await client.create_job("document_analysis", metadata={"document": "q3"})
    # Provider parameters beside the typed OpenAI ones, as the README shows.
    reply = await client.llm_call(job.job_id, MESSAGES, model="ChatAgent", temperature=0.2, top_k=40, seed=7)
    assert_type(reply, LLMCallResponse)
    await client.llm_call(job_id=job.job_id, messages=MESSAGES, max_tokens=100, extra_body={"top_k": 40})
    # The known options stay typed.
    await client.llm_call(job.job_id, MESSAGES, temperature="hot")  # type: ignore[arg-type]
    await client.llm_call(job.job_id, MESSAGES, tool_choice="sometimes")  # type: ignore[arg-type]
    stream = client.llm_call_stream(job.job_id, MESSAGES, top_k=40)
    async for chunk in stream:
        print(chunk.content)
    print(stream.usage, stream.cost_usd)  # as the README's Streaming shows
    person = await client.structured_call(job.job_id, MESSAGES, Person, temperature=0, top_k=40)
    assert_type(person, Person)
    await client.estimate_call(MESSAGES, max_tokens=100, top_k=40)
    await client.complete_job(job.job_id, JobStatus.COMPLETED)
    await client.complete_job(job.job_id, "failed", error_message="gave up")
    await client.complete_job(job.job_id, JobStatus.FAILED)
    await client.complete_job(job.job_id, JobStatus.PENDING)  # type: ignore[arg-type]
    await client.complete_job(job.job_id, "done")  # type: ignore[arg-type]

    single = await client.create_and_call("one_shot", MESSAGES, metadata={"document": "q3"}, top_k=40)
    print(single.content)
    assert_type(single.credits_remaining, int)  # a settled job's balance: no None to rule out
    assert_type((await client.complete_job(job.job_id, "completed")).credits_remaining, int)
    assert_type(job.costs.credits_remaining, int | None)  # None while the job is open
    async for piece in client.create_and_call_stream("one_shot", MESSAGES, purpose="tell", top_k=40):
        print(piece.content)

    async with client.job("document_analysis") as session:
        await session.llm_call(MESSAGES, purpose="extract", top_k=40)
        await session.structured_call(MESSAGES, Person, top_k=40)
        await session.complete(JobStatus.FAILED, error_message="stopped")

    assert_type(await client.get_credit_balance(), CreditBalance)
    page = await client.list_credit_transactions(page_size=10)
    assert_type(page.transactions, list[CreditTransaction])
    async for entry in client.iter_credit_transactions():
        assert_type(entry.amount, int)


def the_sync_client(client: SyncSaasLiteLLMClient) -> None:
    job = client.create_job("document_analysis")
    client.llm_call(job.job_id, MESSAGES, top_k=40)
    client.llm_call(job.job_id, MESSAGES, max_tokens="many")  # type: ignore[arg-type]
    for chunk in client.llm_call_stream(job.job_id, MESSAGES, top_k=40):
        print(chunk.content)
    client.structured_call(job.job_id, MESSAGES, Person, top_k=40)
    client.estimate_call(MESSAGES, max_tokens=100, top_k=40)
    client.complete_job(job.job_id, JobStatus.COMPLETED)
    client.create_and_call("one_shot", MESSAGES, top_k=40)
    for piece in client.create_and_call_stream("one_shot", MESSAGES, top_k=40):
        print(piece.content)
    with client.job("document_analysis") as session:
        session.llm_call(MESSAGES, top_k=40)
        for part in session.llm_call_stream(MESSAGES, top_k=40):
            print(part.content)
        session.structured_call(MESSAGES, Person, top_k=40)
        session.complete(JobStatus.COMPLETED)
    assert_type(client.get_credit_balance().credits_remaining, int)
    assert_type(client.list_credit_transactions().next_page_token, str)
    for entry in client.iter_credit_transactions(page_size=100):
        print(entry.kind)
