"""Credit arithmetic: what a job reserves, what it is charged, what a call is billed."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from server.domain.completion import Usage
from server.domain.errors import DomainError, Kind, Reason, invalid_argument
from server.domain.jobs import JobCosts

USD_QUANTUM = Decimal("0.0000000001")  # costs are stored with 10 decimal places
COST_AGREEMENT = Decimal("0.000001")  # relative: a reported cost this close to its price's agrees with it
# The most credits a team may hold (credits_remaining = allocated - used) and one change
# may move (an initial allocation, a top-up or adjustment, a job's charge). Lifetime
# totals (allocated, used) are unbounded: a team is topped up as long as it holds less.
# Every figure the API reports in 32 bits stays in range: what a team holds, between
# -MAX_CREDITS (overdraft) and MAX_CREDITS, and what it reserves, at most 2 x MAX_CREDITS.
# A CHECK on teams (migration 0013) holds it on every path.
MAX_CREDITS = 1_000_000_000
# Reason of a refund refused because the team would then hold more than MAX_CREDITS.
CREDIT_CAP_EXCEEDED = "CREDIT_CAP_EXCEEDED"


class BudgetMode(enum.StrEnum):
    JOB_BASED = "job_based"
    CONSUMPTION_TOKENS = "consumption_tokens"
    CONSUMPTION_USD = "consumption_usd"


class TeamStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    PAUSED = "paused"


@dataclass(frozen=True)
class Balance:
    """A team's credits. remaining = allocated - used; available = remaining - reserved."""

    allocated: int
    used: int
    reserved: int

    @property
    def remaining(self) -> int:
        return self.allocated - self.used

    @property
    def available(self) -> int:
        return self.remaining - self.reserved


@dataclass(frozen=True)
class Rates:
    """How a team is billed: budget mode, conversion rates, markup and overdraft."""

    mode: BudgetMode = BudgetMode.JOB_BASED
    tokens_per_credit: int = 10_000
    credits_per_dollar: Decimal = Decimal(10)
    markup_percent: Decimal = Decimal(0)
    overdraft_limit: int = 0


@dataclass(frozen=True)
class Settlement:
    """What completing a job does to the balance."""

    charged: int
    shortfall: int = 0


def reservation(rates: Rates) -> int:
    """Credits a new job holds until it is settled: the minimum charge of any mode."""
    return 1


def consumed(rates: Rates, costs: JobCosts) -> Decimal:
    """Exact credits a job's calls have consumed so far (consumption modes), unrounded."""
    if rates.mode is BudgetMode.CONSUMPTION_TOKENS:
        return Decimal(costs.total_tokens) / rates.tokens_per_credit
    if rates.mode is BudgetMode.CONSUMPTION_USD:
        return costs.billed_cost_usd * rates.credits_per_dollar
    return Decimal(0)


def charge(rates: Rates, costs: JobCosts) -> int:
    """Credits a job completed as `completed` costs, in whole credits rounded up, at least 1
    and at most MAX_CREDITS (as much as any team can hold: a rate like 10^13 credits per
    dollar must not make a settlement overflow what a job's row stores)."""
    if rates.mode is BudgetMode.JOB_BASED:
        return 1
    return min(MAX_CREDITS, max(1, math.ceil(consumed(rates, costs))))


def payable(rates: Rates, balance: Balance, held: int) -> int:
    """The most a job holding `held` credits can be charged without taking the team below
    its overdraft limit: its own reservation, what is available, and the overdraft."""
    return balance.available + held + rates.overdraft_limit


def settle(rates: Rates, costs: JobCosts, balance: Balance, held: int, *, completed: bool) -> Settlement:
    """Charge a completed job what it cost, capped at what the team can pay; the rest is
    recorded as shortfall, never taken silently below the overdraft limit. Failed jobs
    are free."""
    if not completed:
        return Settlement(charged=0)
    due = charge(rates, costs)
    charged = max(0, min(due, payable(rates, balance, held)))
    return Settlement(charged=charged, shortfall=due - charged)


