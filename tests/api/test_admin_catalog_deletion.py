"""Deleting a model access group or a model alias changes the teams that use it (a group
link removed, a default_model cleared): archived teams too, which are history and never
block the deletion, but whose record must not change without trace. Every team changed
has its own audit entry, before and after, in the deletion's transaction."""

from __future__ import annotations

import asyncio
import itertools

import grpc
from google.protobuf import json_format
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as pb
from server.storage import catalog
from tests.api.admin_support import details, fails, new_alias, new_group, new_org, new_team
from tests.api.conftest import ADMIN
from tests.conftest import unique

PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


async def trail(admin, resource_type: str, resource_id: str) -> list:
    """The resource's audit entries, newest first."""
    found = await admin.ListAuditEntries(
        pb.ListAuditEntriesRequest(resource_type=resource_type, resource_id=resource_id, page_size=100),
        metadata=ADMIN,
    )
    return list(found.entries)


def as_dict(struct) -> dict:
    return json_format.MessageToDict(struct)


async def archived_team(admin, org: str, *groups: str, **fields) -> str:
    """A team with history (its initial credits are a ledger entry), deleted: archived."""
    team = await new_team(admin, org, *groups, credits=1, **fields)
    result = await admin.DeleteTeam(pb.DeleteTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert result.outcome == pb.DeleteTeamResponse.ARCHIVED
    return team.team_id


async def get_team(admin, team_id: str):
    return await admin.GetTeam(pb.GetTeamRequest(team_id=team_id), metadata=ADMIN)


def assert_chained(entries: list) -> None:
    """Each entry of a team's trail starts from where the previous one left it (no change
    is missing, none recorded from a stale read)."""
    oldest_first = list(reversed(entries))
    for previous, entry in itertools.pairwise(oldest_first):
        assert as_dict(entry.before) == as_dict(previous.after), (previous.action, entry.action)


async def test_deleting_a_group_an_archived_team_had_is_recorded_on_the_team(admin):
    org, group = await new_org(admin), await new_group(admin)
    team_id = await archived_team(admin, org, group)
    request_id = unique("req")

    # Not forced: an archived team is history, it does not block the deletion...
    result = await admin.DeleteModelAccessGroup(
        pb.DeleteModelAccessGroupRequest(group_name=group), metadata=(*ADMIN, ("x-request-id", request_id))
    )
    # ...but the operator is told which teams changed, and each team's trail says how.
    assert list(result.affected_team_ids) == [team_id]
    assert list((await get_team(admin, team_id)).access_groups) == []
    entries = await trail(admin, "team", team_id)
    assert [e.action for e in entries] == ["model_access_group.delete", "archive", "create"]
    change, archive = entries[0], entries[1]
    assert change.actor == "admin" and change.request_id == request_id
    assert as_dict(change.before) == as_dict(archive.after)
    assert change.before["access_groups"] == [group] and change.after["access_groups"] == []
    assert change.before["status"] == change.after["status"] == "archived"
    (deletion,) = [e for e in await trail(admin, "model_access_group", group) if e.action == "delete"]
    assert as_dict(deletion.after) == {"affected_team_ids": [team_id]}
    assert deletion.audit_id < change.audit_id and deletion.request_id == request_id


async def test_deleting_the_default_model_of_an_archived_team_is_recorded_on_the_team(admin):
    org, group = await new_org(admin), await new_group(admin)
    alias = await new_alias(admin, group)
    team_id = await archived_team(admin, org, group, default_model=alias)

    result = await admin.DeleteModel(pb.DeleteModelRequest(model_alias=alias), metadata=ADMIN)
    assert list(result.affected_team_ids) == [team_id]
    assert (await get_team(admin, team_id)).default_model == ""
    entries = await trail(admin, "team", team_id)
    assert [e.action for e in entries] == ["model_alias.delete", "archive", "create"]
    change = entries[0]
    assert as_dict(change.before) == as_dict(entries[1].after)
    assert change.before["default_model"] == alias and change.after.fields["default_model"].HasField("null_value")
    assert list(change.before["allowed_model_aliases"]) == [alias] and list(change.after["allowed_model_aliases"]) == []
    (deletion,) = [e for e in await trail(admin, "model_alias", alias) if e.action == "delete"]
    assert as_dict(deletion.after) == {"affected_team_ids": [team_id]}


async def test_active_teams_still_need_force_and_every_team_changed_is_audited(admin):
    org, group = await new_org(admin), await new_group(admin)
    alias = await new_alias(admin, group)
    old = await archived_team(admin, org, group, default_model=alias)
    active = (await new_team(admin, org, group, default_model=alias)).team_id

    # Refused because of the active team only (the archived one is not counted), and
    # nothing changes.
    for refused in (
        admin.DeleteModelAccessGroup(pb.DeleteModelAccessGroupRequest(group_name=group), metadata=ADMIN),
        admin.DeleteModel(pb.DeleteModelRequest(model_alias=alias), metadata=ADMIN),
    ):
        error = await fails(refused, PRECONDITION, "RESOURCE_IN_USE")
        info, _ = details(error)
        assert info.metadata["teams"] == "1" and active in error.details() and old not in error.details()
    assert [e.action for e in await trail(admin, "team", old)] == ["archive", "create"]
    assert [e.action for e in await trail(admin, "team", active)] == ["create"]

    forced = await admin.DeleteModel(pb.DeleteModelRequest(model_alias=alias, force=True), metadata=ADMIN)
    assert list(forced.affected_team_ids) == sorted([old, active])
    forced = await admin.DeleteModelAccessGroup(
        pb.DeleteModelAccessGroupRequest(group_name=group, force=True), metadata=ADMIN
    )
    assert list(forced.affected_team_ids) == sorted([old, active])

    for team_id, history in ((old, ["archive", "create"]), (active, ["create"])):
        entries = await trail(admin, "team", team_id)
        assert [e.action for e in entries] == ["model_access_group.delete", "model_alias.delete", *history]
        assert_chained(entries)
        group_change, alias_change = entries[0], entries[1]
        assert alias_change.before["default_model"] == alias
        assert alias_change.after.fields["default_model"].HasField("null_value")
        assert group_change.before["access_groups"] == [group] and group_change.after["access_groups"] == []
        team = await get_team(admin, team_id)
        assert team.default_model == "" and list(team.access_groups) == []
    (deletion,) = [e for e in await trail(admin, "model_access_group", group) if e.action == "delete"]
    assert as_dict(deletion.after) == {"affected_team_ids": sorted([old, active])}


async def test_an_unused_group_or_alias_changes_no_team(admin):
    org, group, other = await new_org(admin), await new_group(admin), await new_group(admin)
    alias = await new_alias(admin, group)
    team_id = await archived_team(admin, org, other)  # neither the group nor the alias
    assert (
        list((await admin.DeleteModel(pb.DeleteModelRequest(model_alias=alias), metadata=ADMIN)).affected_team_ids)
        == []
    )
    result = await admin.DeleteModelAccessGroup(pb.DeleteModelAccessGroupRequest(group_name=group), metadata=ADMIN)
    assert list(result.affected_team_ids) == []
    (deletion,) = [e for e in await trail(admin, "model_access_group", group) if e.action == "delete"]
    assert not deletion.HasField("after")
    assert [e.action for e in await trail(admin, "team", team_id)] == ["archive", "create"]


async def test_team_trails_stay_exact_when_teams_change_during_a_group_deletion(admin):
    """Teams change while their group is deleted: each change, the deletion's included,
    is recorded from the state the previous one left, and none deadlocks with it."""
    for _ in range(5):
        org, group, spare = await new_org(admin), await new_group(admin), await new_group(admin)
        teams = [(await new_team(admin, org, group)).team_id for _ in range(4)]
        changes = []
        for team_id in teams:
            changes.append(
                admin.UpdateTeam(pb.UpdateTeamRequest(team_id=team_id, team_alias=unique("renamed")), metadata=ADMIN)
            )
            changes.append(  # names the group being deleted: locks the team, then the group
                admin.SetTeamAccessGroups(
                    pb.SetTeamAccessGroupsRequest(team_id=team_id, access_groups=[group, spare]), metadata=ADMIN
                )
            )
        deletion = admin.DeleteModelAccessGroup(
            pb.DeleteModelAccessGroupRequest(group_name=group, force=True), metadata=ADMIN
        )
        results = await asyncio.gather(deletion, *changes, return_exceptions=True)
        assert not isinstance(results[0], BaseException), results[0]
        for outcome in results[1:]:  # a change after the deletion may find the group gone
            if isinstance(outcome, grpc.aio.AioRpcError):
                assert outcome.code() == grpc.StatusCode.NOT_FOUND, outcome.details()
            else:
                assert not isinstance(outcome, BaseException), outcome
        assert list(results[0].affected_team_ids) == sorted(teams)
        for team_id in teams:
            entries = await trail(admin, "team", team_id)
            assert [e.action for e in entries].count("model_access_group.delete") == 1
            assert_chained(entries)
            team = await get_team(admin, team_id)
            assert group not in team.access_groups
            assert as_dict(entries[0].after)["access_groups"] == list(team.access_groups)


async def test_a_default_model_set_during_the_alias_deletion_never_deadlocks(admin):
    """UpdateTeam locks the team, then the alias it names; the deletion takes them in the
    same order, so one waits for the other, and each is recorded exactly."""
    for _ in range(5):
        org, group = await new_org(admin), await new_group(admin)
        alias = await new_alias(admin, group)
        teams = [(await new_team(admin, org, group, default_model=alias)).team_id for _ in range(4)]
        changes = [
            admin.UpdateTeam(pb.UpdateTeamRequest(team_id=team_id, default_model=alias), metadata=ADMIN)
            for team_id in teams
        ]
        deletion = admin.DeleteModel(pb.DeleteModelRequest(model_alias=alias, force=True), metadata=ADMIN)
        results = await asyncio.gather(deletion, *changes, return_exceptions=True)
        assert not isinstance(results[0], BaseException), results[0]
        assert list(results[0].affected_team_ids) == sorted(teams)
        for outcome in results[1:]:  # after the deletion, the alias is not one any more
            if isinstance(outcome, grpc.aio.AioRpcError):
                assert outcome.code() == grpc.StatusCode.INVALID_ARGUMENT, outcome.details()
            else:
                assert not isinstance(outcome, BaseException), outcome
        for team_id in teams:
            entries = await trail(admin, "team", team_id)
            assert [e.action for e in entries].count("model_alias.delete") == 1
            assert_chained(entries)
            assert (await get_team(admin, team_id)).default_model == ""


async def test_a_team_that_takes_up_the_group_between_the_reads_is_locked_too(app, admin):
    """The deletion locks the teams using the group, then the group; a team that took the
    group up in between is found once the group is held, and the locks are taken again,
    teams first, after a rollback to a savepoint that released the first ones."""
    from server.services.admin import _lock_users_then  # here: the race is made to happen

    org, group = await new_org(admin), await new_group(admin)
    early = (await new_team(admin, org, group)).team_id
    late = (await new_team(admin, org)).team_id
    rounds: list[list[str]] = []

    async def users() -> list[str]:
        async with app.db.transaction() as conn:
            return await catalog.teams_using_group(conn, group)

    async with app.db.transaction() as conn:

        async def lock_group() -> None:
            async with app.db.transaction() as other:  # nothing of a rolled-back round is held
                free = text("SELECT team_id FROM teams WHERE team_id = ANY(:ids) FOR UPDATE SKIP LOCKED")
                held = set(candidates) - set((await other.execute(free, {"ids": candidates})).scalars())
                free_group = text(
                    "SELECT group_name FROM model_access_groups WHERE group_name = :g FOR UPDATE SKIP LOCKED"
                )
                assert (await other.execute(free_group, {"g": group})).first() is not None
                rounds.append(sorted(held))
            if len(rounds) == 1:  # another admin gives a team the group meanwhile
                await admin.AddTeamAccessGroups(
                    pb.AddTeamAccessGroupsRequest(team_id=late, access_groups=[group]), metadata=ADMIN
                )
            await catalog.lock_group(conn, group)

        candidates = sorted([early, late])
        locked = await _lock_users_then(conn, lambda: catalog.teams_using_group(conn, group), lock_group)
        assert sorted(team.team_id for team in locked) == sorted([early, late])
        assert [team.access_groups for team in locked] == [(group,), (group,)]
    # Round 1 held only the team using the group then (the late one was free: its
    # AddTeamAccessGroups could commit), round 2 both; the group was free before each
    # round locked it: round 1's lock went with its savepoint.
    assert rounds == [[early], sorted([early, late])]
    assert sorted(await users()) == sorted([early, late])
