"""list_job_calls / iter_job_calls, async and sync, against the real stack: every call of a
job, where `get_job` shows its first 1,000 (MAX_EMBEDDED_CALLS). The calls are written into
PostgreSQL directly, as the server records them."""

from __future__ import annotations

import pytest

from saas_litellm_client import (
    CallSummary,
    JobNotFoundError,
    ListJobCallsResponse,
    SaasLiteLLMClient,
    SyncSaasLiteLLMClient,
    ValidationError,
)
from server.services.jobs import MAX_EMBEDDED_CALLS
from tests.client.conftest import FAST_RETRIES
from tests.e2e.conftest import rest_team
from tests.e2e.test_job_calls_rest import seed_calls

CALLS = MAX_EMBEDDED_CALLS + 30


async def test_iter_job_calls_reads_every_call_get_job_cuts(client, stack, team):
    job = await client.create_job("loop")
    ids = seed_calls(stack.postgres.url, job.job_id, team, CALLS)

    shown = await client.get_job(job.job_id)
    assert len(shown.calls) == MAX_EMBEDDED_CALLS < shown.costs.total_calls == CALLS

    calls = [call async for call in client.iter_job_calls(job.job_id, page_size=400)]
    assert all(isinstance(call, CallSummary) for call in calls)
    assert [call.call_id for call in calls] == ids
    assert calls[:MAX_EMBEDDED_CALLS] == shown.calls

    page = await client.list_job_calls(job.job_id, page_size=10)
    assert isinstance(page, ListJobCallsResponse) and len(page.calls) == 10 and page.next_page_token
    following = await client.list_job_calls(job.job_id, page_size=10, page_token=page.next_page_token)
    assert [c.call_id for c in page.calls + following.calls] == ids[:20]

    with pytest.raises(ValidationError) as invalid:
        await client.list_job_calls(job.job_id, page_token="not-a-token")
    assert invalid.value.field == "page_token"
    intruder = rest_team(stack.api_url + "/api")
    async with SaasLiteLLMClient(base_url=stack.api_url, virtual_key=intruder.key) as other:
        with pytest.raises(JobNotFoundError):
            await other.list_job_calls(job.job_id)


def test_the_sync_client_iterates_a_jobs_calls(stack, team):
    with SyncSaasLiteLLMClient(
        base_url=stack.api_url, team_id=team.team_id, virtual_key=team.key, retry=FAST_RETRIES
    ) as client:
        job = client.create_job("loop")
        ids = seed_calls(stack.postgres.url, job.job_id, team, CALLS)
        assert [call.call_id for call in client.iter_job_calls(job.job_id, page_size=MAX_EMBEDDED_CALLS)] == ids
        page = client.list_job_calls(job.job_id)
        assert [c.call_id for c in page.calls] == ids[:50] and page.next_page_token
