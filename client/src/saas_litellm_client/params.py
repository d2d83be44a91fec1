"""The body of an LLM call: typed OpenAI parameters, and where everything else goes.

The API names the OpenAI chat parameters it accepts (`LLMCallRequest` in the protos); any
other provider parameter must travel in `extra_body`. The REST gateway refuses a
top-level field the API does not name (400 naming it), so this client moves every
parameter it does not know into `extra_body`: `top_k=40` reaches the provider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from pydantic import BaseModel

Message = Mapping[str, Any] | BaseModel
"""A chat message: a dict such as `{"role": "user", "content": "Hi"}`, or a `ChatMessage`."""


class CallOptions(TypedDict, total=False):
    """Keyword arguments of `llm_call`, `llm_call_stream` and `structured_call`.

    Any other keyword argument is a provider parameter and is sent in `extra_body`. A
    None value is not sent (so optional settings can be passed through as they are).
    """

    model: str | None
    """Model alias, e.g. `ChatAgent`; default: the team's default model."""
    purpose: str | None
    """Label of the call inside the job, e.g. `extract_text`."""
    call_metadata: Mapping[str, Any] | None
    """Merged into the job's metadata after a successful call."""
    temperature: float | None
    max_tokens: int | None
    top_p: float | None
    stop: str | Sequence[str] | None
    response_format: Mapping[str, Any] | None
    tools: Sequence[Mapping[str, Any]] | None
    tool_choice: Literal["none", "auto", "required"] | Mapping[str, Any] | None
    frequency_penalty: float | None
    presence_penalty: float | None
    seed: int | None
    user: str | None
    max_completion_tokens: int | None
    parallel_tool_calls: bool | None
    logit_bias: Mapping[str, float] | None
    logprobs: bool | None
    top_logprobs: int | None
    reasoning_effort: str | None
    extra_body: Mapping[str, Any] | None
    """Any other provider parameter, merged into the upstream request as is."""


KNOWN_OPTIONS = frozenset(CallOptions.__annotations__)


def message_dict(message: Message) -> dict[str, Any]:
    """A message as JSON: models without their unset (None) fields, mappings as they are."""
    if isinstance(message, BaseModel):
        return message.model_dump(mode="json", exclude_none=True)
    return dict(message)


def call_body(messages: Sequence[Message], options: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of an LLM call. None values are left out; unknown options go to `extra_body`."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise TypeError("messages must be a list of messages, e.g. [{'role': 'user', 'content': 'Hi'}]")
    body: dict[str, Any] = {"messages": [message_dict(m) for m in messages]}
    extra = dict(options.get("extra_body") or {})
    for name, value in options.items():
        if value is None or name == "extra_body":
            continue
        if name in KNOWN_OPTIONS:
            body[name] = _plain(value)
        elif name in extra:
            raise TypeError(f"parameter {name!r} given both as a keyword argument and in extra_body")
        else:
            extra[name] = _plain(value)
    if extra:
        body["extra_body"] = _plain(extra)
    return body


def _plain(value: Any) -> Any:
    """JSON-ready: Pydantic models dumped, mappings and sequences copied."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