def settle_late(rates: Rates, costs: JobCosts, balance: Balance, settled: int) -> Settlement:
    """What a completed job owes once calls recorded after its settlement count: its charge
    over all its calls, less what was `settled` (charged and shortfall), capped at what the
    team can pay (it holds nothing for the job any more); the rest is shortfall. Nothing
    under a job-based budget, where a job costs one credit however many calls it made.
    `rates`: the budget mode and conversion rates the job was settled under (at the
    team's current ones, a rate changed since would re-price the calls already charged),
    with the team's current overdraft limit."""
    extra = charge(rates, costs) - settled if rates.mode is not BudgetMode.JOB_BASED else 0
    if extra <= 0:
        return Settlement(charged=0)
    charged = max(0, min(extra, payable(rates, balance, 0)))
    return Settlement(charged=charged, shortfall=extra - charged)


def ensure_can_spend(team_id: str, rates: Rates, costs: JobCosts, balance: Balance, held: int) -> None:
    """Consumption modes: a job may not start another call once what it has consumed
    reaches what the team can pay. Job-based jobs paid in advance: always fine."""
    if rates.mode is BudgetMode.JOB_BASED:
        return
    if consumed(rates, costs) >= payable(rates, balance, held):
        raise DomainError(
            Kind.RESOURCE_EXHAUSTED,
            Reason.INSUFFICIENT_CREDITS,
            f"this job has consumed all the credits team '{team_id}' can pay; complete it and add credits",
            metadata={
                "team_id": team_id,
                "credits_available": str(balance.available),
                "credits_overdraft_limit": str(rates.overdraft_limit),
            },
        )


class CostSource(enum.StrEnum):
    """Where a call's provider cost came from (stored with the call)."""

    LITELLM = "litellm"  # what LiteLLM reported with the response
    PRICE_TABLE = "price_table"  # usage times the model's price in LiteLLM's model info
    NONE = "none"  # no tokens, or no price known: recorded as 0 and counted as unpriced


def provider_cost(
    reported_usd: Decimal | None, usage: Usage, price: tuple[Decimal, Decimal] | None
) -> tuple[Decimal, CostSource]:
    """What a call cost the operator: LiteLLM's report when it is positive; else, for a
    call that used tokens, its usage at the model's (input, output) per-token price.

    A reported zero for tokens is not taken at its word: LiteLLM reports zero or nothing for
    a model it has no price for, and gateways have reported zero for priced streamed calls
    (BerriAI/litellm#37923). A model priced at zero in the model info is free, not unpriced.
    `price` is None when the model's price is unknown or was not looked up (`needs_price`).
    """
    if reported_usd is not None and (reported_usd > 0 or not usage.total_tokens):
        return reported_usd, CostSource.LITELLM
    if not usage.total_tokens or price is None:
        return Decimal(0), CostSource.NONE
    return usage_cost(usage, price), CostSource.PRICE_TABLE


def usage_cost(usage: Usage, price: tuple[Decimal, Decimal]) -> Decimal:
    """`usage` at the (input, output) per-token `price`."""
    cost_in, cost_out = price
    return cost_in * usage.prompt_tokens + cost_out * usage.completion_tokens


def cost_disagrees(reported_usd: Decimal, usage: Usage, price: tuple[Decimal, Decimal]) -> bool:
    """Whether a call's cost as LiteLLM reported it is not what `price` gives for its usage,
    beyond the rounding of LiteLLM's float arithmetic (a part in a million): the price
    changed in LiteLLM since it was read, or the provider prices more than tokens (cached
    tokens at a discount, a price per tier)."""
    expected = usage_cost(usage, price)
    return abs(reported_usd - expected) > max(reported_usd, expected) * COST_AGREEMENT


