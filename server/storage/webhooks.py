"""Webhook endpoints and the delivery outbox (migration 0006).

Deliveries are inserted by triggers, never here; the sender claims due ones with
FOR UPDATE SKIP LOCKED, so server processes share the work and a delivery is never sent
by two at once. A claim pushes `next_attempt_at` forward by a lease: a process that dies
mid-send leaves the delivery to be retried when the lease ends. Claims are made per
endpoint (a cap each), so one endpoint's backlog never holds back another's deliveries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update

from server.domain.errors import not_found
from server.storage.database import Connection
from server.storage.tables import known_fields, webhook_deliveries, webhook_endpoints


async def count_organization_endpoints(conn: Connection, organization_id: str) -> int:
    """Webhook endpoints scoped to the organization (deleting it would delete them)."""
    query = select(func.count()).where(webhook_endpoints.c.organization_id == organization_id)
    return (await conn.execute(query)).scalar_one()


TEST_EVENT = "webhook.test"


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: uuid.UUID
    url: str
    description: str
    event_types: tuple[str, ...]
    organization_id: str | None
    secret_prefix: str
    created_at: datetime
    pending_deliveries: int = 0
    failed_deliveries: int = 0
    paused_at: datetime | None = None
    pause_reason: str = ""


@dataclass(frozen=True)
class Delivery:
    delivery_id: int
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class DueDelivery:
    """A claimed delivery, with what sending it needs."""

    delivery_id: int
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    payload: dict[str, Any]
    attempts: int
    url: str
    secret_ciphertext: bytes
    created_at: datetime
    leased_until: datetime  # the claim's lease: its attempt is recorded only while it still holds


def _deliveries_in(status: str):
    """How many of the endpoint's deliveries are in `status`: counted per endpoint listed
    (through its (endpoint_id, delivery_id) index), not over the whole outbox."""
    d = webhook_deliveries.c
    return (
        select(func.count())
        .where(d.endpoint_id == webhook_endpoints.c.endpoint_id, d.status == status)
        .scalar_subquery()
        .label(status)
    )


def _endpoints():
    e = webhook_endpoints.c
    return select(
        e.endpoint_id,
        e.url,
        e.description,
        e.event_types,
        e.organization_id,
        e.secret_prefix,
        e.created_at,
        e.paused_at,
        e.pause_reason,
        _deliveries_in("pending"),
        _deliveries_in("failed"),
    )


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        endpoint_id=row.endpoint_id,
        url=row.url,
        description=row.description,
        event_types=tuple(row.event_types),
        organization_id=row.organization_id,
        secret_prefix=row.secret_prefix,
        created_at=row.created_at,
        pending_deliveries=row.pending,
        failed_deliveries=row.failed,
        paused_at=row.paused_at,
        pause_reason=row.pause_reason,
    )


async def insert_endpoint(conn: Connection, endpoint_id: uuid.UUID, values: dict[str, Any]) -> None:
    await conn.execute(insert(webhook_endpoints).values(endpoint_id=endpoint_id, **values))


async def get_endpoint(conn: Connection, endpoint_id: uuid.UUID) -> Endpoint:
    row = (await conn.execute(_endpoints().where(webhook_endpoints.c.endpoint_id == endpoint_id))).first()
    if row is None:
        raise not_found("webhook endpoint", str(endpoint_id))
    return _endpoint(row)


async def list_endpoints(conn: Connection, after_id: uuid.UUID | None, limit: int) -> list[Endpoint]:
    query = _endpoints().order_by(webhook_endpoints.c.endpoint_id).limit(limit)
    if after_id is not None:
        query = query.where(webhook_endpoints.c.endpoint_id > after_id)
    return [_endpoint(row) for row in await conn.execute(query)]


async def existing_endpoints(conn: Connection, endpoint_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Those of `endpoint_ids` that still exist (not deleted)."""
    if not endpoint_ids:
        return set()
    e = webhook_endpoints.c
    return set((await conn.execute(select(e.endpoint_id).where(e.endpoint_id.in_(list(endpoint_ids))))).scalars())


async def update_endpoint(conn: Connection, endpoint_id: uuid.UUID, values: dict[str, Any]) -> None:
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.endpoint_id == endpoint_id)
        .values(updated_at=func.now(), **values)
    )


