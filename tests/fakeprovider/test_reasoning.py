"""``[fake reasoning=N]``: the fake reasons in N words before it answers, as DeepSeek R1 (and
LiteLLM for Claude's thinking) sends it: ``message.reasoning_content`` in a reply,
``delta.reasoning_content`` chunks before the content in a stream."""

from __future__ import annotations

import httpx
import pytest

from fakeprovider.directives import DirectiveError, parse_directive
from tests.fakeprovider.test_server import chat_body, complete, contents, stream_events

PROMPT = "think [fake reasoning=4 tokens=3 chunks=3]"


async def test_a_reply_carries_its_reasoning_counted_in_the_completion_tokens(client: httpx.AsyncClient) -> None:
    body = await complete(client, PROMPT)
    message = body["choices"][0]["message"]
    assert len(message["reasoning_content"].split()) == 4 and len(message["content"].split()) == 3
    assert body["usage"]["completion_tokens"] == 7
    assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 4}


async def test_a_reply_without_the_directive_has_no_reasoning(client: httpx.AsyncClient) -> None:
    body = await complete(client, "hi [fake tokens=3]")
    assert "reasoning_content" not in body["choices"][0]["message"]
    assert "completion_tokens_details" not in body["usage"]


async def test_a_stream_sends_one_reasoning_chunk_per_word_before_the_content(client: httpx.AsyncClient) -> None:
    events = await stream_events(client, chat_body(PROMPT, stream_options={"include_usage": True}))
    deltas = [event["choices"][0]["delta"] for event in events if isinstance(event, dict) and event["choices"]]
    reasoning = [d["reasoning_content"] for d in deltas if "reasoning_content" in d]
    whole = (await complete(client, PROMPT))["choices"][0]["message"]
    assert "".join(reasoning) == whole["reasoning_content"] and len(reasoning) == 4
    assert "".join(contents(events)) == whole["content"]
    first_content = next(i for i, d in enumerate(deltas) if d.get("content") and "role" not in d)
    assert all("reasoning_content" in d for d in deltas[1:first_content]), deltas
    assert events[-2]["usage"]["completion_tokens"] == 7


async def test_a_stalled_stream_still_sends_its_reasoning(client: httpx.AsyncClient) -> None:
    reasoning = []
    body = chat_body("think [fake reasoning=2 stall_after=0]", stream=True)
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if '"reasoning_content"' in line:
                reasoning.append(line)
            if len(reasoning) == 2:
                break
    assert len(reasoning) == 2


def test_reasoning_takes_a_positive_word_count() -> None:
    assert parse_directive("[fake reasoning=5]")[0].reasoning == 5
    for raw in ("0", "x", "-1"):
        with pytest.raises(DirectiveError) as raised:
            parse_directive(f"[fake reasoning={raw}]")
        assert raised.value.key == "reasoning"
