"""The audit log: every admin change, with who, what, when, before and after."""

from __future__ import annotations

import json

import grpc
from google.protobuf import json_format

from saaslitellm.v1 import admin_service_pb2 as pb
from saaslitellm.v1 import tenancy_pb2
from tests.api.admin_support import fails, new_group, new_org, new_team
from tests.api.conftest import ADMIN
from tests.conftest import unique


async def entries(admin, resource_type: str, resource_id: str = "") -> list:
    found = await admin.ListAuditEntries(
        pb.ListAuditEntriesRequest(resource_type=resource_type, resource_id=resource_id, page_size=100), metadata=ADMIN
    )
    return list(found.entries)


async def test_changes_are_recorded_with_before_and_after(admin):
    org = await new_org(admin)
    request_id = unique("req")
    await admin.UpdateOrganization(
        pb.UpdateOrganizationRequest(organization_id=org, name="Renamed"),
        metadata=(*ADMIN, ("x-request-id", request_id)),
    )
    update, create = await entries(admin, "organization", org)
    assert (create.action, update.action) == ("create", "update")
    assert create.actor == update.actor == "admin"
    assert update.request_id == request_id and update.peer.startswith("ipv")
    assert not create.HasField("before") and create.after["name"] == "Org"
    assert update.before["name"] == "Org" and update.after["name"] == "Renamed"
    assert update.audit_id > create.audit_id
    assert update.created_at.ToDatetime() >= create.created_at.ToDatetime()


async def test_an_entry_has_the_request_id_of_the_access_log(admin, channel):
    """The audit took the header as sent: none sent, no id (the access line had the one the
    server made); a key sent as the id, the key, in the table and ListAuditEntries."""
    org = await new_org(admin)
    key = "sk-" + "k" * 40
    call = admin.UpdateOrganization(
        pb.UpdateOrganizationRequest(organization_id=org, name="Renamed"), metadata=(*ADMIN, ("x-request-id", key))
    )
    await call
    made = dict(await call.initial_metadata())["x-request-id"]  # the id the server made and told
    await admin.UpdateOrganization(pb.UpdateOrganizationRequest(organization_id=org, name="Again"), metadata=ADMIN)
    again, keyed, _ = await entries(admin, "organization", org)
    assert keyed.request_id == made and key not in keyed.request_id
    assert again.request_id and again.request_id != made


async def test_a_refused_change_leaves_no_entry(admin):
    org = await new_org(admin)
    before = await entries(admin, "organization", org)
    await fails(
        admin.UpdateOrganization(pb.UpdateOrganizationRequest(organization_id=org, name="\x00bad"), metadata=ADMIN),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "name",
    )
    await admin.UpdateOrganization(pb.UpdateOrganizationRequest(organization_id=org), metadata=ADMIN)  # no change
    assert await entries(admin, "organization", org) == before


async def test_team_and_key_changes_are_recorded_without_secrets(admin):
    org, group = await new_org(admin), await new_group(admin)
    team = await new_team(admin, org)
    await admin.AddTeamAccessGroups(
        pb.AddTeamAccessGroupsRequest(team_id=team.team_id, access_groups=[group]), metadata=ADMIN
    )
    await admin.UpdateTeam(pb.UpdateTeamRequest(team_id=team.team_id, status=tenancy_pb2.Team.PAUSED), metadata=ADMIN)
    rotated = await admin.RotateTeamKey(
        pb.RotateTeamKeyRequest(team_id=team.team_id, key_id=team.key_id), metadata=ADMIN
    )

    status, groups, created = await entries(admin, "team", team.team_id)
    assert [created.action, groups.action, status.action] == ["create", "add_access_groups", "update"]
    assert list(groups.before["access_groups"]) == [] and list(groups.after["access_groups"]) == [group]
    assert status.before["status"] == "active" and status.after["status"] == "paused"
    rotation = (await entries(admin, "team_key", team.key_id))[0]
    assert rotation.action == "rotate" and rotation.after["replaced_by"] == rotated.key.key_id

    everything = json.dumps(
        [json_format.MessageToDict(e) for e in await entries(admin, "team_key") + await entries(admin, "team")]
    )
    for secret in (team.virtual_key, rotated.virtual_key):
        assert secret not in everything and secret[11:] not in everything


async def test_the_log_pages_newest_first_and_rejects_unknown_filters(admin):
    org = await new_org(admin)
    for name in ("a", "b", "c"):
        await admin.UpdateOrganization(pb.UpdateOrganizationRequest(organization_id=org, name=name), metadata=ADMIN)
    ids, token = [], ""
    while True:
        page = await admin.ListAuditEntries(
            pb.ListAuditEntriesRequest(resource_type="organization", resource_id=org, page_size=2, page_token=token),
            metadata=ADMIN,
        )
        ids += [e.audit_id for e in page.entries]
        token = page.next_page_token
        if not token:
            break
    assert len(ids) == 4 and ids == sorted(ids, reverse=True)
    await fails(
        admin.ListAuditEntries(pb.ListAuditEntriesRequest(resource_type="jobs"), metadata=ADMIN),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "resource_type",
    )
    recent = await admin.ListAuditEntries(pb.ListAuditEntriesRequest(page_size=5), metadata=ADMIN)
    assert len(recent.entries) == 5


async def test_a_team_snapshot_agrees_with_itself_and_shows_money_plainly(admin):
    team = (await new_team(admin, await new_org(admin))).team_id
    await admin.UpdateTeam(
        pb.UpdateTeamRequest(team_id=team, credits_overdraft_limit=5, max_cost_usd_per_job="0.50"), metadata=ADMIN
    )
    update = (await entries(admin, "team", team))[0]
    after = json_format.MessageToDict(update.after)
    assert after["rates"]["overdraft_limit"] == after["credits_overdraft_limit"] == 5
    assert after["max_cost_usd_per_job"] == "0.5"
    assert json_format.MessageToDict(update.before)["max_cost_usd_per_job"] == "0"  # not "0E-10"
