"""Organizations, teams, access groups, model aliases and keys as plain data, and the
operator's rules about them: what an update may change, when a deletion archives, how a
key rotates."""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from server.domain import validation
from server.domain.credits import MAX_CALLS_PER_MINUTE, MAX_CREDITS, Balance, BudgetMode, Rates, TeamStatus
from server.domain.errors import DomainError, Kind, invalid_argument

MAX_CALLS_PER_JOB = 1_000_000


class AdminReason:
    """Stable reasons of the admin API's FAILED_PRECONDITION errors (ErrorInfo.reason)."""

    ORGANIZATION_ARCHIVED = "ORGANIZATION_ARCHIVED"
    ORGANIZATION_HAS_TEAMS = "ORGANIZATION_HAS_TEAMS"
    TEAM_ARCHIVED = "TEAM_ARCHIVED"
    TEAM_HAS_OPEN_JOBS = "TEAM_HAS_OPEN_JOBS"
    TEAM_OVERDRAWN = "TEAM_OVERDRAWN"
    RESOURCE_IN_USE = "RESOURCE_IN_USE"
    KEY_NOT_ACTIVE = "KEY_NOT_ACTIVE"


# What a deletion did: the resource is gone, or kept as archived because it has history.
DELETED = "deleted"
ARCHIVED = "archived"

ORGANIZATION_ACTIVE = "active"
ORGANIZATION_ARCHIVED = "archived"


@dataclass(frozen=True)
class Organization:
    organization_id: str
    name: str
    status: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def archived(self) -> bool:
        return self.status == ORGANIZATION_ARCHIVED


@dataclass(frozen=True)
class AccessGroup:
    group_name: str
    display_name: str
    description: str
    model_aliases: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ModelAlias:
    model_alias: str
    models: tuple[str, ...]
    access_groups: tuple[str, ...]
    display_name: str
    description: str
    created_at: datetime
    updated_at: datetime

    @property
    def actual_model(self) -> str:
        return self.models[0]

    @property
    def fallback_models(self) -> tuple[str, ...]:
        return self.models[1:]


@dataclass(frozen=True)
class Team:
    team_id: str
    organization_id: str
    team_alias: str
    status: TeamStatus
    rates: Rates
    default_model: str | None
    metadata: dict[str, Any]
    balance: Balance
    created_at: datetime
    updated_at: datetime
    access_groups: tuple[str, ...] = ()
    allowed_model_aliases: tuple[str, ...] = ()
    credits_overdraft_limit: int = 0
    archived_at: datetime | None = None
    calls_per_minute: int = 0  # LLM calls a minute (0: no limit)
    low_credit_threshold: int = 0  # team.credits_low fires at or below this (0: never)
    max_calls_per_job: int = 0  # LLM calls one job may make (0: no limit)
    max_cost_usd_per_job: Decimal = Decimal(0)  # provider dollars one job may spend (0: no limit)

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def audited(self) -> dict[str, Any]:
        """As the audit log records it: with the status the API shows. An archived team is
        stored `suspended`, so that every check refuses it, and shown `archived`."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.repr}
        if self.archived:
            fields["status"] = "archived"
        return fields


class KeyState:
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class TeamKey:
    """A stored virtual key: metadata only, never the secret."""

    key_id: uuid.UUID
    team_id: str
    name: str
    key_prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    replaced_by: uuid.UUID | None = None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return KeyState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return KeyState.EXPIRED
        return KeyState.ACTIVE


@dataclass(frozen=True)
class CreatedKey:
    """A new key and its secret, which exists only in this value."""

    key: TeamKey
    secret: str = field(repr=False)


@dataclass(frozen=True)
class CreatedTeam:
    """A new team and its first key's secret, which exists only in this value."""

    team: Team
    key: TeamKey
    secret: str = field(repr=False)


# ---------------------------------------------------------------------------- team rules

MAX_TOKENS_PER_CREDIT = 1_000_000_000
MAX_CREDITS_PER_DOLLAR = Decimal("100000000000000")  # numeric(20, 6)
MAX_MARKUP_PERCENT = Decimal(10_000)
MAX_COST_USD_PER_JOB = Decimal(10_000_000_000)  # numeric(20, 10)
SETTABLE_STATUSES = {s.name: s for s in TeamStatus}


