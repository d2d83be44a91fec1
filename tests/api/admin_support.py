"""Helpers shared by the admin API tests (tests/api/test_admin_*.py)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import chat_pb2, job_pb2
from saaslitellm.v1 import job_service_pb2 as job_pb
from tests.api.conftest import ADMIN
from tests.conftest import unique


def details(error: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, list[str]]:
    """The ErrorInfo of an error, and the fields its BadRequest names."""
    info, fields = error_details_pb2.ErrorInfo(), []
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    return info, fields


async def fails(call, code: grpc.StatusCode, reason: str, field: str | None = None) -> grpc.aio.AioRpcError:
    """Await `call`, expect it to fail with `code`, `reason` and (if given) the field named."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    info, fields = details(error)
    assert error.code() == code, error.details()
    assert info.reason == reason, (info.reason, error.details())
    if field is not None:
        assert fields == [field], (fields, error.details())
        assert field in error.details()
    return error


def user(text: str) -> chat_pb2.ChatMessage:
    return chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value=text))


async def call_works(jobs, auth, model: str = "") -> job_pb.LLMCallResponse:
    job = await jobs.CreateJob(job_pb.CreateJobRequest(job_type="probe"), metadata=auth)
    reply = await jobs.LLMCall(
        job_pb.LLMCallRequest(job_id=job.job_id, model=model, messages=[user("hi")]), metadata=auth
    )
    await jobs.CompleteJob(job_pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=auth)
    return reply


async def new_org(admin) -> str:
    org = unique("org")
    await admin.CreateOrganization(admin_pb.CreateOrganizationRequest(organization_id=org, name="Org"), metadata=ADMIN)
    return org


async def new_group(admin, *aliases: str) -> str:
    group = unique("grp")
    await admin.CreateModelAccessGroup(
        admin_pb.CreateModelAccessGroupRequest(group_name=group, model_aliases=list(aliases)), metadata=ADMIN
    )
    return group


async def new_alias(admin, *groups: str, models=("fake-gpt", "fake-gpt-backup")) -> str:
    alias = unique("Agent")
    await admin.CreateModel(
        admin_pb.CreateModelRequest(
            model_alias=alias, actual_model=models[0], fallback_models=list(models[1:]), access_groups=list(groups)
        ),
        metadata=ADMIN,
    )
    return alias


async def new_team(admin, org: str, *groups: str, credits: int = 10, **fields) -> admin_pb.CreateTeamResponse:
    return await admin.CreateTeam(
        admin_pb.CreateTeamRequest(
            organization_id=org, team_id=unique("team"), access_groups=list(groups), credits_allocated=credits, **fields
        ),
        metadata=ADMIN,
    )


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)
