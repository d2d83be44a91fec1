"""The webhook outbox in PostgreSQL: a claimed delivery is leased (no second sender gets
it until the lease ends, as after a crash mid-send), each attempt is recorded with its
backoff, and a secret the key does not open fails the attempt instead of the sender.
The HTTP side runs in tests/e2e/test_webhooks.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from devstack.postgres import Postgres
from server.domain import webhooks
from server.domain.audit import Actor
from server.domain.errors import DomainError
from server.services.credits import CreditUseCases
from server.services.webhooks import WebhookSender
from server.storage import webhooks as store
from server.storage.database import Database
from tests.conftest import migrated_database

BOX = webhooks.SecretBox("k" * 32)
ADMIN = Actor(name="admin")


@pytest.fixture(scope="module")
async def db(pg: Postgres) -> AsyncIterator[Database]:
    """A database of its own: the teams here are written without a ledger, which the
    session's shared database checks balances against."""
    async with migrated_database(pg, "outbox") as database:
        yield database


async def credits_low_endpoint(
    conn, endpoint_id: uuid.UUID, organization: str | None = None, box: webhooks.SecretBox = BOX
) -> None:
    """An endpoint for team.credits_low events (nothing listens at its URL)."""
    await store.insert_endpoint(
        conn,
        endpoint_id,
        {
            "url": "http://127.0.0.1:9/hooks",
            "event_types": ["team.credits_low"],
            "organization_id": organization,
            "secret_ciphertext": box.seal(endpoint_id, webhooks.new_secret()),
            "secret_prefix": "whsec_test",
        },
    )


async def endpoint_with_event(db: Database, box: webhooks.SecretBox = BOX) -> uuid.UUID:
    """An endpoint (nothing listens at its URL) and one team.credits_low event for it."""
    endpoint_id, org, team = uuid.uuid4(), f"org-{uuid.uuid4().hex[:8]}", f"team-{uuid.uuid4().hex[:8]}"
    async with db.transaction() as conn:
        await credits_low_endpoint(conn, endpoint_id, box=box)
        await conn.execute(text("INSERT INTO organizations (organization_id, name) VALUES (:o, 'o')"), {"o": org})
        await conn.execute(
            text(
                "INSERT INTO teams (team_id, organization_id, credits_allocated, low_credit_threshold) "
                "VALUES (:t, :o, 10, 5)"
            ),
            {"t": team, "o": org},
        )
        await conn.execute(text("UPDATE teams SET credits_used = 6 WHERE team_id = :t"), {"t": team})  # 10 -> 4
    return endpoint_id


async def deliveries(db: Database, endpoint_id: uuid.UUID) -> list:
    async with db.transaction() as conn:
        return await store.list_deliveries(conn, endpoint_id, None, None, 10)


async def test_a_claimed_delivery_is_leased_until_its_attempt_is_recorded(db):
    endpoint_id = await endpoint_with_event(db)
    async with db.transaction() as conn:
        first = [d for d in await store.claim_due(conn, 100, 60) if d.endpoint_id == endpoint_id]
    async with db.transaction() as conn:
        again = [d for d in await store.claim_due(conn, 100, 60) if d.endpoint_id == endpoint_id]
    assert len(first) == 1 and again == []  # leased: a second sender does not get it
    async with db.transaction() as conn:  # the lease ends (the first sender died mid-send)
        await conn.execute(
            text("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE endpoint_id = :e"), {"e": endpoint_id}
        )
        retried = [d for d in await store.claim_due(conn, 100, 60) if d.endpoint_id == endpoint_id]
    assert [d.event_id for d in retried] == [first[0].event_id]
    assert first[0].payload["data"]["credits_remaining"] == 4


async def test_each_attempt_is_recorded_with_its_backoff_then_the_delivery_fails(db):
    endpoint_id = await endpoint_with_event(db)
    (delivery,) = await deliveries(db, endpoint_id)
    async with db.transaction() as conn:
        await store.record_attempt(conn, delivery.delivery_id, status_code=503, error="HTTP 503", retry_in=30)
        waiting = (
            await conn.execute(
                text("SELECT next_attempt_at - now() FROM webhook_deliveries WHERE delivery_id = :d"),
                {"d": delivery.delivery_id},
            )
        ).scalar_one()
    (after,) = await deliveries(db, endpoint_id)
    assert (after.status, after.attempts, after.last_status_code) == ("pending", 1, 503)
    assert 29 <= waiting.total_seconds() <= 30
    async with db.transaction() as conn:
        await store.record_attempt(conn, delivery.delivery_id, status_code=None, error="no answer", retry_in=None)
    (given_up,) = await deliveries(db, endpoint_id)
    assert (given_up.status, given_up.attempts, given_up.last_error) == ("failed", 2, "no answer")


async def test_a_secret_the_key_does_not_open_fails_the_attempt_not_the_sender(db):
    endpoint_id = await endpoint_with_event(db, webhooks.SecretBox("another key, " + "x" * 32))
    sender = WebhookSender(db, BOX, interval_seconds=0)
    try:
        while await sender.deliver_due():  # every due delivery of this database, as room frees
            await sender.wait_idle()
        await sender.wait_idle()
    finally:
        await sender.stop()
    (delivery,) = await deliveries(db, endpoint_id)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "SAAS_SECRETS_KEY" in delivery.last_error


