"""One interceptor that makes every RPC observable: request id, metrics, span, log line.

Place it after (inside) ErrorInterceptor: it sees the exception a handler raised (a
DomainError and its reason, or anything else, which ErrorInterceptor turns into
INTERNAL) and lets it go on unchanged.

The request id is the `x-request-id` metadata when the caller sent one (Envoy generates
one per request and echoes it to every client, REST or gRPC, as a response header), else
a new one, which the server sends back as initial metadata `x-request-id`, so native
gRPC clients reaching the server directly get it too. It is in the access log line, in
every log record of the request and on the RPC span.

The team, job and model the request names are read before it is authenticated or
validated, so they are logged (and put on the span) only when they have the shape the
API accepts, and never when key-shaped; anything else is `(invalid)`. Otherwise a caller
without a key could write megabytes into the log, and a key sent in the wrong field (a
model, a job id in a path) would be logged whole. What the server learns later (the
authenticated team, the resolved alias) replaces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from server.api.errors import CODES
from server.domain import validation
from server.domain.errors import DomainError
from server.observability import context, logs, tracing
from server.observability.metrics import RpcMetrics

# RPCs probed constantly (Envoy's health checks); counted, but not logged.
_QUIET_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")
_CODE_NAMES = {status.value[0]: status.name for status in grpc.StatusCode}
_KIND_CODES = {kind: _CODE_NAMES[code] for kind, code in CODES.items()}
# Codes that mark a server span as failed (OpenTelemetry's gRPC conventions); the rest
# are the caller's doing (bad input, no credits...) and leave the span unset.
_SERVER_FAULTS = frozenset({"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"})

# What stands for a request field that is not logged.
INVALID = "(invalid)"
# A virtual key or a webhook secret (whole, or more of it than its displayed prefix):
# what tests/e2e/test_ops_observability.py looks for in every log.
# Not within a word (a name like risk-assessment-team-europe is a name), unless as long as
# a whole key (43 characters after sk-): a key glued to a word is still a key.
_KEY_SHAPED = re.compile(r"(?<![A-Za-z0-9])(?:sk-|whsec_)[A-Za-z0-9_\-+/]{20,}|(?:sk-|whsec_)[A-Za-z0-9_\-+/]{40,}")


def key_shaped(value: str) -> bool:
    """Whether `value` holds something that looks like a key or a secret."""
    return _KEY_SHAPED.search(value) is not None


def logged_team_id(value: str, secrets: tuple[str, ...] = ()) -> str:
    """A request's `team_id` for the log: as sent if it is an identifier, else INVALID."""
    return _shown(value, validation.identifier, secrets)


def logged_model(value: str, secrets: tuple[str, ...] = ()) -> str:
    """A request's `model` for the log: as sent if it is a model name, else INVALID."""
    return _shown(value, validation.model_name, secrets)


def _shown(value: str, check: Callable[[str, str], str], secrets: tuple[str, ...]) -> str:
    """`value` if `check` accepts it and it is neither key-shaped nor holds one of the
    operator's `secrets` (the admin key, which has no shape of its own), else INVALID;
    "" stays "". The checks are a regular expression bounded in length: cheap at any size."""
    if not value:
        return value
    try:
        check("", value)
    except DomainError:
        return INVALID
    return INVALID if key_shaped(value) or _holds(value, secrets) else value


def _holds(value: str, secrets: tuple[str, ...]) -> bool:
    return any(secret in value for secret in secrets)


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Longer ways of writing a UUID (hyphens anywhere) are accepted by the API, not shown.
_LONGEST_JOB_ID = len("urn:uuid:") + 36


def logged_job_id(value: str) -> str:
    """A request's `job_id` for the log: the UUID it names, written as the server writes
    it (as jobs are stored and answered), else INVALID; "" stays ""."""
    if not value or _CANONICAL_UUID.fullmatch(value):
        return value
    if len(value) > _LONGEST_JOB_ID:
        return INVALID
    try:
        return str(validation.job_id(value))
    except DomainError:
        return INVALID


