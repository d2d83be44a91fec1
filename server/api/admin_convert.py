"""Protobuf <-> domain conversion for the admin resources. No decisions here, only shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from saaslitellm.v1 import admin_service_pb2, analytics_pb2, audit_pb2, tenancy_pb2
from server.api.convert import (
    dict_to_struct,
    enum_name,
    lifetime_credits,
    money,
    stored_struct,
    timestamp,
    usage_counts,
)
from server.domain.analytics import UsageFigures, UsageReport
from server.domain.audit import AuditEntry
from server.domain.credits import BudgetMode, TeamStatus
from server.domain.errors import invalid_argument
from server.domain.pagination import Page
from server.domain.tenancy import (
    AccessGroup,
    CreatedKey,
    CreatedTeam,
    KeyState,
    ModelAlias,
    Organization,
    Team,
    TeamKey,
)

_TEAM_STATUS = {s: tenancy_pb2.Team.Status.Value(s.name) for s in TeamStatus}
_BUDGET_MODE = {m: tenancy_pb2.Team.BudgetMode.Value(m.name) for m in BudgetMode}
_KEY_STATE = {
    KeyState.ACTIVE: tenancy_pb2.TeamKey.ACTIVE,
    KeyState.REVOKED: tenancy_pb2.TeamKey.REVOKED,
    KeyState.EXPIRED: tenancy_pb2.TeamKey.EXPIRED,
}
_KEY_STATE_FILTER = {value: name for name, value in _KEY_STATE.items()}


# ------------------------------------------------------------------------------ requests


def budget_mode(value: int) -> BudgetMode:
    if value == tenancy_pb2.Team.BUDGET_MODE_UNSPECIFIED:
        return BudgetMode.JOB_BASED
    if value not in tenancy_pb2.Team.BudgetMode.values():
        raise invalid_argument("budget_mode", "must be job_based, consumption_tokens or consumption_usd")
    return BudgetMode[tenancy_pb2.Team.BudgetMode.Name(value)]


def _new_budget_mode(value: int) -> BudgetMode:
    """A budget mode an update sets: named, since an unset field in a client must not switch
    a team's billing (on creation, BUDGET_MODE_UNSPECIFIED means JOB_BASED)."""
    if value == tenancy_pb2.Team.BUDGET_MODE_UNSPECIFIED:
        raise invalid_argument("budget_mode", "must be job_based, consumption_tokens or consumption_usd")
    return budget_mode(value)


def optional(request: Message, name: str) -> Any:
    """A field's value if the client sent it (proto3 `optional` or a message), else None."""
    return getattr(request, name) if request.HasField(name) else None


def optional_struct(request: Message, name: str) -> dict[str, Any] | None:
    """A stored free-form JSON field (metadata) if sent, checked storable."""
    return stored_struct(request, name) if request.HasField(name) else None


# What google.protobuf.Timestamp may hold: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_TIMESTAMP_SECONDS = range(-62_135_596_800, 253_402_300_800)
_TIMESTAMP_NANOS = range(1_000_000_000)


def optional_time(request: Message, name: str) -> datetime | None:
    """A Timestamp field if sent. Native gRPC can send one outside the type's range (REST's
    RFC 3339 text cannot), which no datetime holds: INVALID_ARGUMENT naming the field."""
    if not request.HasField(name):
        return None
    value = getattr(request, name)
    if value.seconds not in _TIMESTAMP_SECONDS or value.nanos not in _TIMESTAMP_NANOS:
        raise invalid_argument(
            name,
            "must be a timestamp from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z: "
            "seconds from -62135596800 to 253402300799, nanos from 0 to 999999999",
        )
    return value.ToDatetime(tzinfo=UTC)


def organization_status(value: int) -> str:
    """The status a list asks for: ACTIVE unless ARCHIVED."""
    name = enum_name("status", tenancy_pb2.Organization.Status, value)
    return "archived" if name == "ARCHIVED" else "active"


def team_status_name(value: int) -> str:
    return tenancy_pb2.Team.Status.Name(value) if value in tenancy_pb2.Team.Status.values() else str(value)


