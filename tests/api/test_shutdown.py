"""A shutdown that cuts calls still running after its grace: streams are ended in-band
just before it runs out, grpc.aio cancels plain calls after it, and the server must let
their handlers record them, and settle a single-call job, before it closes the database
and the HTTP client. The server here is the real Application; the
clients are real gRPC clients; the calls wait on the fake provider."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import psycopg
from google.rpc import error_details_pb2

from saaslitellm.v1 import admin_service_pb2_grpc, job_pb2, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from server.app import Application
from server.services.single_call import SHUTDOWN_CUT
from tests.api.conftest import create_team, fake_requests, past_first_content, server_settings
from tests.api.test_job_flow import error_info, user


async def _until_sent(fake_url: str, *markers: str) -> None:
    """Until the fake provider has every request whose prompt holds one of `markers`."""
    for _ in range(500):
        prompts = [str(r["body"].get("messages")) for r in await fake_requests(fake_url)]
        if all(any(marker in prompt for prompt in prompts) for marker in markers):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the fake provider never got {markers}")


async def _events(stream) -> list:
    return [event async for event in stream]


def _reason(status) -> str:
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info.reason


async def test_calls_cut_by_a_shutdown_are_recorded_and_their_jobs_settled_before_it_ends(database_url, fake_url):
    app = Application(server_settings(database_url, fake_url, upstream_timeout_seconds=60))
    await app.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
    try:
        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel))
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
        plain_marker, slow = f"plain-{uuid.uuid4().hex}", "[fake tokens=40 chunks=40 delay_ms=500]"
        plain = asyncio.ensure_future(
            jobs.LLMCall(
                pb.LLMCallRequest(job_id=job.job_id, messages=[user(f"{plain_marker} [fake delay_ms=30000]")]),
                metadata=team.auth,
            )
        )
        stream = jobs.LLMCallStream(
            pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user(f"s {slow}")]), metadata=team.auth
        )
        plain_single = asyncio.ensure_future(
            jobs.CreateAndCall(
                pb.CreateAndCallRequest(
                    job_type="cut-plain", messages=[user(f"{plain_marker}-single [fake delay_ms=30000]")]
                ),
                metadata=team.auth,
            )
        )
        single = jobs.CreateAndCallStream(
            pb.CreateAndCallStreamRequest(job_type="t", messages=[user(f"c {slow}")]), metadata=team.auth
        )
        # A stream still waiting for the provider to begin (as a retry's backoff would).
        waiting = jobs.LLMCallStream(
            pb.LLMCallStreamRequest(
                job_id=job.job_id, messages=[user(f"{plain_marker}-waiting [fake status=503 first_delay_ms=30000]")]
            ),
            metadata=team.auth,
        )
        waiting_events = asyncio.ensure_future(_events(waiting))
        stream_rest, _ = await past_first_content(stream)
        single_rest, single_job = await past_first_content(single)
        await _until_sent(fake_url, plain_marker, f"{plain_marker}-single", f"{plain_marker}-waiting")

        await app.stop(grace=0.2)  # all four still running: ended just before the grace ran out

        # Each call is told why: a plain call in its error, a stream in its last event
        # (through the REST gateway a cancelled stream would just end: Envoy drops its status).
        for cut in await asyncio.gather(plain, plain_single, waiting_events, return_exceptions=True):
            assert isinstance(cut, grpc.aio.AioRpcError) and cut.code() == grpc.StatusCode.UNAVAILABLE, cut
            assert error_info(cut).reason == "SERVER_SHUTTING_DOWN" and cut.details() == SHUTDOWN_CUT
        for rest in (stream_rest, single_rest):
            last = [event async for event in rest][-1]
            assert last.done and last.error.code == grpc.StatusCode.UNAVAILABLE.value[0], last
            assert _reason(last.error) == "SERVER_SHUTTING_DOWN" and last.error.message == SHUTDOWN_CUT
        assert last.job_status == job_pb2.Job.FAILED  # the single call's job: failed, so free
        assert await stream.code() == await single.code() == grpc.StatusCode.OK
    finally:
        await channel.close()
    with psycopg.connect(database_url) as conn:
        calls = conn.execute(
            "SELECT job_id::text, status FROM llm_calls WHERE job_id IN (%s, %s) ORDER BY created_at",
            (job.job_id, single_job),
        ).fetchall()
        settled = conn.execute(
            "SELECT status, credits_charged, error_message FROM jobs WHERE job_id = %s", (single_job,)
        ).fetchone()
        settled_plain = conn.execute(
            "SELECT status, credits_charged, error_message FROM jobs WHERE team_id = %s AND job_type = 'cut-plain'",
            (team.team_id,),
        ).fetchone()
        remaining, ledger, reserved, ledger_reserved = conn.execute(
            "SELECT t.credits_allocated - t.credits_used, (SELECT sum(amount) FROM credit_ledger WHERE team_id = t.team_id),"
            " t.credits_reserved, (SELECT sum(reserved_delta) FROM credit_ledger WHERE team_id = t.team_id)"
            " FROM teams t WHERE t.team_id = %s",
            (team.team_id,),
        ).fetchone()
    # Each cut call is recorded, cancelled, with what it had produced (the plain one and the
    # waiting stream never answered)...
    assert sorted(calls) == sorted([(job.job_id, "cancelled")] * 3 + [(single_job, "cancelled")])
    # ...and the single-call jobs are settled: failed, free, as their clients were told to
    # retry, though content had reached one of them.
    assert settled == ("failed", 0, SHUTDOWN_CUT)
    assert settled_plain == ("failed", 0, SHUTDOWN_CUT)  # a plain single call's client was not gone either
    assert (remaining, reserved) == (ledger, ledger_reserved) == (100, 1)  # the open job still holds its credit
