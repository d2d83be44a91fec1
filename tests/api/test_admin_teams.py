"""Teams through the AdminService: list, update, access groups, status, archive or delete."""

from __future__ import annotations

import grpc
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as pb
from saaslitellm.v1 import job_pb2, tenancy_pb2
from saaslitellm.v1 import job_service_pb2 as job_pb
from tests.api.admin_support import bearer, call_works, fails, new_alias, new_group, new_org, new_team
from tests.api.conftest import ADMIN

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
Team = tenancy_pb2.Team


async def test_teams_list_by_organization_and_status_in_pages(admin):
    org, other = await new_org(admin), await new_org(admin)
    created = [await new_team(admin, org) for _ in range(3)]
    await new_team(admin, other)
    ids = sorted(t.team_id for t in created)
    first = await admin.ListTeams(pb.ListTeamsRequest(organization_id=org, page_size=2), metadata=ADMIN)
    second = await admin.ListTeams(
        pb.ListTeamsRequest(organization_id=org, page_size=2, page_token=first.next_page_token), metadata=ADMIN
    )
    assert [t.team_id for t in first.teams] + [t.team_id for t in second.teams] == ids
    assert second.next_page_token == ""

    await admin.UpdateTeam(pb.UpdateTeamRequest(team_id=ids[1], status=Team.SUSPENDED), metadata=ADMIN)
    suspended = await admin.ListTeams(pb.ListTeamsRequest(organization_id=org, status=Team.SUSPENDED), metadata=ADMIN)
    assert [t.team_id for t in suspended.teams] == [ids[1]]
    active = await admin.ListTeams(pb.ListTeamsRequest(organization_id=org, status=Team.ACTIVE), metadata=ADMIN)
    assert [t.team_id for t in active.teams] == [ids[0], ids[2]]
    await fails(
        admin.ListTeams(pb.ListTeamsRequest(organization_id=other, page_token=first.next_page_token), metadata=ADMIN),
        INVALID,
        "INVALID_REQUEST",
        "page_token",
    )
    await fails(
        admin.ListTeams(pb.ListTeamsRequest(organization_id="no-such-org"), metadata=ADMIN),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )


async def test_team_responses_never_contain_a_key(admin):
    org, group = await new_org(admin), await new_group(admin)
    team = await new_team(admin, org, group)
    secret = team.virtual_key.encode()
    responses = [
        await admin.GetTeam(pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN),
        await admin.ListTeams(pb.ListTeamsRequest(organization_id=org), metadata=ADMIN),
        await admin.UpdateTeam(pb.UpdateTeamRequest(team_id=team.team_id, team_alias="x"), metadata=ADMIN),
        await admin.ListTeamKeys(pb.ListTeamKeysRequest(team_id=team.team_id), metadata=ADMIN),
        await admin.ListAuditEntries(
            pb.ListAuditEntriesRequest(resource_type="team", resource_id=team.team_id), metadata=ADMIN
        ),
    ]
    for response in responses:
        assert secret not in response.SerializeToString()
        assert secret[3:] not in response.SerializeToString()
    assert "virtual_key" not in Team.DESCRIPTOR.fields_by_name


async def test_update_team_changes_only_the_fields_sent(admin):
    org, group = await new_org(admin), await new_group(admin)
    alias = await new_alias(admin, group)
    team = await new_team(admin, org, group)
    request = pb.UpdateTeamRequest(
        team_id=team.team_id,
        team_alias="ACME Prod",
        budget_mode=Team.CONSUMPTION_USD,
        credits_per_dollar="12.500000",
        markup_percent="25",
        tokens_per_credit=500,
        credits_overdraft_limit=5,
        default_model=alias,
    )
    request.metadata.update({"plan": "pro"})
    updated = await admin.UpdateTeam(request, metadata=ADMIN)
    assert updated.team_alias == "ACME Prod" and dict(updated.metadata) == {"plan": "pro"}
    assert updated.budget_mode == Team.CONSUMPTION_USD
    assert (updated.credits_per_dollar, updated.markup_percent, updated.tokens_per_credit) == ("12.5", "25", 500)
    assert updated.credits_overdraft_limit == 5 and updated.default_model == alias

    only_alias = await admin.UpdateTeam(
        pb.UpdateTeamRequest(team_id=team.team_id, team_alias="Renamed"), metadata=ADMIN
    )
    assert (
        only_alias.team_alias == "Renamed" and only_alias.markup_percent == "25" and only_alias.default_model == alias
    )
    cleared = await admin.UpdateTeam(pb.UpdateTeamRequest(team_id=team.team_id, default_model=""), metadata=ADMIN)
    assert cleared.default_model == "" and cleared.budget_mode == Team.CONSUMPTION_USD


