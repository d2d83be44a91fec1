"""server/domain/completion.py: a provider's chunk or usage that cannot mean what it says
is not believed: a chunk of another shape is a broken stream, a usage count below zero,
past any call's size, or zeros for an answer is unknown (counted with the tokenizer)."""

from __future__ import annotations

import pytest

from server.domain.completion import (
    MAX_REPORTED_TOKENS,
    StreamAccumulator,
    Usage,
    answer_from,
    check_chunk,
    check_completion,
    usage_from,
)

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


def test_a_reply_in_openais_shape_passes_with_its_nulls() -> None:
    reply = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ]
    }
    assert check_completion(reply) is reply
    assert check_completion({"choices": [], "usage": None}) == {"choices": [], "usage": None}


@pytest.mark.parametrize(
    "reply",
    [
        [5],
        {"choices": "broken"},
        {"choices": ["x"]},
        {"choices": [{"message": "hello"}]},
        {"choices": [{"message": {"content": 5}}]},
        {"choices": [{"message": {"tool_calls": ["x"]}}]},
        # What the reply's conversion reads of a tool call: it failed there, after the
        # call was recorded and a single-call job charged (500 for an answer never given).
        {"choices": [{"message": {"tool_calls": [{"id": 5}]}}]},
        {"choices": [{"message": {"tool_calls": [{"id": "c", "function": "f"}]}}]},
        {"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": 7}}]}}]},
        {"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}]}}]},
    ],
)
def test_a_reply_of_another_shape_is_refused(reply) -> None:
    with pytest.raises(ValueError):
        check_completion(reply)


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


def test_no_cost_computed_from_a_usage_not_believed_is_believed() -> None:
    """LiteLLM prices the usage it is given: 3 billion tokens cost $3000 in its `usage.cost`
    (and its cost header), which must not be billed for a call of a few tokens."""
    huge = {"prompt_tokens": 3_000_000_000, "completion_tokens": 7, "cost": 3000.0}
    answer = answer_from({"choices": [{"message": {"content": "hi"}}], "usage": huge})
    assert (answer.usage, answer.reported_cost_usd, answer.usage_implausible) == (None, None, True)
    streamed = StreamAccumulator()
    streamed.feed({"choices": [{"delta": {"content": "hi"}}]})
    streamed.feed({"choices": [], "usage": huge})
    streamed.feed({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost": 0.5}})
    answer = streamed.answer()
    assert (answer.usage, answer.reported_cost_usd, answer.usage_implausible) == (None, None, True)
    fine = answer_from({"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 3, "cost": 0.25}})
    assert (fine.usage, str(fine.reported_cost_usd), fine.usage_implausible) == (Usage(3, 0), "0.25", False)
