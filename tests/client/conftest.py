"""Fixtures of the client tests: the real stack of tests/e2e (Envoy, server, LiteLLM proxy,
fake provider, PostgreSQL), a fresh team per test, and the fake provider's request log,
which shows how many times a request really reached the provider."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from devstack.stack import Stack
from saas_litellm_client import RetryPolicy, SaasLiteLLMClient
from tests.e2e.conftest import RestTeam, rest_team

FAST_RETRIES = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=2.0)
"""Three attempts, short waits: the tests count attempts, not seconds."""


@pytest.fixture
def team(api: str) -> RestTeam:
    """A team with 100 credits whose only alias maps to `fake-gpt` without fallback, so one
    client attempt is exactly one request to the fake provider."""
    return rest_team(api, models=("fake-gpt",))


@pytest.fixture
async def client(stack: Stack, team: RestTeam) -> AsyncIterator[SaasLiteLLMClient]:
    async with SaasLiteLLMClient(
        base_url=stack.api_url, team_id=team.team_id, virtual_key=team.key, retry=FAST_RETRIES
    ) as client:
        yield client


def marker() -> str:
    """A unique word to find a test's requests in the fake provider's log."""
    return f"m{uuid.uuid4().hex[:12]}"


class FakeLog:
    """The fake provider's log of chat-completion requests (GET /_fake/requests)."""

    def __init__(self, fake_url: str) -> None:
        self.url = f"{fake_url}/_fake/requests"

    def bodies(self, word: str) -> list[dict]:
        """The request bodies whose conversation mentions `word`, oldest first."""
        requests = httpx.get(self.url, timeout=10).json()["requests"]
        return [r["body"] for r in requests if any(word in str(m.get("content")) for m in r["body"]["messages"])]


@pytest.fixture
def fake(stack: Stack) -> FakeLog:
    return FakeLog(stack.fake_url)
