"""CPU time and memory of the processes under test, and of the machine as a whole.

CPU seconds per component (server processes, Envoy, LiteLLM, the fake provider,
PostgreSQL, this load generator) are read from /proc through psutil before and after a
measurement window. Divided by the requests done in the window they give CPU
milliseconds per request: what each part of the path costs, and a figure that stays
steady when the machine is shared (wall-clock rates do not). The machine's total busy
time tells how saturated it was and how much of it went to processes outside the
benchmark.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field

import psutil


@dataclass
class Component:
    """A named group of processes; `with_children` adds their descendants (PostgreSQL backends)."""

    name: str
    pids: list[int]
    with_children: bool = False

    def processes(self) -> list[psutil.Process]:
        found = []
        for pid in self.pids:
            try:
                process = psutil.Process(pid)
                found.append(process)
                if self.with_children:
                    found.extend(process.children(recursive=True))
            except psutil.Error:
                continue
        return found

    def cpu_by_pid(self) -> dict[int, float]:
        times = {}
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                cpu = process.cpu_times()
                times[process.pid] = cpu.user + cpu.system
        return times

    def rss_bytes(self) -> list[int]:
        """RSS of each root process (children are not added: shared memory would be counted twice)."""
        sizes = []
        for pid in self.pids:
            with contextlib.suppress(psutil.Error):
                sizes.append(psutil.Process(pid).memory_info().rss)
        return sizes


@dataclass
class CpuSnapshot:
    by_component: dict[str, dict[int, float]]
    machine_busy: float
    machine_total: float
    machine_steal: float


def machine_cpu() -> tuple[float, float, float]:
    """Busy, total and stolen CPU seconds of the whole machine since boot (all cores).

    Steal is time the hypervisor gave this VM's cores to someone else: a sign of noise
    that no process here can see."""
    times = psutil.cpu_times()
    total = times.user + times.nice + times.system + times.idle
    total += sum(getattr(times, f, 0.0) for f in ("iowait", "irq", "softirq", "steal"))
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total, getattr(times, "steal", 0.0)


@dataclass
class Monitor:
    """Components to watch; `snapshot()` before and `usage()` after a window."""

    components: list[Component] = field(default_factory=list)

    def add(self, name: str, pids: list[int | None], *, with_children: bool = False) -> None:
        self.components.append(Component(name, [p for p in pids if p], with_children))

    def snapshot(self) -> CpuSnapshot:
        busy, total, steal = machine_cpu()
        return CpuSnapshot({c.name: c.cpu_by_pid() for c in self.components}, busy, total, steal)

    def usage(self, before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
        """CPU seconds used by each component between two snapshots, plus `machine` (all
        busy time on every core), `machine_capacity` (cores x seconds) and `other` (busy
        time of processes that are not part of the benchmark, steal excluded)."""
        used: dict[str, float] = {}
        for name, now in after.by_component.items():
            then = before.by_component.get(name, {})
            # A process that appeared during the window counts from zero.
            used[name] = sum(max(0.0, cpu - then.get(pid, 0.0)) for pid, cpu in now.items())
        used["machine"] = after.machine_busy - before.machine_busy
        used["machine_capacity"] = after.machine_total - before.machine_total
        used["machine_steal"] = after.machine_steal - before.machine_steal
        ours = sum(v for k, v in used.items() if not k.startswith("machine"))
        used["other"] = max(0.0, used["machine"] - used["machine_steal"] - ours)
        return used


class RssSampler:
    """Samples the RSS of some components every `interval` seconds in a thread; keeps the peak."""

    def __init__(self, components: list[Component], interval: float = 0.25) -> None:
        self._components = components
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak: dict[str, int] = {}

    def _sample(self) -> None:
        for component in self._components:
            sizes = component.rss_bytes()
            if sizes:
                self.peak[component.name] = max(self.peak.get(component.name, 0), max(sizes))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def own_pid() -> int:
    return os.getpid()
