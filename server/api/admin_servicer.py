"""AdminService: authenticate the operator, convert the request, call one use case,
convert the result.

Errors are mapped by server.api.errors.ErrorInterceptor; nothing here catches them.
"""

from __future__ import annotations

import grpc

from saaslitellm.v1 import admin_service_pb2 as pb
from saaslitellm.v1 import admin_service_pb2_grpc, analytics_pb2, tenancy_pb2
from server.api import admin_convert as convert
from server.api.common import metadata
from server.api.convert import stored_struct
from server.domain.audit import Actor
from server.services.admin import AdminUseCases
from server.services.analytics import AnalyticsUseCases
from server.services.auth import Authenticator

Context = grpc.aio.ServicerContext


class AdminServicer(admin_service_pb2_grpc.AdminServiceServicer):
    def __init__(self, auth: Authenticator, admin: AdminUseCases, analytics: AnalyticsUseCases) -> None:
        self._auth = auth
        self._admin = admin
        self._analytics = analytics

    def _operator(self, context: Context) -> Actor:
        """The admin key, or UNAUTHENTICATED; who and where from, for the audit log."""
        return self._auth.admin(metadata(context), peer=context.peer() or "")

    # ------------------------------------------------------------------ organizations

    async def CreateOrganization(self, request: pb.CreateOrganizationRequest, context: Context):
        actor = self._operator(context)
        org = await self._admin.create_organization(
            actor, request.organization_id, request.name, stored_struct(request, "metadata")
        )
        return convert.organization(org)

    async def GetOrganization(self, request: pb.GetOrganizationRequest, context: Context):
        self._operator(context)
        return convert.organization(await self._admin.get_organization(request.organization_id))

    async def ListOrganizations(self, request: pb.ListOrganizationsRequest, context: Context):
        self._operator(context)
        status = convert.organization_status(request.status)
        found = await self._admin.list_organizations(status, request.page_size, request.page_token)
        return convert.page(found, pb.ListOrganizationsResponse, "organizations", convert.organization)

    async def UpdateOrganization(self, request: pb.UpdateOrganizationRequest, context: Context):
        actor = self._operator(context)
        org = await self._admin.update_organization(
            actor,
            request.organization_id,
            convert.optional(request, "name"),
            convert.optional_struct(request, "metadata"),
        )
        return convert.organization(org)

    async def DeleteOrganization(self, request: pb.DeleteOrganizationRequest, context: Context):
        actor = self._operator(context)
        outcome = await self._admin.delete_organization(actor, request.organization_id)
        return pb.DeleteOrganizationResponse(
            organization_id=request.organization_id, outcome=convert.outcome(outcome, pb.DeleteOrganizationResponse)
        )

    # ------------------------------------------------------------------------ groups

    async def CreateModelAccessGroup(self, request: pb.CreateModelAccessGroupRequest, context: Context):
        actor = self._operator(context)
        group = await self._admin.create_group(
            actor, request.group_name, request.display_name, request.description, list(request.model_aliases)
        )
        return convert.access_group(group)

    async def GetModelAccessGroup(self, request: pb.GetModelAccessGroupRequest, context: Context):
        self._operator(context)
        return convert.access_group(await self._admin.get_group(request.group_name))

    async def ListModelAccessGroups(self, request: pb.ListModelAccessGroupsRequest, context: Context):
        self._operator(context)
        found = await self._admin.list_groups(request.page_size, request.page_token)
        return convert.page(found, pb.ListModelAccessGroupsResponse, "model_access_groups", convert.access_group)

    async def UpdateModelAccessGroup(self, request: pb.UpdateModelAccessGroupRequest, context: Context):
        actor = self._operator(context)
        group = await self._admin.update_group(
            actor,
            request.group_name,
            convert.optional(request, "display_name"),
            convert.optional(request, "description"),
        )
        return convert.access_group(group)

    async def DeleteModelAccessGroup(self, request: pb.DeleteModelAccessGroupRequest, context: Context):
        actor = self._operator(context)
        affected = await self._admin.delete_group(actor, request.group_name, request.force)
        return pb.DeleteModelAccessGroupResponse(group_name=request.group_name, affected_team_ids=affected)

    async def AddModelAccessGroupModels(self, request: pb.AddModelAccessGroupModelsRequest, context: Context):
        actor = self._operator(context)
        group = await self._admin.change_group_aliases(actor, request.group_name, list(request.model_aliases), "add")
        return convert.access_group(group)

    async def RemoveModelAccessGroupModels(self, request: pb.RemoveModelAccessGroupModelsRequest, context: Context):
        actor = self._operator(context)
        group = await self._admin.change_group_aliases(actor, request.group_name, list(request.model_aliases), "remove")
        return convert.access_group(group)

    async def SetModelAccessGroupModels(self, request: pb.SetModelAccessGroupModelsRequest, context: Context):
        actor = self._operator(context)
        group = await self._admin.change_group_aliases(actor, request.group_name, list(request.model_aliases), "set")
        return convert.access_group(group)

    # ----------------------------------------------------------------------- aliases

    async def ListCatalogModels(self, request: pb.ListCatalogModelsRequest, context: Context):
        self._operator(context)
        models, unpriced = await self._admin.catalog()
        return pb.ListCatalogModelsResponse(models=models, unpriced_models=unpriced)

    async def CreateModel(self, request: pb.CreateModelRequest, context: Context) -> tenancy_pb2.ModelAlias:
        actor = self._operator(context)
        alias = await self._admin.create_alias(
            actor,
            request.model_alias,
            request.actual_model,
            list(request.fallback_models),
            list(request.access_groups),
            request.display_name,
            request.description,
        )
        return convert.model_alias(alias)

    async def GetModel(self, request: pb.GetModelRequest, context: Context):
        self._operator(context)
        return convert.model_alias(await self._admin.get_alias(request.model_alias))

    async def ListModels(self, request: pb.ListModelsRequest, context: Context):
        self._operator(context)
        found = await self._admin.list_aliases(request.access_group, request.page_size, request.page_token)
        return convert.page(found, pb.ListModelsResponse, "models", convert.model_alias)

    async def UpdateModel(self, request: pb.UpdateModelRequest, context: Context):
        actor = self._operator(context)
        alias = await self._admin.update_alias(
            actor,
            request.model_alias,
            convert.optional(request, "actual_model"),
            list(request.fallback_models),
            convert.optional(request, "display_name"),
            convert.optional(request, "description"),
        )
        return convert.model_alias(alias)

    async def DeleteModel(self, request: pb.DeleteModelRequest, context: Context):
        actor = self._operator(context)
        affected = await self._admin.delete_alias(actor, request.model_alias, request.force)
        return pb.DeleteModelResponse(model_alias=request.model_alias, affected_team_ids=affected)

    async def AddModelAccessGroups(self, request: pb.AddModelAccessGroupsRequest, context: Context):
        actor = self._operator(context)
        alias = await self._admin.change_alias_groups(actor, request.model_alias, list(request.access_groups), "add")
        return convert.model_alias(alias)

    async def RemoveModelAccessGroups(self, request: pb.RemoveModelAccessGroupsRequest, context: Context):
        actor = self._operator(context)
        alias = await self._admin.change_alias_groups(actor, request.model_alias, list(request.access_groups), "remove")
        return convert.model_alias(alias)

    async def SetModelAccessGroups(self, request: pb.SetModelAccessGroupsRequest, context: Context):
        actor = self._operator(context)
        alias = await self._admin.change_alias_groups(actor, request.model_alias, list(request.access_groups), "set")
        return convert.model_alias(alias)

    # ------------------------------------------------------------------------- teams

    async def CreateTeam(self, request: pb.CreateTeamRequest, context: Context) -> pb.CreateTeamResponse:
        actor = self._operator(context)
        created = await self._admin.create_team(
            actor,
            organization_id=request.organization_id,
            team_id=request.team_id,
            team_alias=request.team_alias,
            access_groups=list(request.access_groups),
            credits_allocated=request.credits_allocated,
            metadata=stored_struct(request, "metadata"),
            default_model=request.default_model,
            budget_mode=convert.budget_mode(request.budget_mode),
            key_name=request.key_name,
            tokens_per_credit=convert.optional(request, "tokens_per_credit"),
            credits_per_dollar=convert.optional(request, "credits_per_dollar"),
            markup_percent=convert.optional(request, "markup_percent"),
            credits_overdraft_limit=convert.optional(request, "credits_overdraft_limit"),
            calls_per_minute=convert.optional(request, "calls_per_minute"),
            low_credit_threshold=convert.optional(request, "low_credit_threshold"),
            max_calls_per_job=convert.optional(request, "max_calls_per_job"),
            max_cost_usd_per_job=convert.optional(request, "max_cost_usd_per_job"),
        )
        return convert.create_team_response(created)

    async def GetTeam(self, request: pb.GetTeamRequest, context: Context) -> tenancy_pb2.Team:
        self._operator(context)
        return convert.team(await self._admin.get_team(request.team_id))

    async def ListTeams(self, request: pb.ListTeamsRequest, context: Context):
        self._operator(context)
        found = await self._admin.list_teams(
            request.organization_id,
            convert.team_status_filter(request.status),
            request.page_size,
            request.page_token,
        )
        return convert.page(found, pb.ListTeamsResponse, "teams", convert.team)

    async def UpdateTeam(self, request: pb.UpdateTeamRequest, context: Context):
        actor = self._operator(context)
        team = await self._admin.update_team(actor, request.team_id, **convert.team_update_fields(request))
        return convert.team(team)

    async def DeleteTeam(self, request: pb.DeleteTeamRequest, context: Context):
        actor = self._operator(context)
        outcome, revoked = await self._admin.delete_team(actor, request.team_id)
        return pb.DeleteTeamResponse(
            team_id=request.team_id, outcome=convert.outcome(outcome, pb.DeleteTeamResponse), keys_revoked=revoked
        )

    async def AddTeamAccessGroups(self, request: pb.AddTeamAccessGroupsRequest, context: Context):
        actor = self._operator(context)
        team = await self._admin.change_team_groups(actor, request.team_id, list(request.access_groups), "add")
        return convert.team(team)

    async def RemoveTeamAccessGroups(self, request: pb.RemoveTeamAccessGroupsRequest, context: Context):
        actor = self._operator(context)
        team = await self._admin.change_team_groups(actor, request.team_id, list(request.access_groups), "remove")
        return convert.team(team)

    async def SetTeamAccessGroups(self, request: pb.SetTeamAccessGroupsRequest, context: Context):
        actor = self._operator(context)
        team = await self._admin.change_team_groups(actor, request.team_id, list(request.access_groups), "set")
        return convert.team(team)

    # -------------------------------------------------------------------------- keys

    async def CreateTeamKey(self, request: pb.CreateTeamKeyRequest, context: Context):
        actor = self._operator(context)
        created = await self._admin.create_key(
            actor, request.team_id, request.name, convert.optional_time(request, "expires_at")
        )
        return convert.create_key_response(created)

    async def ListTeamKeys(self, request: pb.ListTeamKeysRequest, context: Context):
        self._operator(context)
        found = await self._admin.list_keys(
            request.team_id, convert.key_state(request.state), request.page_size, request.page_token
        )
        return convert.page(found, pb.ListTeamKeysResponse, "keys", convert.team_key)

    async def RevokeTeamKey(self, request: pb.RevokeTeamKeyRequest, context: Context) -> tenancy_pb2.TeamKey:
        actor = self._operator(context)
        return convert.team_key(await self._admin.revoke_key(actor, request.team_id, request.key_id))

    async def RotateTeamKey(self, request: pb.RotateTeamKeyRequest, context: Context):
        actor = self._operator(context)
        created, previous = await self._admin.rotate_key(
            actor,
            request.team_id,
            request.key_id,
            convert.optional(request, "grace_period_seconds"),
            convert.optional_time(request, "expires_at"),
        )
        return convert.rotate_key_response(created, previous)

    # -------------------------------------------------------------- audit, analytics

    async def ListAuditEntries(self, request: pb.ListAuditEntriesRequest, context: Context):
        self._operator(context)
        found = await self._admin.list_audit(
            request.resource_type, request.resource_id, request.page_size, request.page_token
        )
        return convert.page(found, pb.ListAuditEntriesResponse, "entries", convert.audit_entry)

    async def GetTeamUsage(self, request: pb.GetTeamUsageRequest, context: Context) -> analytics_pb2.UsageReport:
        self._operator(context)
        report = await self._analytics.team_usage(
            request.team_id, request.start_date, request.end_date, request.job_type, request.limit
        )
        return convert.usage_report(report)

    async def GetOrganizationUsage(self, request: pb.GetOrganizationUsageRequest, context: Context):
        self._operator(context)
        report = await self._analytics.organization_usage(
            request.organization_id, request.start_date, request.end_date, request.job_type, request.limit
        )
        return convert.usage_report(report)