def worst_case_cost(
    input_tokens: int, output_tokens: int, prices: Iterable[tuple[Decimal, Decimal] | None], rates: Rates
) -> Decimal:
    """The most a call can cost the team (billed, as `billed_cost`): its input and output
    bounds at the prices of the priciest model that may serve it (`prices`: the route's
    models'), plus the markup. A model without a price counts as $0, as its calls are
    recorded (and reported as unpriced). Rounded up, so never below what `billed_cost`
    makes of the call's actual cost."""
    worst = max(
        (cost_in * input_tokens + cost_out * output_tokens for cost_in, cost_out in filter(None, prices)),
        default=Decimal(0),
    )
    return (worst * (1 + rates.markup_percent / 100)).quantize(USD_QUANTUM, rounding=ROUND_CEILING)


@dataclass(frozen=True)
class CallEstimate:
    """The most an LLM call can cost a team, before anything is spent (EstimateCall)."""

    model_alias: str
    input_tokens_bound: int
    input_tokens_estimate: int
    output_tokens_bound: int
    max_cost_usd: Decimal
    likely_max_cost_usd: Decimal
    max_credits: int
    job_cost_remaining_usd: Decimal | None = None  # a job's room under the team's cost limit

    @property
    def fits_job_cost_limit(self) -> bool | None:
        return None if self.job_cost_remaining_usd is None else self.max_cost_usd <= self.job_cost_remaining_usd


def ensure_priced(team_id: str, alias: str, prices: Iterable[tuple[Decimal, Decimal] | None]) -> None:
    """A team that limits the cost of a job may use only models with a known price: its
    limit could not bound a call on another. The error names the alias, never the model
    (tenants see aliases only)."""
    if any(price is None for price in prices):
        raise DomainError(
            Kind.FAILED_PRECONDITION,
            Reason.MODEL_UNPRICED,
            f"model '{alias}' may be served by a model with no known price, so team '{team_id}''s limit on the "
            "cost of a job (max_cost_usd_per_job) could not bound the call: the operator must price it "
            "(input_cost_per_token and output_cost_per_token in its LiteLLM model_info)",
            metadata={"model_alias": alias},
        )


def estimate_call(
    model_alias: str,
    input_bound: int,
    input_estimate: int,
    output_bound: int,
    prices: list[tuple[Decimal, Decimal] | None],
    rates: Rates,
    job_cost_remaining_usd: Decimal | None = None,
) -> CallEstimate:
    """A call's worst case (`worst_case_cost`), the same with its input at the tokenizer's
    estimate, and what a single-call job making it could be charged (`charge` of a job
    whose one call used the bounds and cost the worst case)."""
    max_cost = worst_case_cost(input_bound, output_bound, prices, rates)
    worst_job = JobCosts(
        total_calls=1,
        successful_calls=1,
        prompt_tokens=input_bound,
        completion_tokens=output_bound,
        billed_cost_usd=max_cost,
    )
    return CallEstimate(
        model_alias=model_alias,
        input_tokens_bound=input_bound,
        input_tokens_estimate=input_estimate,
        output_tokens_bound=output_bound,
        max_cost_usd=max_cost,
        likely_max_cost_usd=min(max_cost, worst_case_cost(input_estimate, output_bound, prices, rates)),
        max_credits=charge(rates, worst_job),
        job_cost_remaining_usd=job_cost_remaining_usd,
    )


def needs_price(reported_usd: Decimal | None, usage: Usage) -> bool:
    """Whether `provider_cost` would read the model's price for this call."""
    return bool(usage.total_tokens) and not (reported_usd is not None and reported_usd > 0)


def billed_cost(provider_cost_usd: Decimal, rates: Rates) -> Decimal:
    """What a call costs the team: the provider cost plus the team's markup."""
    billed = provider_cost_usd * (1 + rates.markup_percent / 100)
    return billed.quantize(USD_QUANTUM, rounding=ROUND_HALF_EVEN)


def record_is_money(rates: Rates, *, in_job_limits: bool) -> bool:
    """Whether a call's record moves money, rather than only saying what the provider
    cost: under a token- or dollar-based budget the job's charge adds up its calls, and
    a call counted in its job's limits (calls or cost per job) spends what they allow.
    A job-based team's job costs one credit, which its completion charges, whatever its
    calls' records say."""
    return rates.mode is not BudgetMode.JOB_BASED or in_job_limits


