"""The webhook sender against real PostgreSQL and a real HTTP receiver in this process:
one endpoint that does not answer never holds up another's deliveries or retries, each
delivery is recorded as soon as it ends, several senders (processes) never send one
twice, a stop leaves unfinished deliveries to their lease; and deliveries never go to a
host that is not public unless allowed, whatever a name resolves to when it is sent
(DNS rebinding), nor follow a redirect."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from prometheus_client import REGISTRY
from sqlalchemy import text

from devstack.postgres import Postgres
from server.domain import webhooks
from server.domain.audit import Actor
from server.services.webhooks import WebhookSender, WebhookUseCases
from server.storage import webhooks as store
from server.storage.database import Database
from tests.conftest import migrated_database

BOX = webhooks.SecretBox("k" * 32)
ADMIN_ACTOR = Actor(name="admin")


@pytest.fixture(scope="module")
async def db(pg: Postgres) -> AsyncIterator[Database]:
    async with migrated_database(pg, "delivery") as database:
        yield database


@dataclass
class Receiver:
    """Records each POST by path. `/held/...` answers only once `release` is set,
    `/heldfail/...` too, with a 500; `/fail/...` answers 500; `/redirect/...` 302 to `/ok/redirected`; the rest 204."""

    url: str = ""
    received: dict[str, list[str]] = field(default_factory=dict)  # path -> webhook-ids
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held_now: int = 0
    held_most: int = 0

    def ids(self, path: str) -> list[str]:
        return self.received.get(path, [])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        state.received.setdefault(request.path, []).append(request.headers["webhook-id"])
        kind = request.path.split("/")[1]
        if kind in ("held", "heldfail"):
            state.held_now += 1
            state.held_most = max(state.held_most, state.held_now)
            try:
                await state.release.wait()
            finally:
                state.held_now -= 1
        if kind in ("fail", "heldfail"):
            return web.Response(status=500)
        if kind == "redirect":
            raise web.HTTPFound("/ok/redirected")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    state.release.set()
    await runner.cleanup()


async def insert_endpoint(conn, endpoint_id: uuid.UUID, url: str, box: webhooks.SecretBox) -> None:
    """An endpoint stored as it is, bypassing creation's checks, for `job.failed` events."""
    await store.insert_endpoint(
        conn,
        endpoint_id,
        {
            "url": url,
            "event_types": ["job.failed"],
            "organization_id": None,
            "secret_ciphertext": box.seal(endpoint_id, webhooks.new_secret()),
            "secret_prefix": "whsec_test",
        },
    )


@pytest.fixture
async def endpoints(db: Database) -> AsyncIterator[Callable[..., Awaitable[uuid.UUID]]]:
    """Makes an endpoint with `events` due deliveries; deletes them all afterwards."""
    made: list[uuid.UUID] = []

    async def make(url: str, events: int) -> uuid.UUID:
        endpoint_id = uuid.uuid4()
        made.append(endpoint_id)
        async with db.transaction() as conn:
            await insert_endpoint(conn, endpoint_id, url, BOX)
            await conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload) "
                    "SELECT :e, gen_random_uuid(), 'job.failed', jsonb_build_object('n', n) "
                    "FROM generate_series(1, :count) n"
                ),
                {"e": endpoint_id, "count": events},
            )
        return endpoint_id

    yield make
    async with db.transaction() as conn:
        await conn.execute(text("DELETE FROM webhook_endpoints WHERE endpoint_id = ANY(:ids)"), {"ids": made})


