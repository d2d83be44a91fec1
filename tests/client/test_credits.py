"""The team's credits against the real stack: its balance and its ledger (CreditService's
reads, which the team's own key may call), typed, paged, async and sync."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from saas_litellm_client import (
    BudgetMode,
    CreditBalance,
    CreditTransaction,
    CreditTransactionKind,
    ListCreditTransactionsResponse,
    SaasLiteLLMClient,
    SyncSaasLiteLLMClient,
    TeamMismatchError,
    ValidationError,
)
from tests.client.conftest import FAST_RETRIES
from tests.e2e.conftest import ADMIN_HEADERS

HI = [{"role": "user", "content": "hi"}]


def top_up(api: str, team_id: str, credits: int, reason: str) -> None:
    response = httpx.post(
        f"{api}/credits/teams/{team_id}/add",
        json={"credits": credits, "reason": reason},
        headers=ADMIN_HEADERS,
        timeout=10,
    )
    assert response.status_code == 200, response.text


async def test_the_balance_follows_the_teams_jobs(client, api, team):
    fresh = await client.get_credit_balance()
    assert isinstance(fresh, CreditBalance) and fresh.team_id == team.team_id
    assert (fresh.credits_allocated, fresh.credits_used, fresh.credits_reserved) == (100, 0, 0)
    assert (fresh.credits_remaining, fresh.credits_available, fresh.open_jobs) == (100, 100, 0)
    assert fresh.budget_mode is BudgetMode.JOB_BASED and fresh.credits_overdraft_limit == 0
    assert isinstance(fresh.markup_percent, float) and isinstance(fresh.credits_per_dollar, float)

    done = await client.create_job("counted")
    await client.complete_job(done.job_id, "completed")
    await client.create_job("open")
    top_up(api, team.team_id, 10, "client test")
    now = await client.get_credit_balance()
    assert (now.credits_allocated, now.credits_used, now.credits_reserved) == (110, 1, 1)
    assert (now.credits_remaining, now.credits_available, now.open_jobs) == (109, 108, 1)
    assert await client.get_credit_balance(team.team_id) == now

    with pytest.raises(TeamMismatchError):
        await client.get_credit_balance("someone-else")


async def test_the_ledger_lists_every_movement_newest_first_in_pages(client, api, team):
    done = await client.create_and_call("charged", HI)
    failed = await client.create_job("released")
    await client.complete_job(failed.job_id, "failed")
    top_up(api, team.team_id, 5, "client test top-up")

    page = await client.list_credit_transactions()
    assert isinstance(page, ListCreditTransactionsResponse) and page.next_page_token == ""
    kinds = [t.kind for t in page.transactions]
    assert kinds == [
        CreditTransactionKind.TOP_UP,
        CreditTransactionKind.RELEASE,
        CreditTransactionKind.RESERVATION,
        CreditTransactionKind.CHARGE,
        CreditTransactionKind.RESERVATION,
        CreditTransactionKind.ALLOCATION,
    ]
    assert all(isinstance(kind, CreditTransactionKind) for kind in kinds)  # enum members, not plain strings
    top, release, _, charge, _, allocation = page.transactions
    assert all(isinstance(t, CreditTransaction) and t.team_id == team.team_id for t in page.transactions)
    assert all(isinstance(t.created_at, datetime) and t.transaction_id for t in page.transactions)
    assert (top.amount, top.reason, top.remaining_after, top.job_id) == (5, "client test top-up", 104, "")
    assert (charge.amount, charge.reserved_delta, charge.job_id) == (-1, -1, done.job_id)
    assert (release.amount, release.reserved_delta, release.job_id) == (0, -1, failed.job_id)
    assert (allocation.amount, allocation.remaining_after) == (100, 100)
    assert charge.actor.startswith("key:") and top.actor == "admin"
    assert page.balance == await client.get_credit_balance() and page.balance.credits_remaining == 104

    pages = []
    token = None
    while True:
        pages.append(await client.list_credit_transactions(page_size=4, page_token=token))
        token = pages[-1].next_page_token
        if not token:
            break
    assert [len(p.transactions) for p in pages] == [4, 2]
    assert [t for p in pages for t in p.transactions] == page.transactions
    assert [t async for t in client.iter_credit_transactions(page_size=2)] == page.transactions

    with pytest.raises(ValidationError) as invalid:
        await client.list_credit_transactions(page_token="not-a-token")
    assert invalid.value.field == "page_token"
    with pytest.raises(TeamMismatchError):
        await client.list_credit_transactions("someone-else")


async def test_a_client_without_a_team_id_names_the_team(stack, team):
    async with SaasLiteLLMClient(base_url=stack.api_url, virtual_key=team.key) as anonymous:
        with pytest.raises(ValueError, match="pass team_id"):
            await anonymous.get_credit_balance()
        with pytest.raises(ValueError, match="pass team_id"):
            await anonymous.list_credit_transactions()
        assert (await anonymous.get_credit_balance(team.team_id)).credits_remaining == 100
        [allocation] = (await anonymous.list_credit_transactions(team.team_id)).transactions
        assert allocation.kind == CreditTransactionKind.ALLOCATION


def test_the_sync_client_reads_the_balance_and_the_ledger(stack, team):
    with SyncSaasLiteLLMClient(
        base_url=stack.api_url, team_id=team.team_id, virtual_key=team.key, retry=FAST_RETRIES
    ) as client:
        client.create_and_call("sync", HI)
        balance = client.get_credit_balance()
        assert (balance.credits_remaining, balance.credits_used) == (99, 1)
        page = client.list_credit_transactions(page_size=2)
        assert [t.kind for t in page.transactions] == ["CHARGE", "RESERVATION"] and page.next_page_token
        assert [t.kind for t in client.iter_credit_transactions(page_size=2)] == ["CHARGE", "RESERVATION", "ALLOCATION"]
        assert page.balance == balance


def test_a_kind_or_mode_this_client_does_not_know_is_kept_as_sent():
    """A newer server's enum value parses, as the string it sent; a known one is the member."""
    entry = {"transaction_id": "1", "team_id": "t"}
    assert CreditTransaction.model_validate({**entry, "kind": "SOMETHING_NEW"}).kind == "SOMETHING_NEW"
    assert CreditTransaction.model_validate({**entry, "kind": "REFUND"}).kind is CreditTransactionKind.REFUND
    balance = CreditBalance.model_validate({"team_id": "t", "budget_mode": "CONSUMPTION_USD"})
    assert balance.budget_mode is BudgetMode.CONSUMPTION_USD
