"""Credits: balance reads, ledger, top-ups, adjustments, refunds, budget modes, expiry."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import math
import uuid
from decimal import Decimal

import grpc
import pytest
from sqlalchemy import text

from devstack.postgres import Postgres
from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import admin_service_pb2_grpc, credit_service_pb2_grpc, job_pb2, job_service_pb2_grpc
from saaslitellm.v1 import credit_service_pb2 as cpb
from saaslitellm.v1 import job_service_pb2 as pb
from server.app import Application
from server.domain.jobs import JobStatus
from server.services.auth import TeamPrincipal
from server.storage import jobs as job_store
from server.storage import teams as team_store
from tests.api.conftest import ADMIN, create_team, extra_app, ledger_mismatches, past_first_content, private_app
from tests.api.test_admin_catalog_races import until_waiting
from tests.api.test_job_flow import error_info, expect_error, user

Kind = cpb.CreditTransaction


@pytest.fixture(scope="session")
def credits(channel) -> credit_service_pb2_grpc.CreditServiceStub:
    return credit_service_pb2_grpc.CreditServiceStub(channel)


async def set_billing(app: Application, team_id: str, **columns) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    async with app.db.transaction() as conn:
        await conn.execute(text(f"UPDATE teams SET {assignments} WHERE team_id = :t"), {"t": team_id, **columns})


async def run_job(jobs, team, *prompts: str, status=job_pb2.Job.COMPLETED) -> pb.CompleteJobResponse:
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    for prompt in prompts:
        await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user(prompt)]), metadata=team.auth)
    return await jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id, status=status), metadata=team.auth)


async def test_team_reads_its_own_balance_and_nobody_elses(admin, credits, jobs, team):
    await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    balance = await credits.GetCreditBalance(cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=team.auth)
    assert (balance.credits_remaining, balance.credits_reserved, balance.credits_available) == (100, 1, 99)
    assert balance.open_jobs == 1
    assert await credits.GetCreditBalance(cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=ADMIN) == balance
    other = await create_team(admin)
    await expect_error(
        credits.GetCreditBalance(cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=other.auth),
        grpc.StatusCode.PERMISSION_DENIED,
        "TEAM_MISMATCH",
    )
    await expect_error(
        credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=5), metadata=team.auth),
        grpc.StatusCode.UNAUTHENTICATED,
        "ADMIN_KEY_REQUIRED",
    )


async def test_top_up_is_a_ledger_entry_and_idempotent(app, credits, team):
    request = cpb.AddCreditsRequest(team_id=team.team_id, credits=25, reason="invoice 42", idempotency_key="inv-42")
    first, second = await asyncio.gather(*(credits.AddCredits(request, metadata=ADMIN) for _ in range(2)))
    assert first.transaction == second.transaction
    assert first.transaction.kind == Kind.TOP_UP and first.transaction.amount == 25
    assert first.transaction.actor == "admin" and first.transaction.reason == "invoice 42"
    balance = await credits.GetCreditBalance(cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=ADMIN)
    assert balance.credits_remaining == 125
    await expect_error(
        credits.AddCredits(
            cpb.AddCreditsRequest(team_id=team.team_id, credits=26, idempotency_key="inv-42"), metadata=ADMIN
        ),
        grpc.StatusCode.ALREADY_EXISTS,
        "IDEMPOTENCY_KEY_REUSED",
    )


@pytest.mark.parametrize("changed", [{"credits": 26}, {"reason": "invoice 43"}, {"reason": ""}])
async def test_an_idempotency_key_sent_again_with_other_values_is_refused(credits, team, changed):
    """The reason is one of the values: a retry that changed it got the first entry back
    and its own reason was dropped without a word."""
    sent = {"team_id": team.team_id, "credits": 25, "reason": "invoice 42", "idempotency_key": "inv-42"}
    await credits.AddCredits(cpb.AddCreditsRequest(**sent), metadata=ADMIN)
    await credits.AddCredits(cpb.AddCreditsRequest(**sent), metadata=ADMIN)  # the same values: the same entry
    await expect_error(
        credits.AddCredits(cpb.AddCreditsRequest(**{**sent, **changed}), metadata=ADMIN),
        grpc.StatusCode.ALREADY_EXISTS,
        "IDEMPOTENCY_KEY_REUSED",
    )
    balance = await credits.GetCreditBalance(cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=ADMIN)
    assert balance.credits_remaining == 125


@pytest.mark.parametrize(
    ("field", "value"),
    [("reason", "   "), ("reason", "\u200b"), ("idempotency_key", " "), ("idempotency_key", "\u3000")],
)
async def test_a_blank_reason_or_idempotency_key_is_refused(credits, team, field, value):
    request = cpb.AddCreditsRequest(team_id=team.team_id, credits=5, **{field: value})
    error = await expect_error(
        credits.AddCredits(request, metadata=ADMIN), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"
    )
    assert f"{field}: must not be blank" in error.details()
    balance = await credits.GetCreditBalance(cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=ADMIN)
    assert balance.credits_remaining == 100


@pytest.mark.parametrize("amount", [0, -5, 2_000_000_000])
async def test_top_up_amount_is_checked(credits, team, amount):
    error = await expect_error(
        credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=amount), metadata=ADMIN),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    assert "credits" in error.details()


async def test_unknown_team_is_not_found(credits):
    await expect_error(
        credits.AddCredits(cpb.AddCreditsRequest(team_id="no-such-team", credits=5), metadata=ADMIN),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )


async def test_adjustments_need_a_reason_and_cannot_take_what_open_jobs_hold(credits, jobs, admin):
    team = await create_team(admin, credits=3)
    for _ in range(2):
        await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    await expect_error(
        credits.AdjustCredits(cpb.AdjustCreditsRequest(team_id=team.team_id, credits=-1), metadata=ADMIN),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )
    refused = await expect_error(
        credits.AdjustCredits(cpb.AdjustCreditsRequest(team_id=team.team_id, credits=-2, reason="x"), metadata=ADMIN),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_CREDITS",
    )
    # It says what the team holds and how much can be removed.
    assert "3 remaining, its open jobs hold 2 and its overdraft allows 0, so at most 1" in refused.details()
    assert error_info(refused).metadata["credits_removable"] == "1"
    done = await credits.AdjustCredits(
        cpb.AdjustCreditsRequest(team_id=team.team_id, credits=-1, reason="goodwill reversal"), metadata=ADMIN
    )
    assert done.balance.credits_available == 0 and done.transaction.kind == Kind.ADJUSTMENT


async def test_transactions_page_newest_first(credits, jobs, team):
    await run_job(jobs, team, "hi")  # reservation + charge
    await run_job(jobs, team, status=job_pb2.Job.FAILED)  # reservation + release
    for n in range(3):
        await credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=n + 1), metadata=ADMIN)
    seen, token = [], ""
    while True:
        page = await credits.ListCreditTransactions(
            cpb.ListCreditTransactionsRequest(team_id=team.team_id, page_size=3, page_token=token), metadata=team.auth
        )
        seen += page.transactions
        token = page.next_page_token
        if not token:
            break
    kinds = [t.kind for t in seen]
    assert kinds == [Kind.TOP_UP] * 3 + [Kind.RELEASE, Kind.RESERVATION, Kind.CHARGE, Kind.RESERVATION, Kind.ALLOCATION]
    ids = [int(t.transaction_id) for t in seen]
    assert ids == sorted(ids, reverse=True)
    assert seen[0].remaining_after == page.balance.credits_remaining == 100 - 1 + 6
    assert sum(t.amount for t in seen) == page.balance.credits_remaining
    # Garbage, and forged positions PostgreSQL's bigint cannot hold (they were 500s).
    for forged in ("garbage", "ledger:9223372036854775808", "ledger:-1", "ledger: 5", "ledger:१२"):
        token = forged if forged == "garbage" else base64.urlsafe_b64encode(forged.encode()).decode()
        await expect_error(
            credits.ListCreditTransactions(
                cpb.ListCreditTransactionsRequest(team_id=team.team_id, page_token=token), metadata=team.auth
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
        )


async def test_a_page_size_past_the_most_is_the_most_as_in_every_list(credits, team):
    for n in range(3):
        await credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=n + 1), metadata=ADMIN)
    page = await credits.ListCreditTransactions(
        cpb.ListCreditTransactionsRequest(team_id=team.team_id, page_size=100_000), metadata=team.auth
    )
    assert len(page.transactions) == 4 and not page.next_page_token  # the allocation and 3 top-ups
    await expect_error(
        credits.ListCreditTransactions(
            cpb.ListCreditTransactionsRequest(team_id=team.team_id, page_size=-1), metadata=team.auth
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
    )


async def test_refund_gives_back_a_charge_once(credits, jobs, team):
    done = await run_job(jobs, team, "hi")
    request = cpb.RefundJobRequest(team_id=team.team_id, job_id=done.job_id, reason="bad answer")
    first, second = await asyncio.gather(*(credits.RefundJob(request, metadata=ADMIN) for _ in range(2)))
    assert first.transaction == second.transaction and first.transaction.amount == 1
    assert first.balance.credits_remaining == 100
    assert sorted([first.already_refunded, second.already_refunded]) == [False, True]  # one did it
    refunded = await jobs.GetJob(pb.GetJobRequest(job_id=done.job_id), metadata=team.auth)
    assert (refunded.costs.credits_charged, refunded.costs.credits_refunded) == (1, 1)
    failed = await run_job(jobs, team, status=job_pb2.Job.FAILED)
    error = await expect_error(
        credits.RefundJob(cpb.RefundJobRequest(team_id=team.team_id, job_id=failed.job_id), metadata=ADMIN),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_NOT_CHARGED",
    )
    assert failed.job_id in error.details()


async def test_job_cost_view(jobs, team):
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="report"), metadata=team.auth)
    await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("a [fake tokens=10]")]), metadata=team.auth)
    costs = await jobs.GetJobCosts(pb.GetJobCostsRequest(job_id=job.job_id), metadata=team.auth)
    assert costs.job_type == "report" and costs.status == job_pb2.Job.IN_PROGRESS
    assert costs.costs.total_calls == 1 and costs.calls[0].usage.completion_tokens == 10
    assert not costs.costs.HasField("credits_remaining")  # only known once settled


async def test_consumption_tokens_charges_by_tokens(app, jobs, admin):
    team = await create_team(admin)
    await set_billing(app, team.team_id, budget_mode="consumption_tokens", tokens_per_credit=10)
    done = await run_job(jobs, team, "a [fake tokens=25]", "b [fake tokens=25]")
    # The fake counts words: 3 in each prompt + 1 for the role, then 25 completion tokens.
    assert (done.costs.prompt_tokens, done.costs.completion_tokens) == (8, 50)
    assert done.costs.credits_charged == 6  # ceil(58 / 10)
    assert done.costs.credits_remaining == 94


async def test_consumption_usd_charges_marked_up_cost(app, jobs, admin):
    team = await create_team(admin)
    await set_billing(app, team.team_id, budget_mode="consumption_usd", credits_per_dollar=100000, markup_percent=50)
    done = await run_job(jobs, team, "a [fake tokens=25]")
    # No cost header from the fake (no LiteLLM here): the cost comes from the price its
    # /model/info gives, $1 and $2 per million prompt and completion tokens.
    costs = done.costs
    provider = Decimal("0.000001") * costs.prompt_tokens + Decimal("0.000002") * costs.completion_tokens
    billed = provider * Decimal("1.5")  # markup 50%
    assert costs.completion_tokens == 25 and Decimal(str(costs.total_cost_usd)) == billed
    assert costs.credits_charged == math.ceil(billed * 100000) == 9


async def test_consumption_beyond_balance_is_capped_by_the_overdraft_and_recorded(app, jobs, admin):
    team = await create_team(admin, credits=3)
    await set_billing(
        app, team.team_id, budget_mode="consumption_tokens", tokens_per_credit=10, credits_overdraft_limit=2
    )
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("a [fake tokens=98]")]), metadata=team.auth)
    # 100 tokens = 10 credits consumed; the team can pay 3 + 2 overdraft: the next call is refused...
    await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("more")]), metadata=team.auth),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "INSUFFICIENT_CREDITS",
    )
    done = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    # ...and settlement charges 5 (down to -2, the overdraft limit), recording 5 as shortfall.
    assert (done.costs.credits_charged, done.costs.credits_shortfall, done.costs.credits_remaining) == (5, 6, -2)


async def test_a_stream_still_running_when_its_job_completes_is_charged_when_it_is_recorded(app, credits, jobs, admin):
    """A raw client completes its job while a stream of it still runs, then reads on. The
    settlement cannot count the stream's call; the call is charged when it is recorded,
    as far as the balance goes (the rest is the job's shortfall), in a late_charge entry."""
    team = await create_team(admin, credits=12)
    await set_billing(app, team.team_id, budget_mode="consumption_tokens", tokens_per_credit=1)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("a [fake tokens=5]")]), metadata=team.auth)
    # The second chunk comes 500 ms after the first: the job completes in between.
    stream = jobs.LLMCallStream(
        pb.LLMCallStreamRequest(
            job_id=job.job_id, messages=[user("b [fake tokens=10 chunks=2 first_delay_ms=0 delay_ms=500]")]
        ),
        metadata=team.auth,
    )
    events, _ = await past_first_content(stream)
    done = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    assert done.costs.total_calls == 1, "the job must complete while its stream runs"
    assert (done.costs.credits_charged, done.costs.credits_remaining) == (9, 3)  # 4 prompt + 5 completion tokens
    last = [event async for event in events][-1]
    assert last.done and not last.HasField("error")  # the stream ran to its end

    costs = (await jobs.GetJobCosts(pb.GetJobCostsRequest(job_id=job.job_id), metadata=team.auth)).costs
    due = costs.prompt_tokens + costs.completion_tokens
    assert costs.total_calls == 2 and due > 12
    # The team could pay 3 more of what the stream added: the rest is the job's shortfall.
    assert (costs.credits_charged, costs.credits_shortfall) == (12, due - 12)
    page = await credits.ListCreditTransactions(
        cpb.ListCreditTransactionsRequest(team_id=team.team_id, page_size=1), metadata=team.auth
    )
    (late,) = page.transactions
    assert (late.kind, late.job_id, late.amount, late.remaining_after) == (Kind.LATE_CHARGE, job.job_id, -3, 0)
    assert "recorded after it was completed" in late.reason and f"{due - 12} credits due beyond" in late.reason
    assert page.balance.credits_remaining == 0
    assert await ledger_mismatches(app) == []


async def test_a_call_ending_after_its_job_failed_or_in_a_job_based_budget_is_not_charged(app, jobs, admin):
    """Only a completed job under a consumption budget is charged for a late call: a failed
    job costs nothing, and a job-based one costs one credit however many calls it made."""
    for budget, status, charged in (
        ("consumption_tokens", job_pb2.Job.FAILED, 0),
        ("job_based", job_pb2.Job.COMPLETED, 1),
    ):
        team = await create_team(admin, credits=50)
        await set_billing(app, team.team_id, budget_mode=budget, tokens_per_credit=1)
        job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
        stream = jobs.LLMCallStream(
            pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user("b [fake tokens=10 chunks=2 delay_ms=300]")]),
            metadata=team.auth,
        )
        events, _ = await past_first_content(stream)
        await jobs.CompleteJob(pb.CompleteJobRequest(job_id=job.job_id, status=status), metadata=team.auth)
        assert [event async for event in events][-1].done
        costs = (await jobs.GetJobCosts(pb.GetJobCostsRequest(job_id=job.job_id), metadata=team.auth)).costs
        assert costs.total_calls == 1 and (costs.credits_charged, costs.credits_shortfall) == (charged, 0), budget
        assert costs.credits_remaining == 50 - charged


async def test_a_rate_change_between_deciding_and_settling_is_charged_at_the_new_rate(app, jobs, admin, monkeypatch):
    """Completion decides the charge without the team's lock; the settling statement
    applies it only if the team's rates still hold. Here the operator changes them at the
    worst moment (after the decision, before the settlement): nothing is settled on the
    old rates, and the charge is decided again under the team's lock."""
    team = await create_team(admin)
    await set_billing(app, team.team_id, budget_mode="consumption_tokens", tokens_per_credit=10)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("a [fake tokens=26]")]), metadata=team.auth)
    settle, decided_on = job_store.settle_job, []

    async def settle_after_a_rate_change(*args, **kwargs):
        decided_on.append(kwargs["decided_on"])
        if len(decided_on) == 1:
            await set_billing(app, team.team_id, tokens_per_credit=3)
        return await settle(*args, **kwargs)

    monkeypatch.setattr(job_store, "settle_job", settle_after_a_rate_change)
    done = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    assert [rates and rates.tokens_per_credit for rates in decided_on] == [10, None]  # then under the lock
    assert (done.costs.prompt_tokens + done.costs.completion_tokens, done.costs.credits_charged) == (30, 10)
    assert done.costs.credits_remaining == 90
    charges = await ledger_entries(app, job.job_id)
    assert charges == [("reservation", 0, 1), ("charge", -10, -1)]
    assert await ledger_mismatches(app) == []


async def test_a_settlement_decided_on_stale_rates_changes_nothing(app, jobs, admin):
    team = await create_team(admin, credits=7)
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    async with app.db.statements(transaction=True) as conn:
        found, _, state = await job_store.read_for_settlement(
            conn, uuid.UUID(job.job_id), team.team_id, lock_team=False
        )
        stale = dataclasses.replace(state.rates, overdraft_limit=state.rates.overdraft_limit + 1)
        settled = await job_store.settle_job(
            conn,
            found,
            status=JobStatus.COMPLETED,
            charge=1,
            shortfall=0,
            error_message="",
            metadata_patch={},
            actor="test",
            reason="test",
            decided_on=stale,
        )
    assert settled is None
    assert (await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)).status == job_pb2.Job.PENDING
    assert await ledger_entries(app, job.job_id) == [("reservation", 0, 1)]
    done = await jobs.CompleteJob(
        pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
    )
    assert (done.costs.credits_charged, done.costs.credits_remaining) == (1, 6)


async def ledger_entries(app: Application, job_id: str) -> list[tuple[str, int, int]]:
    async with app.db.transaction() as conn:
        rows = await conn.execute(
            text("SELECT kind, amount, reserved_delta FROM credit_ledger WHERE job_id = :j ORDER BY entry_id"),
            {"j": job_id},
        )
        return [tuple(row) for row in rows]


async def test_abandoned_jobs_expire_and_release_their_credits(pg: Postgres, fake_url):
    async with private_app(pg, fake_url, "expiry", job_ttl_seconds=0.3, expiry_interval_seconds=0.05) as served:
        application, channel = served
        team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel), credits=2)
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
        for _ in range(400):  # expiry runs in the server; poll for its effect
            fetched = await jobs.GetJob(pb.GetJobRequest(job_id=job.job_id), metadata=team.auth)
            if fetched.status == job_pb2.Job.EXPIRED:
                break
            await asyncio.sleep(0.01)
        assert fetched.status == job_pb2.Job.EXPIRED and "expired" in fetched.error_message
        await expect_error(
            jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("x")]), metadata=team.auth),
            grpc.StatusCode.FAILED_PRECONDITION,
            "JOB_NOT_OPEN",
        )
        await expect_error(
            jobs.CompleteJob(
                pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.COMPLETED), metadata=team.auth
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "JOB_ALREADY_FINISHED",
        )
        balance = await credit_service_pb2_grpc.CreditServiceStub(channel).GetCreditBalance(
            cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=team.auth
        )
        assert (balance.credits_reserved, balance.credits_remaining) == (0, 2)
        assert await ledger_mismatches(application) == []


async def _activity(app: Application, job_id: str) -> tuple:
    async with app.db.transaction() as conn:
        row = await conn.execute(text("SELECT last_activity_at, metadata FROM jobs WHERE job_id = :j"), {"j": job_id})
        return tuple(row.one())


async def _set_idle(app: Application, job_id: str, seconds: float) -> None:
    async with app.db.transaction() as conn:
        await conn.execute(
            text("UPDATE jobs SET last_activity_at = now() - make_interval(secs => :s) WHERE job_id = :j"),
            {"s": seconds, "j": job_id},
        )


async def test_a_call_touches_its_job_only_when_its_activity_is_stale_or_it_carries_metadata(app, jobs, team):
    """The default TTL (a day) gives a resolution of 60 s: a call within it leaves the
    job's row alone, an older activity is refreshed, and call metadata is always merged."""
    from google.protobuf import struct_pb2

    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)

    async def call(**extra) -> None:
        await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("hi")], **extra), metadata=team.auth)

    await call()  # the first call starts the job: its activity is now
    started, _ = await _activity(app, job.job_id)
    await call()
    assert await _activity(app, job.job_id) == (started, {})

    await _set_idle(app, job.job_id, 30)  # within the resolution: left alone
    recent, _ = await _activity(app, job.job_id)
    await call()
    assert (await _activity(app, job.job_id))[0] == recent

    await _set_idle(app, job.job_id, 90)  # older than the resolution: refreshed
    stale, _ = await _activity(app, job.job_id)
    await call()
    refreshed, _ = await _activity(app, job.job_id)
    assert refreshed > stale and refreshed > recent

    patch = struct_pb2.Struct()
    patch.update({"step": "two"})
    await call(call_metadata=patch)  # recent, but with metadata to merge
    touched, metadata = await _activity(app, job.job_id)
    assert metadata == {"step": "two"} and touched > refreshed


async def test_a_call_longer_than_the_resolution_refreshes_its_job_activity(database_url, fake_url, admin):
    """A TTL of 10 s gives a resolution of 0.1 s. The job's activity was recorded just
    before a call of 0.3 s: recent when the call began, but left alone it would lag the
    call's end by more than the resolution, so the record refreshes it."""
    from saaslitellm.v1 import job_service_pb2_grpc

    async with extra_app(database_url, fake_url, job_ttl_seconds=10) as (application, channel):
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        team = await create_team(admin, credits=1)
        job = await stub.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
        await stub.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user("hi")]), metadata=team.auth)
        started, _ = await _activity(application, job.job_id)
        slow = pb.LLMCallRequest(job_id=job.job_id, messages=[user("slow [fake delay_ms=300]")])
        reply = await stub.LLMCall(slow, metadata=team.auth)
        refreshed, _ = await _activity(application, job.job_id)
        assert reply.metadata.latency_ms >= 300
        assert (refreshed - started).total_seconds() >= 0.3


async def test_expiry_waits_the_activity_resolution_beyond_the_ttl(app, jobs, team):
    """With a TTL of an hour the resolution is 36 s: a job idle for the TTL plus half of it
    may have had a call its row does not show, so it stays open; plus twice it expires."""
    ttl = 3600.0
    kept, expired = [(await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)).job_id for _ in "ab"]
    await _set_idle(app, kept, ttl + 18)
    await _set_idle(app, expired, ttl + 72)
    await app.jobs.expire_abandoned(ttl)
    statuses = [
        (await jobs.GetJob(pb.GetJobRequest(job_id=job_id), metadata=team.auth)).status for job_id in (kept, expired)
    ]
    assert statuses == [job_pb2.Job.PENDING, job_pb2.Job.EXPIRED]


async def test_an_expiry_round_settles_in_team_order_so_two_rounds_cannot_deadlock(app, admin, jobs):
    """Each process's round locks a batch of jobs, then settles them one by one, each under
    its team's row lock, held to the batch's commit. Settled oldest first, two rounds with
    jobs of the same teams took their rows in opposite orders and deadlocked (a client's
    request for the team with them). The test plays the other round: it holds team a, as
    while settling a job of team a, and then wants team b."""
    a, b = sorted([await create_team(admin), await create_team(admin)], key=lambda team: team.team_id)
    ttl = 3600.0
    job_a = (await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=a.auth)).job_id
    job_b = (await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=b.auth)).job_id
    await _set_idle(app, job_b, ttl + 100)  # the older: settled first, oldest first
    await _set_idle(app, job_a, ttl + 90)
    async with app.db.transaction() as other_round:
        await team_store.lock_team(other_round, a.team_id)
        expiry = asyncio.ensure_future(app.jobs.expire_abandoned(ttl))
        await until_waiting(app, 1)  # the round waits for team a...
        await team_store.lock_team(other_round, b.team_id)  # ...holding no other team's row
    assert await expiry >= 2
    for team, job_id in ((a, job_a), (b, job_b)):
        assert (await jobs.GetJob(pb.GetJobRequest(job_id=job_id), metadata=team.auth)).status == job_pb2.Job.EXPIRED


async def test_a_single_call_job_idle_past_both_limits_is_expired_once(app, admin):
    """Idle past the TTL and past the single-call abandonment both, it came back from both
    queries of one round (its own row locks do not skip it) and was settled twice: the
    second release broke the team's reservation, the round rolled back, and as the oldest
    job it was in every round after."""
    team = await create_team(admin)
    principal = TeamPrincipal(team.team_id, uuid.uuid4(), team.key[:11])
    job, _ = await app.jobs.create_or_replay(
        principal, team_id="", job_type="t", user_id="", metadata={}, idempotency_key="", single_call=True
    )
    await _set_idle(app, str(job.job_id), 3 * 3600)
    assert await app.jobs.expire_abandoned(3600.0) >= 1
    assert await ledger_entries(app, str(job.job_id)) == [("reservation", 0, 1), ("release", 0, -1)]
    async with app.db.transaction() as conn:
        status = (await conn.execute(text("SELECT status FROM jobs WHERE job_id = :j"), {"j": job.job_id})).scalar()
    assert status == "expired"


async def test_credit_changes_are_audited(admin, credits, jobs, team):
    await credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=7, reason="invoice 7"), metadata=ADMIN)
    done = await run_job(jobs, team, "hi")
    await credits.RefundJob(cpb.RefundJobRequest(team_id=team.team_id, job_id=done.job_id), metadata=ADMIN)
    log = await admin.ListAuditEntries(
        admin_pb.ListAuditEntriesRequest(resource_type="team", resource_id=team.team_id), metadata=ADMIN
    )
    actions = [entry.action for entry in log.entries]
    assert actions[:2] == ["credits.refund", "credits.top_up"]
    top_up = log.entries[1]
    assert top_up.actor == "admin" and top_up.after["amount"] == 7 and top_up.after["reason"] == "invoice 7"
    assert top_up.after["credits_remaining"] - top_up.before["credits_remaining"] == 7


async def test_an_absurd_rate_caps_the_charge_instead_of_failing_the_settlement(admin, jobs):
    """99,999,999,999,999 credits per dollar make a $0.00004 call worth billions of credits,
    more than the ledger's integers hold: the completion still settles, charging what the
    team can pay and recording the rest (capped) as shortfall."""
    team = await create_team(admin, credits=10, budget_mode="CONSUMPTION_USD", credits_per_dollar="99999999999999")
    done = await run_job(jobs, team, "hi [fake tokens=20]")
    assert done.status == job_pb2.Job.COMPLETED
    assert done.costs.credits_charged == 10 and 0 < done.costs.credits_shortfall < 2**31


@pytest.mark.parametrize("change", ["add", "adjust", "refund"])
async def test_a_credit_change_queued_behind_an_archival_is_refused(app, admin, credits, jobs, change):
    """Checked on a team row read without a lock, a change waiting behind the archival's
    row lock was applied after it committed: an archived team's balance moved."""
    team = await create_team(admin)
    done = await run_job(jobs, team, "hi")
    sent = {
        "add": lambda: credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=5), metadata=ADMIN),
        "adjust": lambda: credits.AdjustCredits(
            cpb.AdjustCreditsRequest(team_id=team.team_id, credits=-1, reason="x"), metadata=ADMIN
        ),
        "refund": lambda: credits.RefundJob(
            cpb.RefundJobRequest(team_id=team.team_id, job_id=done.job_id), metadata=ADMIN
        ),
    }[change]
    async with app.db.transaction() as holder:
        await team_store.lock_team(holder, team.team_id)
        archival = asyncio.ensure_future(
            admin.DeleteTeam(admin_pb.DeleteTeamRequest(team_id=team.team_id), metadata=ADMIN)
        )
        await until_waiting(app, 1)
        credit_change = asyncio.ensure_future(sent())
        await until_waiting(app, 2)
    assert (await archival).outcome == admin_pb.DeleteTeamResponse.ARCHIVED
    await expect_error(credit_change, grpc.StatusCode.FAILED_PRECONDITION, "TEAM_ARCHIVED")
    balance = await credits.GetCreditBalance(cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=ADMIN)
    assert balance.credits_remaining == 99


async def test_an_archived_teams_credits_are_history(admin, credits, jobs):
    team = await create_team(admin)
    done = await run_job(jobs, team, "hi")
    archived = await admin.DeleteTeam(admin_pb.DeleteTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert archived.outcome == admin_pb.DeleteTeamResponse.ARCHIVED
    for change in (
        credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=5), metadata=ADMIN),
        credits.AdjustCredits(cpb.AdjustCreditsRequest(team_id=team.team_id, credits=-1, reason="x"), metadata=ADMIN),
        credits.RefundJob(cpb.RefundJobRequest(team_id=team.team_id, job_id=done.job_id), metadata=ADMIN),
    ):
        await expect_error(change, grpc.StatusCode.FAILED_PRECONDITION, "TEAM_ARCHIVED")
    balance = await credits.GetCreditBalance(cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=ADMIN)
    assert balance.credits_remaining == 99
