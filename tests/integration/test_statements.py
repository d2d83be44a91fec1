"""`Database.statements()`: the hot path's statements run by psycopg on connections lent by
the SQLAlchemy pool. A connection comes back as it was lent; one left mid-statement by a
cancelled request is closed, not reused; a statement's parameters are bound, never spliced."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from devstack.postgres import Postgres
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


async def backend_pid(db: Database) -> int:
    async with db.statements() as conn:
        return (await conn.first(Statement("SELECT pg_backend_pid() AS pid"), {})).pid


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
