"""OpenAIService: OpenAI's chat completions and models, on the job API's use cases.

A completion without `x-job-id` runs as a single-call job (SingleCallUseCases, as
CreateAndCall); with it, as a call in that open job (CallUseCases, as LLMCall). So a
completion reserves, records and charges exactly as those RPCs do. Errors are mapped by
server.api.errors.ErrorInterceptor, except those after a stream began, which OpenAI
clients expect as an `error` event.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import grpc
from google.api import httpbody_pb2

from saaslitellm.v1 import openai_service_pb2, openai_service_pb2_grpc
from server.api import openai_convert as wire
from server.api.common import metadata
from server.api.errors import as_domain_error
from server.domain import validation
from server.domain.completion import Delta
from server.domain.errors import invalid_argument, not_found
from server.observability import context as request_context
from server.services.auth import Authenticator
from server.services.calls import CallUseCases, KeepAlive, StreamFinished, StreamStarted
from server.services.single_call import JobSpec, SingleCallFinished, SingleCallUseCases
from server.services.team_models import TeamModels

JOB_ID_HEADER = "x-job-id"
JOB_TYPE_HEADER = "x-job-type"
PURPOSE_HEADER = "x-call-purpose"
CALL_ID_HEADER = "x-call-id"
IDEMPOTENCY_HEADER = "idempotency-key"


class OpenAIServicer(openai_service_pb2_grpc.OpenAIServiceServicer):
    def __init__(
        self, auth: Authenticator, calls: CallUseCases, single: SingleCallUseCases, team_models: TeamModels
    ) -> None:
        self._auth = auth
        self._calls = calls
        self._single = single
        self._team_models = team_models

    async def CreateChatCompletion(
        self, request: httpbody_pb2.HttpBody, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        headers = metadata(context)
        principal = await self._auth.team(headers)
        purpose = validation.label(PURPOSE_HEADER, headers.get(PURPOSE_HEADER, ""), max_length=200)
        parsed = wire.parse_request(request.data, purpose=purpose)
        job_id = headers.get(JOB_ID_HEADER, "")
        if job_id:
            validation.uuid_field(JOB_ID_HEADER, job_id)
            if JOB_TYPE_HEADER in headers:
                raise invalid_argument(JOB_TYPE_HEADER, f"names the type of a new job; the call runs in job {job_id}")
            if IDEMPOTENCY_HEADER in headers:  # a call in a job is not made once by a key: say so, not ignore it
                raise invalid_argument(
                    IDEMPOTENCY_HEADER, f"makes a new job once; a call in job {job_id} is not deduplicated by a key"
                )
        spec = None if job_id else _job_spec(headers, parsed)
        remaining = context.time_remaining()
        if not parsed.stream:
            if spec is None:
                result = await self._calls.call(principal, job_id, parsed.chat, time_remaining=remaining)
            else:
                result = (await self._single.call(principal, spec, parsed.chat, time_remaining=remaining)).call
            await context.send_initial_metadata(
                request_context.initial_metadata(
                    ((JOB_ID_HEADER, str(result.job_id)), (CALL_ID_HEADER, str(result.call_id)))
                )
            )
            yield httpbody_pb2.HttpBody(content_type=wire.JSON, data=wire.encode(wire.completion(result, _now())))
            return
        events = (
            self._calls.stream(principal, job_id, parsed.chat, time_remaining=remaining)
            if spec is None
            else self._single.stream(principal, spec, parsed.chat, time_remaining=remaining)
        )
        async with contextlib.aclosing(events), contextlib.aclosing(self._stream(events, parsed, context)) as chunks:
            async for data in chunks:
                yield httpbody_pb2.HttpBody(content_type=wire.EVENT_STREAM, data=data)

    async def _stream(self, events, parsed: wire.CompletionRequest, context) -> AsyncIterator[bytes]:
        """The SSE events of a stream. An error once it began (the call's, or settling a
        single-call job's) is its last event, as OpenAI streams one; before, an RPC error."""
        header: wire.ChunkHeader | None = None
        try:
            async for item in events:
                if isinstance(item, StreamStarted):
                    await context.send_initial_metadata(
                        request_context.initial_metadata(
                            ((JOB_ID_HEADER, str(item.job_id)), (CALL_ID_HEADER, str(item.call_id)))
                        )
                    )
                    header = wire.ChunkHeader(wire.completion_id(item.call_id), _now(), item.model_alias)
                    yield wire.event(header.first())
                    continue
                assert header is not None, "a stream starts with StreamStarted"
                if isinstance(item, KeepAlive):
                    yield wire.KEEP_ALIVE
                    continue
                if isinstance(item, Delta):
                    if not item.is_empty:
                        yield wire.event(header.delta(item))
                    continue
                finished: StreamFinished = item.call if isinstance(item, SingleCallFinished) else item
                if finished.error is not None:
                    yield wire.event(wire.stream_error(finished.error))
                    return
                if parsed.include_usage:
                    yield wire.event(header.usage(finished.usage))
                yield wire.DONE
        except Exception as error:
            if header is None:
                raise
            yield wire.event(wire.stream_error(as_domain_error(error, "OpenAIService/CreateChatCompletion")))

    async def ListOpenAIModels(
        self, request: openai_service_pb2.ListOpenAIModelsRequest, context: grpc.aio.ServicerContext
    ) -> openai_service_pb2.ListOpenAIModelsResponse:
        principal = await self._auth.team(metadata(context))
        available, _ = await self._team_models.available(principal.team_id)
        return openai_service_pb2.ListOpenAIModelsResponse(
            object="list", data=[_model(m.model_alias, m.created_at) for m in available]
        )

    async def GetOpenAIModel(
        self, request: openai_service_pb2.GetOpenAIModelRequest, context: grpc.aio.ServicerContext
    ) -> openai_service_pb2.OpenAIModel:
        principal = await self._auth.team(metadata(context))
        validation.model_name("model", request.model)  # not echoed when it could not be one
        available, _ = await self._team_models.available(principal.team_id)
        for model in available:
            if model.model_alias == request.model:
                return _model(model.model_alias, model.created_at)
        raise not_found("model", request.model)


def _job_spec(headers: dict[str, str], parsed: wire.CompletionRequest) -> JobSpec:
    """The single-call job a completion without x-job-id runs in."""
    job_type = headers.get(JOB_TYPE_HEADER, wire.DEFAULT_JOB_TYPE)
    validation.label(JOB_TYPE_HEADER, job_type, required=True)
    idempotency_key = validation.label(IDEMPOTENCY_HEADER, headers.get(IDEMPOTENCY_HEADER, ""), max_length=200)
    return JobSpec(team_id="", job_type=job_type, user_id=parsed.user, metadata={}, idempotency_key=idempotency_key)


def _model(alias: str, created_at) -> openai_service_pb2.OpenAIModel:
    return openai_service_pb2.OpenAIModel(
        id=alias, object="model", created=int(created_at.timestamp()), owned_by="saaslitellm"
    )


def _now() -> int:
    return int(time.time())