async def pause(
    conn: Connection, endpoint_id: uuid.UUID, reason: str, *, unless_delivered_since: datetime | None = None
) -> bool:
    """Hold the endpoint's deliveries (kept as it was when already paused); with
    `unless_delivered_since`, only if nothing was delivered to it since then (within the
    minute `last_delivered_at` is kept to). True when this paused it."""
    e = webhook_endpoints.c
    conditions = [e.endpoint_id == endpoint_id, e.paused_at.is_(None)]
    if unless_delivered_since is not None:
        since = unless_delivered_since - timedelta(seconds=60)
        conditions.append(e.last_delivered_at.is_(None) | (e.last_delivered_at < since))
    result = await conn.execute(
        update(webhook_endpoints)
        .where(*conditions)
        .values(paused_at=func.now(), pause_reason=reason, updated_at=func.now())
    )
    return result.rowcount == 1


async def resume(conn: Connection, endpoint_id: uuid.UUID, lease_seconds: float) -> None:
    """Send the endpoint's deliveries again: those waiting on a retry's backoff are due at
    once. Those due within a lease are left alone: a delivery in flight (claimed before
    the pause) has its lease there, and must not be claimed a second time meanwhile."""
    e, d = webhook_endpoints.c, webhook_deliveries.c
    await conn.execute(
        update(webhook_endpoints)
        .where(e.endpoint_id == endpoint_id)
        .values(paused_at=None, pause_reason="", updated_at=func.now())
    )
    await conn.execute(
        update(webhook_deliveries)
        .where(
            d.endpoint_id == endpoint_id,
            d.status == "pending",
            d.next_attempt_at > func.now() + text("make_interval(secs => :lease)").bindparams(lease=lease_seconds),
        )
        .values(next_attempt_at=func.now())
    )


async def retry_failed(conn: Connection, endpoint_id: uuid.UUID) -> int:
    """Put the endpoint's failed deliveries back to pending, due now; how many."""
    d = webhook_deliveries.c
    result = await conn.execute(
        update(webhook_deliveries)
        .where(d.endpoint_id == endpoint_id, d.status == "failed")
        .values(status="pending", next_attempt_at=func.now())
    )
    return result.rowcount


async def delete_endpoint(conn: Connection, endpoint_id: uuid.UUID) -> None:
    await conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.endpoint_id == endpoint_id))


_ENQUEUE = text("SELECT webhook_enqueue(:kind, :organization, CAST(:data AS jsonb))")


async def enqueue(conn: Connection, kind: str, organization_id: str, data: Mapping[str, Any]) -> None:
    """An event for every endpoint that wants it (its `event_types`, for the organization or
    for all), written as the triggers write theirs (webhook_enqueue, migration 0006): in the
    caller's transaction, so it exists exactly when the change it reports commits."""
    await conn.execute(_ENQUEUE, {"kind": kind, "organization": organization_id, "data": json.dumps(data)})


