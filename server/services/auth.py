"""Who is calling: a team (virtual key) or the operator (admin key).

Keys arrive as gRPC metadata (Envoy forwards HTTP headers as metadata): a team key as
`authorization: Bearer sk-...`, the admin key as `x-admin-key: ...` or the same bearer
form. Messages never echo what was presented.

Team keys are cached in-process (KeyCache) so that a request does not cost a database
round trip. Revocation stays immediate on every process (KeyChanges): the changing
transaction NOTIFYs every process (storage/keys.py); each LISTENs (storage/notify.py),
drops the team's cached keys and acknowledges; the admin call returns once every process
listening at commit has acknowledged. The bound, documented in the README:
- normally: when RevokeTeamKey returns, no process has the key cached any more;
- while a process's LISTEN connection is down it caches nothing (every request asks
  PostgreSQL), and it starts empty when the connection is back, as notifications sent
  meanwhile are lost;
- a process that neither acknowledges nor notices its connection is gone (hung, or a
  silent network partition) keeps an entry at most `ttl_seconds`
  (SAAS_KEY_CACHE_TTL_SECONDS, default 30 s), then checks again.
Expiry needs no notification: every use checks the cached expires_at.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from server.domain import keys, validation
from server.domain.audit import Actor
from server.domain.errors import DomainError, Kind, Reason
from server.storage import keys as key_store
from server.storage.database import Connection, Database, again_if_lost
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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_address(peer: str) -> IPAddress | None:
    """The IP address in a gRPC peer string (`ipv4:127.0.0.1:5000`, `ipv6:%5B::1%5D:5000`,
    which gRPC percent-encodes); None for a Unix socket (`unix:...`) or anything else."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        host = rest.rpartition(":")[0]
    elif kind == "ipv6":
        host = unquote(rest).rpartition(":")[0].removeprefix("[").removesuffix("]")
    else:
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class TrustedProxies:
    """Whose X-Forwarded-For is believed (SAAS_TRUSTED_PROXIES): the connection's peer
    must be in one of these networks. An IPv4 client of a dual-stack socket may show as an
    IPv4-mapped IPv6 address (::ffff:10.0.0.5): it matches the IPv4 networks too.

    The networks are parsed once, at start-up (server/settings.py); a request costs a
    lookup of its peer string, remembered for the connections seen last (a proxy such as
    Envoy keeps a few long-lived ones)."""

    def __init__(self, networks: Iterable[IPNetwork] = ()) -> None:
        self.networks = tuple(networks)
        self.trusts = functools.lru_cache(maxsize=1024)(self._trusts)

    def _trusts(self, peer: str) -> bool:
        """Whether the gRPC peer string `peer` is a trusted proxy's."""
        address = peer_address(peer)
        if address is None:
            return False
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return any(address in network or (mapped is not None and mapped in network) for network in self.networks)


def forwarded_for(metadata: Mapping[str, str]) -> str:
    """The last X-Forwarded-For entry, the address Envoy saw (use_remote_address appends it;
    earlier entries are whatever the client wrote), if it is an IP address; else ""."""
    last = metadata.get("x-forwarded-for", "").rpartition(",")[2].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return ""


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

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def set_live(self, live: bool) -> None:
        """The LISTEN connection went up or down: either way, start from empty."""
        self.live = live
        self.clear()


@dataclass
class KeyChange:
    """A key change in progress: the NOTIFY nonce, and how many processes listened when
    the transaction sent it (None: it sent nothing)."""

    nonce: str
    expected_acks: int | None = None


