"""Virtual keys, stored as digests, and the notifications that keep key caches honest."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, insert, or_, select, text, tuple_, update

from server.domain.errors import not_found
from server.domain.keys import NewKey
from server.domain.tenancy import KeyState, TeamKey
from server.storage.database import Connection
from server.storage.notify import APPLICATION_NAME as LISTENER_NAME
from server.storage.tables import api_keys, known_fields

# Every server process LISTENs on these channels: on a key change it drops the named
# team's cached keys and acknowledges (server/services/auth.py, KeyChanges).
KEY_CHANGES_CHANNEL = "saaslitellm_key_changes"
KEY_ACKS_CHANNEL = "saaslitellm_key_acks"

_KEY_COLUMNS = (
    api_keys.c.key_id,
    api_keys.c.team_id,
    api_keys.c.name,
    api_keys.c.key_prefix,
    api_keys.c.created_at,
    api_keys.c.expires_at,
    api_keys.c.revoked_at,
    api_keys.c.last_used_at,
    api_keys.c.replaced_by,
)


@dataclass(frozen=True)
class KeyOwner:
    """What a key digest resolves to."""

    key_id: uuid.UUID
    team_id: str
    key_prefix: str
    expires_at: datetime | None
    revoked_at: datetime | None


async def insert_key(
    conn: Connection, team_id: str, name: str, key: NewKey, expires_at: datetime | None = None
) -> TeamKey:
    row = (
        await conn.execute(
            insert(api_keys)
            .values(
                key_id=uuid.uuid4(),
                team_id=team_id,
                name=name,
                key_digest=key.digest,
                key_prefix=key.prefix,
                expires_at=expires_at,
            )
            .returning(*_KEY_COLUMNS)
        )
    ).one()
    return TeamKey(**known_fields(TeamKey, row))


_FIND_AND_TOUCH = text(
    """
    WITH found AS (
        SELECT key_id, team_id, key_prefix, expires_at, revoked_at, last_used_at
        FROM api_keys WHERE key_digest = :digest
    ), touched AS (
        UPDATE api_keys SET last_used_at = now()
        FROM found
        WHERE api_keys.key_id = found.key_id
          AND found.revoked_at IS NULL
          AND (found.expires_at IS NULL OR found.expires_at > now())
          AND (found.last_used_at IS NULL OR found.last_used_at < now() - make_interval(secs => :every))
    )
    SELECT key_id, team_id, key_prefix, expires_at, revoked_at FROM found
    """
)


async def find_owner(conn: Connection, digest: bytes, touch_every_seconds: float = 60.0) -> KeyOwner | None:
    """The key with this digest, in one round trip that also records its use (at most
    once per `touch_every_seconds`, so a busy key does not write on every request)."""
    row = (await conn.execute(_FIND_AND_TOUCH, {"digest": digest, "every": touch_every_seconds})).first()
    return None if row is None else KeyOwner(**known_fields(KeyOwner, row))


def _state_filter(state: str, now: datetime):
    not_expired = or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now)
    if state == KeyState.REVOKED:
        return api_keys.c.revoked_at.is_not(None)
    if state == KeyState.EXPIRED:
        return and_(api_keys.c.revoked_at.is_(None), api_keys.c.expires_at <= now)
    return and_(api_keys.c.revoked_at.is_(None), not_expired)


async def list_keys(
    conn: Connection, team_id: str, *, state: str, now: datetime, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[TeamKey]:
    """Newest first; `after` is the (created_at, key_id) of the previous page's last key."""
    query = select(*_KEY_COLUMNS).where(api_keys.c.team_id == team_id)
    if state:
        query = query.where(_state_filter(state, now))
    if after is not None:
        query = query.where(tuple_(api_keys.c.created_at, api_keys.c.key_id) < tuple_(*after))
    rows = await conn.execute(query.order_by(api_keys.c.created_at.desc(), api_keys.c.key_id.desc()).limit(limit))
    return [TeamKey(**known_fields(TeamKey, row)) for row in rows]


async def get_key(conn: Connection, team_id: str, key_id: uuid.UUID) -> TeamKey:
    """The team's key, locked until commit; NOT_FOUND for another team's key too."""
    query = select(*_KEY_COLUMNS).where(and_(api_keys.c.key_id == key_id, api_keys.c.team_id == team_id))
    row = (await conn.execute(query.with_for_update())).first()
    if row is None:
        raise not_found("key", str(key_id))
    return TeamKey(**known_fields(TeamKey, row))


async def current_key_named(conn: Connection, team_id: str, name: str, now: datetime) -> TeamKey | None:
    """The team's active, unrotated key of that name, if any (at most one by our rules)."""
    query = select(*_KEY_COLUMNS).where(
        and_(
            api_keys.c.team_id == team_id,
            api_keys.c.name == name,
            api_keys.c.replaced_by.is_(None),
            _state_filter(KeyState.ACTIVE, now),
        )
    )
    row = (await conn.execute(query.limit(1))).first()
    return None if row is None else TeamKey(**known_fields(TeamKey, row))


async def revoke_key(conn: Connection, key_id: uuid.UUID) -> TeamKey:
    row = (
        await conn.execute(
            update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=func.now()).returning(*_KEY_COLUMNS)
        )
    ).one()
    return TeamKey(**known_fields(TeamKey, row))


async def retire_key(conn: Connection, key_id: uuid.UUID, expires_at: datetime, replaced_by: uuid.UUID) -> TeamKey:
    """A rotated key: it expires at the end of the grace period and names its successor."""
    row = (
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.key_id == key_id)
            .values(expires_at=expires_at, replaced_by=replaced_by)
            .returning(*_KEY_COLUMNS)
        )
    ).one()
    return TeamKey(**known_fields(TeamKey, row))


async def revoke_team_keys(conn: Connection, team_id: str) -> list[tuple[TeamKey, TeamKey]]:
    """Revoke every key of the team that still works (not revoked, not expired: a rotated
    key in its grace period works); (before, after) of each. An expired key stays expired."""
    keys = api_keys.c
    usable = and_(
        keys.team_id == team_id,
        keys.revoked_at.is_(None),
        keys.expires_at.is_(None) | (keys.expires_at > func.now()),
    )
    before = [
        TeamKey(**known_fields(TeamKey, row))
        for row in await conn.execute(select(*_KEY_COLUMNS).where(usable).with_for_update())
    ]
    if not before:
        return []
    rows = await conn.execute(
        update(api_keys)
        .where(keys.key_id.in_([key.key_id for key in before]))
        .values(revoked_at=func.now())
        .returning(*_KEY_COLUMNS)
    )
    after = {row.key_id: TeamKey(**known_fields(TeamKey, row)) for row in rows}
    return [(key, after[key.key_id]) for key in before]


async def listening_processes(conn: Connection) -> int:
    """How many server processes LISTEN for key changes on this database now."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name AND datname = current_database()"
    )
    return (await conn.execute(query, {"name": LISTENER_NAME})).scalar_one()


async def acknowledge_key_change(conn: Connection, nonce: str, process_id: str) -> None:
    payload = json.dumps({"nonce": nonce, "process": process_id})
    await conn.execute(select(func.pg_notify(KEY_ACKS_CHANNEL, payload)))


async def notify_key_change(conn: Connection, team_id: str, nonce: str) -> None:
    """Tell every server process, when this transaction commits, to drop the team's
    cached keys. PostgreSQL delivers NOTIFY only on commit, and never on rollback."""
    payload = json.dumps({"team_id": team_id, "nonce": nonce})
    await conn.execute(select(func.pg_notify(KEY_CHANGES_CHANNEL, payload)))