async def insert_test_delivery(conn: Connection, endpoint_id: uuid.UUID) -> Delivery:
    """A `webhook.test` event for one endpoint, as the triggers write events."""
    row = (
        await conn.execute(
            insert(webhook_deliveries)
            .values(
                endpoint_id=endpoint_id,
                event_id=uuid.uuid4(),
                event_type=TEST_EVENT,
                payload=func.jsonb_build_object(
                    "type",
                    TEST_EVENT,
                    "timestamp",
                    func.to_char(func.timezone("UTC", func.now()), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    "data",
                    func.jsonb_build_object("endpoint_id", str(endpoint_id)),
                ),
            )
            .returning(*webhook_deliveries.c)
        )
    ).one()
    return Delivery(**known_fields(Delivery, row))


async def list_deliveries(
    conn: Connection, endpoint_id: uuid.UUID, status: str | None, before_id: int | None, limit: int
) -> list[Delivery]:
    """Newest first."""
    d = webhook_deliveries.c
    query = select(webhook_deliveries).where(d.endpoint_id == endpoint_id).order_by(d.delivery_id.desc()).limit(limit)
    if status:
        query = query.where(d.status == status)
    if before_id is not None:
        query = query.where(d.delivery_id < before_id)
    return [Delivery(**known_fields(Delivery, row)) for row in await conn.execute(query)]


# Claims due deliveries: per endpoint, its earliest due ones up to the room it has (its
# cap, :per_endpoint for a healthy endpoint and 1 for any other, minus what this process
# has in flight to it); of those to endpoints not healthy, at most :suspect_room, those
# never tried (not in :failing_ids) first; then the earliest of all up to `limit`. Each is
# leased (next_attempt_at moved past the lease) so that no other process claims it until
# the lease ends. Each endpoint's rows are found through ix_webhook_deliveries_pending
# (endpoint_id, next_attempt_at) WHERE pending, so an endpoint with a large backlog costs
# the others nothing; rows another process holds are skipped (SKIP LOCKED), never waited
# for.
_CLAIM_DUE = text(
    """
    WITH room AS (
        SELECT e.endpoint_id, (:all_healthy OR h.endpoint_id IS NOT NULL) AS healthy,
               f.endpoint_id IS NOT NULL AS failing,
               CASE WHEN :all_healthy OR h.endpoint_id IS NOT NULL THEN :per_endpoint ELSE 1 END
                   - coalesce(busy.deliveries, 0) AS room
          FROM webhook_endpoints e
          LEFT JOIN unnest(CAST(:busy_ids AS uuid[]), CAST(:busy_counts AS integer[]))
               AS busy(endpoint_id, deliveries) ON busy.endpoint_id = e.endpoint_id
          LEFT JOIN unnest(CAST(:healthy_ids AS uuid[])) AS h(endpoint_id) ON h.endpoint_id = e.endpoint_id
          LEFT JOIN unnest(CAST(:failing_ids AS uuid[])) AS f(endpoint_id) ON f.endpoint_id = e.endpoint_id
         WHERE e.paused_at IS NULL
    ), candidates AS (
        SELECT d.delivery_id, d.next_attempt_at, r.healthy,
               row_number() OVER (PARTITION BY r.healthy ORDER BY r.failing, d.next_attempt_at, d.delivery_id)
                   AS rank_in_class
          FROM room r
         CROSS JOIN LATERAL (
                SELECT w.delivery_id, w.next_attempt_at
                  FROM webhook_deliveries w
                 WHERE w.endpoint_id = r.endpoint_id AND w.status = 'pending' AND w.next_attempt_at <= now()
                 ORDER BY w.next_attempt_at, w.delivery_id
                 LIMIT r.room
                   FOR UPDATE SKIP LOCKED
               ) d
         WHERE r.room > 0
    ), due AS (
        SELECT c.delivery_id
          FROM candidates c
         WHERE c.healthy OR c.rank_in_class <= :suspect_room
         ORDER BY c.next_attempt_at, c.delivery_id
         LIMIT :limit
    ), claimed AS (
        UPDATE webhook_deliveries w
           SET next_attempt_at = now() + make_interval(secs => :lease)
          FROM due
         WHERE w.delivery_id = due.delivery_id
        RETURNING w.delivery_id, w.endpoint_id, w.event_id, w.payload, w.attempts, w.created_at,
                  w.next_attempt_at AS leased_until
    )
    SELECT c.delivery_id, c.endpoint_id, c.event_id, c.payload, c.attempts, e.url, e.secret_ciphertext,
           c.created_at, c.leased_until
      FROM claimed c JOIN webhook_endpoints e ON e.endpoint_id = c.endpoint_id
     ORDER BY c.delivery_id
    """
)


async def claim_due(
    conn: Connection,
    limit: int,
    lease_seconds: float,
    *,
    per_endpoint: int | None = None,
    busy: Mapping[uuid.UUID, int] | None = None,
    healthy: Collection[uuid.UUID] | None = None,
    failing: Collection[uuid.UUID] = (),
    suspect_room: int | None = None,
) -> list[DueDelivery]:
    """Up to `limit` due deliveries no other process holds, leased to this one, the
    earliest due first: per endpoint at most its cap minus `busy[endpoint]` (what the
    caller has in flight to it). The cap is `per_endpoint` (default: `limit`) for a
    `healthy` endpoint (default: all) and 1 for any other; those others get at most
    `suspect_room` (default: `limit`) in all, endpoints not `failing` (never tried) first."""
    busy = busy or {}
    rows = await conn.execute(
        _CLAIM_DUE,
        {
            "limit": limit,
            "lease": lease_seconds,
            "per_endpoint": limit if per_endpoint is None else per_endpoint,
            "busy_ids": list(busy),
            "busy_counts": list(busy.values()),
            "all_healthy": healthy is None,
            "healthy_ids": list(healthy or ()),
            "failing_ids": list(failing),
            "suspect_room": limit if suspect_room is None else suspect_room,
        },
    )
    return [DueDelivery(**known_fields(DueDelivery, row)) for row in rows]


# Marks the keys whose expiry is near and writes their events in one statement: a key is
# warned of once, whichever process finds it first (the row lock of the UPDATE decides).
_WARN_EXPIRING_KEYS = text(
    """
    WITH due AS (
        UPDATE api_keys k SET expiry_warned_at = now()
         WHERE k.expiry_warned_at IS NULL AND k.revoked_at IS NULL AND k.replaced_by IS NULL
           AND k.expires_at > now() AND k.expires_at <= now() + make_interval(secs => :within)
        RETURNING k.key_id, k.team_id, k.name, k.key_prefix, k.expires_at
    )
    SELECT webhook_enqueue('team_key.expiring', t.organization_id, jsonb_build_object(
               'key_id', d.key_id,
               'team_id', d.team_id,
               'organization_id', t.organization_id,
               'name', d.name,
               'key_prefix', d.key_prefix,
               'expires_at', to_char(d.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
      FROM due d JOIN teams t ON t.team_id = d.team_id
    """
)


async def warn_expiring_keys(conn: Connection, within_seconds: float) -> int:
    """Write `team_key.expiring` for keys expiring within `within_seconds` not yet warned
    of; returns how many."""
    return len((await conn.execute(_WARN_EXPIRING_KEYS, {"within": within_seconds})).all())


async def record_attempt(
    conn: Connection,
    delivery_id: int,
    *,
    status_code: int | None,
    error: str,
    retry_in: float | None,
    endpoint_id: uuid.UUID | None = None,
    leased_until: datetime | None = None,
) -> bool:
    """One attempt's outcome: delivered (no error), retried after `retry_in`, or failed.
    With `leased_until` (the claim's lease, DueDelivery.leased_until), only while that
    claim holds: still pending, not claimed since. An attempt that outlived its lease (its
    process stalled) may have been claimed and recorded by another since, delivered
    perhaps: its outcome is dropped, never written over that one. True when recorded.

    A 2xx answer to `endpoint_id` sets its `last_delivered_at` when that is a minute old
    or more, even from a stale attempt: the receiver did take it (this only keeps a live
    endpoint from being paused), and it is written first, as an endpoint's delete locks
    the endpoint before its deliveries."""
    if not error and endpoint_id is not None:
        e = webhook_endpoints.c
        await conn.execute(
            update(webhook_endpoints)
            .where(
                e.endpoint_id == endpoint_id,
                e.last_delivered_at.is_(None) | (e.last_delivered_at < func.now() - text("interval '60 seconds'")),
            )
            .values(last_delivered_at=func.now())
        )
    d = webhook_deliveries.c
    delivered = not error
    status = "delivered" if delivered else ("pending" if retry_in is not None else "failed")
    conditions = [d.delivery_id == delivery_id]
    if leased_until is not None:
        conditions += [d.status == "pending", d.next_attempt_at == leased_until]
    result = await conn.execute(
        update(webhook_deliveries)
        .where(*conditions)
        .values(
            status=status,
            attempts=d.attempts + 1,
            last_status_code=status_code,
            last_error=error[:500],
            delivered_at=func.now() if delivered else None,
            next_attempt_at=func.now() + text("make_interval(secs => :retry)").bindparams(retry=retry_in or 0),
        )
    )
    return result.rowcount == 1


# Finished deliveries (delivered, or failed for good) that ended before the cutoff: a
# delivered one when it was delivered, a failed one at its last attempt (its
# next_attempt_at, set then). Pending ones are never touched, however old: a paused
# endpoint's backlog is still to be sent. The scan walks the primary key up to the first
# delivery created since the cutoff (ids grow with creation time), so a round over a table
# already trimmed reads only the old rows left (pending ones), not the recent ones.
# SKIP LOCKED: processes running retention at once share the work; a failed delivery being
# retried meanwhile (status back to pending) is skipped or re-checked, never deleted. The
# delete finds the batch by primary key (= ANY of an array): a join would read the table.
_DELETE_FINISHED = text(
    """
    WITH doomed AS (
        SELECT d.delivery_id FROM webhook_deliveries d
         WHERE d.delivery_id < coalesce(
                   (SELECT min(r.delivery_id) FROM webhook_deliveries r WHERE r.created_at >= :cutoff),
                   9223372036854775807)
           AND d.status IN ('delivered', 'failed')
           AND coalesce(d.delivered_at, d.next_attempt_at) < :cutoff
         ORDER BY d.delivery_id
         LIMIT :batch
           FOR UPDATE SKIP LOCKED
    ), deleted AS (
        DELETE FROM webhook_deliveries WHERE delivery_id = ANY (ARRAY(SELECT delivery_id FROM doomed)) RETURNING 1
    )
    SELECT count(*) FROM deleted
    """
)


async def delete_finished_deliveries(conn: Connection, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` deliveries delivered or failed before `cutoff`, oldest first;
    how many."""
    return (await conn.execute(_DELETE_FINISHED, {"cutoff": cutoff, "batch": batch})).scalar_one()
