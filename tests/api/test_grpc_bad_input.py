"""Bad input only native gRPC can send (REST through Envoy refuses it first): a Timestamp
outside its range, NaN or an infinity in free-form JSON, an enum number the API does not
define. Each is INVALID_ARGUMENT naming the field, where it was INTERNAL or ignored, and
nothing is written."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from saaslitellm.v1 import admin_job_service_pb2 as admin_job_pb
from saaslitellm.v1 import admin_job_service_pb2_grpc, chat_pb2, job_pb2
from saaslitellm.v1 import admin_service_pb2 as pb
from saaslitellm.v1 import job_service_pb2 as job_pb
from tests.api.admin_support import fails, user
from tests.api.conftest import ADMIN

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NAN, INF = float("nan"), float("inf")


def struct(values: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


async def key_id(admin, team) -> str:
    found = await admin.ListTeamKeys(pb.ListTeamKeysRequest(team_id=team.team_id), metadata=ADMIN)
    return found.keys[0].key_id


async def snapshot(admin, admin_jobs, team) -> list:
    """What a refused request of these tests could have written, as the API shows it."""
    org, team_id = team.organization_id, team.team_id
    shown = [
        await admin.GetOrganization(pb.GetOrganizationRequest(organization_id=org), metadata=ADMIN),
        await admin.GetTeam(pb.GetTeamRequest(team_id=team_id), metadata=ADMIN),
        await admin.ListTeams(pb.ListTeamsRequest(organization_id=org), metadata=ADMIN),
        await admin.ListTeamKeys(pb.ListTeamKeysRequest(team_id=team_id), metadata=ADMIN),
        await admin_jobs.ListTeamJobs(admin_job_pb.ListTeamJobsRequest(team_id=team_id), metadata=ADMIN),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # the organization a case would create
        await admin.GetOrganization(pb.GetOrganizationRequest(organization_id=f"{org}-new"), metadata=ADMIN)
    return [*shown, caught.value.code()]


@pytest.fixture
def admin_jobs(channel) -> admin_job_service_pb2_grpc.AdminJobServiceStub:
    return admin_job_service_pb2_grpc.AdminJobServiceStub(channel)


# ---------------------------------------------------------------- timestamps

BAD_TIMESTAMPS = [
    pytest.param(253402300800, 0, id="year-10000"),
    pytest.param(-62135596801, 0, id="before-year-1"),
    pytest.param(2000000000, 2_000_000_000, id="nanos-over"),
    pytest.param(2000000000, -1, id="nanos-negative"),
    pytest.param(10**15, 0, id="seconds-huge"),
]


@pytest.mark.parametrize(("seconds", "nanos"), BAD_TIMESTAMPS)
@pytest.mark.parametrize("rpc", ["CreateTeamKey", "RotateTeamKey"])
async def test_a_timestamp_out_of_range_is_refused_naming_it(admin, admin_jobs, team, rpc, seconds, nanos):
    expires_at = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    request = (
        pb.CreateTeamKeyRequest(team_id=team.team_id, name="k", expires_at=expires_at)
        if rpc == "CreateTeamKey"
        else pb.RotateTeamKeyRequest(team_id=team.team_id, key_id=await key_id(admin, team), expires_at=expires_at)
    )
    before = await snapshot(admin, admin_jobs, team)
    await fails(getattr(admin, rpc)(request, metadata=ADMIN), INVALID, "INVALID_REQUEST", "expires_at")
    assert await snapshot(admin, admin_jobs, team) == before


# ---------------------------------------------------------------- NaN and infinities


def _call(**fields) -> dict:
    return {"messages": [user("hi")], **fields}


# (service, method, the request's fields given the team and an open job of it, the field named)
NON_FINITE = [
    ("admin", "CreateOrganization", lambda t, j: pb.CreateOrganizationRequest(
        organization_id=f"{t.organization_id}-new", name="Org", metadata=struct({"a": NAN})), "metadata.a"),
    ("admin", "UpdateOrganization", lambda t, j: pb.UpdateOrganizationRequest(
        organization_id=t.organization_id, metadata=struct({"a": {"b": INF}})), "metadata.a.b"),
    ("admin", "CreateTeam", lambda t, j: pb.CreateTeamRequest(
        organization_id=t.organization_id, team_id=f"{t.team_id}-new", access_groups=[t.group],
        metadata=struct({"a": [1, -INF]})), "metadata.a[1]"),
    ("admin", "UpdateTeam", lambda t, j: pb.UpdateTeamRequest(
        team_id=t.team_id, metadata=struct({"a": NAN})), "metadata.a"),
    ("jobs", "CreateJob", lambda t, j: job_pb.CreateJobRequest(
        job_type="x", metadata=struct({"a": NAN})), "metadata.a"),
    ("jobs", "UpdateJobMetadata", lambda t, j: job_pb.UpdateJobMetadataRequest(
        job_id=j, metadata=struct({"a": INF})), "metadata.a"),
    ("jobs", "CompleteJob", lambda t, j: job_pb.CompleteJobRequest(
        job_id=j, status=job_pb2.Job.COMPLETED, metadata=struct({"a": NAN})), "metadata.a"),
    ("jobs", "LLMCall", lambda t, j: job_pb.LLMCallRequest(
        job_id=j, **_call(call_metadata=struct({"a": NAN}))), "call_metadata.a"),
    ("jobs", "LLMCall", lambda t, j: job_pb.LLMCallRequest(
        job_id=j, messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(number_value=NAN))]),
     "messages[0].content"),
    ("jobs", "LLMCall", lambda t, j: job_pb.LLMCallRequest(
        job_id=j, **_call(stop=struct_pb2.Value(list_value=struct_pb2.ListValue(
            values=[struct_pb2.Value(string_value="x"), struct_pb2.Value(number_value=INF)])))), "stop[1]"),
    ("jobs", "LLMCallStream", lambda t, j: job_pb.LLMCallStreamRequest(
        job_id=j, **_call(call_metadata=struct({"a": NAN}))), "call_metadata.a"),
    ("jobs", "EstimateCall", lambda t, j: job_pb.EstimateCallRequest(
        job_id=j, **_call(call_metadata=struct({"a": NAN}))), "call_metadata.a"),
    ("jobs", "CreateAndCall", lambda t, j: job_pb.CreateAndCallRequest(
        job_type="x", **_call(), job_metadata=struct({"a": NAN})), "job_metadata.a"),
    ("jobs", "CreateAndCallStream", lambda t, j: job_pb.CreateAndCallStreamRequest(
        job_type="x", **_call(call_metadata=struct({"a": {"b": [NAN]}}))), "call_metadata.a.b[0]"),
]  # fmt: skip


@pytest.mark.parametrize(("service", "rpc", "build", "field"), NON_FINITE, ids=[f"{c[1]}-{c[3]}" for c in NON_FINITE])
async def test_nan_or_infinity_in_json_is_refused_naming_where(
    admin, jobs, admin_jobs, team, service, rpc, build, field
):
    job = await jobs.CreateJob(job_pb.CreateJobRequest(job_type="open"), metadata=team.auth)
    stub, auth = (admin, ADMIN) if service == "admin" else (jobs, team.auth)
    before = await snapshot(admin, admin_jobs, team)
    call = getattr(stub, rpc)(build(team, job.job_id), metadata=auth)
    if rpc.endswith("Stream"):
        call = call.read()
    error = await fails(call, INVALID, "INVALID_REQUEST", field)
    assert "finite number" in error.details()
    assert await snapshot(admin, admin_jobs, team) == before


# ---------------------------------------------------------------- enum numbers the API lacks

# (RPC, the request, the field named, the names the message lists)
UNKNOWN_ENUMS = [
    ("ListTeamJobs", lambda t: admin_job_pb.ListTeamJobsRequest(team_id=t.team_id, status=9), "status",
     "PENDING, IN_PROGRESS, COMPLETED, FAILED, EXPIRED"),
    ("ListTeamKeys", lambda t: pb.ListTeamKeysRequest(team_id=t.team_id, state=9), "state",
     "ACTIVE, REVOKED, EXPIRED"),
    ("ListOrganizations", lambda t: pb.ListOrganizationsRequest(status=7), "status", "ACTIVE, ARCHIVED"),
    ("ListTeams", lambda t: pb.ListTeamsRequest(organization_id=t.organization_id, status=9), "status",
     "ACTIVE, SUSPENDED, PAUSED, ARCHIVED"),
]  # fmt: skip


@pytest.mark.parametrize(("rpc", "build", "field", "names"), UNKNOWN_ENUMS, ids=[c[0] for c in UNKNOWN_ENUMS])
async def test_a_list_filter_on_an_undefined_enum_number_is_refused(admin, admin_jobs, team, rpc, build, field, names):
    """Not ignored (every key, the active organizations): the same refusal REST gives."""
    stub = admin_jobs if rpc == "ListTeamJobs" else admin
    request = build(team)
    error = await fails(getattr(stub, rpc)(request, metadata=ADMIN), INVALID, "INVALID_REQUEST", field)
    assert f"{field}: invalid value {getattr(request, field)}: expected one of {names}" == error.details()
