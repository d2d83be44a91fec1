"""OpenAI's chat-completion wire format, to and from the job API's own types.

The OpenAI-compatible entry point (OpenAIService) receives OpenAI's request body as it
comes and answers OpenAI's `chat.completion` object or its stream of
`chat.completion.chunk` Server-Sent Events. Pure functions: the servicer calls the same
use cases as LLMCall and CreateAndCall, and these translate at the edges.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from server.api.convert import API_OWN_FIELDS, NOT_FINITE, path_of_non_finite
from server.api.errors import to_status
from server.domain import validation
from server.domain.chat import ChatRequest, build_request, is_reserved
from server.domain.completion import Delta, Usage
from server.domain.errors import DomainError, Kind, invalid_argument
from server.services.calls import CallResult

DONE = b"data: [DONE]\n\n"
# Sent while the model is silent: an SSE comment, which OpenAI's SDKs and every SSE parser skip.
KEEP_ALIVE = b": keep-alive\n\n"
JSON = "application/json"
EVENT_STREAM = "text/event-stream"
DEFAULT_JOB_TYPE = "chat_completion"

# The OpenAI parameters the job API knows, by the JSON type they must have. The rest
# pass to the provider unchecked, as `extra_body` does in LLMCall.
_NUMBERS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
_INTEGERS = ("max_tokens", "max_completion_tokens", "seed", "top_logprobs")
_BOOLEANS = ("parallel_tool_calls", "logprobs")
_STRINGS = ("user", "reasoning_effort")
_OBJECTS = ("response_format", "logit_bias")
_HANDLED = frozenset(
    {"model", "messages", "stream", "stream_options", "n", "metadata", "tools", "stop", "tool_choice"}
    | set(_NUMBERS + _INTEGERS + _BOOLEANS + _STRINGS + _OBJECTS)
)


@dataclass(frozen=True)
class CompletionRequest:
    """An OpenAI chat completion request, validated."""

    chat: ChatRequest
    stream: bool
    include_usage: bool
    user: str


def parse_request(body: bytes, *, purpose: str = "") -> CompletionRequest:
    """The request in `body`, or INVALID_ARGUMENT naming the first bad field."""
    non_finite: list[float] = []

    def number(text: str) -> float:  # JSON has no NaN or Infinity; Python's parser takes them
        value = float(text)
        if not math.isfinite(value):
            non_finite.append(value)
        return value

    try:
        document = json.loads(body or b"null", parse_float=number, parse_constant=number)
    except (UnicodeDecodeError, ValueError):
        raise invalid_argument("body", "must be a JSON object (an OpenAI chat completion request)") from None
    if not isinstance(document, dict):
        raise invalid_argument("body", "must be a JSON object (an OpenAI chat completion request)")
    if non_finite:  # refused before anything is recorded: no provider could be sent it
        raise invalid_argument(path_of_non_finite(document), NOT_FINITE)
    try:  # JSON may escape a lone UTF-16 surrogate ("\\ud800"), which no UTF-8 text can hold
        json.dumps(document, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise invalid_argument("body", "contains an unpaired UTF-16 surrogate escape: not valid Unicode text") from None
    for name in document:  # the gateway's own parameters (chat.is_reserved) this format does not read
        if name not in _HANDLED and is_reserved(name):
            raise invalid_argument(name, "is set by the gateway, not by the client")
        if name not in _HANDLED and name in API_OWN_FIELDS:
            raise invalid_argument(
                name,
                "is a field of this API's native requests, not OpenAI's: the provider would receive it "
                "(a job's id, type and purpose go in the X-Job-Id, X-Job-Type and X-Call-Purpose headers)",
            )
    known = {name: value for name, value in document.items() if name in _HANDLED and value is not None}
    n = known.get("n", 1)
    if _integer(n) is None or n != 1:
        raise invalid_argument("n", "must be 1: a call returns one choice")
    stream = _typed(known, "stream", bool, "a boolean") or False
    options = _typed(known, "stream_options", dict, "an object") or {}
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise invalid_argument("stream_options.include_usage", "must be a boolean")
    messages = _typed(known, "messages", list, "a list of messages")
    if messages is None:
        raise invalid_argument("messages", "is required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_argument(f"messages[{index}]", "must be an object")
    model = _typed(known, "model", str, "a string") or ""
    metadata = _typed(known, "metadata", dict, "an object") or {}
    validation.json_document("metadata", metadata)
    params = _params(known)
    user = params.get("user", "")
    if user:
        validation.label("user", user, max_length=200)
    return CompletionRequest(
        chat=build_request(
            model=model,
            messages=messages,
            params=params,
            extra_body={name: value for name, value in document.items() if name not in _HANDLED},
            purpose=purpose,
            call_metadata=metadata,
        ),
        stream=stream,
        include_usage=include_usage,
        user=user,
    )


def _typed(values: dict[str, Any], name: str, kind: type, what: str) -> Any:
    value = values.get(name)
    if value is not None and not isinstance(value, kind):
        raise invalid_argument(name, f"must be {what}")
    return value


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _params(known: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in _NUMBERS:
        if name in known:
            value = known[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise invalid_argument(name, "must be a number")
            params[name] = value
    for name in _INTEGERS:
        if name in known:
            if _integer(known[name]) is None:
                raise invalid_argument(name, "must be an integer")
            params[name] = known[name]
    for name, kind, what in (
        *((name, bool, "a boolean") for name in _BOOLEANS),
        *((name, str, "a string") for name in _STRINGS),
        *((name, dict, "an object") for name in _OBJECTS),
    ):
        if name in known:
            params[name] = _typed(known, name, kind, what)
    if "tools" in known:
        tools = _typed(known, "tools", list, "a list of tools")
        for index, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise invalid_argument(f"tools[{index}]", "must be an object")
        params["tools"] = tools
    if "stop" in known:
        params["stop"] = known["stop"]  # a string or a list of strings: checked by build_request
    if "tool_choice" in known:
        if not isinstance(known["tool_choice"], str | dict):
            raise invalid_argument("tool_choice", "must be a string or an object")
        params["tool_choice"] = known["tool_choice"]
    return params


# ---------------------------------------------------------------- answers


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def event(document: dict[str, Any]) -> bytes:
    """One Server-Sent Event, as OpenAI frames them."""
    return b"data: " + encode(document) + b"\n\n"


def completion_id(call_id: object) -> str:
    return f"chatcmpl-{call_id}"


def usage(value: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": value.prompt_tokens,
        "completion_tokens": value.completion_tokens,
        "total_tokens": value.total_tokens,
    }


def _tool_calls(calls: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Tool calls as OpenAI shapes them, with only the fields OpenAI defines."""
    shaped = []
    for call in calls:
        function = call.get("function") or {}
        shaped.append(
            {
                "id": call.get("id", ""),
                "type": call.get("type") or "function",
                "function": {"name": function.get("name", ""), "arguments": function.get("arguments", "")},
            }
        )
    return shaped


