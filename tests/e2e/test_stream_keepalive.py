"""Keep-alives through the full stack (Envoy, server, LiteLLM proxy, fake provider), on a
stack of its own that sends them every 0.2 s of silence (SAAS_STREAM_KEEPALIVE_SECONDS):
REST SSE events with `"keepalive": true` and nothing else, SSE comments on `/v1`, which
the OpenAI SDK skips, and none of either from the typed client's iterators."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
import requests

from devstack.stack import Stack
from saas_litellm_client import SaasLiteLLMClient
from tests.conftest import own_stack
from tests.e2e.conftest import RestTeam, rest_team

# Two pieces of text, each after 1 s of silence.
SILENT = "x [fake tokens=4 chunks=2 first_delay_ms=1000 delay_ms=1000]"


@pytest.fixture(scope="module")
def keeping_alive(pg, tmp_path_factory) -> Iterator[Stack]:
    with own_stack(pg, tmp_path_factory, "keepalive", server_env={"SAAS_STREAM_KEEPALIVE_SECONDS": "0.2"}) as stack:
        yield stack


@pytest.fixture
def team(keeping_alive: Stack) -> RestTeam:
    return rest_team(f"{keeping_alive.api_url}/api")


def _sse_blocks(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return response.content.decode().removesuffix("\n\n").split("\n\n")


def test_rest_streams_send_keepalive_events_while_the_model_is_silent(keeping_alive, team):
    api = f"{keeping_alive.api_url}/api"
    body = {"job_type": "t", "model": team.alias, "messages": [{"role": "user", "content": SILENT}]}
    with requests.post(
        f"{api}/jobs/create-and-call-stream", json=body, headers=team.headers, stream=True, timeout=30
    ) as response:
        events = [json.loads(block.removeprefix("data: ")) for block in _sse_blocks(response)]

    keepalives = [e for e in events if e.get("keepalive")]
    assert len(keepalives) >= 6
    for event in keepalives:  # nothing else set: the transcoder prints defaults only
        assert not event.get("content") and not event.get("done") and not event.get("choices")
        assert not event.get("call_id") and not event.get("job_id")
    texts = [i for i, e in enumerate(events) if e.get("content")]
    assert len(texts) == 2
    assert any(events[i].get("keepalive") for i in range(1, texts[0])), "keep-alives before the first chunk"
    assert any(events[i].get("keepalive") for i in range(texts[0] + 1, texts[1])), "and between chunks"
    final = events[-1]
    assert final["done"] and final["job_status"] == "COMPLETED"
    # Set only on a keep-alive: every other event is as it was before keep-alives existed.
    assert all("keepalive" not in e for e in events if not e.get("keepalive")), events
    assert final["usage"]["completion_tokens"] == 4 and final["costs"]["credits_charged"] >= 1

    job = requests.get(f"{api}/jobs/{events[0]['job_id']}", headers=team.headers, timeout=10).json()
    assert job["status"] == "COMPLETED" and [c["status"] for c in job["calls"]] == ["SUCCEEDED"]


def test_openai_streams_send_sse_comments_that_the_sdk_skips(keeping_alive, team):
    body = {"model": team.alias, "stream": True, "messages": [{"role": "user", "content": SILENT}]}
    with requests.post(
        f"{keeping_alive.api_url}/v1/chat/completions", json=body, headers=team.headers, stream=True, timeout=30
    ) as response:
        blocks = _sse_blocks(response)
    assert blocks.count(": keep-alive") >= 6
    assert all(b.startswith("data: ") for b in blocks if b != ": keep-alive") and blocks[-1] == "data: [DONE]"

    sdk = openai.OpenAI(base_url=f"{keeping_alive.api_url}/v1", api_key=team.key, max_retries=0)
    chunks = list(sdk.chat.completions.create(model=team.alias, messages=body["messages"], stream=True))
    assert all(c.object == "chat.completion.chunk" and c.choices for c in chunks)
    assert len([c for c in chunks if c.choices[0].delta.content]) == 2
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_the_typed_client_yields_no_keepalives(keeping_alive, team):
    messages = [{"role": "user", "content": SILENT}]
    async with SaasLiteLLMClient(base_url=keeping_alive.api_url, team_id=team.team_id, virtual_key=team.key) as client:
        single = [chunk async for chunk in client.create_and_call_stream("t", messages, model=team.alias)]
        job = await client.create_job("t")
        in_job = [chunk async for chunk in client.llm_call_stream(job.job_id, messages, model=team.alias)]

    for chunks in (single, in_job):
        assert not any(getattr(c, "keepalive", False) for c in chunks)
        assert len([c for c in chunks if c.content]) == 2
        assert chunks[0].call_id and chunks[-1].done and chunks[-1].usage.completion_tokens == 4
