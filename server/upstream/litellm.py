"""The LiteLLM proxy client: the only module that speaks HTTP to the upstream.

It sends OpenAI Chat Completions requests with the model route of the alias (primary as
`model`, the rest as per-request `fallbacks`), always asks streamed calls for usage, reads
which deployment served the call and what LiteLLM says it cost, and translates every
upstream failure into a DomainError with our own code and a message safe to show a
tenant (no raw upstream bodies, keys or real model names).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from server.domain.chat import ChatRequest
from server.domain.errors import DomainError, Kind, Reason
from server.domain.models import Route

_SECRETISH = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+|api[_-]?key\S*)", re.IGNORECASE)
_MAX_MESSAGE = 500


@dataclass(frozen=True)
class UpstreamReply:
    """A non-streaming completion and what LiteLLM told us about it."""

    body: dict[str, Any]
    served_model: str
    attempted_models: tuple[str, ...]
    cost_usd: Decimal | None
    latency_ms: int


@dataclass
class UpstreamStream:
    """An open streamed completion. Iterate `chunks()`; read the facts after."""

    served_model: str
    attempted_models: tuple[str, ...]
    _response: httpx.Response
    _route: Route
    started: float = field(default_factory=time.perf_counter)

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        """Parsed `chat.completion.chunk` objects, until `[DONE]`.

        Raises UPSTREAM_STREAM_INTERRUPTED when the upstream reports an error mid-stream
        or the connection drops before `[DONE]`.
        """
        try:
            async for line in self._response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                chunk = json.loads(data)
                if "error" in chunk:
                    raise _interrupted(_safe_message(chunk["error"], self._route))
                yield chunk
        except (httpx.TransportError, json.JSONDecodeError) as error:
            raise _interrupted(f"the model provider's stream broke off ({type(error).__name__})") from error
        raise _interrupted("the model provider's stream ended without completing")


class LiteLLMClient:
    """Calls the LiteLLM proxy's OpenAI-compatible API with the operator's master key."""

    def __init__(self, http: httpx.AsyncClient, *, base_url: str, api_key: str, num_retries: int) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._url = self._base + "/v1/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._num_retries = num_retries

    async def list_models(self) -> list[str]:
        """The model names the proxy serves (`GET /v1/models`), for catalog checks."""
        try:
            response = await self._http.get(self._base + "/v1/models", headers=self._headers, timeout=10.0)
        except httpx.TransportError as error:
            raise _unreachable() from error
        if response.status_code != 200:
            raise DomainError(
                Kind.UNAVAILABLE, Reason.UPSTREAM_UNAVAILABLE, "the model gateway did not list its models"
            )
        return sorted(str(m.get("id")) for m in response.json().get("data", []) if m.get("id"))

    def payload(self, route: Route, request: ChatRequest, *, stream: bool, timeout: float) -> dict[str, Any]:
        body: dict[str, Any] = {**request.params, "model": route.primary, "messages": list(request.messages)}
        if route.fallbacks:
            body["fallbacks"] = list(route.fallbacks)
        body["num_retries"] = self._num_retries
        body["timeout"] = timeout
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def complete(self, route: Route, request: ChatRequest, *, timeout: float) -> UpstreamReply:
        started = time.perf_counter()
        try:
            response = await self._http.post(
                self._url,
                json=self.payload(route, request, stream=False, timeout=timeout),
                headers=self._headers,
                timeout=_timeouts(timeout),
            )
        except httpx.TimeoutException as error:
            raise _timeout(timeout) from error
        except httpx.TransportError as error:
            raise _unreachable() from error
        if response.status_code != 200:
            raise _http_error(response.status_code, _error_body(response.content), response.headers, route)
        try:
            body = response.json()
        except ValueError as error:
            raise DomainError(
                Kind.UNAVAILABLE, Reason.UPSTREAM_UNAVAILABLE, "the model provider sent a malformed reply"
            ) from error
        served, attempted = _routing(response.headers, route)
        return UpstreamReply(
            body=body,
            served_model=served,
            attempted_models=attempted,
            cost_usd=_decimal(response.headers.get("x-litellm-response-cost")),
            latency_ms=round((time.perf_counter() - started) * 1000),
        )

    @contextlib.asynccontextmanager
    async def stream(self, route: Route, request: ChatRequest, *, timeout: float) -> AsyncIterator[UpstreamStream]:
        """Open a streamed completion; errors before the first byte raise here."""
        http_request = self._http.build_request(
            "POST",
            self._url,
            json=self.payload(route, request, stream=True, timeout=timeout),
            headers=self._headers,
            timeout=_timeouts(timeout, read=timeout),
        )
        try:
            response = await self._http.send(http_request, stream=True)
        except httpx.TimeoutException as error:
            raise _timeout(timeout) from error
        except httpx.TransportError as error:
            raise _unreachable() from error
        try:
            if response.status_code != 200:
                raise _http_error(response.status_code, _error_body(await response.aread()), response.headers, route)
            served, attempted = _routing(response.headers, route)
            yield UpstreamStream(served_model=served, attempted_models=attempted, _response=response, _route=route)
        finally:
            await response.aclose()


def _timeouts(total: float, read: float | None = None) -> httpx.Timeout:
    # LiteLLM gets `timeout` in the body and answers 408 itself; our own timeout is a
    # little longer so that LiteLLM's clean error usually wins over a cut connection.
    return httpx.Timeout(total + 2, connect=5.0, read=(read or total) + 2)


def _routing(headers: httpx.Headers, route: Route) -> tuple[str, tuple[str, ...]]:
    """Which model served the call, and which were tried before it (primary first)."""
    served = headers.get("x-litellm-model-group") or route.primary
    try:
        fallbacks_tried = int(headers.get("x-litellm-attempted-fallbacks") or 0)
    except ValueError:
        fallbacks_tried = 0
    if served in route.models:
        attempted = route.models[: route.models.index(served) + 1]
    else:
        attempted = route.models[: fallbacks_tried + 1]
    return served, tuple(attempted)


def _decimal(value: str | None) -> Decimal | None:
    if not value:
        return None
    try:
        cost = Decimal(value)
    except InvalidOperation:
        return None
    return cost if cost.is_finite() and cost >= 0 else None


def _error_body(content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _safe_message(error: Any, route: Route) -> str:
    """The provider's message with keys scrubbed, real model names replaced by the alias,
    and LiteLLM's exception-class prefixes removed, bounded in length."""
    message = error.get("message", "") if isinstance(error, dict) else str(error)
    message = re.sub(r"^(litellm\.)?\w+(Error|Exception):\s*", "", str(message))
    message = re.sub(r"\blitellm\.\w+:\s*", "", message)
    message = _SECRETISH.sub("[redacted]", message)
    for model in sorted(route.models, key=len, reverse=True):
        message = message.replace(model, route.alias)
    message = " ".join(message.split())
    return message[:_MAX_MESSAGE] or "the model provider rejected the request"


