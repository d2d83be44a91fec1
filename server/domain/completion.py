"""Reading OpenAI-format completions, whole or streamed, into what we record and return.

Pure functions over the wire dicts: the same rules for LLMCall and LLMCallStream, so a
streamed call and a plain one record the same tokens, cost and content.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Answer:
    """The model's answer to a call."""

    content: str
    finish_reason: str
    tool_calls: tuple[dict[str, Any], ...] = ()
    usage: Usage | None = None
    reported_cost_usd: Decimal | None = None
    # What the provider sent that the job API does not read, kept for OpenAI's format
    # (/v1): the choice's `logprobs`, the message's `refusal`, the completion's
    # `system_fingerprint` and the usage's `*_tokens_details`. None when not sent.
    logprobs: dict[str, Any] | None = None
    refusal: str | None = None
    # The model's reasoning (`message.reasoning_content`, DeepSeek's and LiteLLM's name),
    # returned with the answer; not recorded with the call's content.
    reasoning_content: str | None = None
    system_fingerprint: str | None = None
    usage_details: dict[str, Any] | None = None
    # The provider's usage was not believed (below zero, past any call's size): then no
    # cost computed from it is either, LiteLLM's header included.
    usage_implausible: bool = False


# The usage fields OpenAI details the token counts in, passed through to /v1 as sent.
USAGE_DETAILS = ("prompt_tokens_details", "completion_tokens_details")


# The most tokens one call's usage may report; beyond it (or below 0) the count is not
# believed, and the call's tokens are counted with the tokenizer instead.
MAX_REPORTED_TOKENS = 100_000_000