@dataclass(frozen=True)
class TeamUpdate:
    """The changes an UpdateTeam asks for; None means "keep". default_model "" clears it."""

    team_alias: str | None = None
    metadata: dict[str, Any] | None = None
    status: TeamStatus | None = None
    budget_mode: BudgetMode | None = None
    tokens_per_credit: int | None = None
    credits_per_dollar: Decimal | None = None
    markup_percent: Decimal | None = None
    credits_overdraft_limit: int | None = None
    default_model: str | None = None
    calls_per_minute: int | None = None
    low_credit_threshold: int | None = None
    max_calls_per_job: int | None = None
    max_cost_usd_per_job: Decimal | None = None

    def columns(self) -> dict[str, Any]:
        """The team columns to write, for the fields that were sent."""
        values = {
            "team_alias": self.team_alias,
            "metadata": self.metadata,
            "status": self.status.value if self.status else None,
            "budget_mode": self.budget_mode.value if self.budget_mode else None,
            "tokens_per_credit": self.tokens_per_credit,
            "credits_per_dollar": self.credits_per_dollar,
            "markup_percent": self.markup_percent,
            "credits_overdraft_limit": self.credits_overdraft_limit,
            "calls_per_minute": self.calls_per_minute,
            "low_credit_threshold": self.low_credit_threshold,
            "max_calls_per_job": self.max_calls_per_job,
            "max_cost_usd_per_job": self.max_cost_usd_per_job,
        }
        columns = {name: value for name, value in values.items() if value is not None}
        if self.default_model is not None:
            columns["default_model"] = self.default_model or None
        return columns


def team_update(
    *,
    team_alias: str | None = None,
    metadata: dict[str, Any] | None = None,
    status: str | None = None,
    budget_mode: BudgetMode | None = None,
    tokens_per_credit: int | None = None,
    credits_per_dollar: str | None = None,
    markup_percent: str | None = None,
    credits_overdraft_limit: int | None = None,
    default_model: str | None = None,
    calls_per_minute: int | None = None,
    low_credit_threshold: int | None = None,
    max_calls_per_job: int | None = None,
    max_cost_usd_per_job: str | None = None,
) -> TeamUpdate:
    """Validate the fields an operator sent (None: not sent); status is a Team.Status name."""
    if team_alias is not None:
        validation.label("team_alias", team_alias, max_length=200)
    if default_model:
        validation.model_name("default_model", default_model)
    return TeamUpdate(
        team_alias=team_alias,
        metadata=metadata,
        status=None if status is None else team_status("status", status),
        budget_mode=budget_mode,
        tokens_per_credit=None if tokens_per_credit is None else _tokens_per_credit(tokens_per_credit),
        credits_per_dollar=None if credits_per_dollar is None else _credits_per_dollar(credits_per_dollar),
        markup_percent=None if markup_percent is None else _markup_percent(markup_percent),
        credits_overdraft_limit=None if credits_overdraft_limit is None else _overdraft(credits_overdraft_limit),
        default_model=default_model,
        calls_per_minute=None if calls_per_minute is None else _calls_per_minute(calls_per_minute),
        low_credit_threshold=None if low_credit_threshold is None else _low_credit_threshold(low_credit_threshold),
        max_calls_per_job=None if max_calls_per_job is None else _max_calls_per_job(max_calls_per_job),
        max_cost_usd_per_job=None if max_cost_usd_per_job is None else _max_cost_usd_per_job(max_cost_usd_per_job),
    )


def team_status(field_name: str, name: str) -> TeamStatus:
    """A status the operator may set: ACTIVE, SUSPENDED or PAUSED."""
    if name == "ARCHIVED":
        raise invalid_argument(field_name, "ARCHIVED is set only by deleting a team that has history")
    status = SETTABLE_STATUSES.get(name)
    if status is None:
        raise invalid_argument(field_name, "must be ACTIVE, SUSPENDED or PAUSED")
    return status


def _tokens_per_credit(value: int) -> int:
    if not 1 <= value <= MAX_TOKENS_PER_CREDIT:
        raise invalid_argument("tokens_per_credit", f"must be between 1 and {MAX_TOKENS_PER_CREDIT}")
    return value