async def test_bad_team_updates_name_the_field_and_change_nothing(app, admin):
    org, group = await new_org(admin), await new_group(admin)
    await new_alias(admin, group)
    team = await new_team(admin, org, group)
    before = await admin.GetTeam(pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    for request, field in (
        (pb.UpdateTeamRequest(team_id=team.team_id, markup_percent="abc"), "markup_percent"),
        (pb.UpdateTeamRequest(team_id=team.team_id, markup_percent="-1"), "markup_percent"),
        (pb.UpdateTeamRequest(team_id=team.team_id, markup_percent="1.00001"), "markup_percent"),
        (pb.UpdateTeamRequest(team_id=team.team_id, credits_per_dollar="0"), "credits_per_dollar"),
        (pb.UpdateTeamRequest(team_id=team.team_id, credits_per_dollar="NaN"), "credits_per_dollar"),
        (pb.UpdateTeamRequest(team_id=team.team_id, credits_per_dollar=" 5 "), "credits_per_dollar"),
        (pb.UpdateTeamRequest(team_id=team.team_id, team_alias="   "), "team_alias"),
        (pb.UpdateTeamRequest(team_id=team.team_id, tokens_per_credit=0), "tokens_per_credit"),
        (pb.UpdateTeamRequest(team_id=team.team_id, credits_overdraft_limit=-1), "credits_overdraft_limit"),
        (pb.UpdateTeamRequest(team_id=team.team_id, status=Team.ARCHIVED), "status"),
        (pb.UpdateTeamRequest(team_id=team.team_id, status=Team.STATUS_UNSPECIFIED), "status"),
        (pb.UpdateTeamRequest(team_id=team.team_id, budget_mode=Team.BUDGET_MODE_UNSPECIFIED), "budget_mode"),
        (pb.UpdateTeamRequest(team_id=team.team_id, team_alias="x" * 201), "team_alias"),
        (pb.UpdateTeamRequest(team_id=team.team_id, default_model="NotMine", team_alias="y"), "default_model"),
        (pb.UpdateTeamRequest(team_id="bad id!", team_alias="y"), "team_id"),
    ):
        await fails(admin.UpdateTeam(request, metadata=ADMIN), INVALID, "INVALID_REQUEST", field)
    after = await admin.GetTeam(pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert after == before


async def test_suspended_and_paused_teams_are_refused_at_once(admin, jobs):
    org, group = await new_org(admin), await new_group(admin)
    await new_alias(admin, group)
    team = await new_team(admin, org, group)
    auth = bearer(team.virtual_key)
    for status, reason in ((Team.SUSPENDED, "TEAM_SUSPENDED"), (Team.PAUSED, "TEAM_PAUSED")):
        updated = await admin.UpdateTeam(pb.UpdateTeamRequest(team_id=team.team_id, status=status), metadata=ADMIN)
        assert updated.status == status
        await fails(
            jobs.CreateJob(job_pb.CreateJobRequest(job_type="x"), metadata=auth),
            grpc.StatusCode.PERMISSION_DENIED,
            reason,
        )
    await admin.UpdateTeam(pb.UpdateTeamRequest(team_id=team.team_id, status=Team.ACTIVE), metadata=ADMIN)
    await call_works(jobs, auth)


async def test_team_access_groups_add_remove_replace(admin, jobs):
    org, g1, g2 = await new_org(admin), await new_group(admin), await new_group(admin)
    a1, a2 = await new_alias(admin, g1), await new_alias(admin, g2)
    team = await new_team(admin, org, g1)
    auth = bearer(team.virtual_key)
    await fails(call_works(jobs, auth, a2), grpc.StatusCode.PERMISSION_DENIED, "MODEL_NOT_ALLOWED")

    added = await admin.AddTeamAccessGroups(
        pb.AddTeamAccessGroupsRequest(team_id=team.team_id, access_groups=[g2]), metadata=ADMIN
    )
    assert sorted(added.access_groups) == sorted([g1, g2]) and sorted(added.allowed_model_aliases) == sorted([a1, a2])
    await call_works(jobs, auth, a2)

    removed = await admin.RemoveTeamAccessGroups(
        pb.RemoveTeamAccessGroupsRequest(team_id=team.team_id, access_groups=[g1, "never-had-it"]), metadata=ADMIN
    )
    assert list(removed.access_groups) == [g2]
    await fails(call_works(jobs, auth, a1), grpc.StatusCode.PERMISSION_DENIED, "MODEL_NOT_ALLOWED")

    emptied = await admin.SetTeamAccessGroups(pb.SetTeamAccessGroupsRequest(team_id=team.team_id), metadata=ADMIN)
    assert list(emptied.access_groups) == [] and list(emptied.allowed_model_aliases) == []
    await fails(call_works(jobs, auth, a2), grpc.StatusCode.PERMISSION_DENIED, "MODEL_NOT_ALLOWED")
    await fails(
        admin.SetTeamAccessGroups(
            pb.SetTeamAccessGroupsRequest(team_id=team.team_id, access_groups=["nope-x"]), metadata=ADMIN
        ),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )


async def test_a_team_without_history_is_deleted(app, admin):
    org = await new_org(admin)
    team = await new_team(admin, org, credits=0)
    result = await admin.DeleteTeam(pb.DeleteTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert result.outcome == pb.DeleteTeamResponse.DELETED
    await fails(
        admin.GetTeam(pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN), grpc.StatusCode.NOT_FOUND, "NOT_FOUND"
    )
    async with app.db.transaction() as conn:
        keys = (
            await conn.execute(text("SELECT count(*) FROM api_keys WHERE team_id = :t"), {"t": team.team_id})
        ).scalar()
    assert keys == 0


async def test_a_team_with_history_is_archived_and_its_history_kept(app, admin, jobs):
    org, group = await new_org(admin), await new_group(admin)
    await new_alias(admin, group)
    team = await new_team(admin, org, group)
    auth = bearer(team.virtual_key)
    extra = await admin.CreateTeamKey(pb.CreateTeamKeyRequest(team_id=team.team_id, name="staging"), metadata=ADMIN)
    await call_works(jobs, auth)
    open_job = await jobs.CreateJob(job_pb.CreateJobRequest(job_type="open"), metadata=auth)
    await fails(
        admin.DeleteTeam(pb.DeleteTeamRequest(team_id=team.team_id), metadata=ADMIN), PRECONDITION, "TEAM_HAS_OPEN_JOBS"
    )
    await jobs.CompleteJob(job_pb.CompleteJobRequest(job_id=open_job.job_id, status=job_pb2.Job.FAILED), metadata=auth)

    # The first key is rotated without grace: it has expired, and is not revoked again.
    (first,) = [
        k
        for k in (await admin.ListTeamKeys(pb.ListTeamKeysRequest(team_id=team.team_id), metadata=ADMIN)).keys
        if k.name != "staging"
    ]
    rotated = await admin.RotateTeamKey(
        pb.RotateTeamKeyRequest(team_id=team.team_id, key_id=first.key_id, grace_period_seconds=0), metadata=ADMIN
    )

    result = await admin.DeleteTeam(pb.DeleteTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert result.outcome == pb.DeleteTeamResponse.ARCHIVED and result.keys_revoked == 2
    keys = (await admin.ListTeamKeys(pb.ListTeamKeysRequest(team_id=team.team_id), metadata=ADMIN)).keys
    assert {k.key_id: k.state for k in keys} == {
        first.key_id: tenancy_pb2.TeamKey.EXPIRED,
        rotated.key.key_id: tenancy_pb2.TeamKey.REVOKED,
        extra.key.key_id: tenancy_pb2.TeamKey.REVOKED,
    }
    async with app.db.transaction() as conn:
        trail = (
            await conn.execute(
                text(
                    "SELECT action, resource_id, after->>'status' FROM admin_audit_log "
                    "WHERE resource_id IN (:t, :a, :b) AND action IN ('archive', 'revoke') ORDER BY audit_id"
                ),
                {"t": team.team_id, "a": rotated.key.key_id, "b": extra.key.key_id},
            )
        ).all()
    # The archival is recorded as the API shows the team, and each key it revoked too.
    assert tuple(trail[0]) == ("archive", team.team_id, "archived")
    assert {tuple(row)[:2] for row in trail[1:]} == {("revoke", rotated.key.key_id), ("revoke", extra.key.key_id)}
    for key in (rotated.virtual_key, extra.virtual_key):
        await fails(
            jobs.CreateJob(job_pb.CreateJobRequest(job_type="x"), metadata=bearer(key)),
            grpc.StatusCode.UNAUTHENTICATED,
            "INVALID_API_KEY",
        )
    archived = await admin.GetTeam(pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert archived.status == Team.ARCHIVED and archived.HasField("archived_at")
    async with app.db.transaction() as conn:
        counts = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM jobs WHERE team_id = :t), (SELECT count(*) FROM llm_calls WHERE team_id = :t),"
                    " (SELECT count(*) FROM credit_ledger WHERE team_id = :t)"
                ),
                {"t": team.team_id},
            )
        ).one()
    assert counts[0] == 2 and counts[1] == 1 and counts[2] >= 5

    for change in (
        admin.UpdateTeam(pb.UpdateTeamRequest(team_id=team.team_id, team_alias="x"), metadata=ADMIN),
        admin.AddTeamAccessGroups(
            pb.AddTeamAccessGroupsRequest(team_id=team.team_id, access_groups=[group]), metadata=ADMIN
        ),
        admin.CreateTeamKey(pb.CreateTeamKeyRequest(team_id=team.team_id, name="new"), metadata=ADMIN),
    ):
        await fails(change, PRECONDITION, "TEAM_ARCHIVED")
    listed = await admin.ListTeams(pb.ListTeamsRequest(organization_id=org), metadata=ADMIN)
    assert listed.teams == []
    listed = await admin.ListTeams(pb.ListTeamsRequest(organization_id=org, status=Team.ARCHIVED), metadata=ADMIN)
    assert [t.team_id for t in listed.teams] == [team.team_id]
    again = await admin.DeleteTeam(pb.DeleteTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert again.outcome == pb.DeleteTeamResponse.ARCHIVED and again.keys_revoked == 0


async def test_create_team_accepts_rates(admin):
    org = await new_org(admin)
    team = await new_team(
        admin, org, budget_mode=Team.CONSUMPTION_TOKENS, tokens_per_credit=2000, markup_percent="10.5", key_name="prod"
    )
    got = await admin.GetTeam(pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert got.tokens_per_credit == 2000 and got.markup_percent == "10.5" and got.credits_per_dollar == "10"
    keys = await admin.ListTeamKeys(pb.ListTeamKeysRequest(team_id=team.team_id), metadata=ADMIN)
    assert [k.name for k in keys.keys] == ["prod"] and keys.keys[0].key_id == team.key_id
    await fails(new_team(admin, org, tokens_per_credit=0), INVALID, "INVALID_REQUEST", "tokens_per_credit")


async def test_an_unknown_default_model_is_a_bad_field_not_a_500(admin):
    org = await new_org(admin)
    refused = await fails(
        admin.CreateTeam(
            pb.CreateTeamRequest(organization_id=org, team_id="t-unknown-default", default_model="does-not-exist"),
            metadata=ADMIN,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    assert refused.details().startswith("default_model:")
    listed = await admin.ListTeams(pb.ListTeamsRequest(organization_id=org), metadata=ADMIN)
    assert list(listed.teams) == []
