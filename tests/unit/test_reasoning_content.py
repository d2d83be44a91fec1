"""server/domain/completion.py and the wire shapes: a provider's `reasoning_content` is read
from a reply and from each chunk, a chunk of reasoning alone is a delta to forward, the
streamed answer keeps the whole reasoning, and a reasoning that is not text is a broken
reply, as any field of the wrong type."""

from __future__ import annotations

import pytest

from server.api import openai_convert
from server.domain.completion import Delta, StreamAccumulator, answer_from, check_chunk, check_completion


def chunk(**delta: object) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def test_a_chunk_of_reasoning_alone_is_a_delta_and_the_answer_keeps_it_all() -> None:
    accumulator = StreamAccumulator()
    first, second = (
        accumulator.feed(chunk(reasoning_content="Let me")),
        accumulator.feed(chunk(reasoning_content=" see")),
    )
    answer_delta = accumulator.feed(chunk(content="42"))
    assert not first.is_empty and first.reasoning_content == "Let me" and first.content == ""
    assert second.reasoning_content == " see" and answer_delta.reasoning_content == ""
    answer = accumulator.answer()
    assert (answer.content, answer.reasoning_content) == ("42", "Let me see")


def test_an_answer_without_reasoning_has_none() -> None:
    accumulator = StreamAccumulator()
    accumulator.feed(chunk(content="hi"))
    assert accumulator.answer().reasoning_content is None
    assert answer_from({"choices": [{"message": {"content": "hi"}}]}).reasoning_content is None


def test_a_reply_carries_its_reasoning() -> None:
    reply = {"choices": [{"message": {"content": "42", "reasoning_content": "Let me see"}, "finish_reason": "stop"}]}
    assert answer_from(reply).reasoning_content == "Let me see"


@pytest.mark.parametrize("check, key", [(check_chunk, "delta"), (check_completion, "message")])
def test_reasoning_that_is_not_text_is_a_broken_reply(check, key) -> None:
    with pytest.raises(ValueError, match="reasoning_content is not a string"):
        check({"choices": [{key: {"reasoning_content": 5}}]})


def test_openais_format_streams_reasoning_in_the_delta() -> None:
    header = openai_convert.ChunkHeader("chatcmpl-1", 0, "Agent")
    event = header.delta(Delta(reasoning_content="Let me"))
    assert event["choices"][0]["delta"] == {"reasoning_content": "Let me"}


def test_zero_usage_for_an_answer_of_reasoning_alone_is_unknown_not_free() -> None:
    # LiteLLM fills a usage the provider did not send with zeros: reasoning took tokens.
    zeros = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    reply = {
        "choices": [{"message": {"role": "assistant", "content": "", "reasoning_content": "Hmm."}}],
        "usage": zeros,
    }
    assert answer_from(reply).usage is None
    accumulator = StreamAccumulator()
    accumulator.feed(chunk(reasoning_content="Hmm."))
    accumulator.feed({"choices": [], "usage": zeros})
    assert accumulator.answer().usage is None
