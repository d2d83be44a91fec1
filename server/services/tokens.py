"""Token counting for calls whose provider reported no usage (e.g. a stream cut short).

Uses tiktoken's cl100k_base encoding, loaded from a file shipped with the server
(server/assets), because tiktoken would otherwise download it at run time. Counts are
estimates for non-OpenAI models and are recorded with `tokens_estimated = true`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import tiktoken
from tiktoken.load import load_tiktoken_bpe

T = TypeVar("T")
ENCODING_FILE = Path(__file__).resolve().parent.parent / "assets" / "cl100k_base.tiktoken"
ENCODING_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# The pattern and special tokens of cl100k_base, as tiktoken_ext.openai_public defines them.
_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
# OpenAI's chat format adds about 3 tokens per message and 3 to prime the reply.
_PER_MESSAGE = 3
_PER_REPLY = 3
# tiktoken's time grows faster than a piece of text without spaces ('a' * 4_000_000: 2 s,
# 16 times 'a' * 250_000's), so a long text is counted in pieces of at most this many
# characters, cut before a space where there is one (a cut inside a word may count a token
# more: these counts are estimates anyway).
_PIECE_CHARS = 8192
# Counting more characters than this runs in a worker thread (tiktoken releases the GIL),
# so a prompt of megabytes does not stop every other RPC of the process meanwhile.
_INLINE_CHARS = 65_536


class TokenCounter:
    def __init__(self) -> None:
        self._encoding = tiktoken.Encoding(
            name="cl100k_base",
            pat_str=_PATTERN,
            mergeable_ranks=load_tiktoken_bpe(str(ENCODING_FILE), expected_hash=ENCODING_SHA256),
            special_tokens=_SPECIAL,
        )

    def count_text(self, text: str) -> int:
        return sum(len(self._encoding.encode(piece, disallowed_special=())) for piece in _pieces(text))

    @staticmethod
    async def off_the_loop(count: Callable[[], T], characters: int) -> T:
        """`count()`, in a worker thread when it counts more than _INLINE_CHARS characters."""
        return count() if characters <= _INLINE_CHARS else await asyncio.to_thread(count)

    def count_json(self, value: Any) -> int:
        """Tokens of a JSON value as written out (tool definitions, a call's arguments)."""
        return self.count_text(json.dumps(value, ensure_ascii=False)) if value else 0

    def count_tool_calls(self, calls: Iterable[dict[str, Any]]) -> int:
        total = 0
        for call in calls:
            function = call.get("function") or {}
            total += self.count_text(function.get("name") or "") + self.count_text(function.get("arguments") or "")
        return total

    def count_messages(self, messages: Iterable[dict[str, Any]]) -> int:
        total = _PER_REPLY
        for message in messages:
            total += _PER_MESSAGE + self.count_text(_text_of(message.get("content")))
            total += self.count_tool_calls(message.get("tool_calls") or ())
        return total


def message_characters(messages: Iterable[dict[str, Any]]) -> int:
    """How many characters count_messages counts (to choose where it runs)."""
    total = 0
    for message in messages:
        total += len(_text_of(message.get("content")))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            total += len(function.get("name") or "") + len(function.get("arguments") or "")
    return total


def _pieces(text: str) -> Iterable[str]:
    start = 0
    while len(text) - start > _PIECE_CHARS:
        end = start + _PIECE_CHARS
        space = text.rfind(" ", start + _PIECE_CHARS // 2, end)
        end = space if space > start else end
        yield text[start:end]
        start = end
    if start < len(text):
        yield text[start:]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""
