"""The benchmark harness still works: its measurement functions, a few requests each,
against a real stack (Envoy, a profiled server process, the fake provider, PostgreSQL
through the counting proxy). No timing is asserted: only that every instrument measures
what it claims to (requests checked, streams complete, round trips counted, accounting
read back), so `make bench` cannot rot silently. LiteLLM is left out to keep this fast;
the benchmark calls it with the same code as the fake provider.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import psycopg
import pytest

from bench import floor_server, invariants
from bench.invariants import Book
from bench.load import interleaved, throughput
from bench.pgwire import CountingProxy, statement_shape, writes
from bench.procs import Monitor
from bench.profile import ProfiledStack, breakdown
from bench.report import render
from bench.runner import QUICK, Bench, StackUnderTest, _stream_summary, _summary, _window_summary
from bench.stats import Summary, percentile
from bench.targets import Grpc, Provider, Rest, Tenant, create_tenant, stream_prompt
from devstack.postgres import Postgres
from devstack.stack import Ports, StackConfig
from tests.conftest import ADMIN_KEY


@pytest.fixture(scope="module")
def database(pg: Postgres) -> Iterator[tuple[str, str]]:
    name = f"saas_bench_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name)
    yield name, url
    pg.drop_database(name)


@pytest.fixture(scope="module")
def proxy(database: tuple[str, str]) -> Iterator[CountingProxy]:
    counting = CountingProxy(database[1]).start()
    yield counting
    counting.stop()


@pytest.fixture(scope="module")
def stack(proxy: CountingProxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProfiledStack]:
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("bench-stack"),
        ports=Ports.free(),
        admin_key=ADMIN_KEY,
        database_url=proxy.url(),
        with_litellm=False,
        health_interval="0.5s",
        log=lambda line: None,
    )
    with ProfiledStack(config) as running:
        yield running


@pytest.fixture(scope="module")
def book() -> Book:
    """What the client saw succeed against the module's stack, across its tests (one database)."""
    return Book()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def test_measurement_functions_against_a_stack(stack, proxy, database, client, book):
    tenant = await create_tenant(client, stack.api_url, ADMIN_KEY, credits=100)
    rest, grpc = Rest(stack.api_url, tenant), await Grpc(stack.grpc_target, tenant).open()
    fake = Provider(stack.fake_url)
    try:
        job = await rest.create_job(client)
        book.jobs_created += 1

        async def rest_call():
            await rest.call(client, job)
            book.calls += 1

        async def grpc_call():
            await grpc.call(job)
            book.calls += 1

        # Latency: every path once per round, warm-up rounds dropped.
        samples = await interleaved(
            {"fake": lambda: fake.call(client), "rest": rest_call, "grpc": grpc_call}, rounds=3, warmup_rounds=1
        )
        assert {name: (len(s.latencies), s.errors) for name, s in samples.items()} == {
            "fake": (3, 0),
            "rest": (3, 0),
            "grpc": (3, 0),
        }
        assert _summary(samples["rest"].summary)["n"] == 3

        # Streaming: every chunk the fake sends arrives as its own event, and the stream ends with `done`.
        text = stream_prompt(chunks=3, delay_ms=0)
        timings = [await fake.stream(client, text), await rest.stream(client, job, text), await grpc.stream(job, text)]
        book.calls += 2
        assert [len(t.content) for t in timings] == [3, 3, 3]
        assert all(t.done and t.first_event is not None for t in timings)

        # Round trips: a call is one record, however many statements the server needs around it.
        before = proxy.snapshot()
        await rest_call()
        one_call = proxy.snapshot() - before
        # The record is one statement (an INSERT, or a WITH ... INSERT INTO llm_calls).
        assert sum(n for name, n in one_call.statements.items() if name.endswith(" llm_calls")) == 1
        assert one_call.round_trips >= one_call.statement_count >= 1 and one_call.commits >= 1

        # Throughput: each worker finishes the request it started, so each completed at least one.
        monitor = Monitor()
        monitor.add("server", [child.pid for child in stack.servers])
        jobs = [await rest.create_job(client) for _ in range(2)]
        book.jobs_created += 2

        async def calls(index: int) -> None:
            await rest.call(client, jobs[index])
            book.calls += 1

        calls_before = book.calls
        window = await throughput("smoke", calls, concurrency=2, seconds=0.2, warmup=0.05, monitor=monitor)
        assert window.errors == 0 and book.calls - calls_before >= 2
        assert window.cpu["server"] >= 0 and window.cpu["machine_capacity"] > 0
        assert set(_window_summary(window)["cpu_ms_per_op"]) == {"server", "other"}

        # Accounting read back from the database matches what the client saw.
        for job_id in [job, *jobs]:
            await rest.complete(client, job_id)
            book.jobs_completed += 1
        report = invariants.check("smoke", database[1], book)
        assert report.ok, report.failures()
    finally:
        await grpc.close()

    mode = dataclasses.replace(QUICK, stream_chunks=3, stream_delay_ms=0)
    data = {
        "latency": {name: _summary(s.summary) for name, s in samples.items()},
        "streaming": {"chunks": 3, "delay_ms": 0, "paths": {"fake": _stream_summary(timings[:1], mode)}},
        "throughput": {"direct_rest_calls": _window_summary(window)},
        "accounting": {"smoke": report.as_dict()},
    }
    assert "Targets (issue 8)" in render(data)


