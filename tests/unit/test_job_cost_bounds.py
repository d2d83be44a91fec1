"""The worst case a cost-limited team's call reserves (Team.max_cost_usd_per_job): its
input bound must never be below the tokens a real tokenizer makes of the same request,
its output bound is what the request allows the model to write, and the cost is taken on
the priciest model of the route, rounded up to the stored precision."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain import credits
from server.domain.chat import ChatRequest, build_request, input_token_bound, output_token_bound
from server.domain.errors import DomainError
from server.services.tokens import TokenCounter

TOKENS = TokenCounter()


def request(messages, **params) -> ChatRequest:
    return ChatRequest(model=None, messages=tuple(messages), params=params)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["system", "user", "assistant"]), st.text(max_size=400)), min_size=1))
def test_the_input_bound_is_never_below_a_byte_level_tokenizers_count(turns):
    messages = [{"role": role, "content": content} for role, content in turns]
    assert input_token_bound(request(messages)) >= TOKENS.count_messages(messages)


@pytest.mark.parametrize(
    "text",
    ["", "a" * 5000, "\U0001f600" * 300, "\u4e2d\u6587" * 500, " ".join(["token"] * 1000), "\x00\n\t" * 100],
)
def test_the_input_bound_holds_for_text_a_tokenizer_finds_hard(text):
    messages = [{"role": "user", "content": text}]
    assert input_token_bound(request(messages)) >= TOKENS.count_messages(messages)


def test_the_input_bound_counts_tools_and_other_input_parameters():
    plain = request([{"role": "user", "content": "hi"}])
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    assert input_token_bound(request(plain.messages, tools=tools)) > input_token_bound(plain) + 50


@pytest.mark.parametrize(
    ("params", "bound"),
    [
        ({}, None),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 300}, 300),
        ({"max_tokens": 100, "max_completion_tokens": 300}, 300),
        ({"max_tokens": 100.0}, 100),  # numbers through extra_body are floats
        ({"max_tokens": True}, None),
        ({"max_tokens": "100"}, None),
    ],
)
def test_the_output_bound_is_what_the_request_lets_the_model_write(params, bound):
    assert output_token_bound(request([{"role": "user", "content": "hi"}], **params)) == bound


def test_the_worst_case_takes_the_priciest_model_adds_the_markup_and_rounds_up():
    cheap, dear = (Decimal("0.000001"), Decimal("0.000002")), (Decimal("0.00001"), Decimal("0.00003"))
    plain, doubled = credits.Rates(), credits.Rates(markup_percent=Decimal(100))
    assert credits.worst_case_cost(100, 10, [cheap, dear], plain) == Decimal("0.0013")
    assert credits.worst_case_cost(100, 10, [cheap, dear], doubled) == Decimal("0.0026")
    assert credits.worst_case_cost(100, 10, [cheap, None], plain) == Decimal("0.00012")  # unpriced: recorded at $0
    assert credits.worst_case_cost(100, 10, [None], doubled) == 0
    tiny = [(Decimal("0.00000000001"), Decimal(0))]
    assert credits.worst_case_cost(1, 0, tiny, plain) == Decimal("0.0000000001")


@given(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.decimals(0, Decimal("0.001"), places=12),
    st.decimals(0, 1000, places=4),
)
def test_the_worst_case_is_never_below_the_billed_cost_of_a_call_within_its_bounds(
    tokens_in, tokens_out, price, markup
):
    rates = credits.Rates(markup_percent=markup)
    worst = credits.worst_case_cost(tokens_in, tokens_out, [(price, price * 2)], rates)
    actual = credits.provider_cost(None, credits.Usage(tokens_in, tokens_out), (price, price * 2))[0]
    assert credits.billed_cost(actual, rates) <= worst


def test_an_estimate_converts_the_worst_case_to_credits_by_budget_mode():
    price = [(Decimal("0.000001"), Decimal("0.000002"))]
    job_based = credits.estimate_call("A", 100, 30, 1000, price, credits.Rates())
    assert (job_based.max_cost_usd, job_based.likely_max_cost_usd, job_based.max_credits) == (
        Decimal("0.0021"),
        Decimal("0.00203"),
        1,
    )
    by_tokens = credits.Rates(mode=credits.BudgetMode.CONSUMPTION_TOKENS, tokens_per_credit=500)
    assert credits.estimate_call("A", 100, 30, 1000, price, by_tokens).max_credits == 3  # 1100 tokens
    by_dollars = credits.Rates(mode=credits.BudgetMode.CONSUMPTION_USD, credits_per_dollar=Decimal(1000))
    assert credits.estimate_call("A", 100, 30, 1000, price, by_dollars).max_credits == 3  # $0.0021
    room = credits.estimate_call("A", 100, 30, 1000, price, credits.Rates(), job_cost_remaining_usd=Decimal("0.0021"))
    assert room.fits_job_cost_limit is True
    assert (
        credits.estimate_call("A", 100, 30, 1000, price, credits.Rates(), Decimal("0.002")).fits_job_cost_limit is False
    )
    assert job_based.fits_job_cost_limit is None


@pytest.mark.parametrize(
    ("extra_body", "field"),
    [
        ({"n": 1e9}, "extra_body.n"),
        ({"n": 0}, "extra_body.n"),
        ({"n": 2}, "extra_body.n"),  # one choice per call: more would be billed and dropped
        ({"max_completion_tokens": 1e30}, "extra_body.max_completion_tokens"),
        ({"max_tokens": "many"}, "extra_body.max_tokens"),
        ({"temperature": True}, "extra_body.temperature"),
    ],
)
def test_numbers_sent_through_extra_body_are_held_to_the_same_bounds(extra_body, field):
    with pytest.raises(DomainError) as refused:
        build_request(
            model="",
            messages=[{"role": "user", "content": "hi"}],
            params={},
            extra_body=extra_body,
            purpose="",
            call_metadata={},
        )
    assert refused.value.metadata["field"] == field
