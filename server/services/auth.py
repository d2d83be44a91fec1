"""Who is calling: a team (virtual key) or the operator (admin key).

Keys arrive as gRPC metadata (Envoy forwards HTTP headers as metadata): a team key as
`authorization: Bearer sk-...`, the admin key as `x-admin-key: ...` or the same bearer
form. Messages never echo what was presented.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from server.domain import keys
from server.domain.errors import DomainError, Kind, Reason
from server.storage import keys as key_store
from server.storage.database import Database


@dataclass(frozen=True)
class TeamPrincipal:
    """An authenticated team, and which of its keys was used."""

    team_id: str
    key_id: uuid.UUID
    key_prefix: str

    @property
    def actor(self) -> str:
        return f"key:{self.key_prefix}"


def bearer_token(metadata: Mapping[str, str]) -> str | None:
    value = metadata.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Authenticator:
    def __init__(self, db: Database, admin_key: str) -> None:
        self._db = db
        self._admin_digest = hashlib.sha256(admin_key.encode()).digest()

    async def team(self, metadata: Mapping[str, str]) -> TeamPrincipal:
        token = bearer_token(metadata)
        if token is None:
            raise DomainError(
                Kind.UNAUTHENTICATED,
                Reason.MISSING_API_KEY,
                "send your team's virtual key as 'Authorization: Bearer sk-...'",
            )
        async with self._db.transaction() as conn:
            owner = await key_store.find_owner(conn, keys.digest(token))
        now = datetime.now(UTC)
        if owner is None or owner.revoked_at is not None or (owner.expires_at is not None and owner.expires_at <= now):
            raise DomainError(
                Kind.UNAUTHENTICATED,
                Reason.INVALID_API_KEY,
                "the virtual key is not valid (unknown, revoked or expired)",
            )
        return TeamPrincipal(team_id=owner.team_id, key_id=owner.key_id, key_prefix=owner.key_prefix)

    def admin(self, metadata: Mapping[str, str]) -> None:
        presented = metadata.get("x-admin-key") or bearer_token(metadata) or ""
        if not hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), self._admin_digest):
            raise DomainError(
                Kind.UNAUTHENTICATED,
                Reason.ADMIN_KEY_REQUIRED,
                "this is an admin API: send the admin key as 'X-Admin-Key: ...' or 'Authorization: Bearer ...'",
            )
