"""A PostgreSQL LISTEN connection that survives restarts and network failures.

One per process, outside the pool (a pooled connection cannot wait for notifications).
The owner learns when the connection is up or down (`on_state`), because notifications
sent while it was down are lost: a cache that relies on them must not trust itself then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

# Notice a silently dead connection (no FIN, e.g. a network partition) within about 20 s.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 2}
APPLICATION_NAME = "saaslitellm-listener"


def conninfo(database_url: str) -> str:
    """psycopg takes the plain `postgresql://` URL; accept SQLAlchemy's dialect prefix too."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql://" + database_url[len(prefix) :]
    return database_url


class Listener:
    """LISTEN on each channel of `channels`, calling its callback with the payload of
    every notification, and `on_state(connected)` whenever the connection comes up or
    goes down. Callbacks run on the event loop and must not block."""

    def __init__(
        self,
        database_url: str,
        channels: dict[str, Callable[[str], None]],
        on_state: Callable[[bool], None],
        *,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self._conninfo = conninfo(database_url)
        self._channels = channels
        self._on_state = on_state
        self._max_backoff = max_backoff_seconds
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self.connected = False
        self.connections = 0  # how many times it has connected
        self.backend_pid: int | None = None

    async def start(self, timeout: float = 5.0) -> None:
        """Start listening; wait (up to `timeout`) for the first connection."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="listen")
        with contextlib.suppress(TimeoutError):
            await self.wait_connected(after=0, timeout=timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_connected(self, *, after: int, timeout: float) -> None:
        """Wait until the listener has connected more than `after` times and is up."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.connected and self.connections > after)

    async def _set(self, connected: bool, pid: int | None = None) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        self.backend_pid = pid
        if connected:
            self.connections += 1
        self._on_state(connected)
        async with self._changed:
            self._changed.notify_all()

    def _deliver(self, channel: str, payload: str) -> None:
        try:
            self._channels[channel](payload)
        except Exception:  # a bad notification must not kill the listener
            log.exception("handling a notification on %s failed", channel)

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, application_name=APPLICATION_NAME, connect_timeout=5, **_KEEPALIVES
                ) as conn:
                    for channel in self._channels:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    await self._set(True, conn.info.backend_pid)
                    backoff = 0.05
                    async for notification in conn.notifies():
                        self._deliver(notification.channel, notification.payload)
            except asyncio.CancelledError:
                await self._set(False)
                raise
            except Exception as error:  # any failure: mark down, retry with backoff
                log.warning("LISTEN connection lost (%s); reconnecting", type(error).__name__)
            await self._set(False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)
