"""Pure business rules: no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from server.domain import credits, keys, models, validation
from server.domain.chat import build_request
from server.domain.completion import StreamAccumulator, Usage, answer_from
from server.domain.credits import Balance, BudgetMode, CostSource, Rates, TeamStatus
from server.domain.errors import DomainError, Kind, Reason
from server.domain.jobs import (
    CallRecord,
    CallStatus,
    Job,
    JobStatus,
    activity_resolution_seconds,
    ensure_open,
    is_repeat_completion,
    requested_final_status,
    single_call_abandon_seconds,
    summarize,
)


def job(status: JobStatus) -> Job:
    return Job(uuid.uuid4(), "team", "t", "", status, {}, datetime.now(UTC))


def chat(**overrides):
    values = dict(
        model="", messages=[{"role": "user", "content": "hi"}], params={}, extra_body={}, purpose="", call_metadata={}
    )
    values.update(overrides)
    return build_request(**values)


# ----------------------------------------------------------------------- jobs


@pytest.mark.parametrize(("ttl", "resolution"), [(86_400, 60), (6_000, 60), (3_600, 36), (0.3, 0.003)])
def test_activity_resolution_is_a_hundredth_of_the_ttl_at_most_a_minute(ttl, resolution):
    assert activity_resolution_seconds(ttl) == pytest.approx(resolution)


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.IN_PROGRESS])
def test_open_jobs_accept_calls(status):
    ensure_open(job(status))


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.EXPIRED])
def test_finished_jobs_refuse_calls(status):
    with pytest.raises(DomainError) as caught:
        ensure_open(job(status))
    assert caught.value.kind is Kind.FAILED_PRECONDITION
    assert caught.value.reason == Reason.JOB_NOT_OPEN


def test_completion_of_an_open_job_settles_it():
    assert is_repeat_completion(job(JobStatus.IN_PROGRESS), JobStatus.COMPLETED) is False
    assert is_repeat_completion(job(JobStatus.PENDING), JobStatus.FAILED) is False


def test_same_completion_again_is_a_repeat():
    assert is_repeat_completion(job(JobStatus.COMPLETED), JobStatus.COMPLETED) is True
    assert is_repeat_completion(job(JobStatus.FAILED), JobStatus.FAILED) is True


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        (JobStatus.COMPLETED, JobStatus.FAILED),
        (JobStatus.FAILED, JobStatus.COMPLETED),
        (JobStatus.EXPIRED, JobStatus.COMPLETED),
    ],
)
def test_conflicting_completion_is_failed_precondition(current, requested):
    with pytest.raises(DomainError) as caught:
        is_repeat_completion(job(current), requested)
    assert caught.value.reason == Reason.JOB_ALREADY_FINISHED


@pytest.mark.parametrize("value", ["pending", "in_progress", "expired", "", "done"])
def test_only_completed_or_failed_can_be_requested(value):
    with pytest.raises(DomainError) as caught:
        requested_final_status(value)
    assert caught.value.kind is Kind.INVALID_ARGUMENT
    assert caught.value.violations[0].field == "status"


def call(status=CallStatus.SUCCEEDED, prompt=10, completion=5, cost="0.00002", latency=100):
    return CallRecord(
        call_id=uuid.uuid4(),
        job_id=uuid.uuid4(),
        team_id="t",
        status=status,
        model_alias="A",
        prompt_tokens=prompt,
        completion_tokens=completion,
        billed_cost_usd=Decimal(cost),
        latency_ms=latency,
    )


def test_summarize_counts_tokens_costs_and_failures_exactly():
    costs = summarize(
        [
            call(cost="0.1"),
            call(cost="0.2"),
            call(status=CallStatus.FAILED, prompt=0, completion=0, cost="0", latency=0),
        ]
    )
    assert (costs.total_calls, costs.successful_calls, costs.failed_calls) == (3, 2, 1)
    assert costs.total_tokens == 30
    assert costs.billed_cost_usd == Decimal("0.3")  # exact, no float drift
    assert costs.avg_latency_ms == 100  # calls without latency are not averaged in


# --------------------------------------------------------------------- credits


def test_balance_arithmetic():
    balance = Balance(allocated=10, used=3, reserved=2)
    assert (balance.remaining, balance.available) == (7, 5)


def test_job_based_charges_one_credit_however_many_calls():
    assert credits.charge(Rates(), summarize([call()] * 7)) == 1


def test_consumption_tokens_rounds_up_with_a_minimum_of_one():
    rates = Rates(mode=BudgetMode.CONSUMPTION_TOKENS, tokens_per_credit=1000)
    assert credits.charge(rates, summarize([call(prompt=1000, completion=1)])) == 2
    assert credits.charge(rates, summarize([])) == 1


def test_consumption_usd_rounds_up():
    rates = Rates(mode=BudgetMode.CONSUMPTION_USD, credits_per_dollar=Decimal(10))
    assert credits.charge(rates, summarize([call(cost="0.25")])) == 3


def test_a_late_call_charges_what_it_adds_to_the_jobs_charge_as_far_as_the_team_can_pay():
    rates = Rates(mode=BudgetMode.CONSUMPTION_TOKENS, tokens_per_credit=1000, overdraft_limit=2)
    calls = summarize([call(prompt=1500, completion=0), call(prompt=2000, completion=1)])  # 4 credits due
    rich, poor = Balance(allocated=100, used=0, reserved=0), Balance(allocated=10, used=9, reserved=0)
    assert credits.settle_late(rates, calls, rich, settled=2) == credits.Settlement(charged=2)
    assert credits.settle_late(rates, calls, rich, settled=4) == credits.Settlement(charged=0)  # nothing added
    assert credits.settle_late(rates, calls, rich, settled=5) == credits.Settlement(charged=0)  # never a credit back
    # 1 left and 2 of overdraft: 3 of the 4 due; the rest is shortfall.
    assert credits.settle_late(rates, calls, poor, settled=0) == credits.Settlement(charged=3, shortfall=1)
    assert credits.settle_late(Rates(), calls, rich, settled=1) == credits.Settlement(charged=0)  # job-based


def test_a_single_call_job_is_abandoned_after_five_resolutions_within_bounds():
    assert single_call_abandon_seconds(86_400) == 300  # resolution capped at a minute
    assert single_call_abandon_seconds(100) == 5  # 5 x 1 s
    assert single_call_abandon_seconds(200) == 10
    assert single_call_abandon_seconds(50) == 5  # never below 5 s...
    assert single_call_abandon_seconds(2) == 2  # ...nor past the TTL


def test_markup_applies_to_billed_cost():
    assert credits.billed_cost(Decimal("0.000017"), Rates(markup_percent=Decimal(50))) == Decimal("0.0000255")


PRICE = (Decimal("0.000001"), Decimal("0.000002"))
FREE = (Decimal(0), Decimal(0))


@pytest.mark.parametrize(
    ("reported", "usage", "price", "expected"),
    [
        # LiteLLM's report wins when it is positive, whatever the price table says.
        (Decimal("0.5"), Usage(10, 5), PRICE, (Decimal("0.5"), CostSource.LITELLM)),
        # A reported zero (or none) for tokens is checked against the price: a priced model
        # costs its usage, a free one costs 0, an unknown one is unpriced.
        (Decimal(0), Usage(10, 5), PRICE, (Decimal("0.000020"), CostSource.PRICE_TABLE)),
        (None, Usage(10, 5), PRICE, (Decimal("0.000020"), CostSource.PRICE_TABLE)),
        (None, Usage(10, 5), FREE, (Decimal(0), CostSource.PRICE_TABLE)),
        (Decimal(0), Usage(10, 5), None, (Decimal(0), CostSource.NONE)),
        (None, Usage(10, 5), None, (Decimal(0), CostSource.NONE)),
        # No tokens: a reported zero is taken; nothing reported costs nothing.
        (Decimal(0), Usage(), PRICE, (Decimal(0), CostSource.LITELLM)),
        (None, Usage(), PRICE, (Decimal(0), CostSource.NONE)),
    ],
)
def test_provider_cost_trusts_a_positive_report_and_otherwise_the_price(reported, usage, price, expected):
    assert credits.provider_cost(reported, usage, price) == expected
    # The price is looked up exactly when it can decide the cost.
    assert credits.needs_price(reported, usage) == (expected[1] is not CostSource.LITELLM and usage.total_tokens > 0)


def test_a_call_past_the_teams_limit_is_refused_with_when_the_next_place_frees():
    credits.ensure_admitted("t", 6, None)  # took a place
    with pytest.raises(DomainError) as caught:
        credits.ensure_admitted("t", 6, 58.0)  # next place 58 s ahead, 10 s apart
    error = caught.value
    assert (error.kind, error.reason) == (Kind.RESOURCE_EXHAUSTED, "TEAM_RATE_LIMITED")
    assert error.retry_after_seconds == pytest.approx(8.0)
    assert error.metadata == {"team_id": "t", "calls_per_minute": "6"}
    with pytest.raises(DomainError) as caught:
        credits.ensure_admitted("t", 6, 0.0)  # a stale read of the state: a short retry, never negative
    assert caught.value.retry_after_seconds == credits.RATE_RETRY_FLOOR_SECONDS


@pytest.mark.parametrize(
    ("status", "reason"), [(TeamStatus.SUSPENDED, "TEAM_SUSPENDED"), (TeamStatus.PAUSED, "TEAM_PAUSED")]
)
def test_inactive_teams_cannot_work(status, reason):
    with pytest.raises(DomainError) as caught:
        credits.ensure_can_work("t", status)
    assert caught.value.reason == reason
    credits.ensure_can_work("t", TeamStatus.ACTIVE)


def test_insufficient_credits_carries_the_balance():
    error = credits.insufficient_credits("t", Balance(5, 5, 0), 1)
    assert error.kind is Kind.RESOURCE_EXHAUSTED
    assert error.metadata["credits_available"] == "0"


# ---------------------------------------------------------------------- models

REACHABLE = {"ChatAgent": ("fake-gpt", "fake-gpt-backup"), "Other": ("m2",)}


def test_named_alias_resolves_to_its_route():
    route = models.resolve("ChatAgent", None, REACHABLE)
    assert (route.primary, route.fallbacks) == ("fake-gpt", ("fake-gpt-backup",))


def test_default_model_is_used_when_none_named():
    assert models.resolve(None, "Other", REACHABLE).alias == "Other"


def test_single_reachable_alias_is_the_default():
    assert models.resolve(None, None, {"Only": ("m",)}).alias == "Only"


def test_no_model_and_several_choices_is_a_clear_error():
    with pytest.raises(DomainError) as caught:
        models.resolve(None, None, REACHABLE)
    assert caught.value.reason == Reason.NO_DEFAULT_MODEL
    assert "ChatAgent, Other" in caught.value.message


@pytest.mark.parametrize("name", ["Unknown", "fake-gpt", "m2"])
def test_unreachable_names_are_denied_and_named(name):
    with pytest.raises(DomainError) as caught:
        models.resolve(name, None, REACHABLE)
    assert caught.value.kind is Kind.PERMISSION_DENIED
    assert caught.value.reason == Reason.MODEL_NOT_ALLOWED
    assert caught.value.metadata["model"] == name


def test_team_without_groups_can_use_nothing():
    with pytest.raises(DomainError):
        models.resolve("ChatAgent", None, {})


# ------------------------------------------------------------------------ keys


def test_keys_are_random_prefixed_and_hashed():
    a, b = keys.new_key(), keys.new_key()
    assert a.secret.startswith("sk-") and len(a.secret) >= 40
    assert a.secret != b.secret
    assert a.prefix == a.secret[:11]
    assert a.digest == keys.digest(a.secret) and a.secret.encode() not in a.digest
    assert keys.matches(a.secret, a.digest) and not keys.matches(b.secret, a.digest)
    assert a.secret not in repr(a)


# ---------------------------------------------------------------- validation


def test_chat_request_keeps_only_given_params():
    request = chat(params={"temperature": 0.2}, extra_body={"custom_flag": True})
    assert request.params == {"temperature": 0.2, "custom_flag": True}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": {}, "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": ["user"], "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"params": {"temperature": 3.0}}, "temperature"),
        ({"params": {"max_tokens": 0}}, "max_tokens"),
        ({"params": {"stop": ["ok", 3]}}, "stop"),
        ({"params": {"response_format": {"type": "xml"}}}, "response_format.type"),
        ({"params": {"tools": [{"type": "function"}]}}, "tools[0]"),
        ({"params": {"tool_choice": "sometimes"}}, "tool_choice"),
        ({"extra_body": {"model": "gpt-4"}}, "extra_body.model"),
        ({"extra_body": {"base_url": "http://evil.example"}}, "extra_body.base_url"),
        ({"model": "bad model!"}, "model"),
        ({"purpose": "x" * 201}, "purpose"),
    ],
)
def test_bad_chat_requests_name_the_field(overrides, field):
    with pytest.raises(DomainError) as caught:
        chat(**overrides)
    assert caught.value.kind is Kind.INVALID_ARGUMENT
    assert caught.value.violations[0].field == field
    assert field in caught.value.message


@pytest.mark.parametrize(
    ("part", "field"),
    [
        ({"type": "image_url"}, "messages[0].content[1].image_url"),
        ({"type": "image_url", "image_url": {"detail": "low"}}, "messages[0].content[1].image_url"),
        ({"type": "image_url", "image_url": ""}, "messages[0].content[1].image_url"),
        ({"type": "video_url", "video_url": 5}, "messages[0].content[1].video_url"),
        ({"type": "input_audio", "input_audio": "abc"}, "messages[0].content[1].input_audio"),
        ({"type": "file"}, "messages[0].content[1].file"),
        ({"type": "document"}, "messages[0].content[1].source"),
        ({"type": "bogus"}, "messages[0].content[1].type"),
        ({"type": "text", "text": None}, "messages[0].content[1].text"),
    ],
)
def test_content_parts_litellm_would_fail_on_are_refused_naming_the_field(part, field):
    """LiteLLM answers 500 on these, which would read as the provider being down."""
    with pytest.raises(DomainError) as caught:
        chat(messages=[{"role": "user", "content": [{"type": "text", "text": "look"}, part]}])
    assert caught.value.violations[0].field == field
    if field.endswith(".type"):
        assert "text, image_url, video_url, input_audio, file, document" in caught.value.message


def test_content_parts_in_their_documented_shapes_pass():
    parts = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": "https://example.com/a.png"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
        {"type": "video_url", "video_url": {"url": "https://example.com/a.mp4"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-1"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}},
    ]
    chat(messages=[{"role": "user", "content": parts}])


def test_assistant_tool_call_message_may_have_no_content():
    chat(
        messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function", "function": {}}]},
            {"role": "tool", "content": "42", "tool_call_id": "1"},
        ]
    )


@pytest.mark.parametrize("value", ["", "not-a-uuid", "123", "../etc"])
def test_malformed_job_ids_are_invalid_argument(value):
    with pytest.raises(DomainError) as caught:
        validation.job_id(value)
    assert caught.value.violations[0].field == "job_id"


@pytest.mark.parametrize("value", ["", "has space", "x" * 65, "-leading", "semi;colon", "team\n", "team\r\n"])
def test_identifiers_are_checked(value):
    with pytest.raises(DomainError):
        validation.identifier("team_id", value)


@pytest.mark.parametrize("check", [validation.identifier, validation.model_name, validation.alias_name])
def test_a_name_ending_in_a_newline_is_refused_not_a_second_name_that_looks_the_same(check):
    """`$` also matches before a last newline: "ChatAgent\n" passed as a new alias."""
    assert check("model", "ChatAgent") == "ChatAgent"
    with pytest.raises(DomainError) as caught:
        check("model", "ChatAgent\n")
    assert caught.value.violations[0].field == "model"


# ------------------------------------------------------------------ completions


def test_stream_accumulator_folds_content_tool_calls_and_usage():
    acc = StreamAccumulator()
    acc.feed({"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    assert acc.feed({"choices": [{"delta": {"content": "Hel"}}]}).content == "Hel"
    acc.feed({"choices": [{"delta": {"content": "lo"}}]})
    acc.feed(
        {
            "choices": [
                {"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]}}
            ]
        }
    )
    acc.feed({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}]})
    assert acc.feed({"choices": [{"delta": {}, "finish_reason": "stop"}]}).finish_reason == "stop"
    acc.feed({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "cost": 7e-06}})
    answer = acc.answer()
    assert answer.content == "Hello"
    assert answer.tool_calls[0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (3, 2)
    assert answer.reported_cost_usd == Decimal("0.000007")


def test_answer_from_a_plain_completion():
    answer = answer_from(
        {
            "choices": [{"message": {"content": "hi", "tool_calls": None}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2},
        }
    )
    assert (answer.content, answer.finish_reason, answer.usage.total_tokens) == ("hi", "stop", 3)


@pytest.mark.parametrize(
    ("message", "usage", "known"),
    [
        ({"content": "hi"}, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}, False),
        ({"content": None, "tool_calls": [{"id": "c"}]}, {"prompt_tokens": 0, "completion_tokens": 0}, False),
        ({"content": ""}, {"prompt_tokens": 0, "completion_tokens": 0}, True),  # nothing written: zero is true
        ({"content": "hi"}, {"prompt_tokens": 3, "completion_tokens": 1}, True),
    ],
)
def test_zero_usage_for_an_answer_is_no_usage(message, usage, known):
    answer = answer_from({"choices": [{"message": message, "finish_reason": "stop"}], "usage": usage})
    assert (answer.usage is not None) is known


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"max_tokens": 0}, "max_tokens: must be between 1 and 10000000"),
        ({"temperature": 3.0}, "temperature: must be between 0 and 2"),
        ({"top_p": 1.5}, "top_p: must be between 0 and 1"),
    ],
)
def test_a_range_is_said_as_people_write_numbers(params, said):
    with pytest.raises(DomainError) as caught:
        chat(params=params)
    assert caught.value.message == said