def _http_error(status: int, error: dict[str, Any], headers: httpx.Headers, route: Route) -> DomainError:
    if status == 429:
        retry_after = _retry_after(headers)
        return DomainError(
            Kind.RESOURCE_EXHAUSTED,
            Reason.UPSTREAM_RATE_LIMITED,
            f"the model provider is rate limiting '{route.alias}'; retry later",
            metadata={"model": route.alias, "upstream_status": "429"},
            retry_after_seconds=retry_after,
        )
    if status == 408:
        return DomainError(
            Kind.DEADLINE_EXCEEDED,
            Reason.UPSTREAM_TIMEOUT,
            f"the model provider did not answer for '{route.alias}' in time",
            metadata={"model": route.alias, "upstream_status": "408"},
        )
    if status in (400, 422):
        return DomainError(
            Kind.INVALID_ARGUMENT,
            Reason.UPSTREAM_REJECTED,
            f"the model provider rejected the request: {_safe_message(error, route)}",
            metadata={"model": route.alias, "upstream_status": str(status)},
        )
    return DomainError(
        Kind.UNAVAILABLE,
        Reason.UPSTREAM_UNAVAILABLE,
        f"the model provider for '{route.alias}' is unavailable (HTTP {status}); retry later",
        metadata={"model": route.alias, "upstream_status": str(status)},
    )


def _retry_after(headers: httpx.Headers) -> float | None:
    for name in ("retry-after", "x-ratelimit-reset-requests", "llm_provider-retry-after"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return None


def _timeout(timeout: float) -> DomainError:
    return DomainError(
        Kind.DEADLINE_EXCEEDED,
        Reason.UPSTREAM_TIMEOUT,
        f"the model provider did not answer within {timeout:g} s",
    )


def _unreachable() -> DomainError:
    return DomainError(Kind.UNAVAILABLE, Reason.UPSTREAM_UNAVAILABLE, "the model gateway is unreachable; retry shortly")


def _interrupted(message: str) -> DomainError:
    return DomainError(Kind.UNAVAILABLE, Reason.UPSTREAM_STREAM_INTERRUPTED, message)
