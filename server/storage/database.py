"""One async engine per process, and one transaction per use case.

`Database.transaction()`, `Database.autocommit()` and `Database.statements()` are the only
ways services touch PostgreSQL. They translate lost or refused connections into
UNAVAILABLE (`DATABASE_UNAVAILABLE`), and a transaction PostgreSQL rolled back for
colliding with another (deadlock, serialization failure) into UNAVAILABLE
(`CONFLICTING_CHANGE`), so clients can retry, and never keep a connection busy longer
than the block that asked for it.

`statements()` is for the hot path (an LLM call's context read and its record, a job's
creation and completion, reading a job): statements written once as SQL, run by psycopg on
a connection from the same pool, without SQLAlchemy's Connection layer around each one,
which cost 0.33 ms of CPU per statement against 0.10 ms this way (measured on these
machines; the statements themselves are identical). `as_statements()` runs the same
Statements inside a SQLAlchemy transaction, so each query is written once.

The connections `statements()` used are kept, idle and in autocommit, in a short list
(the most recently used first) instead of going back to SQLAlchemy's pool after each
block: a checkout and checkin through the pool (greenlets, the pool's lock and events,
switching autocommit on and off) cost 0.03 ms of CPU per block on its own, and under load
about a sixth of the server's CPU per LLM call, which makes two blocks (`python -m
bench.ab`, commit f26af26). The kept connections still count against the pool's size:
one goes back to the pool when a SQLAlchemy user finds no idle connection there, when
the idle ones (kept or in the pool) would outnumber the pool's size (the pool then closes
the overflow, as it does without this list), when it was lent longer ago than the pool's
recycle age (the pool then recycles it by its own rule), and all of them when one turns
out broken (the server restarted or went away) or the pool saw one of its own connections
lost; a broken one also makes the pool replace its idle connections, as SQLAlchemy does
when it sees a lost connection itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, unquote_plus

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row
from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from server.domain.errors import DomainError, Kind, Reason
from server.observability import metrics, tracing
from server.settings import url_authority

log = logging.getLogger(__name__)

T = TypeVar("T")

Connection = AsyncConnection


def sqlalchemy_url(database_url: str) -> str:
    """Accept the usual `postgresql://` URL and select the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    raise ValueError("DATABASE_URL must start with postgresql://")


_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Statement:
    """One SQL statement for `StatementConnection`, written with `:name` parameters like
    SQLAlchemy's text() (`::type` casts are left alone) and turned into psycopg's
    `%(name)s` once, at import. psycopg prepares it on a connection after its fifth use."""

    __slots__ = ("sql",)

    def __init__(self, sql: str) -> None:
        self.sql = _PARAMETER.sub(r"%(\1)s", sql.replace("%", "%%"))


# How stale the pool's gauges (saaslitellm_db_pool_connections) may be, in seconds.
POOL_GAUGES_EVERY = 1.0


class StatementConnection:
    """A pooled psycopg connection in autocommit mode: each statement is its own
    transaction, unless made with `begin`: then BEGIN is sent together with the first
    statement (one round trip for both) and the owner ends the transaction (`end`)."""

    __slots__ = ("_begin", "_conn", "began")

    def __init__(self, conn: psycopg.AsyncConnection, *, begin: bool = False) -> None:
        self._conn = conn
        self._begin = begin
        self.began = False

    async def first(self, statement: Statement, params: Mapping[str, Any]) -> Any | None:
        """The first row (a named tuple), or None."""
        if self._begin:
            rows = (await self.batch((statement, params)))[0]
            return rows[0] if rows else None
        cursor = self._conn.cursor(row_factory=namedtuple_row)
        await cursor.execute(statement.sql, params)
        return await cursor.fetchone()

    async def all(self, statement: Statement, params: Mapping[str, Any]) -> list[Any]:
        """Every row (named tuples)."""
        if self._begin:
            return (await self.batch((statement, params)))[0]
        cursor = self._conn.cursor(row_factory=namedtuple_row)
        await cursor.execute(statement.sql, params)
        return await cursor.fetchall()

    async def run(self, statement: Statement, params: Mapping[str, Any]) -> None:
        if self._begin:
            await self.batch((statement, params))
            return
        await self._conn.cursor().execute(statement.sql, params)

    async def batch(self, *statements: tuple[Statement, Mapping[str, Any]], commit: bool = False) -> list[list[Any]]:
        """Several statements sent together and answered in one round trip (psycopg's
        pipeline mode), run by PostgreSQL in order; every row of each, in order (none
        for a statement that returns no rows). The first failing statement raises and
        the ones after it do not run. With `commit`, the transaction `begin` opened ends
        with them: COMMIT travels in the same round trip."""
        if commit and not (self._begin or self.began):
            raise ValueError("batch(commit=True) ends a transaction of statements(transaction=True); there is none")
        cursors = []
        async with self._conn.pipeline():
            if self._begin:
                self._begin, self.began = False, True
                await self._conn.execute("BEGIN")
            for statement, params in statements:
                cursor = self._conn.cursor(row_factory=namedtuple_row)
                cursors.append(await cursor.execute(statement.sql, params))
            if commit:
                await self._conn.execute("COMMIT")
        if commit:  # the pipeline synced without an error: committed
            self.began = False
        return [await cursor.fetchall() if cursor.description is not None else [] for cursor in cursors]

    async def end(self, *, commit: bool) -> None:
        """COMMIT (or ROLLBACK) the transaction `begin` opened, if a statement opened it
        and `batch(commit=True)` did not end it. A connection left mid-statement (by
        cancellation) is left as it is: the pool closes it."""
        if not self.began:
            return
        self.began = False
        if commit:
            await self._conn.execute("COMMIT")
        elif self._conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            await self._conn.execute("ROLLBACK")


