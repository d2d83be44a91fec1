"""A call's record that moves no money commits without waiting for PostgreSQL's flush to
disk (asynchronous commit), in its own transaction only: the connection's next
transaction, a job's completion say, waits for its flush again, and so flushes the
record with it. A record that moves money always waits.

What a commit waits for is PostgreSQL's `synchronous_commit` at commit time, which
nothing outside the transaction can see afterwards; these tests read it inside the
record's transaction (run in an explicit one) and on the same connection after it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import text

from devstack.postgres import Postgres
from server.domain.credits import Balance, BudgetMode, Rates, record_is_money
from server.domain.jobs import CallRecord, CallStatus
from server.services.auth import TeamPrincipal
from server.services.jobs import JobUseCases
from server.storage import jobs as job_store
from server.storage import ledger
from server.storage.database import Database, Statement
from tests.conftest import migrated_database, unique

SETTING = Statement("SELECT current_setting('synchronous_commit') AS value, pg_backend_pid() AS pid")


@pytest.fixture(scope="module")
async def db(pg: Postgres) -> AsyncIterator[Database]:
    async with migrated_database(pg, "async_records", pool_size=1, max_overflow=0) as database:
        yield database  # one connection: every block below runs on the same backend


async def new_job(db: Database) -> tuple[TeamPrincipal, uuid.UUID]:
    org, team = unique("org"), unique("team")
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO organizations (organization_id, name) VALUES (:o, 'O')"), {"o": org})
        await conn.execute(
            text("INSERT INTO teams (team_id, organization_id, credits_allocated) VALUES (:t, :o, 10)"),
            {"t": team, "o": org},
        )
        balance = Balance(allocated=10, used=0, reserved=0)
        await ledger.append(conn, team_id=team, kind="allocation", amount=10, balance_after=balance, actor="test")
    principal = TeamPrincipal(team_id=team, key_id=uuid.uuid4(), key_prefix="sk-test")
    job = await JobUseCases(db).create(
        principal, team_id=team, job_type="analysis", user_id="", metadata={}, idempotency_key=""
    )
    return principal, job.job_id


def call(principal: TeamPrincipal, job_id: uuid.UUID, cost: str) -> CallRecord:
    return CallRecord(
        call_id=uuid.uuid4(),
        job_id=job_id,
        team_id=principal.team_id,
        status=CallStatus.SUCCEEDED,
        model_alias="ChatAgent",
        served_model="gpt-4o-mini",
        prompt_tokens=10,
        completion_tokens=5,
        provider_cost_usd=Decimal(cost),
        billed_cost_usd=Decimal(cost),
        cost_source="reported",
    )


async def setting_after(db: Database) -> tuple[str, int]:
    async with db.statements() as conn:
        row = await conn.first(SETTING, {})
    return row.value, row.pid


@pytest.mark.parametrize("durable, inside", [(False, "off"), (True, "on")])
async def test_a_record_commits_asynchronously_only_when_not_durable_and_only_its_own_transaction(
    db: Database, durable: bool, inside: str
):
    principal, job_id = await new_job(db)
    before, pid = await setting_after(db)
    assert before == "on"  # PostgreSQL's default: every commit waits for its flush
    async with db.statements(transaction=True) as conn:
        await job_store.record_call(conn, call(principal, job_id, "0.0001"), None, touch_job=False, durable=durable)
        row = await conn.first(SETTING, {})
    assert (row.value, row.pid) == (inside, pid)
    assert await setting_after(db) == ("on", pid)  # the next transaction on the connection waits again


async def test_an_asynchronous_record_on_its_own_leaves_the_connection_waiting_and_counts_at_completion(
    db: Database,
):
    principal, job_id = await new_job(db)
    async with db.statements() as conn:  # autocommit: the statement is its own transaction
        for cost in ("0.0001", "0.0002"):
            await job_store.record_call(conn, call(principal, job_id, cost), None, touch_job=True, durable=False)
        row = await conn.first(SETTING, {})
    assert row.value == "on"
    view = await JobUseCases(db).complete(principal, str(job_id), status="completed", metadata={}, error_message="")
    assert (view.costs.total_calls, view.costs.provider_cost_usd, view.job.credits_charged) == (2, Decimal("0.0003"), 1)


@pytest.mark.parametrize(
    "mode, in_job_limits, money",
    [
        (BudgetMode.JOB_BASED, False, False),  # one credit per completed job, whatever the calls
        (BudgetMode.JOB_BASED, True, True),  # counted in the job's calls or cost limits
        (BudgetMode.CONSUMPTION_TOKENS, False, True),  # the charge adds up the calls' tokens
        (BudgetMode.CONSUMPTION_USD, False, True),  # ... or their cost
    ],
)
def test_only_records_that_move_no_money_may_commit_asynchronously(mode: BudgetMode, in_job_limits: bool, money: bool):
    assert record_is_money(Rates(mode=mode), in_job_limits=in_job_limits) is money
