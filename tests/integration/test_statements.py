"""`Database.statements()`: the hot path's statements run by psycopg on connections lent by
the SQLAlchemy pool. A connection comes back as it was lent; one left mid-statement by a
cancelled request is closed, not reused; a statement's parameters are bound, never spliced.
Idle connections are kept for the next block rather than checked in after each one, within
the pool's rules: its size, SQLAlchemy's own users, recycling, and a server that went away."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, text

from bench.pgwire import CountingProxy
from devstack.postgres import Postgres
from server.domain.errors import DomainError, Reason
from server.observability import metrics
from server.storage import database
from server.storage.database import Database, Statement, as_statements


def test_statements_take_text_style_parameters_and_leave_casts_and_percent_signs_alone():
    statement = Statement("SELECT :a::text || '%' AS x, CAST(:b AS jsonb), '{}'::jsonb WHERE y = :a")
    assert statement.sql == "SELECT %(a)s::text || '%%' AS x, CAST(%(b)s AS jsonb), '{}'::jsonb WHERE y = %(a)s"


@pytest.fixture(scope="module")
async def db(pg: Postgres) -> AsyncIterator[Database]:
    name = f"saas_statements_{uuid.uuid4().hex[:10]}"
    database = Database(pg.create_database(name), pool_size=1, max_overflow=0)
    yield database
    await database.close()
    pg.drop_database(name)


@contextlib.asynccontextmanager
async def connection_pid(db: Database, *, sqlalchemy: bool) -> AsyncIterator[int]:
    """A connection held for the block, through statements() or SQLAlchemy; its backend pid."""
    if sqlalchemy:
        async with db.autocommit() as conn:
            yield (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
    else:
        async with db.statements() as conn:
            yield (await conn.first(Statement("SELECT pg_backend_pid() AS pid"), {})).pid


async def backend_pid(db: Database) -> int:
    async with connection_pid(db, sqlalchemy=False) as pid:
        return pid


async def test_a_lent_connection_goes_back_to_the_pool_in_autocommit_off_and_is_reused(db: Database):
    pid = await backend_pid(db)
    async with db.statements() as conn:
        row = await conn.first(Statement("SELECT :word::text AS word, 2 + :n AS n"), {"word": "it's; DROP", "n": 40})
        assert (row.word, row.n) == ("it's; DROP", 42)
    assert await backend_pid(db) == pid  # one connection in the pool, the same one
    async with db.transaction() as conn:  # SQLAlchemy gets it back as it lent it: one transaction per block
        first = (await conn.execute(text("SELECT pg_current_xact_id()::text"))).scalar()
        second = (await conn.execute(text("SELECT pg_current_xact_id()::text"))).scalar()
    assert first == second


async def test_a_connection_left_inside_a_transaction_is_closed_not_reused(db: Database):
    before = await backend_pid(db)
    async with db.statements() as conn:
        await conn.run(Statement("BEGIN"), {})
    assert await backend_pid(db) != before  # the pool (size 1) had to open a new one


async def test_a_statement_cut_by_cancellation_leaves_the_pool_working(db: Database):
    async def slow() -> None:
        async with db.statements() as conn:
            await conn.run(Statement("SELECT pg_sleep(:s)"), {"s": 30})

    task = asyncio.create_task(slow())
    admin = Database(db.engine.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    try:
        while True:  # until the statement runs on the server
            async with admin.autocommit() as conn:
                running = (
                    await conn.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(%'")
                    )
                ).scalar()
            if running:
                break
            await asyncio.sleep(0.01)
    finally:
        await admin.close()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with db.statements() as conn:  # whether the connection was kept or replaced, it is idle and works
        row = await conn.first(Statement("SELECT 1 AS one, pg_current_xact_id_if_assigned() AS xact"), {})
    assert (row.one, row.xact) == (1, None)


async def test_a_statements_transaction_commits_at_the_end_and_rolls_back_on_error(db: Database):
    async with db.statements() as conn:
        await conn.run(Statement("CREATE TABLE IF NOT EXISTS tx_probe (x int)"), {})
    async with db.statements(transaction=True) as conn:
        await conn.run(Statement("INSERT INTO tx_probe VALUES (:x)"), {"x": 1})
        await conn.run(Statement("INSERT INTO tx_probe VALUES (:x)"), {"x": 2})
    with pytest.raises(RuntimeError):
        async with db.statements(transaction=True) as conn:
            await conn.run(Statement("INSERT INTO tx_probe VALUES (:x)"), {"x": 3})
            raise RuntimeError("changed my mind")
    async with db.statements() as conn:
        rows = await conn.all(Statement("SELECT x FROM tx_probe ORDER BY x"), {})
    assert [row.x for row in rows] == [1, 2]


async def test_statements_on_a_sqlalchemy_transaction_share_it(db: Database):
    async with db.statements() as conn:
        await conn.run(Statement("CREATE TABLE IF NOT EXISTS shared_probe (x int)"), {})
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            statements = await as_statements(conn)
            await statements.run(Statement("INSERT INTO shared_probe VALUES (1)"), {})
            await conn.execute(text("INSERT INTO shared_probe VALUES (2)"))
            raise RuntimeError("roll both back")
    async with db.transaction() as conn:
        await (await as_statements(conn)).run(Statement("INSERT INTO shared_probe VALUES (3)"), {})
    async with db.statements() as conn:
        rows = await conn.all(Statement("SELECT x FROM shared_probe"), {})
    assert [row.x for row in rows] == [3]


@contextlib.asynccontextmanager
async def fresh_database(pg: Postgres, **options: Any) -> AsyncIterator[tuple[Database, str]]:
    name = f"saas_kept_{uuid.uuid4().hex[:10]}"
    database = Database(pg.create_database(name), **options)
    try:
        yield database, name
    finally:
        await database.close()
        pg.drop_database(name)


def server_connections(pg: Postgres, database: str) -> list[int]:
    """Backend pids of the server's connections to `database`, as PostgreSQL sees them."""
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'saaslitellm-server'",
            (database,),
        ).fetchall()
    return sorted(pid for (pid,) in rows)


