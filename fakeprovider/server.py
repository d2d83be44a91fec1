"""aiohttp application serving the fake OpenAI-compatible provider.

``create_app()`` builds the application; ``serve()`` starts it on a TCP port
inside the running event loop and returns the ``AppRunner`` (call
``await runner.cleanup()`` to stop it); ``base_url(runner)`` gives the URL,
which matters for ``port=0``.

The handlers only translate between HTTP and the pure functions in
:mod:`fakeprovider.directives` / :mod:`fakeprovider.replies`, plus the timing
and connection tricks (delays, drops, stalls) the directives ask for.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .directives import (
    Directive,
    DirectiveError,
    InvalidRequestError,
    last_user_text,
    parse_directive,
)
from .replies import Reply, build_reply

__all__ = [
    "MODELS",
    "PRICES",
    "REQUEST_LOG",
    "REQUEST_LOG_SIZE",
    "base_url",
    "create_app",
    "serve",
]

MODELS: tuple[str, ...] = ("fake-gpt", "fake-gpt-backup")
# USD per prompt and per completion token, as gateway/litellm.yaml prices MODELS.
PRICES: tuple[float, float] = (0.000001, 0.000002)
REQUEST_LOG_SIZE = 200
MAX_BODY_BYTES = 64 * 1024 * 1024  # long-context prompts exceed aiohttp's 1 MiB default

# The app-owned request log: the only mutable state, bounded, cheap to append.
REQUEST_LOG: web.AppKey[deque[dict[str, Any]]] = web.AppKey("fakeprovider_request_log", deque)
_ID_COUNTER: web.AppKey[itertools.count[int]] = web.AppKey("fakeprovider_id_counter", itertools.count)

_DISCONNECT_POLL_S = 0.05  # how often a stalled handler checks whether the client left
_DRAIN_POLL_S = 0.001
_DRAIN_LIMIT_S = 1.0

_SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
}
_DONE_EVENT = b"data: [DONE]\n\n"

# OpenAI error ``type`` and ``code`` per simulated HTTP status.
_ERROR_KINDS: Mapping[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout_error", "timeout"),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _dumps(value: Any) -> str:
    """Compact JSON, as OpenAI sends it (one shared encoder)."""
    return _ENCODER.encode(value)


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------


def _error_kind(status: int) -> tuple[str, str]:
    """OpenAI error (type, code) for an HTTP status."""
    if status in _ERROR_KINDS:
        return _ERROR_KINDS[status]
    if status >= 500:
        return "server_error", "server_error"
    return "invalid_request_error", "invalid_request"


def error_response(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    retry_after: int | None = None,
) -> web.Response:
    """An OpenAI-shaped error ``{"error": {message, type, param, code}}``."""
    error_type, default_code = _error_kind(status)
    payload = {
        "error": {
            "message": message,
            "type": error_type,
            "param": param,
            "code": code or default_code,
        }
    }
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    return web.Response(
        status=status,
        body=_dumps(payload).encode(),
        content_type="application/json",
        headers=headers,
    )


def _simulated_error(status: int, directive: Directive) -> web.Response:
    """The error a ``status=``/``fail=`` directive asks for (429 gets retry-after)."""
    retry_after = directive.retry_after
    if status == 429 and retry_after is None:
        retry_after = 1
    return error_response(
        status,
        f"fakeprovider: simulated HTTP {status} error requested by the [fake] directive",
        retry_after=retry_after,
    )


def _completion_body(completion_id: str, created: int, model: str, reply: Reply, usage: str | None) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning is not None:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_call is not None:
        message["tool_calls"] = [reply.tool_call.to_openai()]
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": reply.logprobs(reply.content),
                "finish_reason": reply.finish_reason,
            }
        ],
    }
    if usage is not None:
        body["usage"] = reply.usage(usage)
    return body


class _ChunkEncoder:
    """Encodes ``chat.completion.chunk`` server-sent events of one stream.

    The invariant part (id, object, created, model) is serialised once.
    """

    __slots__ = ("_prefix",)

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self._prefix = (
            f'data: {{"id":{_dumps(completion_id)},"object":"chat.completion.chunk",'
            f'"created":{created},"model":{_dumps(model)},"choices":'
        ).encode()

    def delta(
        self,
        delta: Mapping[str, Any],
        finish_reason: str | None = None,
        logprobs: Mapping[str, Any] | None = None,
    ) -> bytes:
        """An event with one choice carrying ``delta`` (and its ``logprobs``)."""
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
        return self._prefix + f"[{_dumps(choice)}]}}\n\n".encode()

    def usage(self, usage: Mapping[str, Any]) -> bytes:
        """The final usage event (``choices: []``)."""
        return self._prefix + f'[],"usage":{_dumps(usage)}}}\n\n'.encode()


# ---------------------------------------------------------------------------
# Timing and connection tricks
# ---------------------------------------------------------------------------


async def _sleep_ms(milliseconds: int) -> None:
    """Sleep unless the delay is zero (no needless trip through the loop)."""
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000)


def _client_gone(request: web.Request) -> bool:
    """True once the connection is closed or closing."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def _wait_for_disconnect(request: web.Request) -> None:
    """Hold the request open, sending nothing, until the client goes away.

    With ``handler_cancellation`` (as :func:`serve` sets) the handler is
    cancelled as soon as the client leaves; the poll is the fallback for
    runners without it.
    """
    # aiohttp exposes no "client disconnected" event, so poll (cheap, rare).
    while not _client_gone(request):  # noqa: ASYNC110
        await asyncio.sleep(_DISCONNECT_POLL_S)


