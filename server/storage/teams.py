"""Teams, their access groups and their credit balance.

Balance changes are single conditional UPDATEs: the row lock PostgreSQL takes for the
UPDATE serialises concurrent changes to one team, and the WHERE clause (plus the
`no_overshoot` CHECK) makes overshooting impossible however many processes race.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from server.domain.credits import Balance, BudgetMode, Rates, TeamStatus
from server.domain.errors import already_exists, not_found
from server.domain.tenancy import Team
from server.storage.catalog import EMPTY_TEXT_ARRAY
from server.storage.database import Connection
from server.storage.tables import model_alias_groups, model_aliases, team_access_groups, teams

_BALANCE = (teams.c.credits_allocated, teams.c.credits_used, teams.c.credits_reserved)


def _balance(row: Any) -> Balance:
    return Balance(allocated=row.credits_allocated, used=row.credits_used, reserved=row.credits_reserved)


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
        balance=_balance(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
        access_groups=tuple(sorted(row.access_groups)),
        allowed_model_aliases=tuple(sorted(aliases)),
    )


async def reserve(conn: Connection, team_id: str, credits: int) -> Balance | None:
    """Hold `credits` for a new job if the team is active and has them available.

    Returns the new balance, or None when the team is not active or short of credits
    (nothing changed; the caller finds out which).
    """
    row = (
        await conn.execute(
            update(teams)
            .where(
                and_(
                    teams.c.team_id == team_id,
                    teams.c.status == TeamStatus.ACTIVE.value,
                    teams.c.credits_allocated - teams.c.credits_used - teams.c.credits_reserved >= credits,
                )
            )
            .values(credits_reserved=teams.c.credits_reserved + credits)
            .returning(*_BALANCE)
        )
    ).first()
    return None if row is None else _balance(row)


async def settle(conn: Connection, team_id: str, *, release: int, charge: int) -> Balance:
    """Give back a job's reservation and charge what it cost, atomically."""
    row = (
        await conn.execute(
            update(teams)
            .where(teams.c.team_id == team_id)
            .values(
                credits_reserved=teams.c.credits_reserved - release,
                credits_used=teams.c.credits_used + charge,
                updated_at=func.now(),
            )
            .returning(*_BALANCE)
        )
    ).one()
    return _balance(row)


async def status_and_balance(conn: Connection, team_id: str) -> tuple[TeamStatus, Balance]:
    row = (await conn.execute(select(teams.c.status, *_BALANCE).where(teams.c.team_id == team_id))).first()
    if row is None:
        raise not_found("team", team_id)
    return TeamStatus(row.status), _balance(row)


async def rates_and_status(conn: Connection, team_id: str) -> tuple[Rates, TeamStatus, str | None]:
    row = (
        await conn.execute(
            select(
                teams.c.budget_mode,
                teams.c.tokens_per_credit,
                teams.c.credits_per_dollar,
                teams.c.markup_percent,
                teams.c.status,
                teams.c.default_model,
            ).where(teams.c.team_id == team_id)
        )
    ).first()
    if row is None:
        raise not_found("team", team_id)
    rates = Rates(
        mode=BudgetMode(row.budget_mode),
        tokens_per_credit=row.tokens_per_credit,
        credits_per_dollar=Decimal(row.credits_per_dollar),
        markup_percent=Decimal(row.markup_percent),
    )
    return rates, TeamStatus(row.status), row.default_model