class KeyChanges:
    """Key changes take effect on every server process before the admin call returns.

    The changing transaction NOTIFYs `saaslitellm_key_changes` (team, nonce) and counts
    the processes listening. Each process, on the notification, drops the team's cached
    keys and acknowledges on `saaslitellm_key_acks` (nonce, its process id); the admin
    call waits (up to `timeout`) until as many processes as were listening have
    acknowledged. So when RevokeTeamKey returns, no process still has the key cached.
    """

    def __init__(
        self, db: Database, cache: KeyCache, spawn: Callable[[Coroutine[Any, Any, Any]], Any], timeout: float = 2.0
    ) -> None:
        self._db = db
        self._cache = cache
        self._spawn = spawn
        self._timeout = timeout
        self.process_id = uuid.uuid4().hex
        self._acks: dict[str, set[str]] = {}
        self._acked = asyncio.Condition()

    def on_change(self, payload: str) -> None:
        """LISTEN callback for key changes: drop the team's keys here, then acknowledge."""
        try:
            message = json.loads(payload)
            team_id, nonce = str(message["team_id"]), str(message["nonce"])
        except (ValueError, KeyError, TypeError):
            log.warning("malformed key-change notification; dropping every cached key")
            self._cache.clear()
            return
        self._cache.invalidate_team(team_id)
        self._spawn(self._acknowledge(nonce))

    async def _acknowledge(self, nonce: str) -> None:
        async with self._db.transaction() as conn:
            await key_store.acknowledge_key_change(conn, nonce, self.process_id)

    def on_ack(self, payload: str) -> None:
        """LISTEN callback for acknowledgements; only this process's own changes count."""
        try:
            message = json.loads(payload)
            nonce, process = str(message["nonce"]), str(message["process"])
        except (ValueError, KeyError, TypeError):
            return
        if nonce in self._acks:
            self._acks[nonce].add(process)
            self._spawn(self._wake())

    async def _wake(self) -> None:
        async with self._acked:
            self._acked.notify_all()

    @contextlib.asynccontextmanager
    async def change(self, team_id: str) -> AsyncIterator[KeyChange]:
        """Around a transaction that may change a team's keys (it calls
        `announce_key_change`); once it committed, wait for every process's ack."""
        change = KeyChange(nonce=uuid.uuid4().hex)
        self._acks[change.nonce] = set()
        try:
            yield change
            if change.expected_acks is not None:
                self._cache.invalidate_team(team_id)
                await self._wait(change)
        finally:
            self._acks.pop(change.nonce, None)

    async def _wait(self, change: KeyChange) -> None:
        if not self._cache.live:
            log.warning("key change committed while this process cannot LISTEN; other caches expire within the TTL")
            return
        acked = self._acks[change.nonce]
        try:
            async with asyncio.timeout(self._timeout), self._acked:
                await self._acked.wait_for(lambda: len(acked) >= (change.expected_acks or 0))
        except TimeoutError:
            log.warning(
                "key change acknowledged by %d of %d server processes within %.1f s; the others' caches expire "
                "within the TTL",
                len(acked),
                change.expected_acks,
                self._timeout,
            )


async def announce_key_change(conn: Connection, team_id: str, change: KeyChange) -> None:
    """In the changing transaction: notify every process at commit, and note how many
    processes are listening (each will acknowledge)."""
    change.expected_acks = await key_store.listening_processes(conn)
    await key_store.notify_key_change(conn, team_id, change.nonce)


