"""Work outside the request that asked for it.

`Background`: work that must finish even if the request that started it is cancelled.
Recording a call after the client went away is the main case: the handler's task is
being cancelled, so the write runs in its own task, which the server awaits on shutdown.

`Periodic`: the server's own housekeeping (expiring abandoned jobs, folding usage into
the rollup, archiving by retention), every few seconds in every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from server.domain.errors import DomainError

log = logging.getLogger(__name__)
T = TypeVar("T")


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
        if task.cancelled() or (error := task.exception()) is None:
            return
        if isinstance(error, DomainError):  # a refusal, its caller's to handle (if still there): no fault
            log.warning("background work refused: %s", error)
        else:
            log.error("background task failed", exc_info=error)

    async def run_to_completion(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Await `coro` in its own task; a cancellation of the caller does not stop it."""
        return await asyncio.shield(self.spawn(coro))

    async def run_to_the_end(
        self, work: Coroutine[Any, Any, T], *, if_abandoned: Callable[[T], Awaitable[object]]
    ) -> T:
        """Await `work` in its own task, which runs to its end even if the caller is
        cancelled meanwhile; then `if_abandoned(result)` undoes what it did for a caller
        who is gone (gives back a place, fails a job just made). A refusal (DomainError)
        reaches the caller and is not logged as a failure of the task."""
        task = self.spawn(_refusal_as_value(work))
        try:
            outcome = await asyncio.shield(task)
        except asyncio.CancelledError:
            self.spawn(_undo_once_done(task, if_abandoned))
            raise
        if isinstance(outcome, _Refused):
            raise outcome.error
        return outcome

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


@dataclass(frozen=True)
class _Refused:
    error: DomainError


async def _refusal_as_value(work: Coroutine[Any, Any, T]) -> T | _Refused:
    try:
        return await work
    except DomainError as refusal:
        return _Refused(refusal)


async def _undo_once_done(task: asyncio.Task, if_abandoned: Callable[[Any], Awaitable[object]]) -> None:
    try:
        outcome = await task
    except Exception:  # a failure is logged by its own task
        return
    if not isinstance(outcome, _Refused):  # a refusal took nothing
        await if_abandoned(outcome)


class Periodic:
    """Runs `work()` every `interval` seconds in a background task until `stop()` (not at
    all when `interval` is 0). A failure is logged and retried next round: the database
    may be down. When `work()` returns True (not merely something truthy) there is more to
    do and it runs again at once; `wake()` cuts the wait before the next round short.
    `jitter` spreads the rounds of several processes (0.2: each wait is 80-120% of the
    interval); `wait_first` waits one interval before the first round."""

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[object]],
        interval: float,
        *,
        jitter: float = 0.0,
        wait_first: bool = False,
    ) -> None:
        self._name = name
        self._work = work
        self._interval = interval
        self._jitter = jitter
        self._wait_first = wait_first
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Run the next round now rather than after the interval (a round already
        running is followed by another at once)."""
        self._woken.set()

    async def _run(self) -> None:
        if self._wait_first:
            await self._wait()
        while True:
            self._woken.clear()
            try:
                again = await self._work()
            except Exception:
                log.warning("%s failed; retrying in %.0f s", self._name, self._interval, exc_info=True)
                again = False
            if again is not True:
                await self._wait()

    async def _wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._woken.wait(), self._interval * random.uniform(1 - self._jitter, 1 + self._jitter)
            )