async def test_the_floor_server_forwards_calls_and_streams(stack):
    """The floor the report compares our server with answers like it (content, every chunk,
    the final event); it checks no key, so any tenant will do."""
    target = await asyncio.to_thread(floor_server.start_beside, stack)
    floor = await Grpc(target, Tenant("no-team", "no-key", "no-alias")).open()
    try:
        assert await floor.call("no-job")
        timing = await floor.stream("no-job", stream_prompt(3, 5))
        assert len(timing.content) == 3 and timing.done
    finally:
        await floor.close()


async def test_the_runner_operations_keep_the_books(stack, proxy, database, client, book, tmp_path):
    """The benchmark's own flows, call loops, settling and database counting, on one stack."""
    bench = Bench(
        dataclasses.replace(QUICK, counted_jobs=1, calls_per_counted_job=1), database_url=None, data_dir=tmp_path
    )
    bench.client = client
    tenant = await create_tenant(client, stack.api_url, ADMIN_KEY, credits=100)
    under_test = StackUnderTest("smoke", stack, database[1], database[0], book, tenant=tenant)
    before = dataclasses.replace(book)
    under_test.rest = Rest(stack.api_url, tenant)
    under_test.grpc = await Grpc(stack.grpc_target, tenant).open()
    try:
        await bench._rest_flow(under_test)
        await bench._grpc_flow(under_test)
        calls = await bench._calls_operation(under_test, "grpc", 2)
        await calls(0)
        await calls(1)
        per_operation = await bench._count_operations(under_test, proxy)
        await bench._settle_open_jobs()
    finally:
        await under_test.grpc.close()
    assert set(per_operation) == {"create_job", "llm_call", "llm_call_stream", "get_job", "complete_job"}
    shapes = per_operation["llm_call"]["statement_shapes"]
    assert sum(n for name, n in shapes.items() if name.endswith(" llm_calls")) == 1
    added = [getattr(book, f) - getattr(before, f) for f in ("calls", "jobs_created", "jobs_completed", "errors")]
    assert added == [6, 5, 5, 0]
    report = invariants.check("smoke", database[1], book)
    assert report.ok, report.failures()


