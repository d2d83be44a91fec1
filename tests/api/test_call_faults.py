"""A call cut short by a fault of ours (a bug, not a refusal or an upstream failure) is
still recorded, as failed with reason INTERNAL, so it settles the worst case its job
reserved for it and the job's limit is not eaten by calls that never finished. The fault
is injected into our own code (the answer's parsing, a stream's accumulation); everything
else is real."""

from __future__ import annotations

from decimal import Decimal

import grpc
import pytest
from sqlalchemy import text

from saaslitellm.v1 import job_service_pb2 as pb
from server.domain import completion
from server.services import calls as calls_module
from tests.api.conftest import create_team
from tests.api.test_job_cost_limits import job_limits
from tests.api.test_job_flow import expect_error, user


class _Bug(RuntimeError):
    pass


async def _recorded(app, job_id: str) -> list[tuple[str, str]]:
    async with app.db.transaction() as conn:
        rows = await conn.execute(
            text("SELECT status, error_reason FROM llm_calls WHERE job_id = CAST(:j AS uuid)"), {"j": job_id}
        )
        return [tuple(row) for row in rows]


@pytest.fixture
async def limited(admin):
    return await create_team(admin, max_cost_usd_per_job="0.01")


async def test_a_call_whose_answer_our_code_fails_to_read_is_recorded_and_settles_its_reservation(
    app, jobs, limited, monkeypatch
):
    def broken(body):
        raise _Bug("a bug reading the answer")

    monkeypatch.setattr(calls_module, "answer_from", broken)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=limited.auth)
    await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("hi")], max_tokens=50), metadata=limited.auth),
        grpc.StatusCode.INTERNAL,
        "INTERNAL",
    )
    assert await _recorded(app, job.job_id) == [("failed", "INTERNAL")]
    spent, reserved = await job_limits(app, job.job_id)
    assert reserved == Decimal(0) and spent >= Decimal(0)


async def test_a_stream_our_code_fails_midway_is_recorded_with_what_it_sent(app, jobs, limited, monkeypatch):
    class Breaking(completion.StreamAccumulator):
        def feed(self, chunk):
            if len(self.parts) == 3:
                raise _Bug("a bug reading a chunk")
            return super().feed(chunk)

    monkeypatch.setattr(calls_module, "StreamAccumulator", Breaking)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=limited.auth)
    stream = jobs.LLMCallStream(
        pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user("x [fake tokens=20 chunks=10]")], max_tokens=50),
        metadata=limited.auth,
    )
    events = [event async for event in stream]
    received = "".join(event.content for event in events)
    # After streaming began, the fault is the stream's last event, as any failure then is.
    assert events[-1].done and events[-1].error.code == grpc.StatusCode.INTERNAL.value[0] and received
    assert "internal error" in events[-1].error.message and "a bug" not in events[-1].error.message
    assert await _recorded(app, job.job_id) == [("failed", "INTERNAL")]
    spent, reserved = await job_limits(app, job.job_id)
    assert reserved == Decimal(0) and spent > Decimal(0)  # what it sent is counted
