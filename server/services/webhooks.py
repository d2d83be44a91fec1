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
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from server.domain import audit, pagination, tenancy, validation, webhooks
from server.domain.audit import Actor
from server.domain.errors import invalid_argument
from server.domain.pagination import Page
from server.observability import metrics
from server.services.background import Periodic
from server.storage import audit as audit_store
from server.storage import catalog
from server.storage import webhooks as store
from server.storage.database import Database
from server.storage.webhooks import Delivery, DueDelivery, Endpoint

log = logging.getLogger(__name__)

RESOURCE = audit.WEBHOOK_ENDPOINT
DELIVERY_STATUSES = ("pending", "delivered", "failed")
PAUSED_BY_OPERATOR = "paused by the operator"
# Who paused an endpoint the sender found dead, in the audit log.
SENDER = Actor(name="system:webhooks")


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: Endpoint
    secret: str  # shown once


class WebhookUseCases:
    def __init__(self, db: Database, box: webhooks.SecretBox | None, *, allow_private_targets: bool = False) -> None:
        self._db = db
        self._box = box
        self._allow_private_targets = allow_private_targets

    async def create(
        self, actor: Actor, url: str, event_types: list[str], organization_id: str, description: str
    ) -> CreatedEndpoint:
        spec = webhooks.endpoint_spec(
            url, event_types, organization_id, description, allow_private_targets=self._allow_private_targets
        )
        if self._box is None:
            raise webhooks.not_configured()
        endpoint_id = uuid.uuid4()
        secret = webhooks.new_secret()
        async with self._db.transaction() as conn:
            if spec.organization_id is not None:
                # Locked (FOR SHARE) as team creation locks it: the organization's delete
                # (FOR UPDATE) waits for this create and then finds the endpoint
                # (RESOURCE_IN_USE), or this waits for the delete and finds no
                # organization (NOT_FOUND); never an insert under a deleted organization.
                org = await catalog.get_organization(conn, spec.organization_id, lock="share")
                tenancy.ensure_organization_writable(org, "get new webhook endpoints")
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

    async def update(
        self,
        actor: Actor,
        endpoint_id: str,
        *,
        url: str | None = None,
        description: str | None = None,
        event_types: list[str] | None = None,
        paused: bool | None = None,
    ) -> Endpoint:
        """Change what is given (None and an empty `event_types`: kept), checked as at
        creation; pausing holds the endpoint's deliveries, resuming sends them again."""
        key = validation.uuid_field("endpoint_id", endpoint_id)
        async with self._db.transaction() as conn:
            before = await store.get_endpoint(conn, key)
            values = {}
            if url is not None or description is not None or event_types:
                spec = webhooks.endpoint_spec(
                    before.url if url is None else url,
                    list(event_types or before.event_types),
                    before.organization_id or "",
                    before.description if description is None else description,
                    allow_private_targets=self._allow_private_targets,
                )
                values = {"url": spec.url, "description": spec.description, "event_types": list(spec.event_types)}
                await store.update_endpoint(conn, key, values)
            if paused is True:
                await store.pause(conn, key, PAUSED_BY_OPERATOR)
            elif paused is False and before.paused_at is not None:
                await store.resume(conn, key, WebhookSender.LEASE_SECONDS)
            after = await store.get_endpoint(conn, key)
            await _audit(conn, actor, "update", after, _audited(before), _audited(after))
        return after

    async def retry_failed(self, actor: Actor, endpoint_id: str) -> int:
        """The endpoint's failed deliveries back to pending, due now: one more attempt each.
        Refused without SAAS_SECRETS_KEY, as creation is: nothing would send them."""
        key = validation.uuid_field("endpoint_id", endpoint_id)
        if self._box is None:
            raise webhooks.not_configured()
        async with self._db.transaction() as conn:
            endpoint = await store.get_endpoint(conn, key)
            retried = await store.retry_failed(conn, key)
            await _audit(conn, actor, "retry_failed", endpoint, None, {"retried": retried})
        return retried

    async def delete(self, actor: Actor, endpoint_id: str) -> None:
        """Deletes the endpoint and its deliveries, pending ones included."""
        key = validation.uuid_field("endpoint_id", endpoint_id)
        async with self._db.transaction() as conn:
            before = await store.get_endpoint(conn, key)
            await store.delete_endpoint(conn, key)
            await _audit(conn, actor, "delete", before, before, None)

    async def send_test(self, actor: Actor, endpoint_id: str) -> Delivery:
        """A `webhook.test` event for the endpoint, sent like any other. Refused without
        SAAS_SECRETS_KEY, as creation is: no process sends deliveries then."""
        key = validation.uuid_field("endpoint_id", endpoint_id)
        if self._box is None:
            raise webhooks.not_configured()
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