async def hold_at_once(db: Database, count: int, *, sqlalchemy: bool = False) -> list[int]:
    """`count` connections held at the same time, then given back; their backend pids."""
    all_open, release = asyncio.Event(), asyncio.Event()
    pids: list[int] = []

    async def hold() -> None:
        async with connection_pid(db, sqlalchemy=sqlalchemy) as pid:
            pids.append(pid)
            if len(pids) == count:
                all_open.set()
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(count)]
    await all_open.wait()
    release.set()
    await asyncio.gather(*tasks)
    return pids


async def test_a_kept_connection_serves_the_next_block_without_a_pool_checkout(pg: Postgres):
    async with fresh_database(pg, pool_size=2, max_overflow=0) as (db, _):
        checkouts: list[object] = []
        event.listen(db.engine.sync_engine.pool, "checkout", lambda *args: checkouts.append(args))
        pids = {await backend_pid(db) for _ in range(20)}
        assert len(pids) == 1
        assert len(checkouts) == 1


async def test_the_pool_gauges_are_not_written_on_every_checkout_and_checkin(pg: Postgres, monkeypatch):
    monkeypatch.setattr(database, "POOL_GAUGES_EVERY", 3600)
    async with fresh_database(pg, pool_size=2, max_overflow=0) as (db, _):
        shown: list[tuple[int, int]] = []
        monkeypatch.setattr(metrics, "pool_state", lambda in_use, idle: shown.append((in_use, idle)))
        for _ in range(10):
            await backend_pid(db)
        assert shown == []  # none of the 20 checkouts and checkins wrote them
    assert shown == [(0, 0)]  # a closed pool is shown at once


