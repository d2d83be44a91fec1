"""The LiteLLM proxy client: the only module that speaks HTTP to the upstream.

It sends OpenAI Chat Completions requests with the model route of the alias (primary as
`model`, the rest as per-request `fallbacks`), always asks streamed calls for usage, reads
which deployment served the call and what LiteLLM says it cost, and translates every
upstream failure into a DomainError with our own code and a message safe to show a
tenant (no raw upstream bodies, keys or real model names).
"""

from __future__ import annotations

import asyncio
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
    _idle_timeout: float = 60.0
    started: float = field(default_factory=time.perf_counter)

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        """Parsed `chat.completion.chunk` objects, until `[DONE]`.

        Raises UPSTREAM_STREAM_INTERRUPTED when the upstream reports an error mid-stream
        or the connection drops before `[DONE]`.
        """
        lines = self._response.aiter_lines()
        try:
            while True:
                # The idle timeout is ours, per chunk: httpx's read timeout also covers the
                # wait for the stream to start, which may rightly take longer.
                async with asyncio.timeout(self._idle_timeout):
                    line = await anext(lines, None)
                if line is None:
                    break
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                chunk = json.loads(data)
                if "error" in chunk:  # LiteLLM's report of a provider failure mid-stream
                    raise _interrupted(f"the model provider's stream for '{self._route.alias}' failed midway")
                yield chunk
        except (TimeoutError, httpx.TimeoutException) as error:
            raise DomainError(
                Kind.DEADLINE_EXCEEDED,
                Reason.UPSTREAM_TIMEOUT,
                f"the model provider's stream for '{self._route.alias}' was idle for {self._idle_timeout:g} s",
                metadata={"model": self._route.alias},
            ) from error
        except (httpx.TransportError, json.JSONDecodeError) as error:
            raise _interrupted(f"the model provider's stream for '{self._route.alias}' broke off") from error
        raise _interrupted(f"the model provider's stream for '{self._route.alias}' ended without completing")


class LiteLLMClient:
    """Calls the LiteLLM proxy's OpenAI-compatible API with the operator's master key."""

    def __init__(self, http: httpx.AsyncClient, *, base_url: str, api_key: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._url = self._base + "/v1/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

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

    async def model_prices(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Per-token (input, output) USD prices by model name, from LiteLLM's `/model/info`.

        Empty when the upstream is not a LiteLLM proxy (e.g. a provider called directly).
        """
        try:
            response = await self._http.get(self._base + "/model/info", headers=self._headers, timeout=10.0)
        except httpx.TransportError:
            return {}
        if response.status_code != 200:
            return {}
        prices = {}
        for entry in response.json().get("data", []):
            info = entry.get("model_info") or {}
            cost_in = _decimal(str(info.get("input_cost_per_token") or ""))
            cost_out = _decimal(str(info.get("output_cost_per_token") or ""))
            if entry.get("model_name") and cost_in is not None and cost_out is not None:
                prices[entry["model_name"]] = (cost_in, cost_out)
        return prices

    def payload(self, model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The OpenAI request for one attempt on one model.

        Fallbacks and retries are decided by our server (server/services/calls.py); the
        proxy's config sets num_retries 0. Deadlines are enforced here, by the HTTP
        timeout and by closing the connection, never sent as `timeout`/`num_retries`:
        LiteLLM keys its cached provider client on them, so a per-request value (e.g. a
        caller's remaining deadline) would build a new client for each request.
        """
        body: dict[str, Any] = {**request.params, "model": model, "messages": list(request.messages)}
        if "user" in request.params:
            # LiteLLM drops `user` for OpenAI-compatible models it does not know
            # (BerriAI/litellm#25753); declaring it allowed makes it pass through.
            body["allowed_openai_params"] = ["user"]
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def complete(self, model: str, route: Route, request: ChatRequest, *, timeout: float) -> UpstreamReply:
        """One non-streaming attempt on `model` (one of `route.models`)."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):  # the whole call, not each read
                response = await self._http.post(
                    self._url,
                    json=self.payload(model, request, stream=False),
                    headers=self._headers,
                    timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                )
        except (TimeoutError, httpx.TimeoutException) as error:
            raise _timeout(route, timeout) from error
        except httpx.TransportError as error:
            raise _unreachable(route) from error
        if response.status_code != 200:
            raise _http_error(response.status_code, _error_body(response.content), response.headers, route)
        try:
            body = response.json()
        except ValueError as error:
            raise DomainError(
                Kind.UNAVAILABLE, Reason.UPSTREAM_UNAVAILABLE, "the model provider sent a malformed reply"
            ) from error
        return UpstreamReply(
            body=body,
            served_model=response.headers.get("x-litellm-model-group") or model,
            attempted_models=(model,),
            cost_usd=_decimal(response.headers.get("x-litellm-response-cost")),
            latency_ms=round((time.perf_counter() - started) * 1000),
        )

    @contextlib.asynccontextmanager
    async def stream(
        self, model: str, route: Route, request: ChatRequest, *, timeout: float, idle_timeout: float
    ) -> AsyncIterator[UpstreamStream]:
        """Open a streamed attempt on `model`; errors before the first byte raise here.

        `timeout` bounds the wait for the stream to start; after that only `idle_timeout`
        applies, between chunks, so a long healthy stream is never cut.
        """
        http_request = self._http.build_request(
            "POST",
            self._url,
            json=self.payload(model, request, stream=True),
            headers=self._headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0), read=max(idle_timeout, timeout)),
        )
        try:
            async with asyncio.timeout(timeout):
                response = await self._http.send(http_request, stream=True)
        except (TimeoutError, httpx.TimeoutException) as error:
            raise _timeout(route, timeout) from error
        except httpx.TransportError as error:
            raise _unreachable(route) from error
        try:
            if response.status_code != 200:
                raise _http_error(response.status_code, _error_body(await response.aread()), response.headers, route)
            yield UpstreamStream(
                served_model=response.headers.get("x-litellm-model-group") or model,
                attempted_models=(model,),
                _response=response,
                _route=route,
                _idle_timeout=idle_timeout,
            )
        finally:
            await response.aclose()


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
    message = str(message).split("\n\nLiteLLM:", 1)[0]  # LiteLLM's note about its routing
    # Exception class names LiteLLM prefixes, e.g. "litellm.BadRequestError: OpenAIException - ".
    message = re.sub(r"^(?:(?:litellm\.)?\w*(?:Error|Exception)(?::| -)\s*)+", "", message)
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


def _timeout(route: Route, timeout: float) -> DomainError:
    return DomainError(
        Kind.DEADLINE_EXCEEDED,
        Reason.UPSTREAM_TIMEOUT,
        f"the model provider for '{route.alias}' did not answer within {timeout:g} s",
        metadata={"model": route.alias},
    )


def _unreachable(route: Route | None = None) -> DomainError:
    return DomainError(
        Kind.UNAVAILABLE,
        Reason.UPSTREAM_UNAVAILABLE,
        "the model gateway is unreachable; retry shortly",
        metadata={"model": route.alias} if route else {},
    )


def _interrupted(message: str) -> DomainError:
    return DomainError(Kind.UNAVAILABLE, Reason.UPSTREAM_STREAM_INTERRUPTED, message)
