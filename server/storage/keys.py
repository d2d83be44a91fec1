"""Virtual keys, stored as digests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select

from server.domain.keys import NewKey
from server.domain.tenancy import TeamKey
from server.storage.database import Connection
from server.storage.tables import api_keys


@dataclass(frozen=True)
class KeyOwner:
    """What a key digest resolves to."""

    key_id: uuid.UUID
    team_id: str
    key_prefix: str
    expires_at: datetime | None
    revoked_at: datetime | None


async def insert_key(conn: Connection, team_id: str, name: str, key: NewKey) -> TeamKey:
    row = (
        await conn.execute(
            insert(api_keys)
            .values(key_id=uuid.uuid4(), team_id=team_id, name=name, key_digest=key.digest, key_prefix=key.prefix)
            .returning(
                api_keys.c.key_id,
                api_keys.c.team_id,
                api_keys.c.name,
                api_keys.c.key_prefix,
                api_keys.c.created_at,
                api_keys.c.expires_at,
                api_keys.c.revoked_at,
            )
        )
    ).one()
    return TeamKey(**row._mapping)


async def find_owner(conn: Connection, digest: bytes) -> KeyOwner | None:
    row = (
        await conn.execute(
            select(
                api_keys.c.key_id,
                api_keys.c.team_id,
                api_keys.c.key_prefix,
                api_keys.c.expires_at,
                api_keys.c.revoked_at,
            ).where(api_keys.c.key_digest == digest)
        )
    ).first()
    return None if row is None else KeyOwner(**row._mapping)
