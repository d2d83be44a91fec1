"""How many calls a response embeds in a job (MAX_EMBEDDED_CALLS), and what that weighs at
worst: every response showing a job stays far below gRPC's default 8 MiB and Envoy's 16 MiB
of JSON however many calls the job made; and a page of ListTeamJobs, which ends by the
weight admin_jobs gives its jobs, never weighs more than that weight says."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from google.protobuf import json_format

from server.api import convert
from server.domain.jobs import CallRecord, CallStatus, Job, JobStatus, JobView
from server.services import admin_jobs
from server.services.jobs import MAX_EMBEDDED_CALLS

GRPC_LIMIT = 8 * 1024 * 1024  # SAAS_MAX_MESSAGE_BYTES's default
JSON_LIMIT = 16 * 1024 * 1024  # Envoy's buffer of a transcoded response
NOW = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
WIDE = "\U0001d11e"  # four bytes in UTF-8


def job(status: JobStatus = JobStatus.IN_PROGRESS) -> Job:
    return Job(
        job_id=uuid.uuid4(),
        team_id="team",
        job_type="loop",
        user_id="",
        status=status,
        metadata={},
        created_at=NOW,
        credits_charged=1,
        credits_remaining_after=99,
    )


def call(
    job_id: uuid.UUID, index: int, *, purpose: str = "extract", error: str = "", model: str = "Agent"
) -> CallRecord:
    return CallRecord(
        call_id=uuid.uuid4(),
        job_id=job_id,
        team_id="team",
        status=CallStatus.FAILED if error else CallStatus.SUCCEEDED,
        model_alias=model,
        purpose=purpose,
        prompt_tokens=100_000 + index,
        completion_tokens=3,
        billed_cost_usd=Decimal("123.4567890123"),
        latency_ms=1_999_999,
        error_message=error,
        content="an answer no view shows",
        created_at=NOW + timedelta(microseconds=index),
    )


def worst_call(job_id: uuid.UUID, index: int) -> CallRecord:
    """A call with every text as long as it can be: a 200-character purpose, a 128-character
    model alias and an upstream's error (500 characters of its message and our words about
    it), all in four-byte characters."""
    return call(job_id, index, purpose=WIDE * 200, model="m" * 128, error=WIDE * 600)


def json_bytes(message) -> int:
    """The response as Envoy's transcoder writes it (gateway/envoy.template.yaml,
    print_options): field names as in the protos, fields without presence always, no
    whitespace, UTF-8 as is."""
    fields = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return len(json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode())


@pytest.mark.parametrize("make", [call, worst_call])
def test_every_job_view_embeds_the_first_calls_counts_all_and_stays_far_below_the_limits(make) -> None:
    owner = job(JobStatus.COMPLETED)
    calls = tuple(make(owner.job_id, index) for index in range(3 * MAX_EMBEDDED_CALLS))
    view = JobView(owner, calls)
    responses = (convert.job(view), convert.job_costs_response(view), convert.complete_job_response(view))
    for response in responses:
        assert [c.call_id for c in response.calls] == [str(c.call_id) for c in calls[:MAX_EMBEDDED_CALLS]]
        assert response.costs.total_calls == len(calls)
        assert response.costs.total_tokens == sum(c.total_tokens for c in calls)
        assert response.ByteSize() < GRPC_LIMIT / 2
        assert json_bytes(response) < JSON_LIMIT / 2


@pytest.mark.parametrize("make", [call, worst_call])
def test_a_jobs_weight_in_the_job_list_is_at_least_what_it_weighs(make) -> None:
    for count in (0, 1, 10, MAX_EMBEDDED_CALLS, 2 * MAX_EMBEDDED_CALLS):
        owner = job()
        view = JobView(owner, tuple(make(owner.job_id, index) for index in range(count)))
        shown = convert.job(view)
        assert admin_jobs._weight(view) >= max(shown.ByteSize(), json_bytes(shown)), count
    # A page of jobs weighing its budget at most fits in a response, with room to spare.
    assert admin_jobs.PAGE_BYTES < GRPC_LIMIT / 2


def test_a_jobs_token_totals_past_32_bits_saturate_instead_of_failing_the_view() -> None:
    """A looping agent's job can pass 2**31 tokens: GetJob, and CompleteJob after it
    committed, must still answer, the totals at the 32-bit fields' largest value."""
    owner = job(JobStatus.COMPLETED)
    calls = tuple(
        CallRecord(**{**vars(call(owner.job_id, index)), "prompt_tokens": 900_000_000, "completion_tokens": 1})
        for index in range(3)
    )
    view = JobView(owner, calls)
    for response in (convert.job(view), convert.job_costs_response(view), convert.complete_job_response(view)):
        costs = response.costs
        assert costs.prompt_tokens == costs.total_tokens == convert.INT32_MAX
        assert costs.completion_tokens == 3 and costs.total_calls == 3