async def test_the_pool_gauges_catch_up_with_the_pool(pg: Postgres, monkeypatch):
    monkeypatch.setattr(database, "POOL_GAUGES_EVERY", 0.01)
    written: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    write = metrics.pool_state

    def pool_state(in_use: int, idle: int) -> None:
        write(in_use, idle)
        written.put_nowait((in_use, idle))

    monkeypatch.setattr(metrics, "pool_state", pool_state)
    async with fresh_database(pg, pool_size=2, max_overflow=0) as (db, _):
        async with db.statements():
            assert await asyncio.wait_for(written.get(), 5) == (1, 0)
        assert await asyncio.wait_for(written.get(), 5) == (0, 1)
        gauges = [
            REGISTRY.get_sample_value("saaslitellm_db_pool_connections", {"state": s}) for s in ("in_use", "idle")
        ]
        assert gauges == [0, 1]  # kept connections are shown as idle, not in use


async def test_sqlalchemy_users_get_a_kept_connection_back_instead_of_waiting_for_the_pool(pg: Postgres):
    async with fresh_database(pg, pool_size=1, max_overflow=0) as (db, name):
        pid = await backend_pid(db)  # the pool's only connection, now kept for statements()
        async with asyncio.timeout(5):  # the pool would make it wait its 30 s timeout
            async with db.autocommit() as conn:
                assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar() == pid
            async with db.transaction() as conn:
                assert (await conn.execute(text("SELECT current_setting('transaction_isolation')"))).scalar()
        assert await backend_pid(db) == pid
        assert server_connections(pg, name) == [pid]


async def test_no_more_connections_are_kept_than_the_pool_size_and_overflow_ones_are_closed(pg: Postgres):
    async with fresh_database(pg, pool_size=2, max_overflow=3) as (db, name):
        busy = await hold_at_once(db, 5)
        assert len(set(busy)) == 5
        left = server_connections(pg, name)
        assert len(left) == 2 and set(left) <= set(busy)
        assert {await backend_pid(db) for _ in range(6)} <= set(left)


async def test_a_broken_connection_fails_its_request_once_and_no_kept_one_is_used_again(pg: Postgres):
    async with fresh_database(pg, pool_size=3, max_overflow=0) as (db, _):
        kept = set(await hold_at_once(db, 3))
        with psycopg.connect(pg.admin_url, autocommit=True) as admin:  # the server side goes away
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (list(kept),))
        with pytest.raises(DomainError) as failed:
            await backend_pid(db)
        assert failed.value.reason is Reason.DATABASE_UNAVAILABLE
        after = await backend_pid(db)  # not another of the dead ones
        assert after not in kept


def terminate(pg: Postgres, pids: list[int]) -> None:
    with psycopg.connect(pg.admin_url, autocommit=True) as admin:  # the server side goes away
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))


async def test_after_every_connection_is_lost_one_request_fails_and_the_next_reconnects(pg: Postgres):
    async with fresh_database(pg, pool_size=4, max_overflow=0) as (db, name):
        opened = await hold_at_once(db, 4, sqlalchemy=True)  # four connections, idle in the pool
        kept = await hold_at_once(db, 2)  # two of them now kept, two still in the pool
        dead = server_connections(pg, name)
        assert sorted(opened) == dead and set(kept) < set(dead)
        terminate(pg, dead)
        with pytest.raises(DomainError) as failed:
            await backend_pid(db)
        assert failed.value.reason is Reason.DATABASE_UNAVAILABLE
        for _ in range(4):  # neither a kept nor a pooled dead connection is used again
            assert await backend_pid(db) not in dead
        async with db.autocommit() as conn:
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar() not in dead


async def test_kept_connections_are_replaced_when_sqlalchemy_saw_a_lost_connection(pg: Postgres):
    async with fresh_database(pg, pool_size=3, max_overflow=0) as (db, name):
        await hold_at_once(db, 2)  # kept; one slot left for SQLAlchemy
        dead = server_connections(pg, name)
        terminate(pg, dead)
        with pytest.raises(DomainError):  # SQLAlchemy's own user finds a lost connection...
            async with db.autocommit() as conn:
                await conn.execute(text("SELECT 1"))
                await conn.execute(text("SELECT pg_sleep(0)"))
        assert await backend_pid(db) not in dead  # ...and the hot path does not use its dead ones