MAX_CALLS_PER_MINUTE = 1_000_000
RATE_RETRY_FLOOR_SECONDS = 0.05


def ensure_admitted(team_id: str, calls_per_minute: int, backlog_seconds: float | None) -> None:
    """A team with a limit on calls per minute may make that many at once, then one every
    60/limit seconds (GCRA); past that a call is refused, RESOURCE_EXHAUSTED
    (`TEAM_RATE_LIMITED`), with when the next place frees. `backlog_seconds`: None when
    the call took a place, else how far ahead of now the team's next place was."""
    if backlog_seconds is None:
        return
    retry_after = max(backlog_seconds + 60 / calls_per_minute - 60, RATE_RETRY_FLOOR_SECONDS)
    raise DomainError(
        Kind.RESOURCE_EXHAUSTED,
        Reason.TEAM_RATE_LIMITED,
        f"team '{team_id}' may make {calls_per_minute} LLM call{'' if calls_per_minute == 1 else 's'} a minute; "
        f"retry in {retry_after:.1f} s",
        metadata={"team_id": team_id, "calls_per_minute": str(calls_per_minute)},
        retry_after_seconds=retry_after,
    )


def ensure_can_work(team_id: str, status: TeamStatus) -> None:
    """Suspended and paused teams may not start jobs or calls."""
    if status is TeamStatus.ACTIVE:
        return
    reason = Reason.TEAM_SUSPENDED if status is TeamStatus.SUSPENDED else Reason.TEAM_PAUSED
    raise DomainError(
        Kind.PERMISSION_DENIED,
        reason,
        f"team '{team_id}' is {status.value}; new jobs and calls are refused. Contact the operator.",
        metadata={"team_id": team_id, "status": status.value},
    )


def insufficient_credits(team_id: str, balance: Balance, needed: int) -> DomainError:
    return DomainError(
        Kind.RESOURCE_EXHAUSTED,
        Reason.INSUFFICIENT_CREDITS,
        f"team '{team_id}' has {balance.available} credits available and a job needs {needed}; "
        "add credits or complete open jobs",
        metadata={
            "team_id": team_id,
            "credits_available": str(balance.available),
            "credits_remaining": str(balance.remaining),
            "credits_reserved": str(balance.reserved),
            "credits_needed": str(needed),
        },
    )


def over_cap(team_id: str, balance: Balance, adding: int) -> DomainError:
    """A top-up or adjustment refused because the team would hold more than MAX_CREDITS:
    INVALID_ARGUMENT naming `credits`, with how many it may add now."""
    room = max(0, MAX_CREDITS - balance.remaining)
    error = invalid_argument(
        "credits",
        f"team '{team_id}' holds {balance.remaining} credits; adding {adding} would take it over the "
        f"{MAX_CREDITS} credits a team may hold (at most {room} can be added now)",
    )
    error.metadata.update(
        {"team_id": team_id, "credits_remaining": str(balance.remaining), "max_credits": str(MAX_CREDITS)}
    )
    return error


def refund_over_cap(team_id: str, job_id: str, balance: Balance, credits: int) -> DomainError:
    """A refund refused because the team would hold more than MAX_CREDITS: FAILED_PRECONDITION
    (`CREDIT_CAP_EXCEEDED`); removing credits first (a negative adjustment) makes room."""
    return DomainError(
        Kind.FAILED_PRECONDITION,
        CREDIT_CAP_EXCEEDED,
        f"team '{team_id}' holds {balance.remaining} credits; refunding the {credits} job {job_id} was charged "
        f"would take it over the {MAX_CREDITS} credits a team may hold. Remove credits first (AdjustCredits).",
        metadata={
            "team_id": team_id,
            "job_id": job_id,
            "credits_remaining": str(balance.remaining),
            "credits_refunded": str(credits),
            "max_credits": str(MAX_CREDITS),
        },
    )