async def test_one_event_has_one_id_on_every_endpoint_and_the_next_event_another(db):
    """Receivers deduplicate on the id: two endpoints pointed at one receiver (a global one and
    the organization's) must see one id for one event (before 0019, one per endpoint)."""
    org, team = f"org-{uuid.uuid4().hex[:8]}", f"team-{uuid.uuid4().hex[:8]}"
    endpoints = [uuid.uuid4(), uuid.uuid4()]
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO organizations (organization_id, name) VALUES (:o, 'o')"), {"o": org})
        for endpoint_id, organization in zip(endpoints, (None, org), strict=True):
            await credits_low_endpoint(conn, endpoint_id, organization=organization)
        await conn.execute(
            text(
                "INSERT INTO teams (team_id, organization_id, credits_allocated, low_credit_threshold) "
                "VALUES (:t, :o, 10, 5)"
            ),
            {"t": team, "o": org},
        )
    for step in (
        "UPDATE teams SET credits_used = 6",
        "UPDATE teams SET credits_used = 0",
        "UPDATE teams SET credits_used = 7",
    ):
        async with db.transaction() as conn:  # low, topped up above the threshold, low again
            await conn.execute(text(f"{step} WHERE team_id = :t"), {"t": team})
    events = [[d.event_id for d in await deliveries(db, endpoint_id)] for endpoint_id in endpoints]
    assert len(events[0]) == 2 and sorted(events[0]) == sorted(events[1])
    assert len(set(events[0])) == 2  # two events, two ids


async def test_a_low_credit_alert_fires_when_the_threshold_is_raised_over_the_balance_or_a_team_starts_low(db):
    """Before 0020 only a charge crossing the threshold alerted: a team created low, or whose
    threshold was raised above its balance, was low without a word."""
    endpoint_id, org = uuid.uuid4(), f"org-{uuid.uuid4().hex[:8]}"
    low, high = f"starts-low-{uuid.uuid4().hex[:8]}", f"starts-high-{uuid.uuid4().hex[:8]}"
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO organizations (organization_id, name) VALUES (:o, 'o')"), {"o": org})
        await credits_low_endpoint(conn, endpoint_id, organization=org)

    async def run(statement: str, **values) -> None:
        async with db.transaction() as conn:
            await conn.execute(text(statement), {"o": org, **values})

    insert = (
        "INSERT INTO teams (team_id, organization_id, credits_allocated, low_credit_threshold) VALUES (:t, :o, 10, :x)"
    )
    await run(insert, t=low, x=10)  # created at its threshold: alerts
    await run(insert, t=high, x=5)  # above it: quiet
    await run("UPDATE teams SET low_credit_threshold = 4 WHERE team_id = :t", t=high)  # lowered: quiet
    await run("UPDATE teams SET low_credit_threshold = 20 WHERE team_id = :t", t=high)  # raised over 10: alerts
    await run("UPDATE teams SET low_credit_threshold = 30 WHERE team_id = :t", t=high)  # still low: quiet
    await run("UPDATE teams SET credits_used = 1 WHERE team_id = :t", t=high)  # still low: quiet
    alerts = [
        (d.payload["data"]["team_id"], d.payload["data"]["low_credit_threshold"])
        for d in await deliveries(db, endpoint_id)
    ]
    assert sorted(alerts) == [(high, 20), (low, 10)]


async def test_a_refund_is_one_job_refunded_event_written_with_it(db):
    """A receiver billing its customers from job.completed must learn of a refund: the
    event is written in the refund's transaction, carrying the ledger entry, and a refund
    returned again (the same job refunded twice) writes none; a refund refused writes none."""
    endpoint_id, org, team = uuid.uuid4(), f"org-{uuid.uuid4().hex[:8]}", f"team-{uuid.uuid4().hex[:8]}"
    charged, refused = uuid.uuid4(), uuid.uuid4()
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO organizations (organization_id, name) VALUES (:o, 'o')"), {"o": org})
        await store.insert_endpoint(
            conn,
            endpoint_id,
            {
                "url": "http://127.0.0.1:9/hooks",
                "event_types": ["job.refunded"],
                "organization_id": org,
                "secret_ciphertext": BOX.seal(endpoint_id, webhooks.new_secret()),
                "secret_prefix": "whsec_test",
            },
        )
        await conn.execute(
            text(
                "INSERT INTO teams (team_id, organization_id, credits_allocated, credits_used) VALUES (:t, :o, 100, 7)"
            ),
            {"t": team, "o": org},
        )
        await conn.execute(
            text(
                "INSERT INTO jobs (job_id, team_id, job_type, status, credits_charged, completed_at) "
                "VALUES (:charged, :t, 'translate', 'completed', 7, now()), (:refused, :t, 'open', 'in_progress', 0, NULL)"
            ),
            {"charged": charged, "refused": refused, "t": team},
        )
    credits = CreditUseCases(db)
    first = await credits.refund(ADMIN, team, str(charged), "customer complaint")
    again = await credits.refund(ADMIN, team, str(charged), "customer complaint")
    assert again.repeated and again.entry.entry_id == first.entry.entry_id
    with pytest.raises(DomainError, match="nothing to refund"):
        await credits.refund(ADMIN, team, str(refused), "")

    (event,) = await deliveries(db, endpoint_id)
    assert event.event_type == "job.refunded" and event.payload["type"] == "job.refunded"
    assert event.payload["data"] == {
        "job_id": str(charged),
        "team_id": team,
        "organization_id": org,
        "job_type": "translate",
        "status": "COMPLETED",
        "credits_charged": 7,
        "credits_refunded": 7,
        "credits_remaining": 100,
        "transaction_id": str(first.entry.entry_id),
        "reason": "customer complaint",
    }