async def test_a_connection_lent_longer_than_the_recycle_age_goes_back_and_is_recycled(pg: Postgres):
    async with fresh_database(pg, pool_size=1, max_overflow=0, recycle_seconds=0.2) as (db, _):
        first = await backend_pid(db)
        assert await backend_pid(db) == first  # kept
        await asyncio.sleep(0.25)  # the age is what is under test
        assert await backend_pid(db) == first  # used once more, then given back: too old
        assert await backend_pid(db) != first  # the pool replaced it


async def test_a_batch_is_one_round_trip_and_a_transaction_sends_begin_with_its_first_statements(pg: Postgres):
    name = f"saas_batch_{uuid.uuid4().hex[:10]}"
    proxy = CountingProxy(pg.create_database(name)).start()
    db = Database(proxy.url(), pool_size=1, max_overflow=0)
    try:
        async with db.statements() as conn:
            await conn.run(Statement("CREATE TABLE batch_probe (x int PRIMARY KEY)"), {})
        before = proxy.snapshot()
        async with db.statements(transaction=True) as conn:
            inserted, counted = await conn.batch(
                (Statement("INSERT INTO batch_probe VALUES (:x), (:y) RETURNING x"), {"x": 1, "y": 2}),
                (Statement("SELECT count(*) AS n FROM batch_probe"), {}),
            )
            assert ([row.x for row in inserted], counted[0].n) == ([1, 2], 2)
            await conn.run(Statement("INSERT INTO batch_probe VALUES (:x)"), {"x": 3})
        used = proxy.snapshot() - before
        assert (used.round_trips, used.commits, used.statement_count) == (3, 1, 5)  # BEGIN+2, 1, COMMIT
        assert used.statements["BEGIN"] == 1 and used.statements["COMMIT"] == 1

        async with db.statements(transaction=True) as conn:  # the last statement and COMMIT, one round trip
            await conn.first(Statement("SELECT 1 AS one"), {})
            before = proxy.snapshot()
            (done,) = await conn.batch(
                (Statement("INSERT INTO batch_probe VALUES (:x) RETURNING x"), {"x": 6}), commit=True
            )
            assert [row.x for row in done] == [6]
        used = proxy.snapshot() - before
        assert (used.round_trips, used.commits, used.statements["COMMIT"]) == (1, 1, 1)
        async with db.statements() as conn:
            # Outside such a block it would commit someone else's work.
            with pytest.raises(ValueError, match="there is none"):
                await conn.batch((Statement("SELECT 1"), {}), commit=True)
            await conn.run(Statement("DELETE FROM batch_probe WHERE x = 6"), {})

        before = proxy.snapshot()
        async with db.statements(transaction=True):
            pass  # no statement: nothing begun, nothing sent
        assert (proxy.snapshot() - before).round_trips == 0

        with pytest.raises(psycopg.errors.UniqueViolation):
            async with db.statements(transaction=True) as conn:
                await conn.batch(
                    (Statement("INSERT INTO batch_probe VALUES (:x)"), {"x": 4}),
                    (Statement("INSERT INTO batch_probe VALUES (:x)"), {"x": 1}),  # taken
                    (Statement("INSERT INTO batch_probe VALUES (:x)"), {"x": 5}),  # not run
                )
        async with db.statements() as conn:
            rows = await conn.all(Statement("SELECT x FROM batch_probe ORDER BY x"), {})
            assert [row.x for row in rows] == [1, 2, 3]  # rolled back as a whole
            assert (await conn.first(Statement("SELECT pg_current_xact_id_if_assigned() AS x"), {})).x is None
    finally:
        await db.close()
        proxy.stop()
        pg.drop_database(name)


async def test_a_failed_statements_error_does_not_carry_its_parameters(db):
    """The server logs an unexpected database error with its traceback: SQLAlchemy's
    message would end with the statement's parameters (a webhook's sealed secret was seen
    in a log this way), so the engine hides them; the SQL itself is still shown."""
    with pytest.raises(Exception) as caught:
        async with db.transaction() as conn:
            await conn.execute(text("SELECT CAST(:secret AS text), 1 / 0"), {"secret": "whsec_not-for-logs"})
    assert "division by zero" in str(caught.value) and "1 / 0" in str(caught.value)
    assert "whsec_not-for-logs" not in str(caught.value)