def _audited(endpoint: Endpoint) -> dict:
    """What an update may change, as the audit log shows it."""
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "paused": endpoint.paused_at is not None,
        "paused_reason": endpoint.pause_reason,
    }


class WebhookSender:
    """Delivers due events in every process (none when `interval_seconds` is 0).

    Each delivery is a task of its own, recorded the moment its answer (or failure) is
    known: at most `concurrency` at once per process, of which at most `per_endpoint` to
    one healthy endpoint (its last attempt from this process answered 2xx within
    SLOW_SECONDS). Any other endpoint (failing, slow, or not tried yet) gets one at a
    time, and all of those together at most half the slots, the untried first: however
    many receivers do not answer, the healthy ones keep the other half. Free slots are filled from the outbox every `interval_seconds`, and at
    once when a delivery ends while more were due than there was room for. A delivery
    is claimed only when a slot is free for it, so its lease (LEASE_SECONDS) covers its
    send (TIMEOUT_SECONDS at most) and its record; a process that dies meanwhile leaves
    it to be sent again when the lease ends, with the same `webhook-id`.

    Unless `allow_private_targets`, a host that is not public is refused before any
    request (server/domain/webhooks.py), and so is every address a name resolves to, at
    connection time: the address checked is the address connected to, so DNS rebinding
    does not get around it. Redirects are never followed."""

    CONCURRENCY = 32
    PER_ENDPOINT = 4
    TIMEOUT_SECONDS = 10.0
    SLOW_SECONDS = TIMEOUT_SECONDS / 4  # an answer later than this: not a healthy endpoint
    LEASE_SECONDS = 60.0
    RECORDERS = 4  # transactions recording outcomes at once: the API needs the pool too
    FORGET_SECONDS = 60.0  # how often deleted endpoints are dropped from what the process judged

    def __init__(
        self,
        db: Database,
        box: webhooks.SecretBox | None,
        interval_seconds: float,
        *,
        allow_private_targets: bool = False,
        key_warning_seconds: float = 7 * 86_400,
        key_check_interval_seconds: float = 60.0,
        concurrency: int = CONCURRENCY,
        per_endpoint: int = PER_ENDPOINT,
        timeout_seconds: float = TIMEOUT_SECONDS,
        resolver: AbstractResolver | None = None,
        forget_interval_seconds: float = FORGET_SECONDS,
    ) -> None:
        self._db = db
        self._box = box
        self._allow_private_targets = allow_private_targets
        self._interval = interval_seconds if box is not None else 0  # no secrets key: no endpoints to tell
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint
        self._timeout = timeout_seconds
        self._slow = timeout_seconds * self.SLOW_SECONDS / self.TIMEOUT_SECONDS
        # By this process's last attempt to each: answered 2xx in time, or not (a failing
        # endpoint); an endpoint in neither has not been tried. Deleted endpoints are
        # dropped every `forget_interval_seconds` (at a claim), so neither grows for ever.
        self._healthy: set[uuid.UUID] = set()
        self._failing: set[uuid.UUID] = set()
        self._forget_interval = forget_interval_seconds
        self._forget_at = time.monotonic() + forget_interval_seconds
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._session_resolver: AbstractResolver | None = None
        self._in_flight: dict[asyncio.Task[None], uuid.UUID] = {}  # delivery task -> its endpoint
        self._recording = asyncio.Semaphore(self.RECORDERS)
        # What the last claim left due: when a delivery ends to one of these endpoints
        # (or to any, when it filled every slot), claim again at once.
        self._refill_any = False
        self._refill_endpoints: set[uuid.UUID] = set()
        self._refill_suspect = False  # the slots for endpoints not healthy were all taken
        self._claims = Periodic("delivering webhooks", self._claim, self._interval, jitter=0.2)
        self._key_warning_seconds = key_warning_seconds
        self._key_check = Periodic(
            "warning of expiring keys",
            self.warn_expiring_keys,
            key_check_interval_seconds if box is not None and key_warning_seconds > 0 else 0,
            jitter=0.2,
        )

    def start(self) -> None:
        self._claims.start()
        self._key_check.start()

    async def stop(self, grace: float = TIMEOUT_SECONDS) -> None:
        """Claims no more; deliveries in flight get `grace` seconds to end and be recorded,
        then are cancelled (unrecorded: sent again, same id, when their lease ends)."""
        await self._key_check.stop()
        await self._claims.stop()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=grace)
        for task in list(self._in_flight):
            task.cancel()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight))
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._session_resolver is not None:  # given to the connector, which leaves closing it to us
            await self._session_resolver.close()
            self._session_resolver = None

    async def warn_expiring_keys(self) -> int:
        """Writes `team_key.expiring` for keys expiring soon, once per key."""
        async with self._db.transaction() as conn:
            return await store.warn_expiring_keys(conn, self._key_warning_seconds)

    async def _claim(self) -> None:
        """A round of `_claims`: a full round is followed by the next when a delivery ends
        (`_ended` wakes it), not at once."""
        await self.deliver_due()

    async def deliver_due(self) -> bool:
        """Claims as many due deliveries as there are free slots and starts each; True when
        it filled them all, or some endpoint's or the unhealthy endpoints' share (more may
        be due)."""
        room = self._concurrency - len(self._in_flight)
        if room <= 0:
            return True
        busy = Counter(self._in_flight.values())
        healthy = set(self._healthy)
        suspect_room = max(1, self._concurrency // 2) - sum(n for e, n in busy.items() if e not in healthy)
        async with self._db.transaction() as conn:
            await self._forget_deleted(conn)
            due = await store.claim_due(
                conn,
                room,
                self.LEASE_SECONDS,
                per_endpoint=self._per_endpoint,
                busy=busy,
                healthy=healthy,
                failing=self._failing,
                suspect_room=max(suspect_room, 0),
            )
        busy.update(delivery.endpoint_id for delivery in due)
        self._refill_any = len(due) == room
        self._refill_endpoints = {
            endpoint for endpoint, count in busy.items() if count >= (self._per_endpoint if endpoint in healthy else 1)
        }
        self._refill_suspect = suspect_room - sum(1 for d in due if d.endpoint_id not in healthy) <= 0
        for delivery in due:
            task = asyncio.get_running_loop().create_task(self._deliver(delivery), name="delivering a webhook")
            self._in_flight[task] = delivery.endpoint_id
            task.add_done_callback(self._ended)
        return self._refill_any or self._refill_suspect or bool(self._refill_endpoints)

    async def _forget_deleted(self, conn) -> None:
        """Drop deleted endpoints from the healthy and failing sets, when due. Only those
        looked up and not found are dropped: an endpoint judged meanwhile (an attempt
        ending during the query) stays."""
        if time.monotonic() < self._forget_at:
            return
        self._forget_at = time.monotonic() + self._forget_interval
        judged = self._healthy | self._failing
        if not judged:
            return
        deleted = judged - await store.existing_endpoints(conn, judged)
        self._healthy -= deleted
        self._failing -= deleted

    async def wait_idle(self) -> None:
        """Until no delivery is in flight (each one ended is recorded)."""
        while self._in_flight:
            await asyncio.wait(set(self._in_flight))

    def _ended(self, task: asyncio.Task[None]) -> None:
        endpoint = self._in_flight.pop(task)
        suspect = endpoint not in self._healthy
        if self._refill_any or endpoint in self._refill_endpoints or (suspect and self._refill_suspect):
            self._claims.wake()

    async def _deliver(self, delivery: DueDelivery) -> None:
        """Send one delivery, then record the attempt at once."""
        try:
            started = time.monotonic()
            status_code, error = await self._attempt(delivery)
            self._judge(delivery.endpoint_id, healthy=not error and time.monotonic() - started <= self._slow)
            retry_in = None if not error else webhooks.retry_delay_seconds(delivery.attempts + 1)
            async with self._recording, self._db.transaction() as conn:
                recorded = await store.record_attempt(
                    conn,
                    delivery.delivery_id,
                    status_code=status_code,
                    error=error,
                    retry_in=retry_in,
                    endpoint_id=delivery.endpoint_id,
                    leased_until=delivery.leased_until,
                )
        except Exception:
            log.warning(
                "webhook delivery %s: its attempt was not recorded; it is sent again when its lease ends",
                delivery.delivery_id,
                exc_info=True,
            )
            return
        if not recorded:  # nothing of it applies: the delivery's state is another attempt's
            metrics.WEBHOOK_ATTEMPTS_DROPPED.inc()
            log.warning(
                "webhook delivery %s: attempt %d ended after its lease (%s), when the delivery was another "
                "process's or done; its outcome is dropped: %s",
                delivery.delivery_id,
                delivery.attempts + 1,
                delivery.leased_until.astimezone(UTC).isoformat(),
                error or f"HTTP {status_code}",
            )
            return
        if error and retry_in is None:
            log.warning(
                "webhook delivery %s to endpoint %s failed for good after %d attempts: %s",
                delivery.delivery_id,
                delivery.endpoint_id,
                delivery.attempts + 1,
                error,
            )
            await self._pause_if_dead(delivery, error)

    def _judge(self, endpoint_id: uuid.UUID, *, healthy: bool) -> None:
        (self._healthy if healthy else self._failing).add(endpoint_id)
        (self._failing if healthy else self._healthy).discard(endpoint_id)

    async def _attempt(self, delivery: DueDelivery) -> tuple[int | None, str]:
        """`_send`, with a failure it does not foresee made a failed attempt like any
        other: recorded, retried on the backoff, failed for good after the last attempt.
        Left to `_deliver`'s catch-all, the attempt would go unrecorded: the delivery sent
        again at each lease's end, for ever, never failed, its endpoint never paused."""
        try:
            return await self._send(delivery)
        except Exception as error:
            if isinstance(error, UnicodeError) and "idna" in str(error):  # the resolver encoding the host
                log.warning(
                    "webhook delivery %s: its URL's host name cannot be looked up: %s", delivery.delivery_id, error
                )
                return None, f"not sent: the URL's host name cannot be looked up ({error}); change the endpoint's url"
            log.warning("webhook delivery %s: sending it failed unexpectedly", delivery.delivery_id, exc_info=True)
            return None, f"the attempt failed unexpectedly ({type(error).__name__}: {error})"

    async def _pause_if_dead(self, delivery: DueDelivery, error: str) -> None:
        """A delivery failed for good: pause its endpoint when nothing was delivered to it
        since the delivery's event, so a dead receiver is not tried for every event."""
        reason = (
            f"paused by the sender: every attempt since {delivery.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC failed "
            f"(last: {error}); fix the receiver, then resume it (paused: false) and retry its failed deliveries"
        )[:500]
        try:
            async with self._recording, self._db.transaction() as conn:
                if await store.pause(conn, delivery.endpoint_id, reason, unless_delivered_since=delivery.created_at):
                    endpoint = await store.get_endpoint(conn, delivery.endpoint_id)
                    await _audit(conn, SENDER, "pause", endpoint, None, _audited(endpoint))
                    log.warning("webhook endpoint %s paused: %s", delivery.endpoint_id, reason)
        except Exception:
            log.warning("webhook endpoint %s: could not pause it", delivery.endpoint_id, exc_info=True)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = self._resolver or aiohttp.DefaultResolver()
            if not self._allow_private_targets:
                resolver = PublicAddressesOnly(resolver)
            self._session_resolver = resolver
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                headers={"user-agent": "saaslitellm-webhooks"},
            )
        return self._session

    async def _send(self, delivery: DueDelivery) -> tuple[int | None, str]:
        """(HTTP status, error); the error is empty when the receiver took it (2xx)."""
        assert self._box is not None
        try:
            secret = self._box.open(delivery.endpoint_id, delivery.secret_ciphertext)
        except webhooks.SecretUnreadable:
            return None, "the signing secret does not open with this SAAS_SECRETS_KEY; recreate the endpoint"
        if not self._allow_private_targets:
            refusal = _url_refusal(delivery.url)
            if refusal:
                return None, f"not sent: the URL's host is {refusal}; {webhooks.PRIVATE_TARGETS_HINT}"
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
            async with self._client().post(delivery.url, data=body, headers=headers, allow_redirects=False) as reply:
                if 200 <= reply.status < 300:
                    return reply.status, ""
                return reply.status, f"the receiver answered HTTP {reply.status}"
        except TimeoutError:
            return None, f"no answer within {self._timeout:g} s"
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, TargetRefused):
                return None, f"not sent: {error.os_error}; {webhooks.PRIVATE_TARGETS_HINT}"
            return None, f"{type(error).__name__}: could not reach the receiver"
        except aiohttp.ClientError as error:
            return None, f"{type(error).__name__}: could not reach the receiver"


def _url_refusal(url: str) -> str | None:
    """Why the host the HTTP client would connect to (as it parses the URL) is refused."""
    try:
        host = URL(url).raw_host
    except ValueError:
        return "not one the HTTP client can parse"
    return webhooks.host_refusal(host or "")


class TargetRefused(OSError):
    """A name that resolves to no public address."""


class PublicAddressesOnly(AbstractResolver):
    """Resolves with `inner`, keeping only public addresses (webhooks.address_refusal):
    the HTTP client connects only to what is returned, so what is checked is what is
    connected to. A name left with none fails the connection with TargetRefused."""

    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list:
        resolved = await self._inner.resolve(host, port, family)
        public = [entry for entry in resolved if webhooks.address_refusal(entry["host"]) is None]
        if not public:
            kinds = sorted({_without_address(webhooks.address_refusal(entry["host"]) or "") for entry in resolved})
            raise TargetRefused(f"{host} resolves only to {' and '.join(kinds) or 'no address'}")
        return public

    async def close(self) -> None:
        await self._inner.close()


def _without_address(refusal: str) -> str:
    """`a loopback address (127.0.0.1)` -> `a loopback address`: what a name resolves to
    stays out of the deliveries list."""
    return refusal.split(" (", 1)[0]
