"""Organizations, access groups and model aliases through the AdminService, over real
gRPC and PostgreSQL, with the fake provider serving the LiteLLM model list."""

from __future__ import annotations

import grpc
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as pb
from saaslitellm.v1 import admin_service_pb2_grpc, tenancy_pb2
from server.app import Application
from tests.api.admin_support import bearer, call_works, fails, new_alias, new_group, new_org, new_team
from tests.api.conftest import ADMIN, server_settings
from tests.conftest import unique

INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
DENIED = grpc.StatusCode.PERMISSION_DENIED


async def test_organizations_list_in_pages_and_filter_by_status(admin):
    prefix = unique("pg")
    for index in range(5):
        await admin.CreateOrganization(
            pb.CreateOrganizationRequest(organization_id=f"{prefix}-{index}", name=f"Org {index}"), metadata=ADMIN
        )
    seen, token = [], ""
    while True:
        page = await admin.ListOrganizations(pb.ListOrganizationsRequest(page_size=2, page_token=token), metadata=ADMIN)
        assert len(page.organizations) <= 2
        seen += [o.organization_id for o in page.organizations]
        token = page.next_page_token
        if not token:
            break
    ours = [o for o in seen if o.startswith(prefix)]
    assert ours == [f"{prefix}-{i}" for i in range(5)]
    assert seen == sorted(seen) and len(seen) == len(set(seen))

    first = await admin.ListOrganizations(pb.ListOrganizationsRequest(page_size=1), metadata=ADMIN)
    await fails(
        admin.ListOrganizations(
            pb.ListOrganizationsRequest(
                page_size=1, page_token=first.next_page_token, status=tenancy_pb2.Organization.ARCHIVED
            ),
            metadata=ADMIN,
        ),
        INVALID,
        "INVALID_REQUEST",
        "page_token",
    )
    await fails(
        admin.ListOrganizations(pb.ListOrganizationsRequest(page_token="not-a-token"), metadata=ADMIN),
        INVALID,
        "INVALID_REQUEST",
        "page_token",
    )
    await fails(
        admin.ListOrganizations(pb.ListOrganizationsRequest(page_size=-1), metadata=ADMIN),
        INVALID,
        "INVALID_REQUEST",
        "page_size",
    )


async def test_organization_update_changes_only_what_is_sent(admin):
    org = await new_org(admin)
    renamed = await admin.UpdateOrganization(
        pb.UpdateOrganizationRequest(organization_id=org, name="New"), metadata=ADMIN
    )
    assert renamed.name == "New"
    request = pb.UpdateOrganizationRequest(organization_id=org)
    request.metadata.update({"tier": "gold"})
    updated = await admin.UpdateOrganization(request, metadata=ADMIN)
    assert updated.name == "New" and dict(updated.metadata) == {"tier": "gold"}
    await fails(
        admin.UpdateOrganization(pb.UpdateOrganizationRequest(organization_id=org, name=""), metadata=ADMIN),
        INVALID,
        "INVALID_REQUEST",
        "name",
    )
    assert (await admin.GetOrganization(pb.GetOrganizationRequest(organization_id=org), metadata=ADMIN)).name == "New"


