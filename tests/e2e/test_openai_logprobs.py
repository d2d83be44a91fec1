"""Logprobs on /v1 through the real stack (Envoy -> server -> LiteLLM -> fake provider),
driven by the official OpenAI SDK: the provider's logprobs reach the client as it sent
them, whole or per streamed chunk, and only when asked for."""

from __future__ import annotations

from fakeprovider.replies import TOKEN_LOGPROB, logprobs_for
from tests.e2e.test_openai_endpoint import sdk

PROMPT = [{"role": "user", "content": "[fake tokens=6 chunks=3]"}]


def test_a_completion_returns_the_providers_logprobs(stack, team):
    completion = sdk(stack, team).chat.completions.create(
        model=team.alias, messages=PROMPT, logprobs=True, top_logprobs=2
    )
    content = completion.choices[0].message.content
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.refusal is None
    assert [entry.model_dump() for entry in logprobs.content] == logprobs_for(content, 2)
    assert len(logprobs.content) == 6 and {e.logprob for e in logprobs.content} == {TOKEN_LOGPROB}


def test_a_stream_carries_each_chunks_logprobs(stack, team):
    chunks = list(
        sdk(stack, team).chat.completions.create(
            model=team.alias, messages=PROMPT, logprobs=True, top_logprobs=2, stream=True
        )
    )
    with_content = [c.choices[0] for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(with_content) == 3
    for choice in with_content:
        assert choice.logprobs is not None
        assert [entry.model_dump() for entry in choice.logprobs.content] == logprobs_for(choice.delta.content, 2)


def test_without_logprobs_there_are_none(stack, team):
    client = sdk(stack, team)
    completion = client.chat.completions.create(model=team.alias, messages=PROMPT)
    assert completion.choices[0].logprobs is None
    chunks = list(client.chat.completions.create(model=team.alias, messages=PROMPT, stream=True))
    assert all(c.choices[0].logprobs is None for c in chunks if c.choices)
