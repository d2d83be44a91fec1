"""Who is calling: a team (virtual key) or the operator (admin key).

Keys arrive as gRPC metadata (Envoy forwards HTTP headers as metadata): a team key as
`authorization: Bearer sk-...`, the admin key as `x-admin-key: ...` or the same bearer
form. Messages never echo what was presented.

Team keys are cached in-process (KeyCache) so that a request does not cost a database
round trip. Revocation stays immediate on every process: a key change NOTIFYs every
process in the committing transaction (storage/keys.py), and each process LISTENs
(storage/notify.py) and drops the team's cached keys. The bound, documented in the README:
- normally: a revoked key is refused everywhere as soon as the notification arrives
  (PostgreSQL sends it at commit; RevokeTeamKey returns only after its own process got it);
- while a process's LISTEN connection is down it caches nothing (every request asks
  PostgreSQL), and it starts empty when the connection is back, as notifications sent
  meanwhile are lost;
- whatever else happens, an entry is trusted for at most `ttl_seconds`
  (SAAS_KEY_CACHE_TTL_SECONDS, default 30 s), then checked again.
Expiry needs no notification: every use checks the cached expires_at.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from server.domain import keys
from server.domain.audit import Actor
from server.domain.errors import DomainError, Kind, Reason
from server.storage import keys as key_store
from server.storage.database import Database
from server.storage.keys import KeyOwner

log = logging.getLogger(__name__)

ADMIN_ACTOR = "admin"


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


class KeyCache:
    """Key digests -> owners, trusted only while invalidations can reach this process.

    Not thread-safe; used from the event loop only. A lookup that started before an
    invalidation may not store its (possibly stale) result: `generation` tells.
    """

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[KeyOwner, float]] = OrderedDict()
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self.live = False  # True while the LISTEN connection is up
        self.generation = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.live and self.ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes) -> KeyOwner | None:
        entry = self._entries.get(digest) if self.enabled else None
        if entry is not None and self._clock() - entry[1] < self.ttl:
            self._entries.move_to_end(digest)
            self.hits += 1
            return entry[0]
        if entry is not None:
            del self._entries[digest]
        self.misses += 1
        return None

    def put(self, digest: bytes, owner: KeyOwner, generation: int) -> None:
        """Store a lookup's result unless an invalidation happened since it started."""
        if not self.enabled or generation != self.generation:
            return
        self._entries[digest] = (owner, self._clock())
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate_team(self, team_id: str) -> None:
        self.generation += 1
        for digest in [d for d, (owner, _) in self._entries.items() if owner.team_id == team_id]:
            del self._entries[digest]

    def set_live(self, live: bool) -> None:
        """The LISTEN connection went up or down: either way, start from empty."""
        self.live = live
        self.generation += 1
        self._entries.clear()

    def on_notification(self, payload: str) -> None:
        try:
            message = json.loads(payload)
            team_id, nonce = str(message["team_id"]), str(message.get("nonce", ""))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed key-change notification; dropping every cached key")
            self.set_live(self.live)
            return
        self.invalidate_team(team_id)
        waiter = self._waiters.pop(nonce, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @contextlib.asynccontextmanager
    async def change(self, team_id: str, timeout: float = 2.0) -> AsyncIterator[KeyChange]:
        """Around a transaction that may change a team's keys. The transaction NOTIFYs
        with `change.nonce` and sets `change.notified`; once it committed, this drops the
        team's entries here and waits until our own LISTEN connection got the
        notification: PostgreSQL has then sent it to every listening process. Without a
        live connection there is nothing to wait for (this process does not cache)."""
        change = KeyChange(nonce=uuid.uuid4().hex)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[change.nonce] = waiter
        try:
            yield change
            if change.notified:
                self.invalidate_team(team_id)
                if self.live:
                    try:
                        await asyncio.wait_for(waiter, timeout)
                    except TimeoutError:
                        log.warning(
                            "key-change notification not back in %.1f s; caches expire in %.0f s", timeout, self.ttl
                        )
        finally:
            self._waiters.pop(change.nonce, None)


@dataclass
class KeyChange:
    """A key change in progress: the NOTIFY nonce, and whether the transaction sent it."""

    nonce: str
    notified: bool = False


class Authenticator:
    def __init__(self, db: Database, admin_key: str, cache: KeyCache | None = None) -> None:
        self._db = db
        self._admin_digest = hashlib.sha256(admin_key.encode()).digest()
        self.cache = cache if cache is not None else KeyCache(ttl_seconds=0)

    async def team(self, metadata: Mapping[str, str]) -> TeamPrincipal:
        token = bearer_token(metadata)
        if token is None:
            raise DomainError(
                Kind.UNAUTHENTICATED,
                Reason.MISSING_API_KEY,
                "send your team's virtual key as 'Authorization: Bearer sk-...'",
            )
        digest = keys.digest(token)
        owner = self.cache.get(digest)
        if owner is None:
            generation = self.cache.generation
            async with self._db.transaction() as conn:
                owner = await key_store.find_owner(conn, digest, touch_every_seconds=max(self.cache.ttl, 1.0))
            if owner is not None and owner.revoked_at is None:
                self.cache.put(digest, owner, generation)
        now = datetime.now(UTC)
        if owner is None or owner.revoked_at is not None or (owner.expires_at is not None and owner.expires_at <= now):
            raise DomainError(
                Kind.UNAUTHENTICATED,
                Reason.INVALID_API_KEY,
                "the virtual key is not valid (unknown, revoked or expired)",
            )
        return TeamPrincipal(team_id=owner.team_id, key_id=owner.key_id, key_prefix=owner.key_prefix)

    def admin(self, metadata: Mapping[str, str], peer: str = "") -> Actor:
        """The operator, or UNAUTHENTICATED. The returned actor says where the request
        came from, for the audit log."""
        presented = metadata.get("x-admin-key") or bearer_token(metadata) or ""
        if not hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), self._admin_digest):
            raise DomainError(
                Kind.UNAUTHENTICATED,
                Reason.ADMIN_KEY_REQUIRED,
                "this is an admin API: send the admin key as 'X-Admin-Key: ...' or 'Authorization: Bearer ...'",
            )
        forwarded = metadata.get("x-forwarded-for", "").split(",")[0].strip()
        return Actor(
            name=ADMIN_ACTOR, request_id=metadata.get("x-request-id", "")[:200], peer=(forwarded or peer)[:200]
        )