async def _abort_connection(request: web.Request) -> None:
    """Close the TCP connection abruptly, without finishing the response.

    Bytes already handed to the transport are flushed first (bounded wait),
    so that "after N chunks" means the client really received N chunks.
    """
    transport = request.transport
    if transport is None:
        return
    deadline = time.monotonic() + _DRAIN_LIMIT_S
    # asyncio has no "write buffer empty" event; the buffer is usually empty already.
    while transport.get_write_buffer_size() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(_DRAIN_POLL_S)
    transport.abort()


# ---------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    """Liveness probe."""
    return web.json_response({"status": "ok"})


def _model_object(name: str) -> dict[str, Any]:
    """One entry of the OpenAI model list."""
    return {"id": name, "object": "model", "created": 0, "owned_by": "fakeprovider"}


async def list_models(request: web.Request) -> web.Response:
    """``GET /v1/models`` in OpenAI list format."""
    return web.json_response({"object": "list", "data": [_model_object(name) for name in MODELS]})


async def get_model(request: web.Request) -> web.Response:
    """``GET /v1/models/{model}``; every name exists, as for chat completions."""
    return web.json_response(_model_object(request.match_info["model"]))


async def model_info(request: web.Request) -> web.Response:
    """``GET /model/info`` as the LiteLLM proxy answers it (only the fields our server
    reads): MODELS at PRICES, so a server pointed straight at the fake prices its calls
    as it would through LiteLLM."""
    cost_in, cost_out = PRICES
    info = {"input_cost_per_token": cost_in, "output_cost_per_token": cost_out}
    return web.json_response({"data": [{"model_name": name, "model_info": info} for name in MODELS]})


async def get_requests(request: web.Request) -> web.Response:
    """The last REQUEST_LOG_SIZE chat completion requests, newest last."""
    return web.json_response({"requests": list(request.app[REQUEST_LOG])})


async def clear_requests(request: web.Request) -> web.Response:
    """Empty the request log."""
    log = request.app[REQUEST_LOG]
    cleared = len(log)
    log.clear()
    return web.json_response({"cleared": cleared})