def team_status_filter(value: int) -> str:
    """The Team.Status name a list asks for (STATUS_UNSPECIFIED: every status but ARCHIVED)."""
    return enum_name("status", tenancy_pb2.Team.Status, value)


def key_state(value: int) -> str:
    """A key-state filter: '' for any."""
    enum_name("state", tenancy_pb2.TeamKey.State, value)
    return _KEY_STATE_FILTER.get(value, "")


def team_update_fields(request: admin_service_pb2.UpdateTeamRequest) -> dict[str, Any]:
    """The fields of an UpdateTeam as sent (None: not sent), for tenancy.team_update."""
    mode = optional(request, "budget_mode")
    status = optional(request, "status")
    return {
        "team_alias": optional(request, "team_alias"),
        "metadata": optional_struct(request, "metadata"),
        "status": None if status is None else team_status_name(status),
        "budget_mode": None if mode is None else _new_budget_mode(mode),
        "tokens_per_credit": optional(request, "tokens_per_credit"),
        "credits_per_dollar": optional(request, "credits_per_dollar"),
        "markup_percent": optional(request, "markup_percent"),
        "credits_overdraft_limit": optional(request, "credits_overdraft_limit"),
        "default_model": optional(request, "default_model"),
        "calls_per_minute": optional(request, "calls_per_minute"),
        "low_credit_threshold": optional(request, "low_credit_threshold"),
        "max_calls_per_job": optional(request, "max_calls_per_job"),
        "max_cost_usd_per_job": optional(request, "max_cost_usd_per_job"),
    }


# ----------------------------------------------------------------------------- resources


def organization(value: Organization) -> tenancy_pb2.Organization:
    return tenancy_pb2.Organization(
        organization_id=value.organization_id,
        name=value.name,
        status=tenancy_pb2.Organization.Status.Value(value.status.upper()),
        metadata=dict_to_struct(value.metadata),
        created_at=timestamp(value.created_at),
        updated_at=timestamp(value.updated_at),
    )


def access_group(value: AccessGroup) -> tenancy_pb2.ModelAccessGroup:
    return tenancy_pb2.ModelAccessGroup(
        group_name=value.group_name,
        display_name=value.display_name,
        description=value.description,
        model_aliases=list(value.model_aliases),
        created_at=timestamp(value.created_at),
        updated_at=timestamp(value.updated_at),
    )


def model_alias(value: ModelAlias) -> tenancy_pb2.ModelAlias:
    return tenancy_pb2.ModelAlias(
        model_alias=value.model_alias,
        actual_model=value.actual_model,
        fallback_models=list(value.fallback_models),
        access_groups=list(value.access_groups),
        display_name=value.display_name,
        description=value.description,
        created_at=timestamp(value.created_at),
        updated_at=timestamp(value.updated_at),
    )


def team(value: Team) -> tenancy_pb2.Team:
    balance = value.balance
    return tenancy_pb2.Team(
        team_id=value.team_id,
        organization_id=value.organization_id,
        team_alias=value.team_alias,
        status=tenancy_pb2.Team.ARCHIVED if value.archived else _TEAM_STATUS[value.status],
        budget_mode=_BUDGET_MODE[value.rates.mode],
        access_groups=list(value.access_groups),
        allowed_model_aliases=list(value.allowed_model_aliases),
        default_model=value.default_model or "",
        metadata=dict_to_struct(value.metadata),
        credits_allocated=lifetime_credits(balance.allocated),
        credits_used=lifetime_credits(balance.used),
        credits_reserved=balance.reserved,
        credits_remaining=balance.remaining,
        credits_available=balance.available,
        created_at=timestamp(value.created_at),
        updated_at=timestamp(value.updated_at),
        tokens_per_credit=value.rates.tokens_per_credit,
        credits_per_dollar=money(value.rates.credits_per_dollar),
        markup_percent=money(value.rates.markup_percent),
        credits_overdraft_limit=value.credits_overdraft_limit,
        archived_at=timestamp(value.archived_at),
        calls_per_minute=value.calls_per_minute,
        low_credit_threshold=value.low_credit_threshold,
        max_calls_per_job=value.max_calls_per_job,
        max_cost_usd_per_job=money(value.max_cost_usd_per_job),
    )