class Authenticator:
    def __init__(
        self,
        db: Database,
        admin_key: str,
        cache: KeyCache | None = None,
        trusted_proxies: Iterable[IPNetwork] = (),
        admin_key_previous: str = "",
    ) -> None:
        """`admin_key_previous` (SAAS_ADMIN_KEY_PREVIOUS, empty: none): the admin key being
        rotated out, accepted as well while every process moves to the new one."""
        self._db = db
        self._admin_digest = hashlib.sha256(admin_key.encode()).digest()
        # With no previous key, a digest nothing hashes to (a digest is 32 bytes): every
        # request costs the same two comparisons either way.
        self._previous_digest = hashlib.sha256(admin_key_previous.encode()).digest() if admin_key_previous else b""
        self.cache = cache if cache is not None else KeyCache(ttl_seconds=0)
        # Whose X-Forwarded-For is believed (SAAS_TRUSTED_PROXIES); none unless told.
        self.trusted_proxies = TrustedProxies(trusted_proxies)

    async def team(self, metadata: Mapping[str, str]) -> TeamPrincipal:
        token = bearer_token(metadata)
        if token is None:
            raise DomainError(
                Kind.UNAUTHENTICATED,
                Reason.MISSING_API_KEY,
                "send your team's virtual key as 'Authorization: Bearer sk-...'",
            )
        if "," in token:  # no key has one: the header came more than once (common.metadata)
            raise DomainError(
                Kind.UNAUTHENTICATED,
                Reason.INVALID_API_KEY,
                "the Authorization header was sent more than once, or holds a comma, which no key has: "
                "send one virtual key, once",
            )
        digest = keys.digest(token)
        owner = self.cache.get(digest)
        if owner is None:
            generation = self.cache.generation

            async def read() -> KeyOwner | None:  # and touch: safe to run twice
                async with self._db.transaction() as conn:
                    return await key_store.find_owner(conn, digest, touch_every_seconds=max(self.cache.ttl, 1.0))

            owner = await again_if_lost(read)
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

    def is_admin(self, metadata: Mapping[str, str]) -> bool:
        """Whether the request carries the admin key (as `admin` takes it)."""
        try:
            self.admin(metadata)
        except DomainError:
            return False
        return True

    def admin(self, metadata: Mapping[str, str], peer: str | None = "") -> Actor:
        """The operator, or UNAUTHENTICATED. The returned actor says where the request
        came from, for the audit log (`peer`: the gRPC peer, context.peer())."""
        presented = metadata.get("x-admin-key") or bearer_token(metadata) or ""
        digest = hashlib.sha256(presented.encode()).digest()
        # Both comparisons, always (`|`, not `or`): how long it takes says nothing of which key matched.
        current = hmac.compare_digest(digest, self._admin_digest)
        previous = hmac.compare_digest(digest, self._previous_digest)
        if not (current | previous):
            if "," in presented:  # a header sent more than once (common.metadata joins its values)
                header = "X-Admin-Key" if metadata.get("x-admin-key") else "the Authorization header"
                why = f"{header} was sent more than once (or the key sent holds a comma)"
            elif metadata.get("x-admin-key"):
                why = "the admin key sent in X-Admin-Key is not valid"
            elif presented:
                why = "the key sent is not the admin key (a team's virtual key cannot call it)"
            elif metadata.get("authorization"):  # a key without `Bearer `, or another scheme (Basic)
                why = "the Authorization header must be 'Bearer <admin key>'"
            else:
                why = "no admin key was sent"
            raise DomainError(
                Kind.UNAUTHENTICATED,
                Reason.ADMIN_KEY_REQUIRED,
                f"this is an admin API and {why}: send the admin key as 'X-Admin-Key: ...' or "
                "'Authorization: Bearer ...'",
            )
        return Actor(
            name=ADMIN_ACTOR, request_id=metadata.get("x-request-id", "")[:200], peer=self.peer(metadata, peer)[:200]
        )

    def peer(self, metadata: Mapping[str, str], peer: str | None) -> str:
        """Where a request came from: the address a trusted proxy (Envoy) saw, from
        X-Forwarded-For; else the connection's own address (the gRPC peer, as gRPC writes
        it), whatever X-Forwarded-For a client wrote (anyone may send that metadata)."""
        peer = peer or ""
        if "x-forwarded-for" in metadata and self.trusted_proxies.trusts(peer):
            return forwarded_for(metadata) or peer
        return peer

    async def admin_or_team(self, metadata: Mapping[str, str], peer: str | None = "") -> TeamPrincipal | None:
        """The admin key (None: may read any team's), or a team's virtual key (its principal)."""
        try:
            self.admin(metadata, peer)
            return None
        except DomainError:
            if metadata.get("x-admin-key"):
                raise  # a wrong admin key is an error, not a reason to try it as a team key
        return await self.team(metadata)

    async def team_or_admin(self, metadata: Mapping[str, str], team_id: str, peer: str | None = "") -> None:
        """Reads about a team: the admin key, or a virtual key of that team itself."""
        principal = await self.admin_or_team(metadata, peer)
        if principal is not None and principal.team_id != team_id:
            validation.identifier("team_id", team_id)  # an error does not echo whatever was sent
            raise DomainError(
                Kind.PERMISSION_DENIED,
                Reason.TEAM_MISMATCH,
                f"this virtual key belongs to another team than '{team_id}'",
                metadata={"team_id": team_id},
            )