async def as_statements(conn: Connection | StatementConnection) -> StatementConnection:
    """Statements on this connection, inside its transaction if it is in one: storage
    functions written as Statements serve SQLAlchemy transactions too."""
    if isinstance(conn, StatementConnection):
        return conn
    return StatementConnection((await conn.get_raw_connection()).driver_connection)


@dataclass(slots=True)
class _Kept:
    """A connection lent by the pool and kept for `statements()`."""

    lent: PoolProxiedConnection
    conn: psycopg.AsyncConnection
    lent_at: float  # time.time(), the clock of the pool's invalidation time


class Database:
    """The process's connection pool."""

    def __init__(
        self, database_url: str, *, pool_size: int = 10, max_overflow: int = 10, recycle_seconds: float = 1800
    ) -> None:
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(database_url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=30,  # a burst waits for a connection rather than failing
            pool_recycle=recycle_seconds,
            connect_args={"connect_timeout": 5, "application_name": "saaslitellm-server"},
            # An error's message would end with its statement's parameters, and unexpected
            # errors are logged: parameters may hold secrets (sealed ones) and tenants' data.
            hide_parameters=True,
        )
        # After a lost connection SQLAlchemy invalidates the whole pool (every connection
        # older than the failure is replaced on its next checkout), so the pool recovers
        # from a PostgreSQL restart by itself; no pre-ping round trip on every checkout.
        self._pool = self.engine.sync_engine.pool
        metrics.DB_POOL_MAX.set(pool_size + max_overflow)
        for name in ("connect", "checkout", "checkin", "close", "close_detached", "invalidate"):
            event.listen(self._pool, name, self._pool_changed)
        # Same pool; the connection runs each statement in its own implicit transaction.
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._kept: list[_Kept] = []  # idle, in autocommit; the newest last
        self._pool_shown_soon: asyncio.TimerHandle | None = None  # the pool's gauges will be set (_pool_changed)
        self._keep_at_most = pool_size
        self._recycle_seconds = recycle_seconds

    def _pool_changed(self, *_: object) -> None:
        """The pool's gauges show it as it was at most POOL_GAUGES_EVERY seconds before:
        set on every change, a request's statements took a connection and gave it back,
        each time writing both gauges (to shared memory, under a lock, with several
        processes), 0.05 ms of each call's latency."""
        if self._pool_shown_soon is not None:
            return
        try:
            self._pool_shown_soon = asyncio.get_running_loop().call_later(POOL_GAUGES_EVERY, self._show_pool)
        except RuntimeError:  # not on the loop (the pool disposed of at exit): at once
            self._show_pool()

    def _show_pool(self) -> None:
        self._pool_shown_soon = None
        kept = len(self._kept)
        metrics.pool_state(self._pool.checkedout() - kept, self._pool.checkedin() + kept)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A connection inside BEGIN ... COMMIT (ROLLBACK on any exception)."""
        async with _observed():
            await self._yield_kept()
            async with self.engine.begin() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Connection]:
        """A connection whose every statement is its own transaction: for use cases that
        need one statement (or several independent ones). It saves the BEGIN and COMMIT
        round trips, which on the hot path cost as much as the statement itself."""
        async with _observed():
            await self._yield_kept()
            async with self._autocommit_engine.connect() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def statements(self, *, transaction: bool = False) -> AsyncIterator[StatementConnection]:
        """A connection of the pool, used through psycopg directly: in autocommit mode, or
        with `transaction` inside BEGIN ... COMMIT (ROLLBACK on any exception), BEGIN
        sent with the block's first statement or `batch()`.

        The pool's own rules hold (size, overflow, timeout, recycling, metrics). A
        connection left broken or inside a transaction (a statement interrupted by
        cancellation) is closed, never reused; one given back to the pool goes back as it
        was lent (autocommit off)."""
        async with _observed():
            kept = await self._take()
            try:
                if transaction:
                    statements = StatementConnection(kept.conn, begin=True)
                    try:
                        yield statements
                    except BaseException:
                        with contextlib.suppress(psycopg.Error):  # the connection is then closed
                            await statements.end(commit=False)
                        raise
                    await statements.end(commit=True)
                else:
                    yield StatementConnection(kept.conn)
            finally:
                await self._after_use(kept)

    async def _take(self) -> _Kept:
        """The most recently used kept connection, or one lent by the pool. Kept ones lent
        before the pool last saw a lost connection are given back to be replaced."""
        while self._kept:
            kept = self._kept.pop()
            if kept.lent_at > self._pool._invalidate_time:
                self._pool_changed()
                return kept
            await self._give_back(kept, invalidate=True)
        return await self._lend()

    async def _lend(self) -> _Kept:
        lent = await greenlet_spawn(self._pool.connect)
        conn: psycopg.AsyncConnection = lent.driver_connection
        try:
            await conn.set_autocommit(True)
        except BaseException:
            await greenlet_spawn(lent.invalidate)
            await greenlet_spawn(lent.close)
            raise
        return _Kept(lent, conn, time.time())

    async def _after_use(self, kept: _Kept) -> None:
        conn = kept.conn
        if conn.broken or conn.info.transaction_status is not TransactionStatus.IDLE:
            if conn.broken:  # the others are as old: most likely broken too
                # SQLAlchemy's own reaction to a lost connection: the pool replaces every
                # connection older than now on its next checkout (a private method of
                # the pinned SQLAlchemy; tests/integration/test_statements.py covers it).
                self._pool._invalidate(kept.lent, _checkin=False)
                while self._kept:
                    await self._give_back(self._kept.pop(0), invalidate=True)
            await self._give_back(kept, invalidate=True)
        elif time.time() - kept.lent_at > self._recycle_seconds:
            await self._give_back(kept)
        elif len(self._kept) + self._pool.checkedin() < self._keep_at_most:
            self._kept.append(kept)
            self._pool_changed()
        else:
            # More idle connections than the pool's size: the pool closes the ones its
            # queue has no room for (overflow), as it would without this list.
            await self._give_back(kept)
            while self._kept and len(self._kept) + self._pool.checkedin() > self._keep_at_most:
                await self._give_back(self._kept.pop(0))

    async def _give_back(self, kept: _Kept, *, invalidate: bool = False) -> None:
        """Return a connection to the pool as it was lent (or its slot, if invalidated)."""
        try:
            if invalidate:
                await greenlet_spawn(kept.lent.invalidate)
            else:
                await kept.conn.set_autocommit(False)
        finally:
            await greenlet_spawn(kept.lent.close)

    async def _yield_kept(self) -> None:
        """Before a SQLAlchemy checkout: if the pool has no idle connection but some are
        kept for statements(), give the oldest back, so the checkout does not wait."""
        if self._kept and self._pool.checkedin() == 0:
            await self._give_back(self._kept.pop(0))

    async def ping(self) -> None:
        async with self.autocommit() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        while self._kept:
            await self._give_back(self._kept.pop())
        await self.engine.dispose()
        if self._pool_shown_soon is not None:
            self._pool_shown_soon.cancel()
        self._show_pool()


_SPAN = {"db.system": "postgresql"}


@contextlib.asynccontextmanager
async def _observed() -> AsyncIterator[None]:
    """Around every use of a connection: a trace span and a duration metric, and lost or
    refused connections turned into UNAVAILABLE (DATABASE_UNAVAILABLE) so clients retry;
    so are collisions with another transaction, as CONFLICTING_CHANGE: not an outage."""
    started = time.perf_counter()
    with tracing.client_span("db.transaction", _SPAN) if tracing.enabled else contextlib.nullcontext():
        try:
            yield
        except (
            exc.OperationalError,
            exc.InterfaceError,
            psycopg.OperationalError,
            psycopg.InterfaceError,
            TimeoutError,
        ) as error:
            if _is_data_error(error):
                raise
            if (sqlstate := _sqlstate(error)) in _CONFLICTS:
                metrics.DB_CONFLICTS.labels(sqlstate).inc()
                raise DomainError(
                    Kind.UNAVAILABLE,
                    Reason.CONFLICTING_CHANGE,
                    "the request collided with a concurrent change and was rolled back: nothing was changed; "
                    "send it again",
                ) from error
            metrics.DB_UNAVAILABLE.labels("connection").inc()
            raise DomainError(
                Kind.UNAVAILABLE, Reason.DATABASE_UNAVAILABLE, "the database is unavailable; retry shortly"
            ) from error
        except exc.TimeoutError as error:  # pool exhausted
            metrics.DB_UNAVAILABLE.labels("pool").inc()
            raise DomainError(
                Kind.UNAVAILABLE, Reason.DATABASE_UNAVAILABLE, "the server is busy; retry shortly"
            ) from error
        finally:
            metrics.DB_TRANSACTION_SECONDS.observe(time.perf_counter() - started)


async def again_if_lost(read: Callable[[], Awaitable[T]]) -> T:
    """`read()`, and once more if the connection it took was lost (an idle backend ended,
    a restart the pool had not seen yet): the pool then replaces its connections, so the
    second one is new. Only for what is safe to run twice (reads, idempotent touches):
    the first may have run before the connection was lost."""
    try:
        return await read()
    except DomainError as error:
        if error.reason != Reason.DATABASE_UNAVAILABLE:
            raise
    return await read()


# libpq's connection parameters that hold a secret: those its PQconndefaults marks to be
# hidden ("*"), and the SCRAM keys, which authenticate as a password does. Any of them may
# come in a URL's query (`?password=...`).
_SECRET_PARAMETERS = frozenset(
    {"password", "sslpassword", "oauth_client_secret", "scram_client_key", "scram_server_key"}
)


def redacted(database_url: str) -> str:
    """The URL without its password or any other secret, for log lines. A URL whose
    credentials do not parse as such (an @ left in a password) has all of them hidden, up
    to its last @. Secret query parameters keep their name and lose their value."""
    authority = url_authority(database_url)
    if authority.count("@") > 1:
        scheme = database_url.partition("://")[0]
        shown = f"{scheme}://***@{authority.rpartition('@')[2]}{database_url.partition('://')[2][len(authority) :]}"
    else:
        shown = make_url(sqlalchemy_url(database_url)).render_as_string(hide_password=True)
    return _without_secret_parameters(shown)


def _without_secret_parameters(url: str) -> str:
    """`url` with the value of each secret query parameter replaced by `***`. A name is
    compared as libpq and SQLAlchemy read it (percent-decoded; `+` a space or not) and
    whatever its case: a misspelt one is refused at connection but still not shown."""
    head, mark, query = url.partition("?")
    if not mark:
        return url
    pairs = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        if equals and {unquote(name).lower(), unquote_plus(name).lower()} & _SECRET_PARAMETERS:
            pair = f"{name}=***"
        pairs.append(pair)
    return f"{head}?{'&'.join(pairs)}"


def wait_until_reachable(database_url: str, timeout: float) -> None:
    """Block until PostgreSQL accepts a connection, retrying with capped exponential
    backoff and saying so in the log; raise the last error after `timeout` seconds."""
    engine = create_engine(sqlalchemy_url(database_url), connect_args={"connect_timeout": 5})
    deadline = time.monotonic() + timeout
    delay = 0.1
    attempt = 0
    try:
        while True:
            attempt += 1
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                if attempt > 1:
                    log.info("the database is reachable after %d attempts", attempt)
                return
            except exc.DBAPIError as error:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.error(
                        "the database at %s is still unreachable after %.0f s; giving up",
                        redacted(database_url),
                        timeout,
                    )
                    raise
                wait = min(delay * random.uniform(0.8, 1.2), remaining)
                log.warning(
                    "waiting for the database at %s (attempt %d, retrying in %.1f s): %s",
                    redacted(database_url),
                    attempt,
                    wait,
                    type(error.orig).__name__ if error.orig is not None else type(error).__name__,
                )
                time.sleep(wait)
                delay = min(delay * 2, 5.0)
    finally:
        engine.dispose()


# deadlock_detected, serialization_failure: PostgreSQL rolled the transaction back, which
# may simply run again (OperationalError too, but the connection is good).
_CONFLICTS = frozenset({"40P01", "40001"})


def _sqlstate(error: BaseException) -> str:
    """The error's SQLSTATE; none when the connection was lost with it."""
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return ""
        error = error.orig
    return getattr(error, "sqlstate", None) or ""


def _is_data_error(error: BaseException) -> bool:
    """OperationalError also covers e.g. lock timeouts, which are not outages (when the
    connection itself is still good)."""
    sqlstate = _sqlstate(error)
    return sqlstate.startswith("55") or sqlstate.startswith("57014")
