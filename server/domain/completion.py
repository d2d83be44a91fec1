"""Reading OpenAI-format completions, whole or streamed, into what we record and return.

Pure functions over the wire dicts: the same rules for LLMCall and LLMCallStream, so a
streamed call and a plain one record the same tokens, cost and content.
"""

from __future__ import annotations

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
    system_fingerprint: str | None = None
    usage_details: dict[str, Any] | None = None


# The usage fields OpenAI details the token counts in, passed through to /v1 as sent.
USAGE_DETAILS = ("prompt_tokens_details", "completion_tokens_details")


def usage_from(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    try:
        return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
    except (TypeError, ValueError):
        return None


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
    usage = usage_from(raw_usage)
    if usage is not None and not usage.total_tokens and (content or tool_calls):
        # An answer takes tokens: zeros mean the provider reported none and LiteLLM filled
        # its usage in with zeros. Unknown, so counted with the tokenizer, not recorded free.
        usage = None
    details = None
    if usage is not None:
        details = {name: raw_usage[name] for name in USAGE_DETAILS if raw_usage.get(name)} or None
    return Answer(
        content=content,
        finish_reason=choices[0].get("finish_reason") or "",
        tool_calls=tool_calls,
        usage=usage,
        reported_cost_usd=cost_from(raw_usage),
        logprobs=_object(choices[0].get("logprobs")),
        refusal=_text(message.get("refusal")),
        system_fingerprint=_text(body.get("system_fingerprint")),
        usage_details=details,
    )


def _object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Delta:
    """What one streamed chunk adds: text, tool-call fragments, maybe the finish reason;
    and, for OpenAI's format (/v1), the chunk's `logprobs`, `refusal` text and
    `system_fingerprint` when the provider sent them."""

    content: str = ""
    tool_calls: tuple[dict[str, Any], ...] = ()
    finish_reason: str = ""
    logprobs: dict[str, Any] | None = None
    refusal: str = ""
    system_fingerprint: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.content or self.tool_calls or self.finish_reason or self.logprobs or self.refusal)


@dataclass
class StreamAccumulator:
    """Folds streamed chunks into the whole answer while the deltas are forwarded."""

    parts: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str = ""
    usage: Usage | None = None
    reported_cost_usd: Decimal | None = None

    def feed(self, chunk: dict[str, Any]) -> Delta:
        if chunk.get("usage"):
            self.usage = usage_from(chunk["usage"]) or self.usage
            self.reported_cost_usd = cost_from(chunk["usage"]) or self.reported_cost_usd
        content, fragments, finish, logprobs, refusal = "", [], "", None, ""
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
        if content:
            self.parts.append(content)
        if finish:
            self.finish_reason = finish
        return Delta(
            content=content,
            tool_calls=tuple(fragments),
            finish_reason=finish,
            logprobs=logprobs,
            refusal=refusal,
            system_fingerprint=chunk.get("system_fingerprint") or None,
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
        return Answer(
            content=self.content,
            finish_reason=self.finish_reason,
            tool_calls=tuple(self.tool_calls[i] for i in sorted(self.tool_calls)),
            usage=self.usage,
            reported_cost_usd=self.reported_cost_usd,
        )
