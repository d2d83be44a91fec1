"""Webhook endpoints that could never be delivered to, races and states an endpoint must
not be created in, and deliveries that fail in ways the sender does not foresee, over
native gRPC and a real PostgreSQL:

- a URL whose host DNS cannot take (an empty label, a label over 63 characters, a name
  over 253) or whose port is no port is refused at creation and update, naming `url`;
- an endpoint created while its organization is deleted is one or the other, never 500;
- no endpoint is scoped to an archived organization, as no team is created in one;
- without SAAS_SECRETS_KEY a test event (or a retry) is refused, as creation is;
- a delivery whose send fails unexpectedly is a failed attempt: recorded, retried on
  the backoff, failed for good after the last one (and its dead endpoint paused), never
  left unrecorded to be sent again every lease for ever.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
from aiohttp.abc import AbstractResolver
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import admin_service_pb2_grpc, webhook_service_pb2_grpc
from saaslitellm.v1 import webhook_service_pb2 as pb
from server.domain import webhooks
from server.services.webhooks import WebhookSender
from server.storage import webhooks as store
from server.storage.database import Database
from tests.api.admin_support import bearer, call_works, fails, new_alias, new_group, new_org, new_team
from tests.api.conftest import ADMIN, extra_app
from tests.conftest import migrated_database
from tests.integration.test_webhook_delivery import insert_endpoint

PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


class Hooks:
    """A server with webhooks on (SAAS_SECRETS_KEY set), sending nothing (interval 0)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.hooks = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        self.admin = admin_service_pb2_grpc.AdminServiceStub(channel)

    def create(self, url: str = "https://hooks.example.com/saas", organization_id: str = ""):
        return self.hooks.CreateWebhookEndpoint(
            pb.CreateWebhookEndpointRequest(url=url, event_types=["job.failed"], organization_id=organization_id),
            metadata=ADMIN,
        )

    async def endpoints(self) -> list[pb.WebhookEndpoint]:
        listed = await self.hooks.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(page_size=1000), metadata=ADMIN)
        return list(listed.endpoints)

    async def delete(self, endpoint_id: str) -> None:
        await self.hooks.DeleteWebhookEndpoint(pb.DeleteWebhookEndpointRequest(endpoint_id=endpoint_id), metadata=ADMIN)


@pytest.fixture(scope="module")
async def on(database_url: str, fake_url: str) -> AsyncIterator[Hooks]:
    async with extra_app(
        database_url, fake_url, secrets_key="s" * 32, webhook_interval_seconds=0, metrics_port=None
    ) as (_, channel):
        yield Hooks(channel)


# ----------------------------------------------------------- URLs no delivery could use

UNUSABLE_URLS = [
    "http://" + "a" * 70 + ".com/",  # a label over 63 characters
    "http://a..com/",  # an empty label
    "https://" + ".".join(["a" * 63] * 4) + "/",  # a name over 253 characters
    "http://example.com:99999/",
    "http://example.com:abc/",
    "http://example.com:65536/",
]


