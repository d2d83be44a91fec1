"""The 1,000,000,000-credit cap bounds what a team holds (credits_remaining), never what it
was allocated or used over its life: a team with a long history is topped up as long as
it holds less, and a change that would take it over is refused, changing nothing."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import credit_service_pb2 as cpb
from saaslitellm.v1 import credit_service_pb2_grpc
from server.domain.credits import MAX_CREDITS
from tests.api.admin_support import fails
from tests.api.conftest import ADMIN, create_team, ledger_mismatches
from tests.api.test_credits import run_job
from tests.api.test_job_flow import team_row

INT32_MAX = 2**31 - 1


@pytest.fixture(scope="session")
def credits(channel) -> credit_service_pb2_grpc.CreditServiceStub:
    return credit_service_pb2_grpc.CreditServiceStub(channel)


async def live_a_long_life(app, team_id: str, credits_spent: int) -> None:
    """As if the team had been allocated and had spent `credits_spent` more over its life:
    both lifetime totals grow, what it holds (and so the ledger's sum) does not."""
    async with app.db.transaction() as conn:
        await conn.execute(
            text(
                "UPDATE teams SET credits_allocated = credits_allocated + :n, credits_used = credits_used + :n"
                " WHERE team_id = :t"
            ),
            {"n": credits_spent, "t": team_id},
        )


async def history(app, team_id: str) -> tuple[int, int]:
    """(ledger entries, audit entries) of the team."""
    async with app.db.transaction() as conn:
        ledger = await conn.execute(text("SELECT count(*) FROM credit_ledger WHERE team_id = :t"), {"t": team_id})
        audit = await conn.execute(
            text("SELECT count(*) FROM admin_audit_log WHERE resource_type = 'team' AND resource_id = :t"),
            {"t": team_id},
        )
        return ledger.scalar_one(), audit.scalar_one()


async def test_a_team_past_a_billion_lifetime_credits_is_topped_up_while_it_holds_less(app, admin, credits):
    """The bug hunter's team: 999,999,999 allocated, 999,632,844 used, 367,155 held."""
    team = await create_team(admin, credits=367_155)
    await live_a_long_life(app, team.team_id, 999_632_844)
    assert tuple(await team_row(app, team.team_id)) == (999_999_999, 999_632_844, 0)

    added = await credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=100), metadata=ADMIN)
    assert added.balance.credits_remaining == 367_255 and added.balance.credits_allocated == 1_000_000_099
    # A correction down and back up nets to zero, and the team can be funded again after it.
    for amount in (-100, 100):
        await credits.AdjustCredits(
            cpb.AdjustCreditsRequest(team_id=team.team_id, credits=amount, reason="correction"), metadata=ADMIN
        )
    await credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=999_000_000), metadata=ADMIN)
    balance = await credits.GetCreditBalance(cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=ADMIN)
    assert (balance.credits_remaining, balance.credits_allocated) == (999_367_255, 1_999_000_099)
    assert await ledger_mismatches(app) == []


async def test_lifetime_totals_past_32_bits_are_reported_saturated_and_the_balance_exact(app, admin, credits):
    team = await create_team(admin, credits=500)
    await live_a_long_life(app, team.team_id, 5_000_000_000)
    added = await credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=7), metadata=ADMIN)
    assert tuple(await team_row(app, team.team_id)) == (5_000_000_507, 5_000_000_000, 0)
    for balance in (
        added.balance,
        await credits.GetCreditBalance(cpb.GetCreditBalanceRequest(team_id=team.team_id), metadata=ADMIN),
        await admin.GetTeam(admin_pb.GetTeamRequest(team_id=team.team_id), metadata=ADMIN),
    ):
        assert (balance.credits_allocated, balance.credits_used) == (INT32_MAX, INT32_MAX)
        assert (balance.credits_remaining, balance.credits_available) == (507, 507)
    listed = await admin.ListTeams(admin_pb.ListTeamsRequest(organization_id=team.organization_id), metadata=ADMIN)
    assert [(t.credits_allocated, t.credits_remaining) for t in listed.teams] == [(INT32_MAX, 507)]


async def test_a_top_up_past_what_a_team_may_hold_is_refused_naming_credits_and_changes_nothing(app, admin, credits):
    team = await create_team(admin, credits=MAX_CREDITS - 10)
    before = (tuple(await team_row(app, team.team_id)), await history(app, team.team_id))
    for call in (
        credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=11), metadata=ADMIN),
        credits.AddCredits(
            cpb.AddCreditsRequest(team_id=team.team_id, credits=11, idempotency_key="inv-1"), metadata=ADMIN
        ),
        credits.AdjustCredits(cpb.AdjustCreditsRequest(team_id=team.team_id, credits=11, reason="x"), metadata=ADMIN),
    ):
        error = await fails(call, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", "credits")
        assert "holds 999999990 credits" in error.details() and "at most 10 can be added now" in error.details()
    assert (tuple(await team_row(app, team.team_id)), await history(app, team.team_id)) == before

    # Up to the cap is fine, and the idempotency key refused above was not used up.
    done = await credits.AddCredits(
        cpb.AddCreditsRequest(team_id=team.team_id, credits=10, idempotency_key="inv-1"), metadata=ADMIN
    )
    assert done.balance.credits_remaining == MAX_CREDITS
    await fails(
        credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=1), metadata=ADMIN),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "credits",
    )
    # A team at the cap can always be brought down.
    down = await credits.AdjustCredits(
        cpb.AdjustCreditsRequest(team_id=team.team_id, credits=-MAX_CREDITS, reason="reset"), metadata=ADMIN
    )
    assert down.balance.credits_remaining == 0
    assert await ledger_mismatches(app) == []


async def test_a_refund_past_what_a_team_may_hold_is_refused_until_credits_are_removed(app, admin, credits, jobs):
    team = await create_team(admin, credits=10)
    done = await run_job(jobs, team, "hi")  # charged 1: holds 9
    await credits.AddCredits(cpb.AddCreditsRequest(team_id=team.team_id, credits=MAX_CREDITS - 9), metadata=ADMIN)
    before = (tuple(await team_row(app, team.team_id)), await history(app, team.team_id))
    refund = cpb.RefundJobRequest(team_id=team.team_id, job_id=done.job_id)
    error = await fails(
        credits.RefundJob(refund, metadata=ADMIN), grpc.StatusCode.FAILED_PRECONDITION, "CREDIT_CAP_EXCEEDED"
    )
    assert "AdjustCredits" in error.details()
    assert (tuple(await team_row(app, team.team_id)), await history(app, team.team_id)) == before
    await credits.AdjustCredits(cpb.AdjustCreditsRequest(team_id=team.team_id, credits=-1, reason="x"), metadata=ADMIN)
    refunded = await credits.RefundJob(refund, metadata=ADMIN)
    assert refunded.balance.credits_remaining == MAX_CREDITS and not refunded.already_refunded
    assert await ledger_mismatches(app) == []