def _credits_per_dollar(value: str) -> Decimal:
    number = decimal_string("credits_per_dollar", value, places=6)
    if not Decimal(0) < number < MAX_CREDITS_PER_DOLLAR:
        raise invalid_argument("credits_per_dollar", "must be greater than 0 and less than 100000000000000")
    return number


def _markup_percent(value: str) -> Decimal:
    number = decimal_string("markup_percent", value, places=4)
    if not Decimal(0) <= number <= MAX_MARKUP_PERCENT:
        raise invalid_argument("markup_percent", f"must be between 0 and {MAX_MARKUP_PERCENT}")
    return number


def _overdraft(value: int) -> int:
    if not 0 <= value <= MAX_CREDITS:
        raise invalid_argument("credits_overdraft_limit", f"must be between 0 and {MAX_CREDITS}")
    return value


def _calls_per_minute(value: int) -> int:
    if not 0 <= value <= MAX_CALLS_PER_MINUTE:
        raise invalid_argument("calls_per_minute", f"must be between 0 (no limit) and {MAX_CALLS_PER_MINUTE}")
    return value


def _max_calls_per_job(value: int) -> int:
    if not 0 <= value <= MAX_CALLS_PER_JOB:
        raise invalid_argument("max_calls_per_job", f"must be between 0 (no limit) and {MAX_CALLS_PER_JOB}")
    return value


def _max_cost_usd_per_job(value: str) -> Decimal:
    number = decimal_string("max_cost_usd_per_job", value, places=10)
    if not Decimal(0) <= number < MAX_COST_USD_PER_JOB:
        raise invalid_argument(
            "max_cost_usd_per_job", f"must be at least 0 (no limit) and less than {MAX_COST_USD_PER_JOB}"
        )
    return number


def _low_credit_threshold(value: int) -> int:
    if not 0 <= value <= MAX_CREDITS:
        raise invalid_argument("low_credit_threshold", f"must be between 0 (no alert) and {MAX_CREDITS}")
    return value


_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def decimal_string(field_name: str, value: str, *, places: int) -> Decimal:
    """A non-negative decimal number sent as a string (exact) in plain ASCII notation, such
    as "12.5", with at most `places` significant decimals ("0.50" has one). Exponents,
    signs, digit separators and non-ASCII digits are refused: a string that Python's
    Decimal reads differently than a person would is not money."""
    if not _PLAIN_DECIMAL.fullmatch(value):
        raise invalid_argument(field_name, 'must be a non-negative decimal number such as "12.5"')
    number = Decimal(value)
    if number != number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN):
        raise invalid_argument(field_name, f"must have at most {places} decimals")
    return number


def ensure_team_writable(team: Team) -> None:
    if team.archived:
        raise DomainError(
            Kind.FAILED_PRECONDITION,
            AdminReason.TEAM_ARCHIVED,
            f"team '{team.team_id}' is archived and cannot change",
            metadata={"team_id": team.team_id},
        )


def ensure_overdraft_covers(team: Team, new_limit: int) -> None:
    """The balance CHECK (available >= -overdraft) must hold after lowering the limit."""
    if team.balance.available < -new_limit:
        raise DomainError(
            Kind.FAILED_PRECONDITION,
            AdminReason.TEAM_OVERDRAWN,
            f"team '{team.team_id}' is {-team.balance.available} credits overdrawn; "
            "add credits before lowering credits_overdraft_limit below that",
            metadata={"team_id": team.team_id, "credits_available": str(team.balance.available)},
        )


def ensure_default_reachable(default_model: str | None, reachable: set[str] | dict[str, Any]) -> None:
    if default_model and default_model not in reachable:
        raise invalid_argument("default_model", f"'{default_model}' is not in the team's access groups")


def ensure_no_open_jobs(team_id: str, open_jobs: int) -> None:
    if open_jobs:
        raise DomainError(
            Kind.FAILED_PRECONDITION,
            AdminReason.TEAM_HAS_OPEN_JOBS,
            f"team '{team_id}' has {open_jobs} open job(s); complete them (or let them expire) first",
            metadata={"team_id": team_id, "open_jobs": str(open_jobs)},
        )


