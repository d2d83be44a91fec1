"""JobService: convert the request, call one use case, convert the result.

Errors are mapped by server.api.errors.ErrorInterceptor; nothing here catches them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc

from saaslitellm.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from server.api import convert
from server.api.common import metadata
from server.domain.errors import invalid_argument
from server.domain.jobs import JobView
from server.services.analytics import AnalyticsUseCases
from server.services.auth import Authenticator
from server.services.calls import CallUseCases
from server.services.jobs import JobUseCases
from server.services.single_call import JobSpec, SingleCallUseCases
from server.services.team_models import TeamModels


class JobServicer(job_service_pb2_grpc.JobServiceServicer):
    def __init__(
        self,
        auth: Authenticator,
        jobs: JobUseCases,
        calls: CallUseCases,
        single: SingleCallUseCases,
        team_models: TeamModels,
        analytics: AnalyticsUseCases,
    ) -> None:
        self._auth = auth
        self._analytics = analytics
        self._jobs = jobs
        self._calls = calls
        self._single = single
        self._team_models = team_models

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
            metadata=convert.stored_struct(request, "metadata"),
            idempotency_key=request.idempotency_key or headers.get("idempotency-key", ""),
        )
        return convert.job(JobView(job))

    async def GetJob(self, request: job_service_pb2.GetJobRequest, context: grpc.aio.ServicerContext) -> job_pb2.Job:
        principal = await self._auth.team(metadata(context))
        return convert.job(await self._jobs.get(principal, request.job_id))

    async def ListJobCalls(
        self, request: job_service_pb2.ListJobCallsRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.ListJobCallsResponse:
        reader = await self._auth.admin_or_team(metadata(context))  # None: the admin key
        page = await self._jobs.list_calls(reader, request.job_id, request.page_size, request.page_token)
        return convert.job_calls_response(page)

    async def UpdateJobMetadata(
        self, request: job_service_pb2.UpdateJobMetadataRequest, context: grpc.aio.ServicerContext
    ) -> job_pb2.Job:
        principal = await self._auth.team(metadata(context))
        if not request.HasField("metadata"):
            raise invalid_argument("metadata", "is required: a JSON object of the keys to set")
        view = await self._jobs.merge_metadata(principal, request.job_id, convert.stored_struct(request, "metadata"))
        return convert.job(view)

    async def GetJobCosts(
        self, request: job_service_pb2.GetJobCostsRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.GetJobCostsResponse:
        principal = await self._auth.team(metadata(context))
        return convert.job_costs_response(await self._jobs.get(principal, request.job_id))

    async def GetUsage(
        self, request: job_service_pb2.GetUsageRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.UsageSummary:
        principal = await self._auth.team(metadata(context))
        report = await self._analytics.team_usage(
            principal.team_id, request.start_date, request.end_date, request.job_type, request.limit, billed=True
        )
        return convert.usage_summary(principal.team_id, report)

    async def ListTeamModels(
        self, request: job_service_pb2.ListTeamModelsRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.ListTeamModelsResponse:
        await self._auth.team_or_admin(metadata(context), request.team_id)
        available, default = await self._team_models.available(request.team_id)
        return job_service_pb2.ListTeamModelsResponse(
            models=[
                job_service_pb2.AvailableModel(
                    model_alias=m.model_alias,
                    display_name=m.display_name,
                    description=m.description,
                    is_default=m.is_default,
                )
                for m in available
            ],
            default_model=default,
        )

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
        async with contextlib.aclosing(events):
            async for event in events:
                yield convert.stream_event(event)

    async def EstimateCall(
        self, request: job_service_pb2.EstimateCallRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.EstimateCallResponse:
        principal = await self._auth.team(metadata(context))
        estimate = await self._calls.estimate(principal, request.job_id, convert.chat_request(request))
        return convert.estimate_response(estimate)

    async def CompleteJob(
        self, request: job_service_pb2.CompleteJobRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.CompleteJobResponse:
        principal = await self._auth.team(metadata(context))
        view = await self._jobs.complete(
            principal,
            request.job_id,
            status=convert.job_status_name(request.status),
            metadata=convert.stored_struct(request, "metadata"),
            error_message=request.error_message,
        )
        return convert.complete_job_response(view)

    async def CreateAndCall(
        self, request: job_service_pb2.CreateAndCallRequest, context: grpc.aio.ServicerContext
    ) -> job_service_pb2.CreateAndCallResponse:
        headers = metadata(context)
        principal = await self._auth.team(headers)
        result = await self._single.call(
            principal,
            _job_spec(request, headers),
            convert.chat_request(request),
            time_remaining=context.time_remaining(),
        )
        return convert.create_and_call_response(result)

    async def CreateAndCallStream(
        self, request: job_service_pb2.CreateAndCallStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[job_service_pb2.CreateAndCallStreamResponse]:
        headers = metadata(context)
        principal = await self._auth.team(headers)
        events = self._single.stream(
            principal,
            _job_spec(request, headers),
            convert.chat_request(request),
            time_remaining=context.time_remaining(),
        )
        async with contextlib.aclosing(events):
            async for event in events:
                yield convert.create_and_call_event(event)


def _job_spec(request, headers: dict[str, str]) -> JobSpec:
    return JobSpec(
        team_id=request.team_id,
        job_type=request.job_type,
        user_id=request.user_id,
        metadata=convert.stored_struct(request, "job_metadata"),
        idempotency_key=request.idempotency_key or headers.get("idempotency-key", ""),
    )
