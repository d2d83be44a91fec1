"""The server's housekeeping loop (expiry, usage rollup, retention): failures are retried,
a round that says there is more runs again at once, wake() cuts the wait short, an
interval of 0 means never."""

from __future__ import annotations

import asyncio

from server.services.background import Periodic


async def test_a_failed_round_is_retried_and_a_round_with_more_to_do_runs_again():
    rounds: list[int] = []
    finished = asyncio.Event()

    async def work() -> bool:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("the database is down")
        if len(rounds) < 4:
            return True  # more to do
        finished.set()
        return False

    periodic = Periodic("test", work, 0.01)
    periodic.start()
    await asyncio.wait_for(finished.wait(), 5)
    await periodic.stop()
    assert rounds == [0, 1, 2, 3]


async def test_an_interval_of_zero_never_runs_and_stop_is_harmless():
    async def work() -> None:
        raise AssertionError("must not run")

    periodic = Periodic("test", work, 0)
    periodic.start()
    await asyncio.sleep(0.02)
    await periodic.stop()


async def test_only_true_means_more_to_do():
    rounds = 0
    first = asyncio.Event()

    async def work() -> int:
        nonlocal rounds
        rounds += 1
        first.set()
        return 5_000  # a count, not "more to do": the next round waits the interval

    periodic = Periodic("test", work, 30)
    periodic.start()
    await asyncio.wait_for(first.wait(), 5)
    await asyncio.sleep(0.05)
    await periodic.stop()
    assert rounds == 1


async def test_wake_runs_the_next_round_without_waiting_the_interval():
    rounds = asyncio.Queue()

    async def work() -> None:
        await rounds.put(None)

    periodic = Periodic("test", work, 3600)  # an hour: only wake() can bring a second round
    periodic.start()
    await asyncio.wait_for(rounds.get(), 5)
    periodic.wake()
    await asyncio.wait_for(rounds.get(), 5)
    await periodic.stop()
