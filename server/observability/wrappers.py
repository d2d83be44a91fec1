"""The upstream client, the authenticator and the price catalog, observed from the outside.

Subclasses that add metrics, spans and request context around the real methods and
change nothing else, so the use cases that receive them behave exactly as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Mapping

from server.domain.audit import Actor
from server.domain.chat import ChatRequest
from server.domain.errors import DomainError
from server.domain.models import Route
from server.observability import context, tracing
from server.observability.metrics import UNPRICED_CALLS, UPSTREAM_ERRORS, UPSTREAM_SECONDS
from server.services.auth import Authenticator, TeamPrincipal
from server.services.prices import PriceCatalog
from server.upstream.litellm import LiteLLMClient, UpstreamReply, UpstreamStream


def _note_model(route: Route, model: str) -> None:
    ctx = context.current.get()
    if ctx is not None:
        ctx.model = route.alias
        ctx.upstream_model = model


def _span_attributes(route: Route, model: str, streamed: bool) -> dict[str, object]:
    return {
        "saaslitellm.model": route.alias,
        "saaslitellm.upstream_model": model,
        "gen_ai.request.model": model,
        "saaslitellm.streamed": streamed,
    }


def _failed(model: str, error: BaseException) -> None:
    if isinstance(error, DomainError):
        UPSTREAM_ERRORS.labels(model, error.reason).inc()
    elif isinstance(error, asyncio.CancelledError):
        UPSTREAM_ERRORS.labels(model, "CANCELLED").inc()
    else:
        UPSTREAM_ERRORS.labels(model, "INTERNAL").inc()


class _ObservedStream:
    """An open stream whose mid-stream failures are counted against its model."""

    def __init__(self, inner: UpstreamStream, model: str) -> None:
        self._inner = inner
        self._model = model
        self.failure_counted = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def chunks(self) -> AsyncIterator[dict]:
        try:
            async with contextlib.aclosing(self._inner.chunks()) as chunks:
                async for chunk in chunks:
                    yield chunk
        except DomainError as error:
            self.failure_counted = True
            _failed(self._model, error)
            raise


class ObservedUpstream(LiteLLMClient):
    """LiteLLMClient with a latency histogram and error counter per model, and a span
    per attempt."""

    async def complete(self, model: str, route: Route, request: ChatRequest, *, timeout: float) -> UpstreamReply:
        _note_model(route, model)
        started = time.perf_counter()
        with (
            tracing.client_span("chat.completions", _span_attributes(route, model, False))
            if tracing.enabled
            else contextlib.nullcontext()
        ):
            try:
                return await super().complete(model, route, request, timeout=timeout)
            except BaseException as error:
                _failed(model, error)
                raise
            finally:
                UPSTREAM_SECONDS.labels(model, "complete").observe(time.perf_counter() - started)

    @contextlib.asynccontextmanager
    async def stream(
        self, model: str, route: Route, request: ChatRequest, *, timeout: float, idle_timeout: float
    ) -> AsyncIterator[UpstreamStream]:
        _note_model(route, model)
        started = time.perf_counter()
        observed: _ObservedStream | None = None
        with (
            tracing.client_span("chat.completions", _span_attributes(route, model, True))
            if tracing.enabled
            else contextlib.nullcontext()
        ):
            try:
                async with super().stream(model, route, request, timeout=timeout, idle_timeout=idle_timeout) as opened:
                    UPSTREAM_SECONDS.labels(model, "stream_start").observe(time.perf_counter() - started)
                    observed = _ObservedStream(opened, model)
                    yield observed  # type: ignore[misc]
            except BaseException as error:
                if not isinstance(error, GeneratorExit) and not (observed is not None and observed.failure_counted):
                    _failed(model, error)
                raise
            finally:
                UPSTREAM_SECONDS.labels(model, "stream").observe(time.perf_counter() - started)


class ObservedAuthenticator(Authenticator):
    """Authenticator that records the caller's team in the request context, and gives the
    operator's changes the request id of the access log line (the interceptor's: one it
    made when none was sent, never a key-shaped one), for the audit log."""

    def admin(self, metadata: Mapping[str, str], peer: str | None = "") -> Actor:
        actor = super().admin(metadata, peer)
        ctx = context.current.get()
        return actor if ctx is None else dataclasses.replace(actor, request_id=ctx.request_id)

    async def team(self, metadata: Mapping[str, str]) -> TeamPrincipal:
        principal = await super().team(metadata)
        ctx = context.current.get()
        if ctx is not None:
            ctx.team_id = principal.team_id
        return principal


class ObservedPriceCatalog(PriceCatalog):
    """PriceCatalog that counts unpriced calls per model."""

    def unpriced(self, model: str) -> None:
        UNPRICED_CALLS.labels(model).inc()
        super().unpriced(model)