def create_team_response(created: CreatedTeam) -> admin_service_pb2.CreateTeamResponse:
    value = created.team
    return admin_service_pb2.CreateTeamResponse(
        team_id=value.team_id,
        organization_id=value.organization_id,
        team_alias=value.team_alias,
        virtual_key=created.secret,
        key_prefix=created.key.key_prefix,
        key_id=str(created.key.key_id),
        credits_allocated=value.balance.allocated,
        credits_remaining=value.balance.remaining,
        access_groups=list(value.access_groups),
        allowed_model_aliases=list(value.allowed_model_aliases),
        default_model=value.default_model or "",
        budget_mode=_BUDGET_MODE[value.rates.mode],
        status=_TEAM_STATUS[value.status],
        created_at=timestamp(value.created_at),
    )


def team_key(value: TeamKey, now: datetime | None = None) -> tenancy_pb2.TeamKey:
    return tenancy_pb2.TeamKey(
        key_id=str(value.key_id),
        team_id=value.team_id,
        name=value.name,
        key_prefix=value.key_prefix,
        state=_KEY_STATE[value.state(now or datetime.now(UTC))],
        created_at=timestamp(value.created_at),
        expires_at=timestamp(value.expires_at),
        revoked_at=timestamp(value.revoked_at),
        last_used_at=timestamp(value.last_used_at),
        replaced_by_key_id=str(value.replaced_by) if value.replaced_by else "",
    )


def create_key_response(created: CreatedKey) -> admin_service_pb2.CreateTeamKeyResponse:
    return admin_service_pb2.CreateTeamKeyResponse(key=team_key(created.key), virtual_key=created.secret)


def rotate_key_response(created: CreatedKey, previous: TeamKey) -> admin_service_pb2.RotateTeamKeyResponse:
    return admin_service_pb2.RotateTeamKeyResponse(
        key=team_key(created.key), virtual_key=created.secret, previous_key=team_key(previous)
    )


def outcome(value: str, message_type: Any) -> int:
    """tenancy.DELETED / ARCHIVED as the response's Outcome enum."""
    return message_type.Outcome.Value(value.upper())


def audit_entry(value: AuditEntry) -> audit_pb2.AuditEntry:
    return audit_pb2.AuditEntry(
        audit_id=value.audit_id,
        actor=value.actor,
        request_id=value.request_id,
        peer=value.peer,
        action=value.action,
        resource_type=value.resource_type,
        resource_id=value.resource_id,
        before=dict_to_struct(value.before) if value.before is not None else None,
        after=dict_to_struct(value.after) if value.after is not None else None,
        created_at=timestamp(value.created_at),
    )


def page(value: Page, response_type: Any, field: str, convert) -> Any:
    return response_type(**{field: [convert(item) for item in value.items]}, next_page_token=value.next_page_token)


# ----------------------------------------------------------------------------- analytics


def usage_figures(value: UsageFigures) -> analytics_pb2.UsageFigures:
    per_credit = value.provider_cost_usd_per_credit
    return analytics_pb2.UsageFigures(
        **usage_counts(value),
        provider_cost_usd=money(value.provider_cost_usd),
        billed_cost_usd=money(value.billed_cost_usd),
        margin_usd=money(value.margin_usd),
        provider_cost_usd_per_credit="" if per_credit is None else money(per_credit),
    )


def usage_report(value: UsageReport) -> analytics_pb2.UsageReport:
    return analytics_pb2.UsageReport(
        start_date=value.range.start.isoformat(),
        end_date=value.range.end.isoformat(),
        totals=usage_figures(value.totals),
        days=[analytics_pb2.DailyUsage(date=d.isoformat(), usage=usage_figures(f)) for d, f in value.days],
        job_types=[analytics_pb2.JobTypeUsage(job_type=t, usage=usage_figures(f)) for t, f in value.job_types],
        daily_job_types=[
            analytics_pb2.DailyJobTypeUsage(date=d.isoformat(), job_type=t, usage=usage_figures(f))
            for d, t, f in value.daily_job_types
        ],
        teams=[analytics_pb2.TeamUsage(team_id=t, usage=usage_figures(f)) for t, f in value.teams],
    )