def _recorded_headers(request: web.Request) -> dict[str, str]:
    """Request headers with lower-case names, without ``authorization``."""
    return {name.lower(): value for name, value in request.headers.items() if name.lower() != "authorization"}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """``POST /v1/chat/completions``: validate, parse the directive, reply."""
    try:
        body = json.loads(await request.read())
    except ValueError:
        return error_response(400, "Request body is not valid JSON", code="invalid_json")
    if not isinstance(body, dict):
        return error_response(400, "Request body must be a JSON object", code="invalid_json")
    model = body.get("model")
    entry: dict[str, Any] = {"model": model, "body": body, "headers": _recorded_headers(request)}
    request.app[REQUEST_LOG].append(entry)

    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return error_response(400, "'messages' must be a non-empty list", param="messages")
    if not isinstance(model, str) or not model:
        return error_response(400, "'model' must be a non-empty string", param="model")
    try:
        directive, user_text = parse_directive(last_user_text(messages))
        reply = build_reply(body, directive, user_text)
    except DirectiveError as exc:
        return error_response(400, exc.message, param=exc.key, code="invalid_directive")
    except InvalidRequestError as exc:
        return error_response(400, exc.message, param=exc.param)

    completion_id = f"chatcmpl-fake{next(request.app[_ID_COUNTER]):010d}"
    created = int(time.time())
    if body.get("stream") is True:
        stream_options = body.get("stream_options")
        include_usage = (
            isinstance(stream_options, dict)
            and stream_options.get("include_usage") is True
            and directive.usage != "none"
        )
        encoder = _ChunkEncoder(completion_id, created, model)
        return await _stream(request, directive, reply, model, encoder, include_usage, entry)
    return await _respond(request, directive, reply, model, completion_id, created)


async def _respond(
    request: web.Request,
    directive: Directive,
    reply: Reply,
    model: str,
    completion_id: str,
    created: int,
) -> web.StreamResponse:
    """Non-streaming reply, after the first delay (also for errors/drops)."""
    await _sleep_ms(directive.first_delay)
    status = directive.failure_status(model)
    if status is not None:
        return _simulated_error(status, directive)
    if directive.drop_after is not None:
        await _abort_connection(request)
        return web.Response()  # aiohttp's write fails quietly on the closed transport
    if directive.stall_after is not None:
        await _wait_for_disconnect(request)
        return web.Response()
    if directive.garbage_after is not None:
        return web.Response(body=_GARBAGE_REPLY, content_type="application/json")
    body = _completion_body(
        completion_id, created, model, reply, usage=None if directive.usage == "none" else directive.usage or ""
    )
    return web.Response(body=_dumps(body).encode(), content_type="application/json")


# Valid JSON that is no chunk, or no completion (``garbage_after``): what a broken upstream might send.
_GARBAGE_EVENT = b"data: [5]\n\n"
_GARBAGE_REPLY = b'{"choices": "broken"}'


