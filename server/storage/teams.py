"""Teams and their access groups. Credit balance changes live in storage/credits.py."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from server.domain.credits import BudgetMode, Rates, TeamStatus
from server.domain.errors import already_exists, not_found
from server.domain.tenancy import Team
from server.storage.catalog import EMPTY_TEXT_ARRAY
from server.storage.credits import balance_of
from server.storage.database import Connection
from server.storage.tables import model_alias_groups, model_aliases, team_access_groups, teams


async def insert_team(
    conn: Connection,
    *,
    team_id: str,
    organization_id: str,
    team_alias: str,
    default_model: str | None,
    metadata: dict[str, Any],
    budget_mode: BudgetMode,
    credits_allocated: int,
    access_groups: list[str],
) -> None:
    row = (
        await conn.execute(
            pg_insert(teams)
            .values(
                team_id=team_id,
                organization_id=organization_id,
                team_alias=team_alias,
                default_model=default_model,
                metadata=metadata,
                budget_mode=budget_mode.value,
                credits_allocated=credits_allocated,
            )
            .on_conflict_do_nothing()
            .returning(teams.c.team_id)
        )
    ).first()
    if row is None:
        raise already_exists("team", team_id)
    if access_groups:
        await conn.execute(insert(team_access_groups), [{"team_id": team_id, "group_name": g} for g in access_groups])


def _reachable_query(team_id: str):
    return (
        select(model_aliases.c.model_alias, model_aliases.c.models)
        .distinct()
        .join(model_alias_groups, model_alias_groups.c.model_alias == model_aliases.c.model_alias)
        .join(team_access_groups, team_access_groups.c.group_name == model_alias_groups.c.group_name)
        .where(team_access_groups.c.team_id == team_id)
    )


async def reachable_aliases(conn: Connection, team_id: str) -> dict[str, tuple[str, ...]]:
    """Every alias the team reaches through its access groups, with its models."""
    rows = await conn.execute(_reachable_query(team_id))
    return {row.model_alias: tuple(row.models) for row in rows}


async def get_team(conn: Connection, team_id: str) -> Team:
    groups = (
        select(func.coalesce(func.array_agg(team_access_groups.c.group_name), EMPTY_TEXT_ARRAY))
        .where(team_access_groups.c.team_id == teams.c.team_id)
        .scalar_subquery()
    )
    row = (await conn.execute(select(teams, groups.label("access_groups")).where(teams.c.team_id == team_id))).first()
    if row is None:
        raise not_found("team", team_id)
    aliases = await reachable_aliases(conn, team_id)
    return Team(
        team_id=row.team_id,
        organization_id=row.organization_id,
        team_alias=row.team_alias,
        status=TeamStatus(row.status),
        rates=Rates(
            mode=BudgetMode(row.budget_mode),
            tokens_per_credit=row.tokens_per_credit,
            credits_per_dollar=Decimal(row.credits_per_dollar),
            markup_percent=Decimal(row.markup_percent),
        ),
        default_model=row.default_model,
        metadata=row.metadata,
        balance=balance_of(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
        access_groups=tuple(sorted(row.access_groups)),
        allowed_model_aliases=tuple(sorted(aliases)),
    )
