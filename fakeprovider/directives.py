"""Parsing of the ``[fake ...]`` directive that steers a fake reply.

Everything here is pure (no I/O) so it can be unit-tested directly and costs
only a regex search per request.  See the package docstring for the language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DIRECTIVE_KEYS",
    "Directive",
    "DirectiveError",
    "InvalidRequestError",
    "last_user_text",
    "message_text",
    "parse_directive",
]


class InvalidRequestError(ValueError):
    """A request the fake refuses with HTTP 400 (``invalid_request_error``).

    ``param`` names the offending request field (or directive key) and is
    reported in the OpenAI error body.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class DirectiveError(InvalidRequestError):
    """The ``[fake ...]`` directive is malformed; ``key`` names the culprit."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message, param=None)
        self.key = key


@dataclass(frozen=True, slots=True)
class Directive:
    """The parsed directive; every field's default means "not steered"."""

    tokens: int | None = None
    reasoning: int | None = None
    chunks: int | None = None
    delay_ms: int = 0
    first_delay_ms: int | None = None
    status: int | None = None
    retry_after: int | None = None
    fail: str | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    usage: str | None = None
    garbage_after: int | None = None
    finish: str | None = None
    json: str | None = None
    tool: str | None = None
    echo: bool = False

    @property
    def first_delay(self) -> int:
        """Milliseconds to wait before the first chunk (or the whole reply)."""
        return self.delay_ms if self.first_delay_ms is None else self.first_delay_ms

    def failure_status(self, model: str) -> int | None:
        """HTTP status this request must fail with for ``model``, or None.

        ``status=N`` alone fails every request; with ``fail=primary`` only
        the primary model ``fake-gpt`` fails (500 unless ``status`` is given),
        so that a router's fallback to another model becomes visible.
        """
        if self.fail == "primary":
            if model != PRIMARY_MODEL:
                return None
            return self.status if self.status is not None else 500
        return self.status


PRIMARY_MODEL = "fake-gpt"

# Value parsers -----------------------------------------------------------

_MAX_INT = 10**9


def _int_parser(minimum: int, maximum: int = _MAX_INT) -> Callable[[str, str], int]:
    """Build a parser for a decimal integer key bounded to [minimum, maximum]."""

    def parse(key: str, raw: str) -> int:
        if not raw.isascii() or not raw.isdigit():
            raise DirectiveError(
                f"[fake] directive key '{key}' expects a non-negative integer, got {raw!r}",
                key,
            )
        value = int(raw)
        if not minimum <= value <= maximum:
            raise DirectiveError(
                f"[fake] directive key '{key}' must be between {minimum} and {maximum}, got {value}",
                key,
            )
        return value

    return parse


def _choice_parser(*choices: str) -> Callable[[str, str], str]:
    """Build a parser accepting exactly one of ``choices``."""

    def parse(key: str, raw: str) -> str:
        if raw not in choices:
            raise DirectiveError(
                f"[fake] directive key '{key}' must be one of {', '.join(choices)}; got {raw!r}",
                key,
            )
        return raw

    return parse


def _parse_bool(key: str, raw: str) -> bool:
    """Parse ``1/0/true/false/yes/no`` (case-insensitive)."""
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise DirectiveError(f"[fake] directive key '{key}' expects 1 or 0, got {raw!r}", key)


def _parse_name(key: str, raw: str) -> str:
    """Accept any non-empty name (tool names are checked against the request later)."""
    return raw


_PARSERS: Mapping[str, Callable[[str, str], Any]] = {
    "tokens": _int_parser(0, 100_000),
    "reasoning": _int_parser(1, 100_000),
    "chunks": _int_parser(1, 100_000),
    "delay_ms": _int_parser(0, 3_600_000),
    "first_delay_ms": _int_parser(0, 3_600_000),
    "status": _int_parser(400, 599),
    "retry_after": _int_parser(0, 86_400),
    "fail": _choice_parser("primary"),
    "drop_after": _int_parser(0),
    "stall_after": _int_parser(0),
    "usage": _choice_parser("none", "zero", "negative", "huge"),
    "garbage_after": _int_parser(0),
    "finish": _choice_parser("stop", "length", "content_filter", "tool_calls"),
    "json": _choice_parser("invalid", "mismatch"),
    "tool": _parse_name,
    "echo": _parse_bool,
}

DIRECTIVE_KEYS: tuple[str, ...] = tuple(_PARSERS)

# ``[fake`` followed by whitespace or ``]``; ``[faker`` is ordinary text.
_START_RE = re.compile(r"\[fake(?=[\s\]])")
# Whitespace around the directive collapses to a single space on removal.
_TRAILING_WS_RE = re.compile(r"\s+$")
_LEADING_WS_RE = re.compile(r"^\s+")

NO_DIRECTIVE = Directive()


def parse_directive(text: str) -> tuple[Directive, str]:
    """Find the first ``[fake ...]`` directive in ``text`` and parse it.

    Returns the directive (``Directive()`` when there is none) and the text
    with that directive removed: the directive plus the whitespace around it
    becomes a single space, and the result is stripped.  Later ``[fake ...]``
    occurrences are ignored and stay in the text.

    Raises DirectiveError for unknown keys, bad values, duplicate keys, items
    without ``=`` and an unterminated directive.
    """
    match = _START_RE.search(text)
    if match is None:
        return NO_DIRECTIVE, text.strip()
    end = text.find("]", match.end())
    if end < 0:
        raise DirectiveError("[fake] directive is not terminated by ']'")
    values: dict[str, Any] = {}
    for item in text[match.end() : end].split():
        key, sep, raw = item.partition("=")
        parser = _PARSERS.get(key)
        if parser is None:
            raise DirectiveError(
                f"unknown [fake] directive key '{key}' (known keys: {', '.join(DIRECTIVE_KEYS)})",
                key,
            )
        if not sep or not raw:
            raise DirectiveError(f"[fake] directive key '{key}' needs a value: {key}=VALUE", key)
        if key in values:
            raise DirectiveError(f"[fake] directive key '{key}' is given twice", key)
        values[key] = parser(key, raw)
    before = _TRAILING_WS_RE.sub("", text[: match.start()])
    after = _LEADING_WS_RE.sub("", text[end + 1 :])
    remaining = f"{before} {after}".strip() if before and after else (before or after).strip()
    directive = Directive(**values) if values else NO_DIRECTIVE
    return directive, remaining


def message_text(content: Any) -> str:
    """Text of an OpenAI message ``content``.

    A string is returned as is; a list of parts yields its ``text`` parts
    joined by newlines (image/audio parts are skipped); anything else
    (``None`` for tool-calling assistant turns) is the empty string.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def last_user_text(messages: Sequence[Any]) -> str:
    """Text of the last message whose role is ``user`` ("" when there is none)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""
