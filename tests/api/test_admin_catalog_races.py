"""A group's aliases and an alias's groups changed at the same time: both changes lock a
group and an alias, and take them in one order (groups, then aliases), so one waits for
the other instead of deadlocking. A deadlock or serialization failure PostgreSQL reports
anyway is a conflict to retry, not a database outage."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as pb
from server.domain.errors import DomainError, Kind, Reason
from server.storage import catalog
from tests.api.admin_support import new_alias, new_group
from tests.api.conftest import ADMIN

WAITERS = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
)


async def until_waiting(app, count: int) -> None:
    """Until `count` backends of the tests' database wait for a lock: the requests started
    have reached the lock the test holds (or one a request waiting on it holds)."""
    deadline = time.monotonic() + 10
    while True:
        async with app.db.transaction() as conn:
            if (await conn.execute(WAITERS)).scalar() >= count:
                return
        assert time.monotonic() < deadline, f"fewer than {count} requests ever waited for a lock"
        await asyncio.sleep(0.01)


def conflicts(sqlstate: str) -> float:
    return REGISTRY.get_sample_value("saaslitellm_db_conflicts_total", {"sqlstate": sqlstate}) or 0.0


def outages() -> float:
    return REGISTRY.get_sample_value("saaslitellm_db_unavailable_total", {"cause": "connection"}) or 0.0


@pytest.mark.parametrize("how", ["add", "set"])
async def test_a_groups_aliases_and_an_aliass_groups_changed_at_once_never_deadlock(app, admin, how):
    """The interleaving that deadlocked: the group's change holds the group and waits for
    the alias while the alias's change holds the alias and waits for the group. The test
    holds the group, so that the group's change queues for it first and the alias's change
    comes second; then lets both go."""
    group, alias = await new_group(admin), await new_alias(admin)
    if how == "add":
        group_change = admin.AddModelAccessGroupModels(
            pb.AddModelAccessGroupModelsRequest(group_name=group, model_aliases=[alias]), metadata=ADMIN
        )
        alias_change = admin.AddModelAccessGroups(
            pb.AddModelAccessGroupsRequest(model_alias=alias, access_groups=[group]), metadata=ADMIN
        )
    else:
        group_change = admin.SetModelAccessGroupModels(
            pb.SetModelAccessGroupModelsRequest(group_name=group, model_aliases=[alias]), metadata=ADMIN
        )
        alias_change = admin.SetModelAccessGroups(
            pb.SetModelAccessGroupsRequest(model_alias=alias, access_groups=[group]), metadata=ADMIN
        )
    before = outages()
    async with app.db.transaction() as holder:
        await catalog.lock_group(holder, group)
        first = asyncio.ensure_future(group_change)
        await until_waiting(app, 1)
        second = asyncio.ensure_future(alias_change)
        await until_waiting(app, 2)
    results = await asyncio.gather(first, second, return_exceptions=True)

    for outcome in results:
        assert not isinstance(outcome, BaseException), (
            outcome.details() if isinstance(outcome, grpc.aio.AioRpcError) else outcome
        )
    got_group = await admin.GetModelAccessGroup(pb.GetModelAccessGroupRequest(group_name=group), metadata=ADMIN)
    got_alias = await admin.GetModel(pb.GetModelRequest(model_alias=alias), metadata=ADMIN)
    assert list(got_group.model_aliases) == [alias] and list(got_alias.access_groups) == [group]
    assert outages() == before


async def test_a_deadlock_is_a_conflict_to_retry_not_an_outage(app, admin):
    """Two transactions that lock two rows in opposite orders: PostgreSQL ends one of them
    (deadlock_detected), which its caller gets as CONFLICTING_CHANGE, and no outage is
    counted."""
    g1, g2 = await new_group(admin), await new_group(admin)
    g2_held = asyncio.Event()
    before, deadlocks = outages(), conflicts("40P01")

    async def g1_then_g2() -> None:
        async with app.db.transaction() as conn:
            await catalog.lock_group(conn, g1)
            await g2_held.wait()
            await until_waiting(app, 1)  # the other transaction waits for g1
            await catalog.lock_group(conn, g2)

    async def g2_then_g1() -> None:
        async with app.db.transaction() as conn:
            await catalog.lock_group(conn, g2)
            g2_held.set()
            await catalog.lock_group(conn, g1)

    results = await asyncio.gather(g1_then_g2(), g2_then_g1(), return_exceptions=True)

    failed = [outcome for outcome in results if isinstance(outcome, BaseException)]
    assert len(failed) == 1, results
    (error,) = failed
    assert isinstance(error, DomainError), error
    assert (error.kind, error.reason) == (Kind.UNAVAILABLE, Reason.CONFLICTING_CHANGE)
    assert outages() == before and conflicts("40P01") == deadlocks + 1  # counted as what it is


async def test_a_serialization_failure_is_a_conflict_to_retry_not_an_outage(app, admin):
    """A REPEATABLE READ transaction that updates a row changed since its snapshot
    (serialization_failure) is CONFLICTING_CHANGE, and no outage is counted."""
    group = await new_group(admin)
    before, failures = outages(), conflicts("40001")
    with pytest.raises(DomainError) as caught:
        async with app.db.transaction() as conn:
            await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            await catalog.get_group(conn, group)  # the snapshot
            async with app.db.transaction() as other:
                await catalog.update_group(other, group, {"description": "changed meanwhile"})
            await catalog.update_group(conn, group, {"description": "changed from the snapshot"})
    assert (caught.value.kind, caught.value.reason) == (Kind.UNAVAILABLE, Reason.CONFLICTING_CHANGE)
    assert outages() == before and conflicts("40001") == failures + 1