class _Method:
    """What is fixed per RPC method, computed once."""

    __slots__ = ("logged", "metrics", "rpc", "secrets", "service", "span_name")

    def __init__(self, full_name: str, grpc_type: str, secrets: tuple[str, ...] = ()) -> None:
        self.secrets = secrets
        service, _, method = full_name.lstrip("/").rpartition("/")
        self.service = service
        self.rpc = f"{service.rsplit('.', 1)[-1]}/{method}"
        self.span_name = f"{service}/{method}"
        self.metrics = RpcMetrics(grpc_type, service, method)
        self.logged = service not in _QUIET_SERVICES


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        """`secrets`: the operator's (the admin key), never logged from a request's fields."""
        self._secrets = tuple(secret for secret in secrets if secret)
        self._methods: dict[str, _Method] = {}
        self._handlers: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        name = handler_call_details.method
        cached = self._handlers.get(name)
        if cached is not None and cached[0] is handler:
            return cached[1]
        if handler.unary_unary:
            method = _Method(name, "unary", self._secrets)
            wrapped = grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        elif handler.unary_stream:
            method = _Method(name, "server_stream", self._secrets)
            wrapped = grpc.unary_stream_rpc_method_handler(
                _stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        else:
            return handler
        self._handlers[name] = (handler, wrapped)
        return wrapped


def _outcome(error: BaseException | None, rpc_context: grpc.aio.ServicerContext) -> tuple[str, str]:
    """(gRPC code name, our error reason) of how the handler ended."""
    if error is None:
        return "OK", ""
    if isinstance(error, DomainError):
        return _KIND_CODES[error.kind], error.reason
    if isinstance(error, asyncio.CancelledError | GeneratorExit):  # GeneratorExit: closed by the caller, gone
        return "CANCELLED", ""
    if isinstance(error, grpc.aio.AbortError):
        code = rpc_context.code()
        return (code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"), ""
    return "INTERNAL", "INTERNAL"


class _Call:
    """The bookkeeping of one RPC, from start to end."""

    __slots__ = ("ctx", "method", "span", "started", "token", "trace_token")

    def __init__(self, method: _Method, request: Any, rpc_context: grpc.aio.ServicerContext) -> None:
        self.started = time.perf_counter()
        self.method = method
        metadata = {k: v for k, v in (rpc_context.invocation_metadata() or ()) if isinstance(v, str)}
        request_id = metadata.get("x-request-id", "")
        if key_shaped(request_id) or _holds(request_id, method.secrets):  # a key in the wrong header: an id of ours
            request_id = ""  # (checked whole: a key cut at the 200 characters kept would leave its start)
        request_id = request_id[:200]
        # Echo the id only when we made it: Envoy echoes its own to every client (REST
        # and gRPC), and a caller that sent one knows it. Saves a write per request. It
        # goes with the first initial metadata sent (`send_id`, or the handler's own).
        echo = not request_id and method.logged
        request_id = request_id or uuid.uuid4().hex
        self.ctx = context.RequestContext(
            request_id=request_id,
            rpc=method.rpc,
            team_id=logged_team_id(getattr(request, "team_id", ""), method.secrets),
            job_id=logged_job_id(getattr(request, "job_id", "")),
            model=logged_model(getattr(request, "model", ""), method.secrets),
            id_unsent=echo,
        )
        self.token = context.current.set(self.ctx)
        method.metrics.started.inc()
        self.span = self.trace_token = None
        if tracing.enabled:
            self.span, self.trace_token = tracing.start_server_span(
                method.span_name,
                metadata,
                {
                    "rpc.system": "grpc",
                    "rpc.service": method.service,
                    "rpc.method": method.span_name.rsplit("/", 1)[-1],
                    "saaslitellm.request_id": request_id,
                },
            )

    async def send_id(self, rpc_context: grpc.aio.ServicerContext, *, failing: bool = False) -> None:
        """Send the request id we made, if the handler did not send it with its own
        initial metadata. When the RPC is failing, it may be past sending anything."""
        if not self.ctx.id_unsent:
            return
        metadata = self.ctx.initial_metadata()
        if not failing:
            await rpc_context.send_initial_metadata(metadata)
            return
        with contextlib.suppress(Exception):
            await rpc_context.send_initial_metadata(metadata)

    def saw(self, response: Any) -> None:
        if not self.ctx.job_id:
            self.ctx.job_id = getattr(response, "job_id", "")

    def end(self, error: BaseException | None, rpc_context: grpc.aio.ServicerContext, streamed: bool) -> None:
        seconds = time.perf_counter() - self.started
        code, reason = _outcome(error, rpc_context)
        if not reason:  # a stream whose last event carried an error: its RPC is OK, its reason that
            reason = self.ctx.stream_error_reason
        metrics = self.method.metrics
        metrics.handled(code).inc()
        metrics.seconds.observe(seconds)
        if self.span is not None:
            ctx = self.ctx
            tracing.end_server_span(
                self.span,
                self.trace_token,
                {
                    "rpc.grpc.status_code": code,
                    "saaslitellm.error_reason": reason,
                    "saaslitellm.team_id": ctx.team_id,
                    "saaslitellm.job_id": ctx.job_id,
                    "saaslitellm.model": ctx.model,
                    "saaslitellm.upstream_model": ctx.upstream_model,
                },
                error=code in _SERVER_FAULTS,
            )
        if self.method.logged:
            # Written once the response is on its way (the loop's next turn, in this
            # request's context): formatting and writing the line took 0.05 ms of every
            # call's latency. The metrics above stay in step with the response, for
            # scrapes that follow it.
            try:
                asyncio.get_running_loop().call_soon(logs.access, self.ctx, code, reason, seconds, streamed)
            except RuntimeError:  # ended off the loop (a stream's generator finalised at exit): now
                logs.access(self.ctx, code, reason, seconds, streamed)
        try:
            context.current.reset(self.token)
        except ValueError:  # ended from another context (a generator closed elsewhere)
            pass


def _unary(behavior: Callable[..., Awaitable[Any]], method: _Method) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request: Any, rpc_context: grpc.aio.ServicerContext) -> Any:
        call = _Call(method, request, rpc_context)
        error: BaseException | None = None
        try:
            response = await behavior(request, rpc_context)
            call.saw(response)
            await call.send_id(rpc_context)
            return response
        except BaseException as raised:
            error = raised
            await call.send_id(rpc_context, failing=True)
            raise
        finally:
            call.end(error, rpc_context, streamed=False)

    return wrapped


def _stream(behavior: Callable[..., AsyncIterator[Any]], method: _Method) -> Callable[..., AsyncIterator[Any]]:
    # A handler may also write its responses itself (context.write) and return, as
    # grpc_health's Health/Watch does: awaited, not iterated.
    writes_itself = not inspect.isasyncgenfunction(behavior)

    async def wrapped(request: Any, rpc_context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        call = _Call(method, request, rpc_context)
        open_streams = method.metrics.streams_open
        open_streams.inc()
        error: BaseException | None = None
        try:
            if writes_itself:
                await call.send_id(rpc_context)
                await behavior(request, rpc_context)
                return
            async with contextlib.aclosing(behavior(request, rpc_context)) as responses:
                async for response in responses:
                    if not call.ctx.job_id:
                        call.saw(response)
                    if call.ctx.id_unsent:  # the first response only, and only when we made the id
                        await call.send_id(rpc_context)
                    yield response
        except BaseException as raised:
            error = raised
            await call.send_id(rpc_context, failing=True)
            raise
        finally:
            open_streams.dec()
            call.end(error, rpc_context, streamed=True)

    return wrapped