def completion(result: CallResult, created: int) -> dict[str, Any]:
    """A `chat.completion` object for a finished call, with the provider's `logprobs`,
    `refusal`, `reasoning_content`, `system_fingerprint` and usage details when it sent
    them."""
    answer = result.answer
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.tool_calls:
        message["tool_calls"] = _tool_calls(answer.tool_calls)
        message["content"] = answer.content or None
    if answer.refusal is not None:
        message["refusal"] = answer.refusal
        message["content"] = answer.content or None
    if answer.reasoning_content is not None:  # DeepSeek's field, which LiteLLM keeps too
        message["reasoning_content"] = answer.reasoning_content
    body = {
        "id": completion_id(result.call_id),
        "object": "chat.completion",
        "created": created,
        "model": result.model_alias,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": answer.finish_reason or "stop",
                "logprobs": answer.logprobs,
            }
        ],
        "usage": usage(result.usage),
    }
    if answer.system_fingerprint is not None:
        body["system_fingerprint"] = answer.system_fingerprint
    if answer.usage_details is not None and not result.usage.estimated:
        body["usage"].update(answer.usage_details)
    return body


@dataclass(frozen=True)
class ChunkHeader:
    """What every chunk of one streamed call repeats."""

    id: str
    created: int
    model: str

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }

    def first(self) -> dict[str, Any]:
        # No content yet: an answer that turns out to be a tool call has none (null, as
        # OpenAI sends it), and a text answer's deltas bring it.
        return self.chunk([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}])

    def delta(self, delta: Delta) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if delta.content:
            body["content"] = delta.content
        if delta.tool_calls:
            body["tool_calls"] = [_tool_call_fragment(fragment) for fragment in delta.tool_calls]
        if delta.refusal:
            body["refusal"] = delta.refusal
        if delta.reasoning_content:
            body["reasoning_content"] = delta.reasoning_content
        choice: dict[str, Any] = {"index": 0, "delta": body, "finish_reason": delta.finish_reason or None}
        if delta.logprobs is not None:
            choice["logprobs"] = delta.logprobs
        if delta.system_fingerprint is not None:
            return self.chunk([choice], system_fingerprint=delta.system_fingerprint)
        return self.chunk([choice])

    def usage(self, value: Usage) -> dict[str, Any]:
        """The extra last chunk of `stream_options.include_usage`: no choices, the usage."""
        return self.chunk([], usage=usage(value))


def _tool_call_fragment(fragment: dict[str, Any]) -> dict[str, Any]:
    """A streamed tool call's fragment as OpenAI sends it: `id` and `type` on its first
    fragment only (LiteLLM repeats `type` on every one), whose `arguments` is at least ""
    (SDKs that append to it find a string)."""
    shaped: dict[str, Any] = {"index": int(fragment.get("index") or 0)}
    function = fragment.get("function") or {}
    shaped["function"] = {key: function[key] for key in ("name", "arguments") if function.get(key)}
    if fragment.get("id"):
        shaped["id"] = fragment["id"]
        shaped["type"] = fragment.get("type") or "function"
        shaped["function"].setdefault("arguments", "")
    return shaped


# OpenAI's error type for each kind of ours, by the HTTP status the kind gets: as the
# gateway types an error before a stream began (gateway/local_replies.lua, openai_type).
_OPENAI_TYPES = {
    Kind.RESOURCE_EXHAUSTED: "rate_limit_error",
    Kind.UNAVAILABLE: "server_error",
    Kind.DEADLINE_EXCEEDED: "server_error",
    Kind.INTERNAL: "server_error",
}


def stream_error(error: DomainError) -> dict[str, Any]:
    """An error after the stream began, as OpenAI streams it: an event with `error`, the
    member the gateway gives an error before it (local_replies.lua, openai_member): OpenAI's
    type, `param` the first bad field, `code` our reason, `details` ours (as JSON)."""
    details = [json_format.MessageToDict(d, preserving_proto_field_name=True) for d in to_status(error).details]
    return {
        "error": {
            "message": error.message,
            "type": _OPENAI_TYPES.get(error.kind, "invalid_request_error"),
            "param": error.violations[0].field if error.violations else None,
            "code": error.reason,
            "details": details,
        }
    }