async def test_organization_deletion_keeps_history(admin, jobs):
    empty = await new_org(admin)
    deleted = await admin.DeleteOrganization(pb.DeleteOrganizationRequest(organization_id=empty), metadata=ADMIN)
    assert deleted.outcome == pb.DeleteOrganizationResponse.DELETED
    await fails(
        admin.GetOrganization(pb.GetOrganizationRequest(organization_id=empty), metadata=ADMIN),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )

    org = await new_org(admin)
    group = await new_group(admin)
    await new_alias(admin, group)
    team = await new_team(admin, org, group)
    await call_works(jobs, bearer(team.virtual_key))
    await fails(
        admin.DeleteOrganization(pb.DeleteOrganizationRequest(organization_id=org), metadata=ADMIN),
        PRECONDITION,
        "ORGANIZATION_HAS_TEAMS",
    )
    archived_team = await admin.DeleteTeam(pb.DeleteTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert archived_team.outcome == pb.DeleteTeamResponse.ARCHIVED
    result = await admin.DeleteOrganization(pb.DeleteOrganizationRequest(organization_id=org), metadata=ADMIN)
    assert result.outcome == pb.DeleteOrganizationResponse.ARCHIVED
    got = await admin.GetOrganization(pb.GetOrganizationRequest(organization_id=org), metadata=ADMIN)
    assert got.status == tenancy_pb2.Organization.ARCHIVED

    await fails(new_team(admin, org, group), PRECONDITION, "ORGANIZATION_ARCHIVED")
    await fails(
        admin.UpdateOrganization(pb.UpdateOrganizationRequest(organization_id=org, name="x"), metadata=ADMIN),
        PRECONDITION,
        "ORGANIZATION_ARCHIVED",
    )
    active = await admin.ListOrganizations(pb.ListOrganizationsRequest(page_size=1000), metadata=ADMIN)
    assert org not in [o.organization_id for o in active.organizations]
    archived = await admin.ListOrganizations(
        pb.ListOrganizationsRequest(page_size=1000, status=tenancy_pb2.Organization.ARCHIVED), metadata=ADMIN
    )
    assert org in [o.organization_id for o in archived.organizations]
    again = await admin.DeleteOrganization(pb.DeleteOrganizationRequest(organization_id=org), metadata=ADMIN)
    assert again.outcome == pb.DeleteOrganizationResponse.ARCHIVED


async def test_catalog_lists_the_proxy_models(admin):
    catalog = await admin.ListCatalogModels(pb.ListCatalogModelsRequest(), metadata=ADMIN)
    assert {"fake-gpt", "fake-gpt-backup"} <= set(catalog.models)
    assert list(catalog.unpriced_models) == []  # the fake's /model/info prices both


async def test_alias_models_are_checked_against_the_catalog(admin):
    group = await new_group(admin)
    for request, field in (
        (pb.CreateModelRequest(model_alias=unique("A"), actual_model="no-such-model"), "actual_model"),
        (
            pb.CreateModelRequest(
                model_alias=unique("A"), actual_model="fake-gpt", fallback_models=["fake-gpt-backup", "gpt-nope"]
            ),
            "fallback_models[1]",
        ),
        (pb.CreateModelRequest(model_alias="has/slash", actual_model="fake-gpt"), "model_alias"),
        (
            pb.CreateModelRequest(model_alias=unique("A"), actual_model="fake-gpt", fallback_models=["fake-gpt"]),
            "fallback_models",
        ),
    ):
        await fails(admin.CreateModel(request, metadata=ADMIN), INVALID, "INVALID_REQUEST", field)
    alias = await new_alias(admin, group)
    await fails(
        admin.UpdateModel(pb.UpdateModelRequest(model_alias=alias, actual_model="unknown-model"), metadata=ADMIN),
        INVALID,
        "INVALID_REQUEST",
        "actual_model",
    )
    await fails(
        admin.UpdateModel(pb.UpdateModelRequest(model_alias=alias, fallback_models=["fake-gpt"]), metadata=ADMIN),
        INVALID,
        "INVALID_REQUEST",
        "fallback_models",
    )
    unchanged = await admin.GetModel(pb.GetModelRequest(model_alias=alias), metadata=ADMIN)
    assert unchanged.actual_model == "fake-gpt" and list(unchanged.fallback_models) == ["fake-gpt-backup"]


async def test_an_unreachable_catalog_is_unavailable_and_changes_nothing(database_url):
    settings = server_settings(  # the discard port: nothing listens
        database_url, "http://127.0.0.1:9", usage_rollup_interval_seconds=0
    )
    application = Application(settings)
    await application.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{application.port}") as channel:
            stub = admin_service_pb2_grpc.AdminServiceStub(channel)
            alias = unique("A")
            error = await fails(
                stub.CreateModel(pb.CreateModelRequest(model_alias=alias, actual_model="fake-gpt"), metadata=ADMIN),
                grpc.StatusCode.UNAVAILABLE,
                "UPSTREAM_UNAVAILABLE",
            )
            assert "LiteLLM" in error.details() and "nothing was changed" in error.details()
            await fails(
                stub.GetModel(pb.GetModelRequest(model_alias=alias), metadata=ADMIN),
                grpc.StatusCode.NOT_FOUND,
                "NOT_FOUND",
            )
            await fails(
                stub.ListCatalogModels(pb.ListCatalogModelsRequest(), metadata=ADMIN),
                grpc.StatusCode.UNAVAILABLE,
                "UPSTREAM_UNAVAILABLE",
            )
    finally:
        await application.stop(grace=0)


async def test_alias_route_update_applies_to_the_next_call(app, admin, jobs):
    org, group = await new_org(admin), await new_group(admin)
    alias = await new_alias(admin, group)
    team = await new_team(admin, org, group)
    updated = await admin.UpdateModel(
        pb.UpdateModelRequest(model_alias=alias, actual_model="fake-gpt-backup", display_name="Backup only"),
        metadata=ADMIN,
    )
    assert updated.actual_model == "fake-gpt-backup" and list(updated.fallback_models) == []
    assert updated.display_name == "Backup only"
    reply = await call_works(jobs, bearer(team.virtual_key))
    async with app.db.transaction() as conn:
        served = (
            await conn.execute(text("SELECT served_model FROM llm_calls WHERE call_id = :c"), {"c": reply.call_id})
        ).scalar_one()
    assert served == "fake-gpt-backup"


async def test_group_membership_works_from_both_sides(admin):
    g1, g2 = await new_group(admin), await new_group(admin)
    alias = await new_alias(admin, g1)
    added = await admin.AddModelAccessGroups(
        pb.AddModelAccessGroupsRequest(model_alias=alias, access_groups=[g2]), metadata=ADMIN
    )
    assert sorted(added.access_groups) == sorted([g1, g2])
    group = await admin.GetModelAccessGroup(pb.GetModelAccessGroupRequest(group_name=g2), metadata=ADMIN)
    assert list(group.model_aliases) == [alias]

    removed = await admin.RemoveModelAccessGroupModels(
        pb.RemoveModelAccessGroupModelsRequest(group_name=g1, model_aliases=[alias]), metadata=ADMIN
    )
    assert list(removed.model_aliases) == []
    assert list((await admin.GetModel(pb.GetModelRequest(model_alias=alias), metadata=ADMIN)).access_groups) == [g2]

    other = await new_alias(admin)
    replaced = await admin.SetModelAccessGroupModels(
        pb.SetModelAccessGroupModelsRequest(group_name=g2, model_aliases=[other]), metadata=ADMIN
    )
    assert list(replaced.model_aliases) == [other]
    again = await admin.SetModelAccessGroups(
        pb.SetModelAccessGroupsRequest(model_alias=alias, access_groups=[g1, g2]), metadata=ADMIN
    )
    assert sorted(again.access_groups) == sorted([g1, g2])

    await fails(
        admin.AddModelAccessGroups(
            pb.AddModelAccessGroupsRequest(model_alias=alias, access_groups=["missing-group"]), metadata=ADMIN
        ),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )
    by_group = await admin.ListModels(pb.ListModelsRequest(access_group=g2), metadata=ADMIN)
    assert sorted(m.model_alias for m in by_group.models) == sorted([alias, other])


async def test_removing_access_is_immediate_and_deny_by_default(admin, jobs):
    org, group = await new_org(admin), await new_group(admin)
    alias = await new_alias(admin, group)
    team = await new_team(admin, org, group)
    auth = bearer(team.virtual_key)
    await call_works(jobs, auth, alias)

    await admin.RemoveModelAccessGroupModels(
        pb.RemoveModelAccessGroupModelsRequest(group_name=group, model_aliases=[alias]), metadata=ADMIN
    )
    await fails(call_works(jobs, auth, alias), DENIED, "MODEL_NOT_ALLOWED")
    await admin.AddModelAccessGroupModels(
        pb.AddModelAccessGroupModelsRequest(group_name=group, model_aliases=[alias]), metadata=ADMIN
    )
    await call_works(jobs, auth, alias)
    await fails(call_works(jobs, auth, "fake-gpt"), DENIED, "MODEL_NOT_ALLOWED")  # a raw LiteLLM name

    await fails(
        admin.DeleteModelAccessGroup(pb.DeleteModelAccessGroupRequest(group_name=group), metadata=ADMIN),
        PRECONDITION,
        "RESOURCE_IN_USE",
    )
    forced = await admin.DeleteModelAccessGroup(
        pb.DeleteModelAccessGroupRequest(group_name=group, force=True), metadata=ADMIN
    )
    assert list(forced.affected_team_ids) == [team.team_id]
    await fails(call_works(jobs, auth, alias), DENIED, "MODEL_NOT_ALLOWED")
    got = await admin.GetTeam(pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert list(got.access_groups) == [] and list(got.allowed_model_aliases) == []


async def test_deleting_an_alias_that_is_a_default_model(admin, jobs):
    org, group = await new_org(admin), await new_group(admin)
    alias = await new_alias(admin, group)
    team = await new_team(admin, org, group, default_model=alias)
    await fails(
        admin.DeleteModel(pb.DeleteModelRequest(model_alias=alias), metadata=ADMIN), PRECONDITION, "RESOURCE_IN_USE"
    )
    forced = await admin.DeleteModel(pb.DeleteModelRequest(model_alias=alias, force=True), metadata=ADMIN)
    assert list(forced.affected_team_ids) == [team.team_id]
    got = await admin.GetTeam(pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert got.default_model == "" and list(got.allowed_model_aliases) == []
    await fails(call_works(jobs, bearer(team.virtual_key), alias), DENIED, "MODEL_NOT_ALLOWED")
    group_after = await admin.GetModelAccessGroup(pb.GetModelAccessGroupRequest(group_name=group), metadata=ADMIN)
    assert list(group_after.model_aliases) == []


async def test_groups_list_update_and_delete(admin):
    group = await new_group(admin)
    updated = await admin.UpdateModelAccessGroup(
        pb.UpdateModelAccessGroupRequest(group_name=group, description="GPT models"), metadata=ADMIN
    )
    assert updated.description == "GPT models" and updated.display_name == group
    listed, token = [], ""
    while True:
        page = await admin.ListModelAccessGroups(
            pb.ListModelAccessGroupsRequest(page_size=3, page_token=token), metadata=ADMIN
        )
        listed += [g.group_name for g in page.model_access_groups]
        token = page.next_page_token
        if not token:
            break
    assert group in listed and listed == sorted(listed)
    result = await admin.DeleteModelAccessGroup(pb.DeleteModelAccessGroupRequest(group_name=group), metadata=ADMIN)
    assert list(result.affected_team_ids) == []
    await fails(
        admin.GetModelAccessGroup(pb.GetModelAccessGroupRequest(group_name=group), metadata=ADMIN),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )
