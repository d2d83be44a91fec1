"""EstimateCall: the most a call could cost, before anything is spent. It must bound what
the same call then really costs, convert to credits by the team's budget mode, say what a
job may still cost under the team's limit (and agree with LLMCall on whether the call
fits), and send nothing to any provider. The API tests' server prices fake-gpt at $1 per
million input and $2 per million output tokens."""

from __future__ import annotations

import math
from decimal import Decimal

import grpc

from saaslitellm.v1 import job_service_pb2 as pb
from tests.api.conftest import create_team
from tests.api.test_job_call_limits import provider_requests
from tests.api.test_job_flow import error_info, expect_error, user

OUTPUT_PRICE = Decimal("0.000002")


def estimate(jobs, team, text_: str, job_id: str = "", **params):
    return jobs.EstimateCall(
        pb.EstimateCallRequest(job_id=job_id, messages=[user(text_)], **params), metadata=team.auth
    )


async def test_the_estimate_bounds_what_the_same_call_costs_and_spends_nothing(admin, jobs, fake_url):
    team = await create_team(admin, markup_percent="50")
    text_ = "estimate-marker please write [fake tokens=300]"
    quote = await estimate(jobs, team, text_, max_tokens=300)
    assert quote.model == team.alias and quote.output_tokens_bound == 300
    assert 0 < quote.input_tokens_estimate < quote.input_tokens_bound
    assert Decimal(quote.likely_max_cost_usd) < Decimal(quote.max_cost_usd)
    assert Decimal(quote.max_cost_usd) > Decimal("1.5") * 300 * OUTPUT_PRICE  # the output bound, marked up
    assert quote.max_credits == 1  # job-based: a single-call job costs one credit
    assert not quote.HasField("job_cost_remaining_usd") and not quote.HasField("fits_job_cost_limit")
    assert await provider_requests(fake_url, "estimate-marker") == 0

    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="quoted"), metadata=team.auth)
    made = await jobs.LLMCall(
        pb.LLMCallRequest(job_id=job.job_id, messages=[user(text_)], max_tokens=300), metadata=team.auth
    )
    assert made.metadata.tokens_used > 300
    assert 0 < Decimal(str(made.metadata.cost_usd)) <= Decimal(quote.max_cost_usd)


async def test_credits_follow_the_budget_mode(admin, jobs):
    by_tokens = await create_team(admin, budget_mode="CONSUMPTION_TOKENS", tokens_per_credit=100)
    quote = await estimate(jobs, by_tokens, "hi", max_tokens=1000)
    assert quote.max_credits == math.ceil((quote.input_tokens_bound + 1000) / 100)  # rounded up
    by_dollars = await create_team(admin, budget_mode="CONSUMPTION_USD", credits_per_dollar="1000")
    quote = await estimate(jobs, by_dollars, "hi", max_tokens=1000)
    assert quote.max_credits == math.ceil(Decimal(quote.max_cost_usd) * 1000) == 3  # $0.002 + its input


async def test_with_a_job_the_estimate_says_what_it_may_still_cost_as_llm_call_decides(admin, jobs):
    team = await create_team(admin, max_cost_usd_per_job="0.0012")
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="agent"), metadata=team.auth)
    quote = await estimate(jobs, team, "go [fake tokens=200]", job_id=job.job_id, max_tokens=250)
    assert quote.job_cost_remaining_usd == "0.0012" and quote.fits_job_cost_limit
    await jobs.LLMCall(
        pb.LLMCallRequest(job_id=job.job_id, messages=[user("go [fake tokens=200]")], max_tokens=250),
        metadata=team.auth,
    )
    quote = await estimate(jobs, team, "go [fake tokens=200]", job_id=job.job_id, max_tokens=250)
    remaining = Decimal(quote.job_cost_remaining_usd)
    assert Decimal("0.0007") < remaining < Decimal("0.0009") and quote.fits_job_cost_limit
    await jobs.LLMCall(
        pb.LLMCallRequest(job_id=job.job_id, messages=[user("go [fake tokens=200]")], max_tokens=250),
        metadata=team.auth,
    )
    quote = await estimate(jobs, team, "go [fake tokens=200]", job_id=job.job_id, max_tokens=250)
    assert not quote.fits_job_cost_limit
    refused = await expect_error(
        jobs.LLMCall(
            pb.LLMCallRequest(job_id=job.job_id, messages=[user("go [fake tokens=200]")], max_tokens=250),
            metadata=team.auth,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_COST_LIMIT_REACHED",
    )
    assert dict(error_info(refused).metadata)["call_worst_case_usd"] == quote.max_cost_usd


async def test_bad_estimates_name_the_field(admin, jobs):
    team = await create_team(admin)
    unbounded = await expect_error(estimate(jobs, team, "hi"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert unbounded.details().startswith("max_tokens:")
    await expect_error(
        estimate(jobs, team, "hi", model="NotOurs", max_tokens=5),
        grpc.StatusCode.PERMISSION_DENIED,
        "MODEL_NOT_ALLOWED",
    )
    await expect_error(
        estimate(jobs, team, "hi", job_id="8c5f3c1e-0000-4000-8000-000000000000", max_tokens=5),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )
    bad = await expect_error(
        estimate(jobs, team, "hi", job_id="nope", max_tokens=5), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"
    )
    assert bad.details().startswith("job_id:")
    await expect_error(
        jobs.EstimateCall(pb.EstimateCallRequest(messages=[user("hi")], max_tokens=5)),
        grpc.StatusCode.UNAUTHENTICATED,
        "MISSING_API_KEY",
    )


async def test_a_prompt_of_one_long_word_is_counted_off_the_event_loop(admin, jobs):
    # tiktoken took 2 s over one 4-million-letter word, holding every RPC of the process;
    # such a text is now counted in pieces, in a worker thread (tests/unit/test_tokens.py).
    team = await create_team(admin)
    quote = await estimate(jobs, team, "a" * 400_000, max_tokens=5)
    assert 49_000 < quote.input_tokens_estimate < 51_000  # 'aaaaaaaa' is one token
