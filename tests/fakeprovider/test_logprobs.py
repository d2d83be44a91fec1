"""The fake's logprobs: OpenAI-shaped, deterministic, per token of the content (whole, or
per streamed chunk), only when the request asks for them."""

from __future__ import annotations

import httpx
import pytest

from fakeprovider.replies import TOKEN_LOGPROB, logprobs_for
from tests.fakeprovider.test_server import CHAT, DONE, chat_body, complete, stream_events


def test_one_entry_per_token_that_concatenate_to_the_text() -> None:
    entries = logprobs_for("Hello  wide world ", 3)
    assert [entry["token"] for entry in entries] == ["Hello", "  wide", " world "]
    assert all(entry["logprob"] == TOKEN_LOGPROB for entry in entries)
    assert entries[1]["bytes"] == list(b"  wide")
    assert entries[1]["top_logprobs"] == [
        {"token": "  wide", "logprob": TOKEN_LOGPROB, "bytes": list(b"  wide")},
        {"token": "  alpha", "logprob": -1.0, "bytes": list(b"  alpha")},
        {"token": "  bravo", "logprob": -2.0, "bytes": list(b"  bravo")},
    ]
    assert [e["token"] for e in logprobs_for("alpha", 3)[0]["top_logprobs"]] == ["alpha", "bravo", "charlie"]
    assert logprobs_for("x", 0)[0]["top_logprobs"] == [] and logprobs_for("", 5) == []


@pytest.mark.asyncio
async def test_a_completion_carries_logprobs_only_when_asked(client: httpx.AsyncClient) -> None:
    plain = await complete(client, "[fake tokens=5]")
    assert plain["choices"][0]["logprobs"] is None

    body = await complete(client, "[fake tokens=5]", logprobs=True, top_logprobs=2)
    content = body["choices"][0]["message"]["content"]
    logprobs = body["choices"][0]["logprobs"]
    assert logprobs["refusal"] is None
    assert "".join(entry["token"] for entry in logprobs["content"]) == content
    assert len(logprobs["content"]) == 5 == body["usage"]["completion_tokens"]
    assert all(len(entry["top_logprobs"]) == 2 for entry in logprobs["content"])

    without_top = await complete(client, "[fake tokens=5]", logprobs=True)
    assert all(entry["top_logprobs"] == [] for entry in without_top["choices"][0]["logprobs"]["content"])


@pytest.mark.asyncio
async def test_each_streamed_chunk_carries_its_own_tokens(client: httpx.AsyncClient) -> None:
    events = await stream_events(client, chat_body("[fake tokens=6 chunks=3]", logprobs=True, top_logprobs=1))
    assert events[-1] == DONE
    choices = [event["choices"][0] for event in events[:-1]]
    role, *pieces, finish = choices
    assert role["logprobs"] is None and finish["logprobs"] is None and finish["finish_reason"] == "stop"
    assert len(pieces) == 3
    for choice in pieces:
        tokens = choice["logprobs"]["content"]
        assert "".join(entry["token"] for entry in tokens) == choice["delta"]["content"]
        assert len(tokens) == 2 and all(len(entry["top_logprobs"]) == 1 for entry in tokens)

    plain = await stream_events(client, chat_body("[fake tokens=6 chunks=3]"))
    assert all(event["choices"][0]["logprobs"] is None for event in plain[:-1])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logprobs": "yes"}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 1.5}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
    ],
)
async def test_bad_logprobs_parameters_are_a_400(client: httpx.AsyncClient, extra: dict, param: str) -> None:
    response = await client.post(CHAT, json=chat_body("hi", **extra))
    assert response.status_code == 400 and response.json()["error"]["param"] == param
