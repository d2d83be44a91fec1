"""What /v1 passes through from the provider's answer as OpenAI sent it: the choice's
`logprobs`, the message's `refusal`, `system_fingerprint` and the usage details; and
nothing of them when the provider sent none."""

from __future__ import annotations

import uuid
from decimal import Decimal

from server.api import openai_convert as wire
from server.domain.completion import StreamAccumulator, Usage, answer_from
from server.services.calls import CallResult

LOGPROBS = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}], "refusal": None}
DETAILS = {"completion_tokens_details": {"reasoning_tokens": 2}, "prompt_tokens_details": {"cached_tokens": 1}}


def body(**choice) -> dict:
    message = {"role": "assistant", "content": "Hi", **choice.pop("message", {})}
    return {
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", **choice}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, **DETAILS},
        "system_fingerprint": "fp_1",
    }


def completion(answer, usage: Usage = Usage(3, 4)) -> dict:
    result = CallResult(uuid.UUID(int=1), uuid.UUID(int=2), "ChatAgent", answer, usage, 5, Decimal(0))
    return wire.completion(result, created=7)


def test_a_completion_carries_the_providers_logprobs_fingerprint_and_usage_details():
    sent = completion(answer_from(body(logprobs=LOGPROBS)))
    assert sent["choices"][0]["logprobs"] == LOGPROBS
    assert sent["system_fingerprint"] == "fp_1"
    assert sent["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, **DETAILS}
    assert "refusal" not in sent["choices"][0]["message"]


def test_usage_details_go_only_with_the_providers_own_counts():
    estimated = completion(answer_from(body()), Usage(3, 4, estimated=True))
    assert estimated["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_a_refusal_is_the_messages_with_null_content():
    sent = completion(answer_from(body(message={"content": None, "refusal": "I can't help with that."})))
    assert sent["choices"][0]["message"] == {"role": "assistant", "content": None, "refusal": "I can't help with that."}


def test_without_them_nothing_extra():
    plain = {"choices": [{"message": {"content": "Hi"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1}}
    sent = completion(answer_from(plain))
    assert sent["choices"][0]["logprobs"] is None and "system_fingerprint" not in sent
    assert set(sent["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_stream_chunks_carry_each_chunks_logprobs_refusal_and_fingerprint():
    accumulator, header = StreamAccumulator(), wire.ChunkHeader("chatcmpl-x", 7, "ChatAgent")
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": LOGPROBS}], "system_fingerprint": "fp_1"}
    sent = header.delta(accumulator.feed(chunk))
    assert sent["choices"][0]["logprobs"] == LOGPROBS and sent["system_fingerprint"] == "fp_1"

    refusal = accumulator.feed({"choices": [{"index": 0, "delta": {"refusal": "No."}, "logprobs": None}]})
    assert not refusal.is_empty
    assert header.delta(refusal)["choices"] == [{"index": 0, "delta": {"refusal": "No."}, "finish_reason": None}]

    plain = header.delta(accumulator.feed({"choices": [{"index": 0, "delta": {"content": "!"}, "logprobs": None}]}))
    assert plain["choices"] == [{"index": 0, "delta": {"content": "!"}, "finish_reason": None}]
    assert "system_fingerprint" not in plain
    assert accumulator.answer().content == "Hi!"
