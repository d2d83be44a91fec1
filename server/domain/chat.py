"""The chat request a team sends inside a job, validated before anything is spent.

Messages and parameters stay in the OpenAI wire shape (plain dicts) because that is what
LiteLLM takes; validation checks what the gateway must know to be true and leaves
provider-specific judgement (e.g. which models accept `logprobs`) to the provider, whose
rejection comes back as INVALID_ARGUMENT with its message.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from server.domain import validation
from server.domain.errors import invalid_argument
from server.domain.litellm_params import LITELLM_PARAMS

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_MESSAGES = 2048

# Parameters the gateway owns: a client cannot set them through `extra_body`. `base_url`
# and `api_version` too: LiteLLM reads `base_url` as `api_base`, which would send the
# call, with the operator's provider key, wherever the client says. And every key LiteLLM
# reads as its own setting rather than the provider's (LITELLM_PARAMS: credentials,
# routing, per-request prices, mock responses, callbacks...), plus the SDK-style
# `extra_body`/`extra_headers`/`extra_query`, which LiteLLM merges over the request (a
# nested `max_tokens` would escape a cost limit's bound), and `timeout`.
RESERVED_KEYS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "fallbacks",
        "num_retries",
        "api_key",
        "api_base",
        "base_url",
        "api_version",
        "metadata",
        "extra_body",
        "extra_headers",
        "extra_query",
        "timeout",
    }
    | LITELLM_PARAMS
)
# LiteLLM's own prefixes, and its provider credentials' and routing's (`aws_access_key_id`,
# `aws_session_token`, `vertex_project`, `azure_ad_token`...): a request's would override
# the deployment's, for the operator's route.
_RESERVED_PREFIXES = ("litellm_", "mock_", "_", "aws_", "azure_", "vertex_", "s3_")


def is_reserved(key: str) -> bool:
    """Whether `key` is the gateway's or LiteLLM's own, not a provider parameter."""
    return key in RESERVED_KEYS or key.startswith(_RESERVED_PREFIXES)


# (name, low, high) for numeric parameters whose range every provider shares.
_RANGES: tuple[tuple[str, float, float], ...] = (
    ("temperature", 0.0, 2.0),
    ("top_p", 0.0, 1.0),
    ("frequency_penalty", -2.0, 2.0),
    ("presence_penalty", -2.0, 2.0),
    ("max_tokens", 1, 10_000_000),
    ("max_completion_tokens", 1, 10_000_000),
    ("top_logprobs", 0, 20),
    ("n", 1, 128),
)


@dataclass(frozen=True)
class ChatRequest:
    """One LLM call as the team asked for it.

    `model` is the alias the team named (None: the team's default). `params` holds only
    the OpenAI parameters the client set, ready to forward.
    """

    model: str | None
    messages: tuple[dict[str, Any], ...]
    params: dict[str, Any] = field(default_factory=dict)
    purpose: str = ""
    call_metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def wants_json(self) -> bool:
        fmt = self.params.get("response_format") or {}
        return fmt.get("type") in ("json_object", "json_schema")


def input_token_bound(request: ChatRequest) -> int:
    """At least the tokens the request's input can take: the UTF-8 bytes of its messages
    and parameters as compact JSON. Byte-level BPE tokenizers (OpenAI's, Llama 3's...) and
    SentencePiece with byte fallback never make more than one token of a byte, and a
    message's JSON punctuation outweighs the few tokens a chat template adds to it. Not a
    bound for what a provider adds on its own (image tokens for an image URL, a tool-use
    system prompt)."""
    body = {"messages": request.messages, **request.params}
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode())


def output_token_bound(request: ChatRequest) -> int | None:
    """The most tokens the request lets the model write (`max_tokens` or
    `max_completion_tokens`; a call has one choice); None when it sets no bound. Numbers
    sent through `extra_body` arrive as floats."""
    limits = [_number(request.params.get(name)) for name in ("max_tokens", "max_completion_tokens")]
    bound = max((limit for limit in limits if limit is not None and limit > 0), default=None)
    return None if bound is None else math.ceil(bound)


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def build_request(
    *,
    model: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    extra_body: dict[str, Any],
    purpose: str,
    call_metadata: dict[str, Any],
) -> ChatRequest:
    """Validate a call and return it, or raise INVALID_ARGUMENT naming the first bad field."""
    if model:
        validation.model_name("model", model)
    _check_messages(messages)
    _check_params(params)
    for key in extra_body:
        if is_reserved(key) or key in params:
            raise invalid_argument(f"extra_body.{key}", "cannot be set through extra_body")
    _check_ranges(extra_body, where="extra_body.")  # bounds hold there too (n, max_tokens...)
    validation.label("purpose", purpose, max_length=200)
    return ChatRequest(
        model=model or None,
        messages=tuple(messages),
        params={**extra_body, **params},
        purpose=purpose,
        call_metadata=call_metadata,
    )


def _check_messages(messages: list[dict[str, Any]]) -> None:
    if not messages:
        raise invalid_argument("messages", "must contain at least one message")
    if len(messages) > MAX_MESSAGES:
        raise invalid_argument("messages", f"must contain at most {MAX_MESSAGES} messages")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role", "")
        if not isinstance(role, str) or role not in ROLES:
            raise invalid_argument(f"{where}.role", f"must be one of {', '.join(sorted(ROLES))}")
        content = message.get("content")
        if content is None:
            if role != "assistant" or not message.get("tool_calls"):
                raise invalid_argument(f"{where}.content", "is required")
        elif isinstance(content, list):
            _check_parts(f"{where}.content", content)
        elif not isinstance(content, str):
            raise invalid_argument(f"{where}.content", "must be a string or a list of content parts")
        if role == "tool" and not message.get("tool_call_id"):
            raise invalid_argument(f"{where}.tool_call_id", "is required for a tool message")


# The content parts LiteLLM takes (its OpenAIMessageContentListBlock), each with the key that
# holds its value and what that must be: "url" (a URL string, or an object with one), "text"
# (a string) or "object". LiteLLM fails with a 500 on a part of another type or a part
# without its value, which would read as the provider being down (503, retried elsewhere).
_PARTS = {
    "text": ("text", "text"),
    "image_url": ("image_url", "url"),
    "video_url": ("video_url", "url"),
    "input_audio": ("input_audio", "object"),
    "file": ("file", "object"),
    "document": ("source", "object"),
}
_PART_TYPES = ", ".join(_PARTS)


def _check_parts(where: str, parts: list[Any]) -> None:
    if not parts:
        raise invalid_argument(where, "must not be an empty list")
    for index, part in enumerate(parts):
        at = f"{where}[{index}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise invalid_argument(at, 'must be an object with a "type"')
        if part["type"] not in _PARTS:
            raise invalid_argument(f"{at}.type", f"must be one of {_PART_TYPES}")
        key, kind = _PARTS[part["type"]]
        value = part.get(key)
        if kind == "text" and not isinstance(value, str):
            raise invalid_argument(f"{at}.{key}", "must be a string")
        if kind == "url" and not (isinstance(value, str) and value) and not _has_url(value):
            raise invalid_argument(f"{at}.{key}", 'must be a URL, or an object with a "url"')
        if kind == "object" and not isinstance(value, dict):
            raise invalid_argument(f"{at}.{key}", "must be an object")


def _has_url(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("url"), str) and bool(value["url"])


def _check_params(params: dict[str, Any]) -> None:
    _check_ranges(params)
    _check_shapes(params)


def _bound(value: float) -> str:
    """A range's end as people write it: 10000000, not 1e+07; 0.5, not 0.500000."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _check_ranges(params: dict[str, Any], where: str = "") -> None:
    for name, low, high in _RANGES:
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid_argument(where + name, "must be a number")
        if not low <= value <= high:
            raise invalid_argument(where + name, f"must be between {_bound(low)} and {_bound(high)}")
    if params.get("n") not in (None, 1):  # the provider would write (and bill) every choice
        raise invalid_argument(where + "n", "must be 1: a call returns one choice")


def _check_shapes(params: dict[str, Any]) -> None:
    stop = params.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            raise invalid_argument("stop", "must be a string or a list of non-empty strings")
    fmt = params.get("response_format")
    if fmt is not None and fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise invalid_argument("response_format.type", "must be text, json_object or json_schema")
    if fmt is not None and fmt.get("type") == "json_schema" and not isinstance(fmt.get("json_schema"), dict):
        raise invalid_argument("response_format.json_schema", "is required for type json_schema")
    for index, tool in enumerate(params.get("tools") or ()):
        function = tool.get("function")
        if tool.get("type", "function") != "function" or not isinstance(function, dict) or not function.get("name"):
            raise invalid_argument(f"tools[{index}]", 'must be {"type": "function", "function": {"name": ...}}')
    choice = params.get("tool_choice")
    if choice is not None and not (
        choice in ("none", "auto", "required") or (isinstance(choice, dict) and choice.get("type") == "function")
    ):
        raise invalid_argument("tool_choice", 'must be "none", "auto", "required" or a function choice')