def usage_from(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    try:
        usage = Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
    except (TypeError, ValueError, OverflowError):
        return None
    counts = (usage.prompt_tokens, usage.completion_tokens)
    return usage if all(0 <= count <= MAX_REPORTED_TOKENS for count in counts) else None


def _read_usage(raw: Any) -> tuple[Usage | None, bool]:
    """usage_from(raw), and whether `raw` was a usage object whose counts are not believed."""
    usage = usage_from(raw)
    return usage, usage is None and isinstance(raw, dict)


def _known(
    usage: Usage | None, content: str, tool_calls: tuple[dict[str, Any], ...], reasoning: str | None = None
) -> Usage | None:
    """None for zeros reported for an answer (its text, tool calls or reasoning): an answer
    takes tokens, so zeros mean the provider reported none and LiteLLM filled its usage in
    with zeros. Unknown, so counted with the tokenizer, not recorded free."""
    if usage is not None and not usage.total_tokens and (content or tool_calls or reasoning):
        return None
    return usage


def cost_from(raw: Any) -> Decimal | None:
    """LiteLLM puts the call's cost in `usage.cost` of the last streamed chunk."""
    if not isinstance(raw, dict) or raw.get("cost") is None:
        return None
    try:
        cost = Decimal(str(raw["cost"]))
    except InvalidOperation:
        return None
    return cost if cost.is_finite() and cost >= 0 else None


def answer_from(body: dict[str, Any]) -> Answer:
    """The answer in a non-streaming `chat.completion`."""
    choices = body.get("choices") or [{}]
    message = choices[0].get("message") or {}
    content, tool_calls = message.get("content") or "", tuple(message.get("tool_calls") or ())
    raw_usage = body.get("usage")
    reported, implausible = _read_usage(raw_usage)
    reasoning = _text(message.get("reasoning_content"))
    usage = _known(reported, content, tool_calls, reasoning)
    # A cost LiteLLM computed from a usage we do not believe is not believed either.
    reported_cost = None if implausible else cost_from(raw_usage)
    details = None
    if usage is not None:
        details = {name: raw_usage[name] for name in USAGE_DETAILS if raw_usage.get(name)} or None
    return Answer(
        content=content,
        finish_reason=choices[0].get("finish_reason") or "",
        tool_calls=tool_calls,
        usage=usage,
        reported_cost_usd=reported_cost,
        usage_implausible=implausible,
        logprobs=_object(choices[0].get("logprobs")),
        refusal=_text(message.get("refusal")),
        reasoning_content=reasoning,
        system_fingerprint=_text(body.get("system_fingerprint")),
        usage_details=details,
    )


def _object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Delta:
    """What one streamed chunk adds: text, reasoning text, tool-call fragments, maybe the
    finish reason; and, for OpenAI's format (/v1), the chunk's `logprobs`, `refusal` text
    and `system_fingerprint` when the provider sent them."""

    content: str = ""
    tool_calls: tuple[dict[str, Any], ...] = ()
    finish_reason: str = ""
    logprobs: dict[str, Any] | None = None
    refusal: str = ""
    system_fingerprint: str | None = None
    reasoning_content: str = ""

    @property
    def is_empty(self) -> bool:
        """Whether the chunk adds nothing to forward. Reasoning text alone is something:
        it is forwarded as it arrives, and it is the first token the call's time to first
        token counts (the model has started writing, and the client sees it)."""
        return not (
            self.content
            or self.reasoning_content
            or self.tool_calls
            or self.finish_reason
            or self.logprobs
            or self.refusal
        )


def check_completion(body: Any) -> dict[str, Any]:
    """`body` if it has the shape answer_from reads (OpenAI's `chat.completion`: what it
    reads may be missing or null, but not of another type); else ValueError saying what
    is not, which the upstream client reports as a malformed reply."""
    for message in _messages(body, "a reply", "message"):
        _check_tool_calls(message)
    return body


def check_chunk(chunk: Any) -> dict[str, Any]:
    """`chunk` if it has the shape StreamAccumulator reads (OpenAI's `chat.completion.chunk`:
    what it reads may be missing or null, but not of another type); else ValueError saying
    what is not, which the upstream stream reports as a stream that broke off."""
    for delta in _messages(chunk, "a chunk", "delta"):
        _check_tool_calls(delta)
    return chunk


def _check_tool_calls(message: dict[str, Any]) -> None:
    """A message's (or a delta's) tool calls, or fragments of them, as read: objects whose
    fields, where present, are of their types."""
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            raise ValueError("a tool call that is not an object")
        _check_types(call, {"index": int, "id": str, "type": str, "function": dict}, "a tool call")
        _check_types(call.get("function") or {}, {"name": str, "arguments": str}, "a tool call's function")


def _messages(body: Any, what: str, key: str) -> Iterator[dict[str, Any]]:
    """Each choice's `key` object (a reply's message, a chunk's delta) of `body`, checked
    for the types read from it and from its choice; ValueError at the first that is wrong."""
    if not isinstance(body, dict):
        raise ValueError(f"{what} that is not a JSON object")
    choices = body.get("choices")
    if choices is not None and not isinstance(choices, list):
        raise ValueError("choices that are not a list")
    for choice in choices or ():
        if not isinstance(choice, dict):
            raise ValueError("a choice that is not an object")
        _check_types(choice, {"finish_reason": str, key: dict, "logprobs": dict}, "a choice")
        message = choice.get(key) or {}
        _check_types(
            message, {"content": str, "refusal": str, "reasoning_content": str, "tool_calls": list}, f"a {key}"
        )
        yield message


_JSON_TYPES = {str: "a string", int: "an integer", dict: "an object", list: "a list"}


def _check_types(value: dict[str, Any], types: dict[str, type], what: str) -> None:
    for key, wanted in types.items():
        found = value.get(key)
        if found is not None and (not isinstance(found, wanted) or isinstance(found, bool)):
            raise ValueError(f"{what} whose {key} is not {_JSON_TYPES[wanted]}")


@dataclass
class StreamAccumulator:
    """Folds streamed chunks into the whole answer while the deltas are forwarded."""

    parts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str = ""
    usage: Usage | None = None
    reported_cost_usd: Decimal | None = None
    usage_implausible: bool = False

    def feed(self, chunk: dict[str, Any]) -> Delta:
        if chunk.get("usage"):
            usage, implausible = _read_usage(chunk["usage"])
            if implausible:  # neither its counts nor a cost computed from them
                self.usage, self.reported_cost_usd, self.usage_implausible = None, None, True
            elif not self.usage_implausible:
                self.usage = usage or self.usage
                self.reported_cost_usd = cost_from(chunk["usage"]) or self.reported_cost_usd
        content, fragments, finish, logprobs, refusal, reasoning = "", [], "", None, "", ""
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                content += delta["content"]
            for fragment in delta.get("tool_calls") or ():
                fragments.append(fragment)
                self._merge_tool_call(fragment)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
            if choice.get("logprobs"):
                logprobs = _object(choice["logprobs"])
            if delta.get("refusal"):
                refusal += _text(delta["refusal"]) or ""
            if delta.get("reasoning_content"):
                reasoning += delta["reasoning_content"]
        if content:
            self.parts.append(content)
        if reasoning:
            self.reasoning.append(reasoning)
        if finish:
            self.finish_reason = finish
        return Delta(
            content=content,
            tool_calls=tuple(fragments),
            finish_reason=finish,
            logprobs=logprobs,
            refusal=refusal,
            system_fingerprint=_text(chunk.get("system_fingerprint")),
            reasoning_content=reasoning,
        )

    def _merge_tool_call(self, fragment: dict[str, Any]) -> None:
        index = int(fragment.get("index") or 0)
        call = self.tool_calls.setdefault(
            index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if fragment.get("id"):
            call["id"] = fragment["id"]
        if fragment.get("type"):
            call["type"] = fragment["type"]
        function = fragment.get("function") or {}
        if function.get("name"):
            call["function"]["name"] += function["name"]
        if function.get("arguments"):
            call["function"]["arguments"] += function["arguments"]

    @property
    def content(self) -> str:
        return "".join(self.parts)

    def answer(self) -> Answer:
        content, tool_calls = self.content, tuple(self.tool_calls[i] for i in sorted(self.tool_calls))
        reasoning = "".join(self.reasoning) or None
        return Answer(
            content=content,
            finish_reason=self.finish_reason,
            tool_calls=tool_calls,
            usage=_known(self.usage, content, tool_calls, reasoning),
            reported_cost_usd=self.reported_cost_usd,
            usage_implausible=self.usage_implausible,
            reasoning_content=reasoning,
        )
