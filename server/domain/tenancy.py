"""Organizations, teams, access groups and model aliases as plain data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.domain.credits import Balance, Rates, TeamStatus


@dataclass(frozen=True)
class Organization:
    organization_id: str
    name: str
    status: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


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


@dataclass(frozen=True)
class CreatedTeam:
    """A new team and its first key's secret, which exists only in this value."""

    team: Team
    key: TeamKey
    secret: str = field(repr=False)