async def _stream(
    request: web.Request,
    directive: Directive,
    reply: Reply,
    model: str,
    encoder: _ChunkEncoder,
    include_usage: bool,
    entry: dict[str, Any],
) -> web.StreamResponse:
    """Server-sent events: role, content pieces, finish, [usage], [DONE].

    The request's log entry gets ``stream``: ``{"pieces_sent", "outcome", "ended_at"}``
    where outcome is ``completed``, ``dropped``, or ``client_gone`` (the client closed
    the connection before the end), and ``ended_at`` is a ``time.time()`` stamp, so
    tests can check that a client's disconnect reached the provider, and when.

    Each event is one write (aiohttp hands it straight to the transport).
    The delay goes before each content piece; drop/stall interrupt the
    stream after the requested number of pieces (at most all of them, i.e.
    before the finish chunk).  A client that disconnects ends the handler at
    its next write (or immediately, with handler cancellation).
    """
    status = directive.failure_status(model)
    if status is not None:
        await _sleep_ms(directive.first_delay)
        return _simulated_error(status, directive)

    pieces = reply.stream_pieces(directive.chunks)
    total = len(pieces)
    drop_at = None if directive.drop_after is None else min(directive.drop_after, total)
    stall_at = None if directive.stall_after is None else min(directive.stall_after, total)
    tool_call = reply.tool_call

    response = web.StreamResponse(headers=_SSE_HEADERS)
    progress = {"pieces_sent": 0, "outcome": "client_gone"}
    entry["stream"] = progress
    try:
        await response.prepare(request)
        role = {"role": "assistant", "content": "" if tool_call is None else None}
        await response.write(encoder.delta(role))
        for thought in reply.reasoning_pieces():  # before the first delay: a stall still lets them through
            await response.write(encoder.delta({"reasoning_content": thought}))
        for sent in range(total + 1):
            progress["pieces_sent"] = sent
            if sent == drop_at:
                progress["outcome"] = "dropped"
                await _abort_connection(request)
                return response
            if sent == stall_at:
                await _wait_for_disconnect(request)
                return response
            if sent == directive.garbage_after:
                await response.write(_GARBAGE_EVENT)
            if sent == total:
                break
            await _sleep_ms(directive.first_delay if sent == 0 else directive.delay_ms)
            if tool_call is None:
                piece = pieces[sent]
                await response.write(encoder.delta({"content": piece}, logprobs=reply.logprobs(piece)))
                continue
            if sent == 0:
                header = {
                    "index": 0,
                    "id": tool_call.id,
                    "type": "function",
                    "function": {"name": tool_call.name, "arguments": ""},
                }
                await response.write(encoder.delta({"tool_calls": [header]}))
            fragment = {"index": 0, "function": {"arguments": pieces[sent]}}
            await response.write(encoder.delta({"tool_calls": [fragment]}))
        if total == 0:
            await _sleep_ms(directive.first_delay)
        await response.write(encoder.delta({}, reply.finish_reason))
        if include_usage:
            await response.write(encoder.usage(reply.usage(directive.usage)))
        await response.write(_DONE_EVENT)
        progress["outcome"] = "completed"
    except ConnectionError:
        pass  # the client went away; nothing left to do
    finally:
        progress["ended_at"] = time.time()
    return response


# ---------------------------------------------------------------------------
# Application and serving
# ---------------------------------------------------------------------------


def create_app() -> web.Application:
    """The fake provider application (own request log and id counter).

    Routes are registered with and without the ``/v1`` prefix so that either
    form of ``api_base`` works.
    """
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[REQUEST_LOG] = deque(maxlen=REQUEST_LOG_SIZE)
    app[_ID_COUNTER] = itertools.count(1)
    app.router.add_get("/health", health)
    app.router.add_get("/_fake/requests", get_requests)
    app.router.add_delete("/_fake/requests", clear_requests)
    for prefix in ("/v1", ""):
        app.router.add_get(f"{prefix}/models", list_models)
        app.router.add_get(f"{prefix}/models/{{model}}", get_model)
        app.router.add_get(f"{prefix}/model/info", model_info)
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
    return app


async def serve(
    host: str = "127.0.0.1",
    port: int = 8010,
    *,
    access_log: bool = False,
    shutdown_timeout: float = 1.0,
    backlog: int = 1024,
) -> web.AppRunner:
    """Start the provider in the running loop; return its started runner.

    ``port=0`` picks a free port (see :func:`base_url`).  Access logging is
    off unless asked for, and handlers are cancelled when their client
    disconnects.  Stop with ``await runner.cleanup()``; requests still
    running (e.g. stalled ones) get ``shutdown_timeout`` seconds.
    """
    kwargs: dict[str, Any] = {} if access_log else {"access_log": None}
    runner = web.AppRunner(
        create_app(),
        handler_cancellation=True,
        shutdown_timeout=shutdown_timeout,
        **kwargs,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=backlog, reuse_address=True)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def base_url(runner: web.BaseRunner) -> str:
    """``http://HOST:PORT`` of the first socket the runner listens on."""
    address = runner.addresses[0]
    host, port = address[0], address[1]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
