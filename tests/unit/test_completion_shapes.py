"""server/domain/completion.py: a provider's chunk or usage that cannot mean what it says
is not believed: a chunk of another shape is a broken stream, a usage count below zero,
past any call's size, or zeros for an answer is unknown (counted with the tokenizer)."""

from __future__ import annotations

import pytest

from server.domain.completion import MAX_REPORTED_TOKENS, StreamAccumulator, Usage, check_chunk, usage_from

GOOD = {
    "choices": [
        {
            "index": 0,
            "delta": {"content": "hi", "tool_calls": [{"index": 0, "id": "c", "function": {"arguments": "{"}}]},
            "finish_reason": None,
            "logprobs": None,
        }
    ],
    "usage": None,
}


def test_a_chunk_in_openais_shape_passes_with_its_nulls() -> None:
    assert check_chunk(GOOD) is GOOD
    assert check_chunk({"choices": [], "usage": {"prompt_tokens": 1}}) == {"choices": [], "usage": {"prompt_tokens": 1}}
    assert check_chunk({}) == {}


@pytest.mark.parametrize(
    "chunk",
    [
        5,
        "x",
        [],
        {"choices": 5},
        {"choices": [None]},
        {"choices": [{"delta": "hello"}]},
        {"choices": [{"delta": {"content": 5}}]},
        {"choices": [{"delta": {"tool_calls": {"index": 0}}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": "a"}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": True}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": 1}}]}}]},
        {"choices": [{"finish_reason": 3}]},
    ],
)
def test_a_chunk_of_another_shape_is_refused(chunk) -> None:
    with pytest.raises(ValueError):
        check_chunk(chunk)


@pytest.mark.parametrize(
    ("raw", "usage"),
    [
        ({"prompt_tokens": 5, "completion_tokens": 7}, Usage(5, 7)),
        ({"prompt_tokens": None}, Usage(0, 0)),
        ({"prompt_tokens": -5, "completion_tokens": 7}, None),
        ({"prompt_tokens": 3_000_000_000, "completion_tokens": 7}, None),
        ({"prompt_tokens": MAX_REPORTED_TOKENS + 1}, None),
        ({"prompt_tokens": "many"}, None),
        ({"prompt_tokens": float("inf")}, None),
        ("5", None),
    ],
)
def test_a_usage_is_believed_only_within_a_calls_bounds(raw, usage) -> None:
    assert usage_from(raw) == usage


def test_a_stream_reporting_zeros_for_its_answer_has_unknown_usage() -> None:
    answered = StreamAccumulator()
    answered.feed({"choices": [{"delta": {"content": "hello"}}]})
    answered.feed({"choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": 0}})
    assert answered.answer().usage is None
    empty = StreamAccumulator()
    empty.feed({"choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": 0}})
    assert empty.answer().usage == Usage(0, 0)  # no answer: zeros may be true
