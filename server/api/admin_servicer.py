"""AdminService: convert the request, call one use case, convert the result.

Errors are mapped by server.api.errors.ErrorInterceptor; nothing here catches them.
"""

from __future__ import annotations

import grpc

from saaslitellm.v1 import admin_service_pb2, admin_service_pb2_grpc, tenancy_pb2
from server.api import admin_convert as convert
from server.api.common import metadata
from server.api.convert import struct_to_dict
from server.services.admin import AdminUseCases
from server.services.auth import Authenticator


class AdminServicer(admin_service_pb2_grpc.AdminServiceServicer):
    def __init__(self, auth: Authenticator, admin: AdminUseCases) -> None:
        self._auth = auth
        self._admin = admin

    async def CreateOrganization(
        self, request: admin_service_pb2.CreateOrganizationRequest, context: grpc.aio.ServicerContext
    ) -> tenancy_pb2.Organization:
        self._auth.admin(metadata(context))
        org = await self._admin.create_organization(
            request.organization_id, request.name, struct_to_dict(request.metadata)
        )
        return convert.organization(org)

    async def GetOrganization(
        self, request: admin_service_pb2.GetOrganizationRequest, context: grpc.aio.ServicerContext
    ) -> tenancy_pb2.Organization:
        self._auth.admin(metadata(context))
        return convert.organization(await self._admin.get_organization(request.organization_id))

    async def CreateModelAccessGroup(
        self, request: admin_service_pb2.CreateModelAccessGroupRequest, context: grpc.aio.ServicerContext
    ) -> tenancy_pb2.ModelAccessGroup:
        self._auth.admin(metadata(context))
        group = await self._admin.create_group(
            request.group_name, request.display_name, request.description, list(request.model_aliases)
        )
        return convert.access_group(group)

    async def GetModelAccessGroup(
        self, request: admin_service_pb2.GetModelAccessGroupRequest, context: grpc.aio.ServicerContext
    ) -> tenancy_pb2.ModelAccessGroup:
        self._auth.admin(metadata(context))
        return convert.access_group(await self._admin.get_group(request.group_name))

    async def CreateModel(
        self, request: admin_service_pb2.CreateModelRequest, context: grpc.aio.ServicerContext
    ) -> tenancy_pb2.ModelAlias:
        self._auth.admin(metadata(context))
        alias = await self._admin.create_alias(
            request.model_alias,
            request.actual_model,
            list(request.fallback_models),
            list(request.access_groups),
            request.display_name,
            request.description,
        )
        return convert.model_alias(alias)

    async def GetModel(
        self, request: admin_service_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> tenancy_pb2.ModelAlias:
        self._auth.admin(metadata(context))
        return convert.model_alias(await self._admin.get_alias(request.model_alias))

    async def CreateTeam(
        self, request: admin_service_pb2.CreateTeamRequest, context: grpc.aio.ServicerContext
    ) -> admin_service_pb2.CreateTeamResponse:
        self._auth.admin(metadata(context))
        created = await self._admin.create_team(
            organization_id=request.organization_id,
            team_id=request.team_id,
            team_alias=request.team_alias,
            access_groups=list(request.access_groups),
            credits_allocated=request.credits_allocated,
            metadata=struct_to_dict(request.metadata),
            default_model=request.default_model,
            budget_mode=convert.budget_mode(request.budget_mode),
            key_name=request.key_name,
        )
        return convert.create_team_response(created)

    async def GetTeam(
        self, request: admin_service_pb2.GetTeamRequest, context: grpc.aio.ServicerContext
    ) -> tenancy_pb2.Team:
        self._auth.admin(metadata(context))
        return convert.team(await self._admin.get_team(request.team_id))
