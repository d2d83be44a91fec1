"""Free-form JSON a client stores is bounded so that whatever is stored can be read back:
each document at most 32 levels deep and 64 KiB (as PostgreSQL writes JSON back), a job's metadata at most
256 KiB after merges (UpdateJobMetadata, CompleteJob, a call's call_metadata), and a page
of the job list ends before its jobs would outweigh a response. A refusal names the field
and changes nothing. Through Envoy: tests/e2e/test_metadata_limits.py."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf import json_format, struct_pb2

from saaslitellm.v1 import admin_job_service_pb2 as admin_jobs_pb
from saaslitellm.v1 import admin_job_service_pb2_grpc, job_pb2
from saaslitellm.v1 import job_service_pb2 as pb
from server.domain.validation import MAX_JOB_METADATA_BYTES, MAX_JSON_BYTES, MAX_JSON_DEPTH, json_size
from tests.api.conftest import ADMIN
from tests.api.test_job_flow import error_info, expect_error, user


def struct(value: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def nested(levels: int) -> dict:
    """An object `levels` deep (the outermost counts)."""
    document: dict = {"leaf": 1}
    for _ in range(levels - 1):
        document = {"k": document}
    return document


def blob(key: str, size: int) -> dict:
    """About `size` bytes of JSON under `key`."""
    return {key: "x" * (size - len(key) - 8)}


async def test_a_document_too_deep_or_too_big_is_refused_naming_the_field(jobs, team):
    deepest = await jobs.CreateJob(
        pb.CreateJobRequest(job_type="t", metadata=struct(nested(MAX_JSON_DEPTH))), metadata=team.auth
    )
    assert deepest.job_id
    for metadata in (nested(MAX_JSON_DEPTH + 1), blob("big", MAX_JSON_BYTES + 100)):
        error = await expect_error(
            jobs.CreateJob(pb.CreateJobRequest(job_type="t", metadata=struct(metadata)), metadata=team.auth),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
        )
        assert error_info(error).metadata["field"] == "metadata"


async def test_merges_stop_at_the_jobs_metadata_limit_and_change_nothing(jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    chunk = MAX_JSON_BYTES - 1024
    fitting = MAX_JOB_METADATA_BYTES // chunk
    for n in range(fitting):
        await jobs.UpdateJobMetadata(
            pb.UpdateJobMetadataRequest(job_id=job.job_id, metadata=struct(blob(f"k{n}", chunk))), metadata=team.auth
        )
    before = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    assert len(before.metadata.fields) == fitting

    error = await expect_error(
        jobs.UpdateJobMetadata(
            pb.UpdateJobMetadataRequest(job_id=job.job_id, metadata=struct(blob("one-more", chunk))),
            metadata=team.auth,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    assert error_info(error).metadata["field"] == "metadata" and str(MAX_JOB_METADATA_BYTES) in error.details()
    # Replacing a key with a smaller value still works: the limit is on the result.
    await jobs.UpdateJobMetadata(
        pb.UpdateJobMetadataRequest(job_id=job.job_id, metadata=struct({"k0": "small"})), metadata=team.auth
    )

    # A call whose call_metadata would not fit is refused before it is made ...
    filler = {"k0": "x" * (chunk - 16)}
    await jobs.UpdateJobMetadata(
        pb.UpdateJobMetadataRequest(job_id=job.job_id, metadata=struct(filler)), metadata=team.auth
    )
    error = await expect_error(
        jobs.LLMCall(
            pb.LLMCallRequest(job_id=job.job_id, messages=[user("hi")], call_metadata=struct(blob("from-call", chunk))),
            metadata=team.auth,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    assert error_info(error).metadata["field"] == "call_metadata"
    # ... and so is a completion whose metadata would not; the job stays open.
    await expect_error(
        jobs.CompleteJob(
            pb.CompleteJobRequest(
                job_id=job.job_id, status=job_pb2.Job.COMPLETED, metadata=struct(blob("at-the-end", chunk))
            ),
            metadata=team.auth,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    after = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    assert after.status == job_pb2.Job.PENDING and not after.calls
    assert set(after.metadata.fields) == set(before.metadata.fields)


async def test_a_page_of_heavy_jobs_ends_early_and_the_next_page_goes_on(channel, jobs, team):
    heavy = [
        await jobs.CreateJob(
            pb.CreateJobRequest(job_type="heavy", metadata=struct(blob("payload", MAX_JSON_BYTES - 1024))),
            metadata=team.auth,
        )
        for _ in range(40)
    ]
    admin_jobs = admin_job_service_pb2_grpc.AdminJobServiceStub(channel)
    pages, token = [], ""
    while True:
        page = await admin_jobs.ListTeamJobs(
            admin_jobs_pb.ListTeamJobsRequest(team_id=team.team_id, page_size=100, page_token=token), metadata=ADMIN
        )
        pages.append(page)
        token = page.next_page_token
        if not token:
            break
    assert len(pages) > 1 and all(page.ByteSize() < 4 * 1024 * 1024 for page in pages)
    listed = [job.job_id for page in pages for job in page.jobs]
    assert listed == [job.job_id for job in reversed(heavy)]


async def test_calls_at_once_cannot_merge_their_metadata_past_the_jobs_limit(app, jobs, team):
    # Each call's call_metadata fits when it starts; together they would not. The calls
    # are all made and recorded; the merges stop at the limit.
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    chunk = MAX_JSON_BYTES - 1024
    calls = [
        jobs.LLMCall(
            pb.LLMCallRequest(
                job_id=job.job_id,
                messages=[user("x [fake delay_ms=300]")],
                call_metadata=struct(blob(f"call{n}", chunk)),
            ),
            metadata=team.auth,
        )
        for n in range(10)
    ]
    answers = await asyncio.gather(*calls)
    assert all(answer.response.content for answer in answers)
    fetched = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
    assert len(fetched.calls) == 10
    merged = json_format.MessageToDict(fetched.metadata)
    assert 1 <= len(merged) <= MAX_JOB_METADATA_BYTES // chunk
    assert json_size(merged) <= MAX_JOB_METADATA_BYTES
