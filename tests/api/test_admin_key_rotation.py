"""Rotating the admin key (SAAS_ADMIN_KEY_PREVIOUS): a server accepts the new key and the
previous one alike, on the admin API and on /metrics through the gateway, and nothing
else; the previous key is a secret like the current one, never logged."""

from __future__ import annotations

import logging
import uuid

import grpc
import httpx
import pytest

from saaslitellm.v1 import admin_service_pb2 as pb
from saaslitellm.v1 import admin_service_pb2_grpc, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as job_pb
from server.observability.metrics import GATEWAY_HEADER
from tests.api.admin_support import fails
from tests.api.conftest import extra_app

NEW = "Rotation.New.Admin.Key." + uuid.uuid4().hex[:12]
OLD = "Rotation.Old.Admin.Key." + uuid.uuid4().hex[:12]
OTHER = "Rotation.Other.Admin.Key." + uuid.uuid4().hex[:12]


@pytest.fixture
async def rotating(database_url, fake_url):
    async with extra_app(database_url, fake_url, admin_key=NEW, admin_key_previous=OLD, metrics_port=0) as running:
        yield running


async def test_the_new_and_the_previous_admin_key_are_both_accepted_and_no_other(rotating):
    app, channel = rotating
    admin = admin_service_pb2_grpc.AdminServiceStub(channel)
    for key in (NEW, OLD):
        for metadata in ((("x-admin-key", key),), (("authorization", f"Bearer {key}"),)):
            await admin.ListOrganizations(pb.ListOrganizationsRequest(page_size=1), metadata=metadata)
    for metadata in ((("x-admin-key", OTHER),), (("authorization", f"Bearer {OTHER}"),), ()):
        await fails(
            admin.ListOrganizations(pb.ListOrganizationsRequest(page_size=1), metadata=metadata),
            grpc.StatusCode.UNAUTHENTICATED,
            "ADMIN_KEY_REQUIRED",
        )

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.metrics.port}") as http:
        through_gateway = {GATEWAY_HEADER: "1"}
        for key in (NEW, OLD):
            scraped = await http.get("/metrics", headers={**through_gateway, "authorization": f"Bearer {key}"})
            assert scraped.status_code == 200, scraped.text
        refused = await http.get("/metrics", headers={**through_gateway, "x-admin-key": OTHER})
        assert refused.status_code == 401


async def test_the_previous_admin_key_is_never_logged(rotating, caplog):
    _, channel = rotating
    caplog.set_level(logging.DEBUG)
    admin = admin_service_pb2_grpc.AdminServiceStub(channel)
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    # The admin key has no shape of its own: sent where a request id or a name goes, it
    # must still not reach the access log.
    await admin.ListOrganizations(
        pb.ListOrganizationsRequest(page_size=1), metadata=(("x-admin-key", OLD), ("x-request-id", OLD))
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await jobs.LLMCall(
            job_pb.LLMCallRequest(job_id=str(uuid.uuid4()), model=OLD), metadata=(("x-request-id", OLD),)
        )
    access = [record for record in caplog.records if record.name == "saaslitellm.access"]
    assert len(access) >= 2
    for record in caplog.records:
        written = str(vars(record)) + record.getMessage()
        assert OLD not in written and NEW not in written, written
