"""Protobuf <-> domain conversion for the admin resources. No decisions here, only shapes."""

from __future__ import annotations

from saaslitellm.v1 import admin_service_pb2, tenancy_pb2
from server.api.convert import dict_to_struct, timestamp
from server.domain.credits import BudgetMode, TeamStatus
from server.domain.tenancy import AccessGroup, CreatedTeam, ModelAlias, Organization, Team

_TEAM_STATUS = {s: tenancy_pb2.Team.Status.Value(s.name) for s in TeamStatus}
_BUDGET_MODE = {m: tenancy_pb2.Team.BudgetMode.Value(m.name) for m in BudgetMode}


def budget_mode(value: int) -> BudgetMode:
    if value == tenancy_pb2.Team.BUDGET_MODE_UNSPECIFIED:
        return BudgetMode.JOB_BASED
    return BudgetMode[tenancy_pb2.Team.BudgetMode.Name(value)]


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
        status=_TEAM_STATUS[value.status],
        budget_mode=_BUDGET_MODE[value.rates.mode],
        access_groups=list(value.access_groups),
        allowed_model_aliases=list(value.allowed_model_aliases),
        default_model=value.default_model or "",
        metadata=dict_to_struct(value.metadata),
        credits_allocated=balance.allocated,
        credits_used=balance.used,
        credits_reserved=balance.reserved,
        credits_remaining=balance.remaining,
        credits_available=balance.available,
        created_at=timestamp(value.created_at),
        updated_at=timestamp(value.updated_at),
    )


def create_team_response(created: CreatedTeam) -> admin_service_pb2.CreateTeamResponse:
    value = created.team
    return admin_service_pb2.CreateTeamResponse(
        team_id=value.team_id,
        organization_id=value.organization_id,
        team_alias=value.team_alias,
        virtual_key=created.secret,
        key_prefix=created.key.key_prefix,
        credits_allocated=value.balance.allocated,
        credits_remaining=value.balance.remaining,
        access_groups=list(value.access_groups),
        allowed_model_aliases=list(value.allowed_model_aliases),
        default_model=value.default_model or "",
        budget_mode=_BUDGET_MODE[value.rates.mode],
        status=_TEAM_STATUS[value.status],
        created_at=timestamp(value.created_at),
    )
