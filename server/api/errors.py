"""The one place that turns failures into gRPC statuses.

A DomainError becomes its status code plus `google.rpc.ErrorInfo` (reason, metadata),
`BadRequest` (field violations) and `RetryInfo` (when a retry delay is known, also sent as
`retry-after` metadata, which REST clients get as the Retry-After header). Anything
else is INTERNAL with a generic message: exception text never reaches a client.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.domain.errors import DomainError, Kind, Reason

log = logging.getLogger(__name__)

ERROR_DOMAIN = "saaslitellm"

CODES: dict[Kind, int] = {
    Kind.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    Kind.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    Kind.PERMISSION_DENIED: code_pb2.PERMISSION_DENIED,
    Kind.NOT_FOUND: code_pb2.NOT_FOUND,
    Kind.ALREADY_EXISTS: code_pb2.ALREADY_EXISTS,
    Kind.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    Kind.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    Kind.UNAVAILABLE: code_pb2.UNAVAILABLE,
    Kind.DEADLINE_EXCEEDED: code_pb2.DEADLINE_EXCEEDED,
    Kind.INTERNAL: code_pb2.INTERNAL,
}

INTERNAL_ERROR = DomainError(Kind.INTERNAL, Reason.INTERNAL, "internal error; the operator has been notified")


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: DomainError) -> status_pb2.Status:
    details = [_pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata))]
    if error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in error.violations
                    ]
                )
            )
        )
    if error.retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(round(error.retry_after_seconds * 1000))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=CODES[error.kind], message=error.message, details=details)


def as_domain_error(error: BaseException, method: str) -> DomainError:
    if isinstance(error, DomainError):
        return error
    log.error("unhandled error in %s", method, exc_info=error)
    return INTERNAL_ERROR


async def _abort(context: grpc.aio.ServicerContext, error: BaseException, method: str) -> None:
    domain_error = as_domain_error(error, method)
    status = rpc_status.to_status(to_status(domain_error))
    if domain_error.retry_after_seconds is not None:
        # Also as `retry-after` metadata, in whole seconds: Envoy passes it on to REST
        # clients as the HTTP Retry-After header, which HTTP libraries honour by themselves.
        retry_after = ("retry-after", str(math.ceil(domain_error.retry_after_seconds)))
        status = status._replace(trailing_metadata=(*status.trailing_metadata, retry_after))
    await context.abort_with_status(status)


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every handler so that errors leave as rich statuses, never as tracebacks.

    The wrapped handler of each method is built once and reused: the registered handlers
    never change, and building wrappers per request showed in profiles."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return handler
            wrapped = self._wrapped[method] = _wrap(handler, method)
        return wrapped


def _wrap(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _unary(handler.unary_unary, method),
            request_deserializer=_lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _stream(handler.unary_stream, method),
            request_deserializer=_lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    return handler


class _Undecodable:
    """Stands for a request that could not be decoded (e.g. JSON nested deeper than
    protobuf's depth limit): the handler answers INVALID_ARGUMENT instead of gRPC's
    generic INTERNAL, whose message would describe the decoder's internals."""


UNDECODABLE = _Undecodable()


def _malformed() -> DomainError:
    return DomainError(
        Kind.INVALID_ARGUMENT,
        Reason.INVALID_REQUEST,
        "the request could not be decoded: it is malformed or nested too deeply",
    )


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return UNDECODABLE

    return deserialize


def _unary(behavior: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            if request is UNDECODABLE:
                raise _malformed()
            return await behavior(request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as error:
            await _abort(context, error, method)

    return wrapped


def _stream(behavior: Callable[..., AsyncIterator[Any]], method: str) -> Callable[..., AsyncIterator[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            if request is UNDECODABLE:
                raise _malformed()
            async for response in behavior(request, context):
                yield response
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as error:
            await _abort(context, error, method)

    return wrapped
