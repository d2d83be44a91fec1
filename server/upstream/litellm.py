"""The LiteLLM proxy client: the only module that speaks HTTP to the upstream.

It sends OpenAI Chat Completions requests with the model route of the alias (primary as
`model`, the rest as per-request `fallbacks`), always asks streamed calls for usage, reads
which deployment served the call and what LiteLLM says it cost, and translates every
upstream failure into a DomainError with our own code and a message safe to show a
tenant (no raw upstream bodies, keys, real model names or LiteLLM's advice on its own
configuration).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp

from server.domain import models
from server.domain.chat import ChatRequest
from server.domain.completion import check_chunk, check_completion
from server.domain.errors import DomainError, Kind, Reason
from server.domain.models import Route

log = logging.getLogger(__name__)

# Errors of the connection, before or during a response (refused, reset, closed early).
_TRANSPORT_ERRORS = (aiohttp.ClientError, ConnectionError)
_LIST_TIMEOUT = aiohttp.ClientTimeout(total=10.0)
_MAX_LINE = 16 * 1024 * 1024  # one SSE line of a stream (a chunk); larger is a broken stream

_SECRETISH = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+|api[_-]?key\S*)", re.IGNORECASE)
# An address in a provider's message (a deployment's api_base, a proxy's URL): the operator's
# infrastructure, not a tenant's business.
_ADDRESS = re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s'\"<>()\[\]{},;]+", re.IGNORECASE)
# LiteLLM's advice on its own configuration, e.g. "To drop these, set `litellm.drop_params=True`
# or for proxy: ...": a sentence naming any of these is the operator's business, not a tenant's.
_CONFIG_HINT = re.compile(
    r"drop_params|modify_params|allowed_openai_params|user_continue_message|litellm_settings|"
    r"allowed_hosts|config\.yaml|/v1/models",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MAX_MESSAGE = 500

Price = tuple[Decimal, Decimal]  # USD per (input, output) token


@dataclass(frozen=True, eq=False)
class ModelPrices(Mapping[str, Price]):
    """What LiteLLM's `/model/info` says of its models.

    As a mapping: each model name's price, the priciest of its deployments' (LiteLLM
    balances a model name's calls over the deployments listed under it): their highest
    input and highest output price, so a bound priced from it holds whichever serves. A
    model with a deployment without a price is left out: nothing bounds that one's calls.
    `by_deployment`: each priced deployment's own price, by its id (`model_info.id`, which
    LiteLLM names in each answer's `x-litellm-model-id` header), for the cost of a call
    whose deployment is known. `identifiers`: every real model identifier it names (model
    names, each deployment's model with and without its `provider/` prefix, the model its
    price was taken from), none of which a tenant may read.
    """

    by_model: Mapping[str, Price] = field(default_factory=dict)
    by_deployment: Mapping[str, Price] = field(default_factory=dict)
    identifiers: frozenset[str] = frozenset()

    def __getitem__(self, model: str) -> Price:
        return self.by_model[model]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_model)

    def __len__(self) -> int:
        return len(self.by_model)


@dataclass(frozen=True)
class UpstreamReply:
    """A non-streaming completion and what LiteLLM told us about it."""

    body: dict[str, Any]
    served_model: str
    attempted_models: tuple[str, ...]
    cost_usd: Decimal | None
    latency_ms: int
    served_deployment: str = ""  # LiteLLM's id of the deployment that served (ModelPrices.by_deployment)


@dataclass(eq=False)  # hashed by identity: CallUseCases keeps the open ones in a set
class UpstreamStream:
    """An open streamed completion. Iterate `chunks()`; read the facts after."""

    served_model: str
    attempted_models: tuple[str, ...]
    _response: aiohttp.ClientResponse
    _route: Route
    _idle_timeout: float = 60.0
    started: float = field(default_factory=time.perf_counter)
    served_deployment: str = ""  # as UpstreamReply's

    def cut(self, error: DomainError) -> None:
        """End the stream from outside: the read under way, or the next one, raises
        `error` (the caller's `chunks()` loop ends with it)."""
        self._response.content.set_exception(error)

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        """Parsed `chat.completion.chunk` objects, until `[DONE]`.

        Raises UPSTREAM_STREAM_INTERRUPTED when the upstream reports an error mid-stream
        or the connection drops before `[DONE]`.
        """
        lines = _lines(self._response.content)
        try:
            async with contextlib.aclosing(lines):
                while True:
                    # The idle timeout is ours, per chunk: the socket read timeout also covers
                    # the wait for the stream to start, which may rightly take longer.
                    async with asyncio.timeout(self._idle_timeout):
                        line = await anext(lines, None)
                    if line is None:
                        break
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    chunk = check_chunk(json.loads(data))  # ValueError: not a chunk's shape
                    if "error" in chunk:  # LiteLLM's report of a provider failure mid-stream
                        raise _interrupted(f"the model provider's stream for '{self._route.alias}' failed midway")
                    yield chunk
        except TimeoutError as error:
            raise DomainError(
                Kind.DEADLINE_EXCEEDED,
                Reason.UPSTREAM_TIMEOUT,
                f"the model provider's stream for '{self._route.alias}' was idle for {self._idle_timeout:g} s",
                metadata={"model": self._route.alias},
            ) from error
        except (*_TRANSPORT_ERRORS, ValueError) as error:  # ValueError: also a malformed chunk
            raise _interrupted(f"the model provider's stream for '{self._route.alias}' broke off") from error
        raise _interrupted(f"the model provider's stream for '{self._route.alias}' ended without completing")


class LiteLLMClient:
    """Calls the LiteLLM proxy's OpenAI-compatible API with the operator's master key."""

    def __init__(self, http: aiohttp.ClientSession, *, base_url: str, api_key: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._url = self._base + "/v1/chat/completions"
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        # The real model identifiers of the last read of the model info (model_prices),
        # hidden from error messages; None until one was read.
        self._identifiers: frozenset[str] | None = None

    async def list_models(self) -> list[str]:
        """The model names the proxy serves (`GET /v1/models`), for catalog checks."""
        try:
            async with self._http.get(self._base + "/v1/models", headers=self._headers, timeout=_LIST_TIMEOUT) as r:
                status, content = r.status, await r.read()
        except (*_TRANSPORT_ERRORS, TimeoutError) as error:
            raise _unreachable() from error
        try:
            models = json.loads(content).get("data", []) if status == 200 else None
        except (ValueError, AttributeError):
            models = None
        if models is None:
            raise DomainError(
                Kind.UNAVAILABLE, Reason.UPSTREAM_UNAVAILABLE, "the model gateway did not list its models"
            )
        return sorted(str(m.get("id")) for m in models if m.get("id"))

    async def model_prices(self) -> ModelPrices | None:
        """The models' prices, from LiteLLM's `/model/info` (ModelPrices; a price of 0 is a
        free model). Its model identifiers are kept, for the error messages of later calls.

        Empty when the upstream has no such route (it is not a LiteLLM proxy, e.g. a
        provider called directly, whose model names are the route's own); None when it
        could not be asked or answered nonsense.
        """
        try:
            async with self._http.get(self._base + "/model/info", headers=self._headers, timeout=_LIST_TIMEOUT) as r:
                status, content = r.status, await r.read()
        except (*_TRANSPORT_ERRORS, TimeoutError):
            return None
        if status == 404:
            self._identifiers = frozenset()
            return ModelPrices()
        try:
            entries = json.loads(content).get("data") if status == 200 else None
        except (ValueError, AttributeError):
            entries = None
        if not isinstance(entries, list):
            return None
        prices = _model_prices(entries)
        self._identifiers = prices.identifiers
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
        body = _encode(self.payload(model, request, stream=False))
        try:
            async with (
                asyncio.timeout(timeout),  # the whole call, not each read
                self._http.post(self._url, data=body, headers=self._headers, timeout=_timeouts(timeout)) as response,
            ):
                status, headers, content = response.status, response.headers, await response.read()
        except TimeoutError as error:  # also aiohttp's connect timeout
            raise _timeout(route, timeout) from error
        except _TRANSPORT_ERRORS as error:
            raise _unreachable(route) from error
        if status != 200:
            raise _http_error(status, _error_body(content), headers, route, model, self._identifiers)
        try:
            reply = check_completion(json.loads(content))  # ValueError: not JSON, or not a completion's shape
        except ValueError:
            raise DomainError(  # the provider did the work: the call's prompt is counted (calls.py, _usage)
                Kind.UNAVAILABLE,
                Reason.UPSTREAM_UNAVAILABLE,
                "the model provider sent a malformed reply",
                metadata={"model": route.alias, "reply": "malformed"},
            ) from None
        return UpstreamReply(
            body=reply,
            served_model=headers.get("x-litellm-model-group") or model,
            attempted_models=(model,),
            cost_usd=_decimal(headers.get("x-litellm-response-cost")),
            latency_ms=round((time.perf_counter() - started) * 1000),
            served_deployment=headers.get("x-litellm-model-id", ""),
        )

    @contextlib.asynccontextmanager
    async def stream(
        self, model: str, route: Route, request: ChatRequest, *, timeout: float, idle_timeout: float
    ) -> AsyncIterator[UpstreamStream]:
        """Open a streamed attempt on `model`; errors before the first byte raise here.

        `timeout` bounds the wait for the stream to start; after that only `idle_timeout`
        applies, between chunks, so a long healthy stream is never cut.
        """
        body = _encode(self.payload(model, request, stream=True))
        try:
            async with asyncio.timeout(timeout):
                response = await self._http.post(
                    self._url, data=body, headers=self._headers, timeout=_timeouts(timeout, idle_timeout)
                )
        except TimeoutError as error:
            raise _timeout(route, timeout) from error
        except _TRANSPORT_ERRORS as error:
            raise _unreachable(route) from error
        try:
            if response.status != 200:
                try:
                    async with asyncio.timeout(timeout):
                        content = await response.read()
                except (*_TRANSPORT_ERRORS, TimeoutError):
                    content = b""
                raise _http_error(
                    response.status, _error_body(content), response.headers, route, model, self._identifiers
                )
            yield UpstreamStream(
                served_model=response.headers.get("x-litellm-model-group") or model,
                attempted_models=(model,),
                _response=response,
                _route=route,
                _idle_timeout=idle_timeout,
                served_deployment=response.headers.get("x-litellm-model-id", ""),
            )
        finally:
            response.close()  # an unfinished stream is cut, not drained


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _timeouts(timeout: float, idle_timeout: float | None = None) -> aiohttp.ClientTimeout:
    """Connecting may take 5 s at most; a read may wait as long as the call (or, for a
    stream, as long as the idle timeout). The whole call is bounded by asyncio.timeout."""
    read = timeout if idle_timeout is None else max(idle_timeout, timeout)
    return aiohttp.ClientTimeout(total=None, sock_connect=min(timeout, 5.0), sock_read=read)


async def _lines(content: aiohttp.StreamReader) -> AsyncIterator[str]:
    """The body's lines as they arrive. aiohttp's own line iterator refuses lines over
    128 KiB, and one SSE event may be longer; a line over _MAX_LINE raises ValueError (the
    stream is then reported broken) rather than growing without bound.

    When the connection breaks, aiohttp's reader raises the error before the bytes that
    arrived ahead of it (StreamReader.readany checks for an error first), so a reader a
    little behind lost the provider's last chunks: they are read from its buffer, and
    their lines given, before the error is raised."""
    pending = _Lines()
    try:
        async for data in content.iter_any():
            for line in pending.feed(data):
                yield line
    except aiohttp.ClientError:
        for line in pending.feed(_received_before_the_error(content)):
            yield line
        raise
    if pending.rest:
        yield pending.rest.rstrip(b"\r").decode()


class _Lines:
    """Splits bytes into lines, however they were cut (a long line's parts are joined
    once, when it ends); `rest`: the unfinished last line."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> list[str]:
        lines, start = [], 0
        while (end := data.find(b"\n", start)) != -1:
            self._parts.append(data[start:end])
            lines.append(b"".join(self._parts).rstrip(b"\r").decode())
            self._parts.clear()
            self._size = 0
            start = end + 1
        if start < len(data):
            self._parts.append(data[start:])
            self._size += len(data) - start
            if self._size > _MAX_LINE:
                raise ValueError(f"a line of the upstream's stream is longer than {_MAX_LINE} bytes")
        return lines

    @property
    def rest(self) -> bytes:
        return b"".join(self._parts)


def _received_before_the_error(content: aiohttp.StreamReader) -> bytes:
    """The bytes aiohttp holds for a reader whose connection then broke (pinned aiohttp
    3.14: StreamReader keeps them in `_buffer`, unread once it has an error)."""
    buffered = getattr(content, "_buffer", None)
    if not buffered:
        return b""
    data = b"".join(buffered)
    buffered.clear()
    return data


def _decimal(value: str | None) -> Decimal | None:
    if not value:
        return None
    try:
        cost = Decimal(value)
    except InvalidOperation:
        return None
    return cost if cost.is_finite() and cost >= 0 else None


def _price(value: object) -> Decimal | None:
    """A per-token price from the model info: a number (0 for a free model), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    return _decimal(str(value))


def _model_prices(entries: list[Any]) -> ModelPrices:
    """ModelPrices of `/model/info`'s entries, one per deployment."""
    by_model: dict[str, Price | None] = {}
    by_deployment: dict[str, Price] = {}
    identifiers: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(name := entry.get("model_name"), str) or not name:
            continue
        info = entry.get("model_info") if isinstance(entry.get("model_info"), dict) else {}
        params = entry.get("litellm_params") if isinstance(entry.get("litellm_params"), dict) else {}
        cost_in, cost_out = _price(info.get("input_cost_per_token")), _price(info.get("output_cost_per_token"))
        price = None if cost_in is None or cost_out is None else (cost_in, cost_out)
        if price is not None and isinstance(deployment := info.get("id"), str) and deployment:
            by_deployment[deployment] = price
        if name not in by_model:
            by_model[name] = price
        elif (known := by_model[name]) is not None:
            by_model[name] = None if price is None else (max(known[0], price[0]), max(known[1], price[1]))
        identifiers.add(name)
        for real in (params.get("model"), info.get("key"), info.get("base_model")):
            if isinstance(real, str) and real:
                # "openrouter/anthropic/claude-x" is also said "anthropic/claude-x" and "claude-x"
                parts = real.split("/")
                identifiers.update(filter(None, ("/".join(parts[i:]) for i in range(len(parts)))))
    priced = {name: price for name, price in by_model.items() if price is not None}
    return ModelPrices(priced, by_deployment, frozenset(identifiers))


def _error_body(content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _safe_message(error: Any, route: Route, identifiers: frozenset[str] | None) -> str:
    """The provider's message with keys and addresses scrubbed, every real model identifier the proxy
    knows (`identifiers`, ModelPrices's) replaced by the alias, LiteLLM's exception-class
    prefixes and advice on its configuration removed, bounded in length; empty when
    `identifiers` may not name the route's models (never read, or read before one was
    added to LiteLLM): its real identifiers are then unknown, and so is what to hide."""
    if identifiers is None or not (identifiers >= set(route.models) or not identifiers):
        return ""
    message = error.get("message", "") if isinstance(error, dict) else str(error)
    message = str(message).split("\n\nLiteLLM:", 1)[0]  # LiteLLM's note about its routing
    # Exception class names LiteLLM prefixes, e.g. "litellm.BadRequestError: OpenAIException - ".
    message = re.sub(r"^(?:(?:litellm\.)?\w*(?:Error|Exception)(?::| -)\s*)+", "", message)
    message = _SECRETISH.sub("[redacted]", message)
    message = _ADDRESS.sub("[address]", message)
    message = _names_pattern(frozenset(identifiers | set(route.models))).sub(lambda _: route.alias, message)
    sentences = _SENTENCE_END.split(" ".join(message.split()))
    message = " ".join(s for s in sentences if re.search(r"\w", s) and not _CONFIG_HINT.search(s))
    return message[:_MAX_MESSAGE]


@functools.lru_cache(maxsize=32)
def _names_pattern(names: frozenset[str]) -> re.Pattern[str]:
    """Any of `names` standing alone (not inside a longer word), the longest first, so that
    no part of a longer name is left over when a shorter one is within it."""
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=lambda name: (-len(name), name)))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


def _http_error(
    status: int,
    error: dict[str, Any],
    headers: Mapping[str, str],
    route: Route,
    model: str,
    identifiers: frozenset[str] | None,
) -> DomainError:
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
    if str(status) in models.REFUSED_SET_UP_STATUSES:
        log.error(
            "the model provider refused model '%s' of alias '%s' (HTTP %d): check its credentials, account and name",
            model,
            route.alias,
            status,
        )
        return DomainError(
            Kind.UNAVAILABLE,
            Reason.UPSTREAM_UNAVAILABLE,
            f"the model provider refused to serve '{route.alias}' (HTTP {status}); "
            "the operator's set-up of the model (its credentials, account or name) needs fixing, "
            "so a retry will not help",
            metadata={"model": route.alias, "upstream_status": str(status)},
        )
    if 400 <= status < 500:  # the request itself: it would fail the same way on every model
        shown = "" if status in (400, 422) else f" (HTTP {status})"
        said = _safe_message(error, route, identifiers)
        return DomainError(
            Kind.INVALID_ARGUMENT,
            Reason.UPSTREAM_REJECTED,
            f"the model provider rejected the request{shown}" + (f": {said}" if said else ""),
            metadata={"model": route.alias, "upstream_status": str(status)},
        )
    return DomainError(
        Kind.UNAVAILABLE,
        Reason.UPSTREAM_UNAVAILABLE,
        f"the model provider for '{route.alias}' is unavailable (HTTP {status}); retry later",
        metadata={"model": route.alias, "upstream_status": str(status)},
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
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
        f"the model provider for '{route.alias}' did not answer within {timeout:.3g} s",
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