async def deliveries(db: Database, endpoint_id: uuid.UUID) -> list[store.Delivery]:
    async with db.transaction() as conn:
        return await store.list_deliveries(conn, endpoint_id, None, None, 1000)


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 5.0) -> None:
    """Waits for `check` to hold (polling), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        assert time.monotonic() < deadline, "timed out waiting for the condition"
        await asyncio.sleep(0.02)


async def statuses(db: Database, endpoint_id: uuid.UUID) -> Counter:
    return Counter((d.status, d.attempts) for d in await deliveries(db, endpoint_id))


# ------------------------------------------------------------------- head-of-line blocking


async def test_a_receiver_that_does_not_answer_holds_up_no_other_endpoint(db, receiver, endpoints):
    held = await endpoints(f"{receiver.url}/held/a", 10)  # due first: the old batch took them first
    healthy = await endpoints(f"{receiver.url}/ok/b", 40)
    failing = await endpoints(f"{receiver.url}/fail/c", 1)
    sender = WebhookSender(db, BOX, 0.05, allow_private_targets=True, concurrency=6, per_endpoint=4)
    sender.start()
    try:
        # Every one of the healthy endpoint's deliveries arrives, and is recorded delivered,
        # while the held endpoint's first four wait for an answer...
        await eventually(lambda: len(receiver.ids("/ok/b")) == 40)
        await eventually(lambda: _all(db, healthy, ("delivered", 1), 40))
        # ...and the failing endpoint's attempt is recorded at once, its retry 5 s away.
        await eventually(lambda: _all(db, failing, ("pending", 1), 1))
        (failed,) = await deliveries(db, failing)
        assert failed.last_status_code == 500 and "500" in failed.last_error
        # The held endpoint, never answered, took one slot at a time, never the others'.
        assert receiver.held_now == 1 and receiver.held_most == 1
        assert sorted(Counter(receiver.ids("/ok/b")).values()) == [1] * 40  # each once
        assert (await statuses(db, held)) == Counter({("pending", 0): 10})

        receiver.release.set()  # the held receiver answers: its backlog drains too
        await eventually(lambda: _all(db, held, ("delivered", 1), 10))
        assert len(set(receiver.ids("/held/a"))) == 10
    finally:
        receiver.release.set()
        await sender.stop()


async def _all(db: Database, endpoint_id: uuid.UUID, state: tuple[str, int], count: int) -> bool:
    return (await statuses(db, endpoint_id)) == Counter({state: count})


async def test_two_senders_share_the_outbox_and_send_each_delivery_once(db, receiver, endpoints):
    endpoint_ids = [await endpoints(f"{receiver.url}/ok/{n}", 30) for n in range(3)]
    senders = [WebhookSender(db, BOX, 0.02, allow_private_targets=True, concurrency=5) for _ in range(2)]
    for sender in senders:
        sender.start()
    try:
        for n, endpoint_id in enumerate(endpoint_ids):
            await eventually(lambda endpoint_id=endpoint_id: _all(db, endpoint_id, ("delivered", 1), 30))
            ids = receiver.ids(f"/ok/{n}")
            assert len(ids) == len(set(ids)) == 30, Counter(ids).most_common(3)
    finally:
        for sender in senders:
            await sender.stop()


async def test_a_stop_leaves_an_unanswered_delivery_to_its_lease(db, receiver, endpoints):
    held = await endpoints(f"{receiver.url}/held/stop", 1)
    sender = WebhookSender(db, BOX, 0.05, allow_private_targets=True)
    sender.start()
    await eventually(lambda: receiver.held_now == 1)
    started = time.monotonic()
    await sender.stop(grace=0.1)
    assert time.monotonic() - started < 5  # not the 10 s request timeout
    (delivery,) = await deliveries(db, held)
    assert (delivery.status, delivery.attempts) == ("pending", 0)  # unrecorded: sent again later
    async with db.transaction() as conn:
        leased = (
            await conn.execute(
                text(
                    "SELECT next_attempt_at > now() + interval '50 seconds' FROM webhook_deliveries WHERE endpoint_id = :e"
                ),
                {"e": held},
            )
        ).scalar_one()
    assert leased  # claimed by no other process until its lease ends


# ------------------------------------------------------------------------------- targets


class FakeDNS(AbstractResolver):
    """Answers for the names it is given, as a DNS server an attacker controls would."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        pass


async def send_all(sender: WebhookSender) -> None:
    while await sender.deliver_due():
        await sender.wait_idle()
    await sender.wait_idle()


