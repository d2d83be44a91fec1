"""server/services/tokens.py: long texts are counted in pieces, large counts off the event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from server.services import tokens
from server.services.tokens import TokenCounter, message_characters


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


def test_long_text_is_cut_into_bounded_pieces_before_a_space() -> None:
    words = " ".join(f"word{i}" for i in range(5000))
    pieces = list(tokens._pieces(words))
    assert "".join(pieces) == words and len(pieces) > 3
    assert all(len(piece) <= tokens._PIECE_CHARS for piece in pieces)
    assert all(piece.startswith(" ") for piece in pieces[1:])  # each cut falls before a space
    solid = "a" * (3 * tokens._PIECE_CHARS + 5)
    assert [len(p) for p in tokens._pieces(solid)] == [tokens._PIECE_CHARS] * 3 + [5]
    assert list(tokens._pieces("")) == [] and list(tokens._pieces("short")) == ["short"]


def test_pieces_cut_before_spaces_count_as_the_whole_text(counter: TokenCounter) -> None:
    text = " ".join(f"the {i} quick brown fox, jumps." for i in range(4000))
    assert len(text) > 10 * tokens._PIECE_CHARS
    assert counter.count_text(text) == len(counter._encoding.encode(text, disallowed_special=()))


def test_a_text_without_spaces_is_counted_in_pieces(counter: TokenCounter) -> None:
    # One piece of 4 million letters took tiktoken 2 s; in pieces the count stays close.
    text = "a" * (50 * tokens._PIECE_CHARS)
    whole = len(counter._encoding.encode(text, disallowed_special=()))
    assert abs(counter.count_text(text) - whole) <= 50


def test_large_counts_run_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()

    async def where(characters: int) -> bool:
        return await TokenCounter.off_the_loop(lambda: threading.get_ident() != loop_thread, characters)

    assert asyncio.run(where(tokens._INLINE_CHARS)) is False
    assert asyncio.run(where(tokens._INLINE_CHARS + 1)) is True


def test_message_characters_counts_what_count_messages_reads() -> None:
    messages = [
        {"role": "user", "content": "abc"},
        {"role": "user", "content": [{"type": "text", "text": "de"}, {"type": "text", "text": "f"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "fn", "arguments": "{}"}}]},
    ]
    assert message_characters(messages) == 3 + len("de f") + 2 + 2
