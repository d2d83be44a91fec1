"""Creating a webhook endpoint whose URL points at this machine or a private network is
400 INVALID_ARGUMENT naming `url`, and changes nothing, on a server with webhooks on
(SAAS_SECRETS_KEY set) and private targets not allowed, as deployed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import admin_service_pb2_grpc, webhook_service_pb2_grpc
from saaslitellm.v1 import webhook_service_pb2 as pb
from tests.api.admin_support import fails
from tests.api.conftest import ADMIN, extra_app


@pytest.fixture(scope="module")
async def hooks(database_url: str, fake_url: str) -> AsyncIterator[webhook_service_pb2_grpc.WebhookServiceStub]:
    # Nothing is sent: this is about what is accepted.
    async with extra_app(
        database_url, fake_url, secrets_key="s" * 32, webhook_interval_seconds=0, metrics_port=None
    ) as (application, channel):
        assert application.settings.webhook_allow_private_targets is False  # the default
        yield webhook_service_pb2_grpc.WebhookServiceStub(channel)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:9901/quitquitquit",
        "http://localhost:5432/",
        "http://[::1]:22/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://10.0.0.1/hooks",
        "http://svc.localhost./",
    ],
)
async def test_a_private_target_is_refused_naming_the_url_and_nothing_changes(hooks, channel, url):
    audit = admin_service_pb2_grpc.AdminServiceStub(channel)

    async def trail() -> list:
        listed = await audit.ListAuditEntries(
            admin_pb.ListAuditEntriesRequest(resource_type="webhook_endpoint", page_size=1000), metadata=ADMIN
        )
        return list(listed.entries)

    before = (
        await hooks.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(page_size=1000), metadata=ADMIN)
    ).endpoints
    audited = await trail()
    error = await fails(
        hooks.CreateWebhookEndpoint(
            pb.CreateWebhookEndpointRequest(url=url, event_types=["job.failed"]), metadata=ADMIN
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "url",
    )
    assert error.details().startswith("url: must not point at "), error.details()
    assert "SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS" in error.details()
    after = (await hooks.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(page_size=1000), metadata=ADMIN)).endpoints
    assert list(after) == list(before) and await trail() == audited


async def test_a_public_target_is_created(hooks):
    created = await hooks.CreateWebhookEndpoint(
        pb.CreateWebhookEndpointRequest(url="https://hooks.example.com/saas", event_types=["job.failed"]),
        metadata=ADMIN,
    )
    assert created.endpoint.url == "https://hooks.example.com/saas" and created.secret.startswith("whsec_")
    await hooks.DeleteWebhookEndpoint(
        pb.DeleteWebhookEndpointRequest(endpoint_id=created.endpoint.endpoint_id), metadata=ADMIN
    )
