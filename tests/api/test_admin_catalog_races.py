"""A group's aliases and an alias's groups changed at the same time: both changes lock a
group and an alias, and take them in one order (groups, then aliases), so one waits for
the other instead of deadlocking."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as pb
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