async def test_a_name_that_resolves_to_loopback_when_sent_is_not_sent_to(db, receiver, endpoints):
    # A public-looking name, accepted at creation, that resolves to this machine when the
    # delivery connects (DNS rebinding); a receiver listens there.
    port = receiver.url.rsplit(":", 1)[1]
    rebound = await endpoints(f"http://hooks.rebind.example:{port}/ok/rebound", 1)
    mixed = await endpoints(f"http://mixed.rebind.example:{port}/ok/mixed", 1)
    dns = FakeDNS({"hooks.rebind.example": ["127.0.0.1"], "mixed.rebind.example": ["10.0.0.7", "::1"]})
    webhooks.endpoint_spec(f"http://hooks.rebind.example:{port}/ok/rebound", ["job.failed"], "", "")  # accepted
    sender = WebhookSender(db, BOX, 0, resolver=dns)
    try:
        await send_all(sender)
    finally:
        await sender.stop()
    assert receiver.received == {}
    (refused,) = await deliveries(db, rebound)
    assert (refused.status, refused.attempts, refused.last_status_code) == ("pending", 1, None)
    assert refused.last_error.startswith("not sent: hooks.rebind.example resolves only to a loopback address")
    assert "127.0.0.1" not in refused.last_error  # what a name resolves to is not shown
    assert "SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS" in refused.last_error
    (both,) = await deliveries(db, mixed)
    assert "resolves only to a loopback address and a private address" in both.last_error

    # The same name and answer are delivered to when private targets are allowed: the
    # refusal above is the check's, not a failure to connect.
    async with db.transaction() as conn:
        await conn.execute(
            text("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE endpoint_id = :e"), {"e": rebound}
        )
    allowing = WebhookSender(db, BOX, 0, allow_private_targets=True, resolver=dns)
    try:
        await send_all(allowing)
    finally:
        await allowing.stop()
    assert len(receiver.ids("/ok/rebound")) == 1
    (delivered,) = await deliveries(db, rebound)
    assert (delivered.status, delivered.attempts) == ("delivered", 2)


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("[::ffff:127.0.0.1]", "a loopback address"),
        ("127.1", "a loopback address"),
        ("localhost", "a local host name"),
    ],
)
async def test_an_endpoint_stored_with_a_private_host_is_not_sent_to(db, receiver, endpoints, host, kind):
    # As an endpoint created while SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS was true is.
    port = receiver.url.rsplit(":", 1)[1]
    endpoint_id = await endpoints(f"http://{host}:{port}/ok/private", 1)
    sender = WebhookSender(db, BOX, 0)
    try:
        await send_all(sender)
    finally:
        await sender.stop()
    assert receiver.received == {}
    (refused,) = await deliveries(db, endpoint_id)
    assert refused.last_error.startswith(f"not sent: the URL's host is {kind}"), refused.last_error


async def test_a_redirect_is_not_followed(db, receiver, endpoints):
    endpoint_id = await endpoints(f"{receiver.url}/redirect/x", 1)
    sender = WebhookSender(db, BOX, 0, allow_private_targets=True)
    try:
        await send_all(sender)
    finally:
        await sender.stop()
    assert list(receiver.received) == ["/redirect/x"]  # never /ok/redirected
    (answered,) = await deliveries(db, endpoint_id)
    assert (answered.status, answered.last_status_code) == ("pending", 302)


# ------------------------------------------------------------------- dead endpoints, paused


async def _set(db: Database, endpoint_id: uuid.UUID, assignments: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            text(f"UPDATE webhook_deliveries SET {assignments} WHERE endpoint_id = :e"), {"e": endpoint_id}
        )


async def _endpoint(db: Database, endpoint_id: uuid.UUID) -> store.Endpoint:
    async with db.transaction() as conn:
        return await store.get_endpoint(conn, endpoint_id)