def ensure_organization_writable(org: Organization, refused: str = "change or get new teams") -> None:
    """An archived organization is read-only: it cannot do what `refused` says."""
    if org.archived:
        raise DomainError(
            Kind.FAILED_PRECONDITION,
            AdminReason.ORGANIZATION_ARCHIVED,
            f"organization '{org.organization_id}' is archived and cannot {refused}",
            metadata={"organization_id": org.organization_id},
        )


def ensure_no_live_teams(organization_id: str, live_teams: int) -> None:
    if live_teams:
        raise DomainError(
            Kind.FAILED_PRECONDITION,
            AdminReason.ORGANIZATION_HAS_TEAMS,
            f"organization '{organization_id}' has {live_teams} team(s) that are not archived; delete them first",
            metadata={"organization_id": organization_id, "teams": str(live_teams)},
        )


def ensure_no_webhook_endpoints(organization_id: str, endpoints: int) -> None:
    """Deleting an organization would delete the webhook endpoints scoped to it, unseen."""
    if endpoints:
        raise DomainError(
            Kind.FAILED_PRECONDITION,
            AdminReason.RESOURCE_IN_USE,
            f"organization '{organization_id}' has {endpoints} webhook endpoint(s); delete them first "
            "(DELETE /api/webhooks/{endpoint_id})",
            metadata={"organization_id": organization_id, "webhook_endpoints": str(endpoints)},
        )


def ensure_unused(what: str, name: str, users: list[str], how: str, force: bool) -> None:
    """Refuse to delete something teams depend on, unless forced."""
    if users and not force:
        shown = ", ".join(users[:10]) + (f" and {len(users) - 10} more" if len(users) > 10 else "")
        raise DomainError(
            Kind.FAILED_PRECONDITION,
            AdminReason.RESOURCE_IN_USE,
            f"{what} '{name}' is {how} of {len(users)} team(s): {shown}; change them first or delete with force",
            metadata={"resource": what, "id": name, "teams": str(len(users))},
        )


def check_models_known(actual_model: str, fallback_models: list[str], known: set[str]) -> None:
    """Every model of an alias must be one the LiteLLM proxy serves."""
    hint = "is not a model the LiteLLM proxy serves (see GET /api/catalog/models)"
    if actual_model not in known:
        raise invalid_argument("actual_model", f"'{actual_model}' {hint}")
    for index, model in enumerate(fallback_models):
        if model not in known:
            raise invalid_argument(f"fallback_models[{index}]", f"'{model}' {hint}")


# ----------------------------------------------------------------------------- key rules

DEFAULT_KEY_NAME = "default"
DEFAULT_ROTATION_GRACE = timedelta(hours=24)
MAX_ROTATION_GRACE = timedelta(days=30)
MAX_KEY_LIFETIME = timedelta(days=3660)


def key_expiry(field_name: str, expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at <= now:
        raise invalid_argument(field_name, "must be in the future")
    if expires_at - now > MAX_KEY_LIFETIME:
        raise invalid_argument(field_name, "must be within 10 years")
    return expires_at


def rotation_grace(seconds: int | None) -> timedelta:
    if seconds is None:
        return DEFAULT_ROTATION_GRACE
    grace = timedelta(seconds=seconds)
    if not timedelta(0) <= grace <= MAX_ROTATION_GRACE:
        raise invalid_argument(
            "grace_period_seconds", f"must be between 0 and {int(MAX_ROTATION_GRACE.total_seconds())}"
        )
    return grace


def ensure_rotatable(key: TeamKey, now: datetime) -> None:
    state = key.state(now)
    if state != KeyState.ACTIVE or key.replaced_by is not None:
        why = f"already rotated to key {key.replaced_by}" if key.replaced_by is not None else state
        raise DomainError(
            Kind.FAILED_PRECONDITION,
            AdminReason.KEY_NOT_ACTIVE,
            f"key {key.key_id} cannot be rotated: {why}",
            metadata={"key_id": str(key.key_id), "state": state},
        )


def end_of_grace(key: TeamKey, now: datetime, grace: timedelta) -> datetime:
    """When a rotated key stops working: after the grace period, never later than before."""
    end = now + grace
    return end if key.expires_at is None else min(key.expires_at, end)
