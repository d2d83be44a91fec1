"""Paging newest first never skips an entry that commits while a reader pages.

The audit log paged by a key taken before commit: a transaction that took its key, then
committed after a reader had paged past that key, was never shown to that reader. These
tests hold such transactions open on their own connections, read a page, commit, and read
the rest: what a pass shows must be an unbroken run of the list as it ends up (newer
entries may come before the pass's first page, none may fall between the entries it
showed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text

from server.domain import audit
from server.services.admin import AdminUseCases
from server.storage import audit as audit_store
from server.storage.database import Database
from tests.conftest import unique

ACTOR = audit.Actor(name="admin")
Pass = Callable[[str], Awaitable[tuple[list, str]]]


@pytest.fixture(scope="module")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.close()


async def read_pass(read_page: Pass, between: Callable[[], Awaitable[None]]) -> list:
    """Every page from the first (each `read_page(token)` gives ids and the next token),
    running `between` after the first page."""
    seen, token = await read_page("")
    await between()
    while token:
        ids, token = await read_page(token)
        seen += ids
    return seen


def assert_unbroken(seen: list, final: list) -> None:
    assert seen, "the pass showed nothing"
    start = final.index(seen[0])
    assert seen == final[start:], f"the pass skipped {sorted(set(final[start:]) - set(seen))}"


async def blocked_or_done(db: Database, task: asyncio.Task, pid: asyncio.Future) -> None:
    """Until the task's transaction waits for a lock, or the task is done."""
    backend = await asyncio.wait_for(pid, 10)
    async with asyncio.timeout(10):
        while not task.done():
            async with db.autocommit() as conn:
                query = text("SELECT cardinality(pg_blocking_pids(:pid)) > 0")
                if (await conn.execute(query, {"pid": backend})).scalar():
                    return
            await asyncio.sleep(0.01)


# ----------------------------------------------------------------------------- audit log


async def test_an_audit_entry_committed_after_a_later_one_is_never_skipped(db: Database):
    resource = unique("team")
    admin = AdminUseCases(db, models=None, prices=None, key_changes=None)  # list_audit needs only the database

    async def append(action: str) -> None:
        async with db.transaction() as conn:
            await audit_store.append(conn, audit.record(ACTOR, action, audit.TEAM, resource))

    for n in range(3):
        await append(f"old-{n}")

    async with contextlib.AsyncExitStack() as held:
        # A takes its id first and stays open...
        conn = await held.enter_async_context(db.transaction())
        await audit_store.append(conn, audit.record(ACTOR, "held", audit.TEAM, resource))

        # ...B appends after it and commits, unless it has to wait for A.
        pid: asyncio.Future = asyncio.get_running_loop().create_future()

        async def later() -> None:
            async with db.transaction() as conn:
                pid.set_result((await conn.execute(text("SELECT pg_backend_pid()"))).scalar())
                await audit_store.append(conn, audit.record(ACTOR, "later", audit.TEAM, resource))

        task = asyncio.create_task(later())
        await blocked_or_done(db, task, pid)

        async def read_page(token: str) -> tuple[list, str]:
            page = await admin.list_audit(audit.TEAM, resource, 2, token)
            return [entry.action for entry in page.items], page.next_page_token

        async def commit_a() -> None:
            await held.aclose()
            await asyncio.wait_for(task, 10)

        seen = await read_pass(read_page, commit_a)

    final = [entry.action for entry in (await admin.list_audit(audit.TEAM, resource, 100, "")).items]
    assert sorted(final) == ["held", "later", "old-0", "old-1", "old-2"]
    assert_unbroken(seen, final)