async def test_a_dead_endpoint_is_paused_held_and_sent_again_once_resumed(db, receiver, endpoints):
    """A delivery failing for good (its 12th attempt) with nothing delivered to its
    endpoint meanwhile pauses the endpoint: its deliveries are held, new events included,
    until the operator resumes it; then those waiting on a long backoff go at once, and
    the failed one goes again when asked."""
    endpoint_id = await endpoints(f"{receiver.url}/fail/dead", 1)
    await _set(db, endpoint_id, "attempts = 11, created_at = now() - interval '7 hours'")
    sender = WebhookSender(db, BOX, 0, allow_private_targets=True)
    admin = WebhookUseCases(db, BOX, allow_private_targets=True)
    try:
        await send_all(sender)
        (failed,) = await deliveries(db, endpoint_id)
        assert (failed.status, failed.attempts) == ("failed", 12)
        paused = await _endpoint(db, endpoint_id)
        assert paused.paused_at is not None and paused.pause_reason.startswith("paused by the sender: every attempt")
        assert "HTTP 500" in paused.pause_reason
        async with db.transaction() as conn:
            trail = (
                await conn.execute(
                    text("SELECT actor, action FROM admin_audit_log WHERE resource_id = :e"), {"e": str(endpoint_id)}
                )
            ).all()
        assert [tuple(row) for row in trail] == [("system:webhooks", "pause")]

        # Held: a new event, due now, and one due in an hour (a late retry's backoff).
        async with db.transaction() as conn:
            await conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload, next_attempt_at) "
                    "VALUES (:e, gen_random_uuid(), 'job.failed', '{}', now()), "
                    "(:e, gen_random_uuid(), 'job.failed', '{}', now() + interval '1 hour')"
                ),
                {"e": endpoint_id},
            )
        sent_before = len(receiver.ids("/fail/dead"))
        await send_all(sender)
        assert len(receiver.ids("/fail/dead")) == sent_before  # nothing claimed while paused

        # The operator points it at a working receiver and resumes it: both go at once.
        await admin.update(ADMIN_ACTOR, str(endpoint_id), url=f"{receiver.url}/ok/revived", paused=False)
        await send_all(sender)
        assert len(receiver.ids("/ok/revived")) == 2
        assert (await statuses(db, endpoint_id)) == Counter({("delivered", 1): 2, ("failed", 12): 1})
        # ...and retries the failed delivery: one more attempt, delivered.
        assert await admin.retry_failed(ADMIN_ACTOR, str(endpoint_id)) == 1
        await send_all(sender)
        assert (await statuses(db, endpoint_id)) == Counter({("delivered", 1): 2, ("delivered", 13): 1})
        assert (await _endpoint(db, endpoint_id)).paused_at is None
    finally:
        await sender.stop()


async def test_a_delivery_failing_for_good_does_not_pause_an_endpoint_that_took_one_since(db, receiver, endpoints):
    endpoint_id = await endpoints(f"{receiver.url}/ok/alive", 1)
    sender = WebhookSender(db, BOX, 0, allow_private_targets=True)
    try:
        await send_all(sender)  # delivered now: the endpoint is alive
        async with db.transaction() as conn:
            await store.update_endpoint(conn, endpoint_id, {"url": f"{receiver.url}/fail/alive"})
            await conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload, attempts, created_at) "
                    "VALUES (:e, gen_random_uuid(), 'job.failed', '{}', 11, now() - interval '7 hours')"
                ),
                {"e": endpoint_id},
            )
        await send_all(sender)
        assert (await statuses(db, endpoint_id)) == Counter({("delivered", 1): 1, ("failed", 12): 1})
        assert (await _endpoint(db, endpoint_id)).paused_at is None
    finally:
        await sender.stop()


# ---------------------------------------------------------------- attempts outliving their lease


async def _claim(db: Database, endpoint_id: uuid.UUID) -> store.DueDelivery:
    async with db.transaction() as conn:
        (claimed,) = [d for d in await store.claim_due(conn, 100, 60) if d.endpoint_id == endpoint_id]
    return claimed


async def test_an_attempt_recorded_after_its_lease_was_taken_over_is_dropped(db, endpoints):
    """A process stalls past its lease; another claims the delivery and delivers it; the
    first one's attempt, recorded late, changes nothing."""
    endpoint_id = await endpoints("http://203.0.113.1/never-sent", 1)
    stalled = await _claim(db, endpoint_id)
    await _set(db, endpoint_id, "next_attempt_at = now()")  # its lease ends
    other = await _claim(db, endpoint_id)
    assert other.delivery_id == stalled.delivery_id and other.leased_until != stalled.leased_until
    async with db.transaction() as conn:
        assert await store.record_attempt(
            conn, other.delivery_id, status_code=204, error="", retry_in=None, leased_until=other.leased_until
        )
    async with db.transaction() as conn:
        assert not await store.record_attempt(
            conn,
            stalled.delivery_id,
            status_code=None,
            error="no answer within 10 s",
            retry_in=5,
            leased_until=stalled.leased_until,
        )
    (delivery,) = await deliveries(db, endpoint_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 204)
    # Nor does it once the other claim is in flight and not yet recorded: that one's
    # outcome is the delivery's, whichever ends first.
    await _set(db, endpoint_id, "status = 'pending', next_attempt_at = now()")
    third = await _claim(db, endpoint_id)
    async with db.transaction() as conn:
        assert not await store.record_attempt(
            conn, other.delivery_id, status_code=500, error="HTTP 500", retry_in=None, leased_until=other.leased_until
        )
        assert await store.record_attempt(
            conn, third.delivery_id, status_code=204, error="", retry_in=None, leased_until=third.leased_until
        )
    (delivery,) = await deliveries(db, endpoint_id)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


