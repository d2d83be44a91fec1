"""gRPC servicers: convert the request, call one use case, convert the result.

Errors are mapped by server.api.errors.ErrorInterceptor; nothing here catches them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from saaslitellm.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    tenancy_pb2,
)
from server.api import convert
from server.domain.jobs import JobView
from server.services.admin import AdminUseCases
from server.services.auth import Authenticator
from server.services.calls import CallUseCases
from server.services.jobs import JobUseCases


def metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)}


class JobServicer(job_service_pb2_grpc.JobServiceServicer):
    def __init__(self, auth: Authenticator, jobs: JobUseCases, calls: CallUseCases) -> None:
        self._auth = auth
        self._jobs = jobs
        self._calls = calls

    async def CreateJob(
        self, request: job_service_pb2.CreateJobRequest, context: grpc.aio.ServicerContext
    ) -> job_pb2.Job:
        headers = metadata(context)
        principal = await self._auth.team(headers)
        job = await self._jobs.create(
            principal,
            team_id=request.team_id,
            job_type=request.job_type,
            user_id=request.user_id,
            metadata=convert.struct_to_dict(request.metadata),
            idempotency_key=request.idempotency_key or headers.get("idempotency-key", ""),
        )
        return convert.job(JobView(job))

    async def GetJob(self, request: job_service_pb2.GetJobRequest, context: grpc.aio.ServicerContext) -> job_pb2.Job:
        principal = await self._auth.team(metadata(context))
        return convert.job(await self._jobs.get(principal, request.job_id))

    async def LLMCall(
        self, request: job_service_pb2.LLMCallRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.LLMCallResponse:
        principal = await self._auth.team(metadata(context))
        result = await self._calls.call(
            principal, request.job_id, convert.chat_request(request), time_remaining=context.time_remaining()
        )
        return convert.llm_call_response(result)

    async def LLMCallStream(
        self, request: job_service_pb2.LLMCallStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[job_service_pb2.LLMCallStreamResponse]:
        principal = await self._auth.team(metadata(context))
        events = self._calls.stream(
            principal, request.job_id, convert.chat_request(request), time_remaining=context.time_remaining()
        )
        async for event in events:
            yield convert.stream_event(event)

    async def CompleteJob(
        self, request: job_service_pb2.CompleteJobRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.CompleteJobResponse:
        principal = await self._auth.team(metadata(context))
        view = await self._jobs.complete(
            principal,
            request.job_id,
            status=convert.job_status_name(request.status),
            metadata=convert.struct_to_dict(request.metadata),
            error_message=request.error_message,
        )
        return convert.complete_job_response(view)


class AdminServicer(admin_service_pb2_grpc.AdminServiceServicer):
    def __init__(self, auth: Authenticator, admin: AdminUseCases) -> None:
        self._auth = auth
        self._admin = admin

    async def CreateOrganization(
        self, request: admin_service_pb2.CreateOrganizationRequest, context: grpc.aio.ServicerContext
    ) -> tenancy_pb2.Organization:
        self._auth.admin(metadata(context))
        org = await self._admin.create_organization(
            request.organization_id, request.name, convert.struct_to_dict(request.metadata)
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
            metadata=convert.struct_to_dict(request.metadata),
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