async def test_the_profiled_server_profiles_a_window(stack, client, book):
    tenant = await create_tenant(client, stack.api_url, ADMIN_KEY, credits=10)
    rest = Rest(stack.api_url, tenant)
    job = await rest.create_job(client)
    server = stack.servers[0]
    path = stack.profile_path(stack.grpc_ports[0])
    book.jobs_created += 1
    server.signal(signal.SIGUSR1)
    await rest.call(client, job)
    book.calls += 1
    server.signal(signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while not path.exists():  # the server renames the finished profile into place
        assert time.monotonic() < deadline, "no profile written"
        await asyncio.sleep(0.02)
    shares = breakdown(path)
    assert abs(sum(shares.values()) - 1) < 1e-6
    assert any(name.startswith("our code:") for name in shares)
    await rest.complete(client, job)
    book.jobs_completed += 1


@pytest.fixture
def quiet_database(pg: Postgres) -> Iterator[tuple[str, str]]:
    """A database nothing else connects to, so its statistics are ours alone."""
    name = f"saas_bench_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name)
    yield name, url
    pg.drop_database(name)


def test_the_proxy_counts_what_postgres_counts(pg, quiet_database):
    name, url = quiet_database
    admin = pg.admin_url
    proxy = CountingProxy(url).start()
    try:
        stats = "SELECT xact_commit, xact_rollback, sessions FROM pg_stat_database WHERE datname = %s"
        with psycopg.connect(admin, autocommit=True) as conn:
            before = conn.execute(stats, (name,)).fetchone()
        with psycopg.connect(proxy.url()) as conn:
            for value in range(3):  # 3 explicit transactions, the last one writing
                conn.execute("SELECT %s", (value,)).fetchone()
                if value == 2:
                    conn.execute("CREATE TEMP TABLE w (a int)")
                    conn.execute("INSERT INTO w VALUES (%s)", (value,))
                conn.commit()
            conn.execute("SELECT 1")
            conn.rollback()  # 1 rolled back
            conn.autocommit = True
            conn.execute("SELECT 2")  # 1 implicit transaction
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1 / 0")  # 1 implicit, rolled back
        counts = proxy.snapshot()
        with psycopg.connect(admin, autocommit=True) as conn:
            deadline = time.monotonic() + 10
            while conn.execute("SELECT numbackends FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()[0]:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            after = conn.execute(stats, (name,)).fetchone()
    finally:
        proxy.stop()
    assert (counts.connections, counts.commits, counts.rollbacks, counts.errors) == (1, 4, 2, 1)
    assert counts.statements["BEGIN"] == 4 and counts.statements["COMMIT"] == 3
    assert counts.writing == 1
    # PostgreSQL agrees; it also counts each connection start as a committed transaction.
    assert after[2] - before[2] == counts.connections
    assert after[1] - before[1] == counts.rollbacks
    assert after[0] - before[0] >= counts.commits + counts.connections


def test_the_proxy_counts_a_pipeline_as_the_waits_it_makes(quiet_database):
    proxy = CountingProxy(quiet_database[1]).start()
    try:
        with psycopg.connect(proxy.url(), autocommit=True) as conn:
            conn.execute("SELECT 1").fetchone()
            one_statement = proxy.snapshot()
            with conn.pipeline():  # three statements, one Sync: one wait
                cursors = [conn.execute("SELECT %s::int", (n,)) for n in range(3)]
            assert [c.fetchone()[0] for c in cursors] == [0, 1, 2]
            batch = proxy.snapshot()
            with conn.pipeline():
                assert conn.execute("SELECT 7").fetchone()[0] == 7  # a Flush: answered without ReadyForQuery
                later = [conn.execute("SELECT %s::int", (n,)) for n in range(2)]  # then one Sync
            assert [c.fetchone()[0] for c in later] == [0, 1]
            flushed = proxy.snapshot()
    finally:
        proxy.stop()
    assert (one_statement.round_trips, one_statement.statement_count) == (1, 1)
    assert ((batch - one_statement).round_trips, (batch - one_statement).statement_count) == (1, 3)
    assert ((flushed - batch).round_trips, (flushed - batch).statement_count) == (2, 3)


def test_statistics_and_statement_names():
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 99) == 5
    summary = Summary.of([0.001, 0.002, 0.003])
    assert (summary.count, summary.p50_ms) == (3, 2.0)
    assert statement_shape("SELECT teams.x FROM teams WHERE teams.team_id = $1") == "SELECT teams"
    assert statement_shape("UPDATE jobs SET status = $1") == "UPDATE jobs"
    assert statement_shape("INSERT INTO llm_calls (a) VALUES ($1)") == "INSERT llm_calls"
    assert statement_shape("SELECT a FROM jobs WHERE x FOR UPDATE") == "SELECT jobs FOR UPDATE"
    assert statement_shape("begin") == "BEGIN"
    assert writes("WITH a AS (UPDATE teams SET x = 1 RETURNING *) INSERT INTO llm_calls SELECT * FROM a")
    assert writes("SELECT a FROM jobs WHERE x FOR UPDATE") and writes("delete from jobs")
    assert not writes("SELECT a FROM model_aliases JOIN teams ON true") and not writes("COMMIT")
