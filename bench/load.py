"""The load generator: closed-loop workers for throughput, round-robin rounds for latency.

Throughput: `concurrency` coroutines each repeat one operation back to back (a closed
loop: a new request starts when the previous one ends). Requests that finish inside the
measurement window count; the window starts after a warm-up, so connections, pools and
caches are warm. When the window ends the workers finish what they started, so every job
a flow created is completed before the accounting is checked.

Latency: the paths to compare take turns at concurrency 1, so a burst of noise on this
shared machine hits every path alike rather than the one that happened to be measured at
that moment. With `block` > 1 each turn is a block of requests on one path, back to back,
and the first of each block is not kept: every kept request then follows a request of its
own path, as a client at concurrency 1 sees it, and never another path's after-work (the
LiteLLM proxy keeps working for about a millisecond after it answers, which one-by-one
turns charged to whichever path came next).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.procs import Monitor, RssSampler
from bench.stats import Summary

Operation = Callable[[int], Awaitable[object]]


@dataclass
class Window:
    """What one throughput window measured."""

    name: str
    concurrency: int
    seconds: float = 0.0
    completed: int = 0
    errors: int = 0
    errors_outside: int = 0  # failed during warm-up or while the workers wound down
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def cpu_ms_per_op(self, component: str) -> float:
        return 1000 * self.cpu.get(component, 0.0) / self.completed if self.completed else float("nan")

    def add(self, other: Window) -> None:
        self.seconds += other.seconds
        self.completed += other.completed
        self.errors += other.errors
        self.errors_outside += other.errors_outside
        self.latencies += other.latencies
        for key, value in other.cpu.items():
            self.cpu[key] = self.cpu.get(key, 0.0) + value
        self.first_error = self.first_error or other.first_error

    @property
    def latency(self) -> Summary:
        return Summary.of(self.latencies)


async def throughput(
    name: str,
    operation: Operation,
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    monitor: Monitor,
    sampler: RssSampler | None = None,
    on_start: Callable[[], object] | None = None,
    on_stop: Callable[[], object] | None = None,
) -> Window:
    """Run `operation(worker_index)` from `concurrency` workers; measure `seconds` after `warmup`."""
    window = Window(name, concurrency)
    measuring = False
    stop = False

    async def worker(index: int) -> None:
        while not stop:
            started = time.perf_counter()
            try:
                await operation(index)
            except Exception as error:  # counted, and the first one is reported
                if measuring:
                    window.errors += 1
                else:
                    window.errors_outside += 1
                window.first_error = window.first_error or f"{type(error).__name__}: {error}"[:300]
                continue
            if measuring:
                window.completed += 1
                window.latencies.append(time.perf_counter() - started)

    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    try:
        await asyncio.sleep(warmup)
        if on_start is not None:
            on_start()
        before = monitor.snapshot()
        began = time.perf_counter()
        measuring = True
        if sampler is not None:
            with sampler:
                await asyncio.sleep(seconds)
        else:
            await asyncio.sleep(seconds)
        measuring = False
        window.seconds = time.perf_counter() - began
        window.cpu = monitor.usage(before, monitor.snapshot())
        if on_stop is not None:
            on_stop()
    finally:
        stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
    return window


@dataclass
class Samples:
    """Latencies of one path at concurrency 1."""

    name: str
    latencies: list[float] = field(default_factory=list)
    results: list[object] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    requests: int = 0  # made, kept or not (warm-up, a block's first, errors)

    @property
    def summary(self) -> Summary:
        return Summary.of(self.latencies)


async def interleaved(
    paths: dict[str, Callable[[], Awaitable[object]]],
    *,
    rounds: int,
    warmup_rounds: int,
    block: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Samples]:
    """`rounds` kept requests per path, in turns of `block` requests on one path (the first
    of a block is not kept when `block` > 1, see above); the turns of the first
    `warmup_rounds` rounds are not kept."""
    samples = {name: Samples(name) for name in paths}
    kept_per_turn = block - 1 if block > 1 else 1
    total = warmup_rounds + -(-rounds // kept_per_turn)
    step = max(1, total // 5)
    for round_index in range(total):
        for name, call in paths.items():
            for index in range(block):
                samples[name].requests += 1
                started = time.perf_counter()
                try:
                    result = await call()
                except Exception as error:
                    samples[name].errors += 1
                    samples[name].first_error = samples[name].first_error or f"{type(error).__name__}: {error}"[:300]
                    continue
                kept = round_index >= warmup_rounds and (block == 1 or index > 0)
                if kept and len(samples[name].latencies) < rounds:
                    samples[name].latencies.append(time.perf_counter() - started)
                    samples[name].results.append(result)
        if progress is not None and (round_index + 1) % step == 0 and round_index + 1 < total:
            progress(f"{round_index + 1}/{total} rounds")
    return samples