async def test_a_stalled_last_attempt_neither_fails_the_delivery_nor_pauses_its_endpoint(db, receiver, endpoints):
    """Its 12th attempt outlives its lease (the receiver holds it, then answers 500); the
    delivery is claimed meanwhile, as another process would, and is being sent again:
    the late 500 fails nothing and pauses nothing."""
    endpoint_id = await endpoints(f"{receiver.url}/heldfail/stalled", 1)
    await _set(db, endpoint_id, "attempts = 11, created_at = now() - interval '7 hours'")
    sender = WebhookSender(db, BOX, 0, allow_private_targets=True)
    dropped = dropped_attempts()
    try:
        await sender.deliver_due()
        await eventually(lambda: receiver.held_now == 1)
        await _set(db, endpoint_id, "next_attempt_at = now()")  # its lease ends
        other = await _claim(db, endpoint_id)  # another process's claim, its attempt in flight
        receiver.release.set()
        await sender.wait_idle()
        (delivery,) = await deliveries(db, endpoint_id)
        assert (delivery.status, delivery.attempts) == ("pending", 11)  # untouched: the other claim's
        assert (await _endpoint(db, endpoint_id)).paused_at is None
        assert dropped_attempts() == dropped + 1  # counted, for an alert: not only logged
        async with db.transaction() as conn:
            assert await store.record_attempt(
                conn, other.delivery_id, status_code=204, error="", retry_in=None, leased_until=other.leased_until
            )
        (delivery,) = await deliveries(db, endpoint_id)
        assert (delivery.status, delivery.attempts) == ("delivered", 12)
    finally:
        await sender.stop()


def dropped_attempts() -> float:
    value = REGISTRY.get_sample_value("saaslitellm_webhook_attempts_dropped_total")
    assert value is not None, "saaslitellm_webhook_attempts_dropped_total is not registered"
    return value


async def test_a_deleted_endpoint_is_forgotten_by_the_sender(db, receiver, endpoints):
    """The sender remembers, per endpoint, whether its last attempt from this process went
    well; a deleted endpoint is dropped from that memory at a later claim, so it does not
    grow with every endpoint ever created. Those still there are remembered."""
    ok = await endpoints(f"{receiver.url}/ok/forgotten", 1)
    failing = await endpoints(f"{receiver.url}/fail/forgotten", 1)
    kept = await endpoints(f"{receiver.url}/ok/kept", 1)
    sender = WebhookSender(db, BOX, 0, allow_private_targets=True, forget_interval_seconds=0)
    admin = WebhookUseCases(db, BOX, allow_private_targets=True)
    try:
        await send_all(sender)
        # White-box: what the sender judged is memory, nothing outside it shows.
        assert {ok, kept} <= sender._healthy and failing in sender._failing
        await admin.delete(ADMIN_ACTOR, str(ok))
        await admin.delete(ADMIN_ACTOR, str(failing))
        await sender.deliver_due()
        assert ok not in sender._healthy and failing not in sender._failing
        assert kept in sender._healthy
    finally:
        await sender.stop()


async def test_receivers_that_never_answer_leave_a_healthy_endpoint_its_slots(db, receiver, endpoints):
    """Eight endpoints whose receiver reads and hangs, their backlogs due first, against
    eight slots (four to an endpoint): they hold one slot each at most, half the slots in
    all, so the healthy endpoint's deliveries all arrive while they hang."""
    dead = [await endpoints(f"{receiver.url}/held/dead{n}", 20) for n in range(8)]
    healthy = await endpoints(f"{receiver.url}/ok/healthy", 40)
    sender = WebhookSender(
        db, BOX, 0.05, allow_private_targets=True, concurrency=8, per_endpoint=4, timeout_seconds=0.5
    )
    sender.start()
    try:
        await eventually(lambda: len(receiver.ids("/ok/healthy")) == 40, timeout=3)
        await eventually(lambda: _all(db, healthy, ("delivered", 1), 40), timeout=1)
        assert all(len(receiver.ids(f"/held/dead{n}")) >= 1 for n in range(8))  # each tried meanwhile
    finally:
        receiver.release.set()
        await sender.stop()
    for endpoint in dead:  # their backlogs wait, tried one at a time
        assert (await statuses(db, endpoint))[("pending", 0)] >= 16
