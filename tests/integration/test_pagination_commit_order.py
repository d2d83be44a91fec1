"""Paging newest first never skips an entry that commits while a reader pages.

The audit log and a team's job list page by a key taken before commit was ordered the
same way as commits; a transaction that took its key, then committed after a reader had
paged past that key, was never shown to that reader. These tests hold such transactions
open on their own connections, read a page, commit, and read the rest: what a pass shows
must be an unbroken run of the list as it ends up (newer entries may come before the
pass's first page, none may fall between the entries it showed).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from alembic import command
from sqlalchemy import text

from devstack.postgres import Postgres
from server.domain import audit, pagination
from server.domain.credits import Balance
from server.domain.errors import DomainError, Kind
from server.services.admin import AdminUseCases
from server.services.admin_jobs import AdminJobUseCases
from server.services.auth import TeamPrincipal
from server.services.jobs import JobUseCases
from server.storage import audit as audit_store
from server.storage import credits as credit_store
from server.storage import jobs as job_store
from server.storage import ledger
from server.storage.database import Database, Statement
from tests.conftest import unique
from tests.integration.test_admin_migration import _alembic, scratch_engine

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


# ------------------------------------------------------------------------------- jobs


async def new_team(db: Database) -> str:
    org, team = unique("org"), unique("team")
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO organizations (organization_id, name) VALUES (:o, 'O')"), {"o": org})
        await conn.execute(
            text("INSERT INTO teams (team_id, organization_id, credits_allocated) VALUES (:t, :o, 100)"),
            {"t": team, "o": org},
        )
        balance = Balance(allocated=100, used=0, reserved=0)  # its ledger holds what it has
        await ledger.append(conn, team_id=team, kind="allocation", amount=100, balance_after=balance, actor="test")
    return team


def principal(team: str) -> TeamPrincipal:
    return TeamPrincipal(team_id=team, key_id=uuid.uuid4(), key_prefix="sk-test")


async def create_job(db: Database, team: str, job_type: str) -> None:
    """As CreateJob does."""
    await JobUseCases(db).create(
        principal(team), team_id=team, job_type=job_type, user_id="", metadata={}, idempotency_key=""
    )


class LateCreation:
    """A transaction that begins now (fixing its now(), the job's created_at), creates a
    job as CreateJob does when told to (`create`), then stays open until `commit`: a
    creation that waited its turn for the team's row, or did other work first. CreateJob
    creates a job in one statement, or (with an idempotency key) reserves then inserts."""

    def __init__(self, db: Database, team: str, job_type: str, *, one_statement: bool) -> None:
        self._db, self._team, self._job_type, self._one_statement = db, team, job_type, one_statement
        self._started, self._go, self._created, self._commit = (asyncio.Event() for _ in range(4))
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> LateCreation:
        self._task = asyncio.create_task(self._run())
        await self._until(self._started)
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._go.set()
        self._commit.set()
        await asyncio.gather(self._task, return_exceptions=True)

    async def create(self) -> None:
        """Returns once the job is inserted, uncommitted."""
        self._go.set()
        await self._until(self._created)

    async def commit(self) -> None:
        self._commit.set()
        await asyncio.wait_for(self._task, 10)

    async def _until(self, event: asyncio.Event) -> None:
        waiting = asyncio.create_task(event.wait())
        await asyncio.wait([waiting, self._task], timeout=10, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._task.done():
            self._task.result()  # raise what failed
        assert event.is_set()

    async def _run(self) -> None:
        if self._one_statement:
            async with self._db.statements(transaction=True) as conn:
                await conn.first(Statement("SELECT now() AS started"), {})
                self._started.set()
                await self._go.wait()
                job = await job_store.create_reserving(
                    conn,
                    team_id=self._team,
                    job_type=self._job_type,
                    user_id="",
                    metadata={},
                    credits=1,
                    actor="t",
                    reason="t",
                )
                assert job is not None
                self._created.set()
                await self._commit.wait()
            return
        async with self._db.transaction() as conn:
            await conn.execute(text("SELECT now()"))
            self._started.set()
            await self._go.wait()
            balance = await credit_store.reserve(conn, self._team, 1)
            assert balance is not None
            job = await job_store.insert_job(
                conn,
                team_id=self._team,
                job_type=self._job_type,
                user_id="",
                metadata={},
                credits_reserved=1,
                idempotency_key=unique("key"),
            )
            assert job is not None
            await ledger.append(
                conn,
                team_id=self._team,
                job_id=job.job_id,
                kind="reservation",
                amount=0,
                reserved_delta=1,
                balance_after=balance,
                actor="t",
                reason="t",
            )
            self._created.set()
            await self._commit.wait()


@pytest.mark.parametrize("one_statement", [True, False], ids=["one-statement", "idempotent-path"])
async def test_a_job_whose_transaction_began_earlier_but_committed_later_is_never_skipped(
    db: Database, one_statement: bool
):
    team = await new_team(db)
    listing = AdminJobUseCases(db)
    for n in range(3):
        await create_job(db, team, f"old-{n}")

    async with LateCreation(db, team, "late", one_statement=one_statement) as late:
        await create_job(db, team, "meanwhile")  # begins after "late", commits before it
        await late.create()

        async def read_page(token: str) -> tuple[list, str]:
            page = await listing.list_team_jobs(team, None, "", 2, token)
            return [view.job.job_type for view in page.items], page.next_page_token

        seen = await read_pass(read_page, late.commit)  # "late" commits after the first page

    final = [view.job.job_type for view in (await listing.list_team_jobs(team, None, "", 100, "")).items]
    assert sorted(final) == ["late", "meanwhile", "old-0", "old-1", "old-2"]
    assert_unbroken(seen, final)


async def test_a_committed_job_is_listed_at_once_while_another_creation_is_open(db: Database):
    """Nothing is hidden to keep pages whole: a job created by another team, or one of
    this team's still open, holds back no committed job."""
    team, other = await new_team(db), await new_team(db)
    listing = AdminJobUseCases(db)
    async with LateCreation(db, other, "elsewhere", one_statement=True) as elsewhere:
        await elsewhere.create()
        await create_job(db, team, "mine")
        page = await listing.list_team_jobs(team, None, "", 10, "")
        assert [view.job.job_type for view in page.items] == ["mine"]


async def test_a_page_token_of_the_old_order_is_refused_as_invalid(db: Database):
    team = await new_team(db)
    filters = {"team_id": team, "status": "", "job_type": ""}
    old = {"a": ["2026-11-27T10:00:00+00:00", str(uuid.uuid4())], "f": pagination.fingerprint(filters)}
    token = base64.urlsafe_b64encode(json.dumps(old).encode()).decode().rstrip("=")
    with pytest.raises(DomainError) as refused:
        await AdminJobUseCases(db).list_team_jobs(team, None, "", 2, token)
    assert refused.value.kind is Kind.INVALID_ARGUMENT


# ------------------------------------------------------------------------- migration 0011


def test_0011_numbers_existing_jobs_in_their_old_list_order_and_downgrades(pg: Postgres):
    ids = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(1, 5)]
    with scratch_engine(pg) as engine:
        with engine.begin() as conn:
            _alembic(conn, command.upgrade, "0010")
            conn.execute(
                text(
                    "INSERT INTO organizations (organization_id, name) VALUES ('o', 'O');"
                    "INSERT INTO teams (team_id, organization_id) VALUES ('t', 'o'), ('u', 'o');"
                    "INSERT INTO jobs (job_id, team_id, job_type, status, created_at) VALUES"
                    f"  ('{ids[0]}', 't', 'a', 'completed', '2026-01-02'),"
                    f"  ('{ids[1]}', 'u', 'b', 'completed', '2026-01-01'),"
                    f"  ('{ids[2]}', 't', 'c', 'pending', '2026-01-01'),"
                    f"  ('{ids[3]}', 't', 'd', 'failed', '2026-01-01')"
                )
            )
            _alembic(conn, command.upgrade, "0011")
            numbered = conn.execute(text("SELECT job_id::text FROM jobs ORDER BY creation_seq")).scalars().all()
            assert numbered == [ids[1], ids[2], ids[3], ids[0]]  # created_at, then job_id
            fresh = conn.execute(
                text(
                    "INSERT INTO jobs (job_id, team_id, job_type, status) VALUES (gen_random_uuid(), 't', 'e', 'pending')"
                    " RETURNING creation_seq"
                )
            ).scalar()
            assert fresh == 5
            enabled = conn.execute(
                text("SELECT tgenabled FROM pg_trigger WHERE tgname = 'usage_jobs_updated'")
            ).scalar()
            assert enabled == "O"  # the rollup's trigger is on again
            _alembic(conn, command.downgrade, "0010")
            assert conn.execute(text("SELECT to_regclass('ix_jobs_team_id_created_at')")).scalar() is not None
            _alembic(conn, command.upgrade, "head")