@pytest.mark.parametrize("url", UNUSABLE_URLS)
async def test_a_url_no_delivery_could_use_is_refused_naming_url_and_nothing_changes(on, url):
    before = await on.endpoints()
    error = await fails(on.create(url), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", "url")
    assert error.details().startswith("url: "), error.details()
    assert await on.endpoints() == before

    created = await on.create()
    try:
        await fails(
            on.hooks.UpdateWebhookEndpoint(
                pb.UpdateWebhookEndpointRequest(endpoint_id=created.endpoint.endpoint_id, url=url), metadata=ADMIN
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            "url",
        )
        kept = [e for e in await on.endpoints() if e.endpoint_id == created.endpoint.endpoint_id]
        assert [e.url for e in kept] == ["https://hooks.example.com/saas"]
    finally:
        await on.delete(created.endpoint.endpoint_id)


# --------------------------------------------------- the organization an endpoint is for


async def test_an_organization_deleted_while_an_endpoint_is_created_for_it_is_one_or_the_other(on):
    """The create takes the organization's row FOR SHARE, as team creation does, and the
    delete takes it FOR UPDATE: whichever is first, the other sees what it did."""
    outcomes: Counter = Counter()
    for _ in range(20):
        org = await new_org(on.admin)
        deleted, created = await asyncio.gather(
            on.admin.DeleteOrganization(admin_pb.DeleteOrganizationRequest(organization_id=org), metadata=ADMIN),
            on.create(organization_id=org),
            return_exceptions=True,
        )
        scoped = [e for e in await on.endpoints() if e.organization_id == org]
        exists = await _organization_exists(on, org)
        if isinstance(deleted, grpc.aio.AioRpcError):
            # The create came first: the delete found its endpoint and refused.
            assert deleted.code() == PRECONDITION and "webhook endpoint" in deleted.details(), deleted
            assert isinstance(created, pb.CreateWebhookEndpointResponse), created
            assert exists and [e.endpoint_id for e in scoped] == [created.endpoint.endpoint_id]
            outcomes["endpoint created, delete refused"] += 1
            await on.delete(created.endpoint.endpoint_id)
            await on.admin.DeleteOrganization(admin_pb.DeleteOrganizationRequest(organization_id=org), metadata=ADMIN)
        else:
            # The delete came first: the create found no organization.
            assert deleted.outcome == admin_pb.DeleteOrganizationResponse.DELETED, deleted
            assert isinstance(created, grpc.aio.AioRpcError), created
            assert created.code() == grpc.StatusCode.NOT_FOUND and org in created.details(), created
            assert not exists and scoped == []
            outcomes["organization deleted, create not found"] += 1
    assert sum(outcomes.values()) == 20, outcomes


async def _organization_exists(on: Hooks, org: str) -> bool:
    try:
        await on.admin.GetOrganization(admin_pb.GetOrganizationRequest(organization_id=org), metadata=ADMIN)
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
        return False
    return True


async def test_an_endpoint_is_not_scoped_to_an_archived_organization(on, admin, jobs):
    org, group = await new_org(admin), await new_group(admin)
    await new_alias(admin, group)
    team = await new_team(admin, org, group)
    await call_works(jobs, bearer(team.virtual_key))  # history: the team is archived, not deleted
    archived = await admin.DeleteTeam(admin_pb.DeleteTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert archived.outcome == admin_pb.DeleteTeamResponse.ARCHIVED
    result = await admin.DeleteOrganization(admin_pb.DeleteOrganizationRequest(organization_id=org), metadata=ADMIN)
    assert result.outcome == admin_pb.DeleteOrganizationResponse.ARCHIVED

    await fails(new_team(admin, org, group), PRECONDITION, "ORGANIZATION_ARCHIVED")
    error = await fails(on.create(organization_id=org), PRECONDITION, "ORGANIZATION_ARCHIVED")
    assert f"organization '{org}' is archived" in error.details(), error.details()
    assert [e for e in await on.endpoints() if e.organization_id == org] == []


# ------------------------------------------------------------------ webhooks turned off


async def test_without_a_secrets_key_a_test_event_or_a_retry_is_refused_as_creation_is(on, channel):
    """The in-process server of the tests has no SAAS_SECRETS_KEY, so it sends nothing:
    an endpoint made while the key was set gets no test event nor retry there."""
    created = await on.create()
    endpoint_id = created.endpoint.endpoint_id
    off = webhook_service_pb2_grpc.WebhookServiceStub(channel)
    try:
        refusal = await fails(
            off.CreateWebhookEndpoint(
                pb.CreateWebhookEndpointRequest(url="https://hooks.example.com/x", event_types=["job.failed"]),
                metadata=ADMIN,
            ),
            PRECONDITION,
            "WEBHOOKS_NOT_CONFIGURED",
        )
        tested = await fails(
            off.SendTestWebhook(pb.SendTestWebhookRequest(endpoint_id=endpoint_id), metadata=ADMIN),
            PRECONDITION,
            "WEBHOOKS_NOT_CONFIGURED",
        )
        assert tested.details() == refusal.details() and "SAAS_SECRETS_KEY" in tested.details()
        await fails(
            off.RetryWebhookDeliveries(pb.RetryWebhookDeliveriesRequest(endpoint_id=endpoint_id), metadata=ADMIN),
            PRECONDITION,
            "WEBHOOKS_NOT_CONFIGURED",
        )
        listed = await off.ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(endpoint_id=endpoint_id), metadata=ADMIN
        )
        assert list(listed.deliveries) == []
        # Where the key is set, the same test event is accepted.
        sent = await on.hooks.SendTestWebhook(pb.SendTestWebhookRequest(endpoint_id=endpoint_id), metadata=ADMIN)
        assert sent.event_type == "webhook.test" and sent.status == "pending"
    finally:
        await on.delete(endpoint_id)


# ------------------------------------------------- a send that fails in an unforeseen way

BOX = webhooks.SecretBox("k" * 32)


@pytest.fixture(scope="module")
async def outbox(pg) -> AsyncIterator[Database]:
    """A database of its own: the sender claims whatever is due in the whole outbox."""
    async with migrated_database(pg, "webhook_faults") as database:
        yield database


class Unexpected(AbstractResolver):
    """A resolver failing as none of the sender's expected errors does."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list:
        raise RuntimeError(f"resolver broke on {host}")

    async def close(self) -> None:
        pass


async def _endpoint_with_a_test_event(db: Database, url: str) -> uuid.UUID:
    """Stored as it is (as before creation refused such URLs), with one due delivery."""
    endpoint_id = uuid.uuid4()
    async with db.transaction() as conn:
        await insert_endpoint(conn, endpoint_id, url, BOX)
        await store.insert_test_delivery(conn, endpoint_id)
    return endpoint_id


async def _deliveries(db: Database, endpoint_id: uuid.UUID) -> list[store.Delivery]:
    async with db.transaction() as conn:
        return await store.list_deliveries(conn, endpoint_id, None, None, 10)


@pytest.mark.parametrize(
    ("url", "resolver", "recorded"),
    [
        ("http://" + "a" * 70 + ".com/", None, "not sent: the URL's host name cannot be looked up"),
        ("http://a..com/", None, "not sent: the URL's host name cannot be looked up"),
        ("http://hooks.example.com/", Unexpected(), "the attempt failed unexpectedly (RuntimeError: resolver broke"),
    ],
)
async def test_a_send_failing_unexpectedly_is_a_failed_attempt_retried_then_failed_and_paused(
    outbox, url, resolver, recorded
):
    endpoint_id = await _endpoint_with_a_test_event(outbox, url)
    sender = WebhookSender(outbox, BOX, 0, resolver=resolver)
    try:
        started = time.time()
        await sender.deliver_due()
        await sender.wait_idle()
        [delivery] = await _deliveries(outbox, endpoint_id)
        # Recorded as attempt 1, due again after the first backoff (5 s), not the lease (60 s).
        assert (delivery.status, delivery.attempts) == ("pending", 1), delivery
        assert delivery.last_error.startswith(recorded), delivery.last_error
        assert delivery.last_status_code is None
        due_in = delivery.next_attempt_at.timestamp() - started
        assert 3 < due_in < webhooks.retry_delay_seconds(1) + 5, due_in

        # Its last attempt fails it for good, and pauses the endpoint nothing reached.
        async with outbox.transaction() as conn:
            await conn.execute(
                text("UPDATE webhook_deliveries SET attempts = :n, next_attempt_at = now() WHERE endpoint_id = :e"),
                {"n": webhooks.MAX_ATTEMPTS - 1, "e": endpoint_id},
            )
        await sender.deliver_due()
        await sender.wait_idle()
        [delivery] = await _deliveries(outbox, endpoint_id)
        assert (delivery.status, delivery.attempts) == ("failed", webhooks.MAX_ATTEMPTS), delivery
        assert delivery.last_error.startswith(recorded), delivery.last_error
        async with outbox.transaction() as conn:
            endpoint = await store.get_endpoint(conn, endpoint_id)
        assert endpoint.paused_at is not None and endpoint.paused_at <= datetime.now(UTC)
        assert endpoint.pause_reason.startswith("paused by the sender") and recorded in endpoint.pause_reason
    finally:
        await sender.stop()
        async with outbox.transaction() as conn:
            await store.delete_endpoint(conn, endpoint_id)
