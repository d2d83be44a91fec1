"""Webhooks: the operator's endpoints, and the sender that delivers their events.

Events are written to the outbox (webhook_deliveries) by triggers, in the transaction of
the change they report (migration 0006); the sender in every server process claims due
deliveries, POSTs them signed (server/domain/webhooks.py), and records each attempt:
delivered on any 2xx; otherwise retried with backoff for about 7 hours, then failed. The
guarantee is at least once: a receiver that answers too late, or a process that dies
after sending and before recording, gets the same event again, with the same
`webhook-id` to deduplicate on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass

import aiohttp

from server.domain import audit, pagination, validation, webhooks
from server.domain.audit import Actor
from server.domain.errors import invalid_argument
from server.domain.pagination import Page
from server.services.background import Periodic
from server.storage import audit as audit_store
from server.storage import catalog
from server.storage import webhooks as store
from server.storage.database import Database
from server.storage.webhooks import Delivery, DueDelivery, Endpoint

log = logging.getLogger(__name__)

RESOURCE = audit.WEBHOOK_ENDPOINT
DELIVERY_STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: Endpoint
    secret: str  # shown once


class WebhookUseCases:
    def __init__(self, db: Database, box: webhooks.SecretBox | None) -> None:
        self._db = db
        self._box = box

    async def create(
        self, actor: Actor, url: str, event_types: list[str], organization_id: str, description: str
    ) -> CreatedEndpoint:
        spec = webhooks.endpoint_spec(url, event_types, organization_id, description)
        if self._box is None:
            raise webhooks.not_configured()
        endpoint_id = uuid.uuid4()
        secret = webhooks.new_secret()
        async with self._db.transaction() as conn:
            if spec.organization_id is not None:
                await catalog.get_organization(conn, spec.organization_id)
            await store.insert_endpoint(
                conn,
                endpoint_id,
                {
                    "url": spec.url,
                    "description": spec.description,
                    "event_types": list(spec.event_types),
                    "organization_id": spec.organization_id,
                    "secret_ciphertext": self._box.seal(endpoint_id, secret),
                    "secret_prefix": webhooks.secret_prefix(secret),
                },
            )
            endpoint = await store.get_endpoint(conn, endpoint_id)
            await _audit(conn, actor, "create", endpoint, None, endpoint)
        return CreatedEndpoint(endpoint, secret)

    async def list(self, page_size: int, page_token: str) -> Page[Endpoint]:
        page = pagination.page_request(page_size, page_token, {})
        position = pagination.after(page, str)
        after = None if position is None else validation.uuid_field("page_token", position[0])
        async with self._db.transaction() as conn:
            rows = await store.list_endpoints(conn, after, page.size + 1)
        return pagination.page(rows, page, lambda endpoint: (str(endpoint.endpoint_id),))

    async def delete(self, actor: Actor, endpoint_id: str) -> None:
        """Deletes the endpoint and its deliveries, pending ones included."""
        key = validation.uuid_field("endpoint_id", endpoint_id)
        async with self._db.transaction() as conn:
            before = await store.get_endpoint(conn, key)
            await store.delete_endpoint(conn, key)
            await _audit(conn, actor, "delete", before, before, None)

    async def send_test(self, actor: Actor, endpoint_id: str) -> Delivery:
        """A `webhook.test` event for the endpoint, sent like any other."""
        key = validation.uuid_field("endpoint_id", endpoint_id)
        async with self._db.transaction() as conn:
            endpoint = await store.get_endpoint(conn, key)
            delivery = await store.insert_test_delivery(conn, key)
            await _audit(conn, actor, "send_test", endpoint, None, {"event_id": delivery.event_id})
        return delivery

    async def deliveries(self, endpoint_id: str, status: str, page_size: int, page_token: str) -> Page[Delivery]:
        key = validation.uuid_field("endpoint_id", endpoint_id)
        if status and status not in DELIVERY_STATUSES:
            raise invalid_argument("status", f"must be one of {', '.join(DELIVERY_STATUSES)}")
        page = pagination.page_request(page_size, page_token, {"endpoint_id": endpoint_id, "status": status})
        position = pagination.after(page, int)
        async with self._db.transaction() as conn:
            await store.get_endpoint(conn, key)
            rows = await store.list_deliveries(
                conn, key, status or None, None if position is None else position[0], page.size + 1
            )
        return pagination.page(rows, page, lambda delivery: (delivery.delivery_id,))


async def _audit(conn, actor: Actor, action: str, endpoint: Endpoint, before, after) -> None:
    await audit_store.append(conn, audit.record(actor, action, RESOURCE, str(endpoint.endpoint_id), before, after))


class WebhookSender:
    """Delivers due events every `interval_seconds` in every process (0: never), a batch
    at a time, each batch's requests concurrently."""

    BATCH = 20
    TIMEOUT_SECONDS = 10.0
    LEASE_SECONDS = 60.0  # longer than a batch can take: TIMEOUT_SECONDS per request

    def __init__(
        self,
        db: Database,
        box: webhooks.SecretBox | None,
        interval_seconds: float,
        *,
        key_warning_seconds: float = 7 * 86_400,
        key_check_interval_seconds: float = 60.0,
    ) -> None:
        self._db = db
        self._box = box
        self._session: aiohttp.ClientSession | None = None
        self._key_warning_seconds = key_warning_seconds
        on = box is not None  # without a secrets key there are no endpoints to tell
        self._periodic = Periodic("delivering webhooks", self.deliver_due, interval_seconds if on else 0, jitter=0.2)
        self._key_check = Periodic(
            "warning of expiring keys",
            self.warn_expiring_keys,
            key_check_interval_seconds if on and key_warning_seconds > 0 else 0,
            jitter=0.2,
        )

    def start(self) -> None:
        self._periodic.start()
        self._key_check.start()

    async def stop(self) -> None:
        await self._key_check.stop()
        await self._periodic.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def warn_expiring_keys(self) -> int:
        """Writes `team_key.expiring` for keys expiring soon, once per key."""
        async with self._db.transaction() as conn:
            return await store.warn_expiring_keys(conn, self._key_warning_seconds)

    async def deliver_due(self) -> bool:
        """One batch; True when it was full (more may be due)."""
        async with self._db.transaction() as conn:
            due = await store.claim_due(conn, self.BATCH, self.LEASE_SECONDS)
        if not due:
            return False
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.TIMEOUT_SECONDS),
                headers={"user-agent": "saaslitellm-webhooks"},
            )
        outcomes = await asyncio.gather(*(self._send(delivery) for delivery in due))
        async with self._db.transaction() as conn:
            for delivery, (status_code, error) in zip(due, outcomes, strict=True):
                retry_in = None if not error else webhooks.retry_delay_seconds(delivery.attempts + 1)
                await store.record_attempt(
                    conn, delivery.delivery_id, status_code=status_code, error=error, retry_in=retry_in
                )
                if error and retry_in is None:
                    log.warning(
                        "webhook delivery %s to endpoint %s failed for good after %d attempts: %s",
                        delivery.delivery_id,
                        delivery.endpoint_id,
                        delivery.attempts + 1,
                        error,
                    )
        return len(due) == self.BATCH

    async def _send(self, delivery: DueDelivery) -> tuple[int | None, str]:
        """(HTTP status, error); the error is empty when the receiver took it (2xx)."""
        assert self._box is not None and self._session is not None
        try:
            secret = self._box.open(delivery.endpoint_id, delivery.secret_ciphertext)
        except webhooks.SecretUnreadable:
            return None, "the signing secret does not open with this SAAS_SECRETS_KEY; recreate the endpoint"
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        message_id = str(delivery.event_id)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": webhooks.sign(secret, message_id, timestamp, body),
        }
        try:
            async with self._session.post(delivery.url, data=body, headers=headers, allow_redirects=False) as reply:
                if 200 <= reply.status < 300:
                    return reply.status, ""
                return reply.status, f"the receiver answered HTTP {reply.status}"
        except TimeoutError:
            return None, f"no answer within {self.TIMEOUT_SECONDS:g} s"
        except aiohttp.ClientError as error:
            return None, f"{type(error).__name__}: could not reach the receiver"
