"""Work that must finish even if the request that started it is cancelled.

Recording a call after the client went away is the main case: the handler's task is
being cancelled, so the write runs in its own task, which the server awaits on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def run_to_completion(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Await `coro` in its own task; a cancellation of the caller does not stop it."""
        return await asyncio.shield(self.spawn(coro))

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
