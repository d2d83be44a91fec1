"""Teams and their access groups. Credit balance changes live in storage/credits.py."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from server.domain.credits import BudgetMode, Rates, TeamStatus
from server.domain.errors import already_exists, not_found
from server.domain.jobs import OPEN_STATUSES
from server.domain.tenancy import Team
from server.storage.catalog import EMPTY_TEXT_ARRAY, Change, change_links
from server.storage.credits import balance_of
from server.storage.database import Connection
from server.storage.tables import credit_ledger, jobs, model_alias_groups, model_aliases, team_access_groups, teams


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
    rates: dict[str, Any] | None = None,
) -> None:
    """`rates` holds the optional rate, overdraft and call-limit columns the operator set."""
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
                **(rates or {}),
            )
            .on_conflict_do_nothing()
            .returning(teams.c.team_id)
        )
    ).first()
    if row is None:
        raise already_exists("team", team_id)
    if access_groups:
        await conn.execute(insert(team_access_groups), [{"team_id": team_id, "group_name": g} for g in access_groups])


def _reachable_query(team_ids: list[str]):
    return (
        select(team_access_groups.c.team_id, model_aliases.c.model_alias, model_aliases.c.models)
        .distinct()
        .join(model_alias_groups, model_alias_groups.c.model_alias == model_aliases.c.model_alias)
        .join(team_access_groups, team_access_groups.c.group_name == model_alias_groups.c.group_name)
        .where(team_access_groups.c.team_id.in_(team_ids))
    )


async def reachable_aliases(conn: Connection, team_id: str) -> dict[str, tuple[str, ...]]:
    """Every alias the team reaches through its access groups, with its models."""
    rows = await conn.execute(_reachable_query([team_id]))
    return {row.model_alias: tuple(row.models) for row in rows}


def _teams_query():
    groups = (
        select(func.coalesce(func.array_agg(team_access_groups.c.group_name), EMPTY_TEXT_ARRAY))
        .where(team_access_groups.c.team_id == teams.c.team_id)
        .scalar_subquery()
    )
    return select(teams, groups.label("access_groups"))


def _team(row: Any, aliases: list[str]) -> Team:
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
            overdraft_limit=row.credits_overdraft_limit,
        ),
        default_model=row.default_model,
        metadata=row.metadata,
        balance=balance_of(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
        access_groups=tuple(sorted(row.access_groups)),
        allowed_model_aliases=tuple(sorted(aliases)),
        credits_overdraft_limit=row.credits_overdraft_limit,
        archived_at=row.archived_at,
        calls_per_minute=row.calls_per_minute,
        low_credit_threshold=row.low_credit_threshold,
        max_calls_per_job=row.max_calls_per_job,
        max_cost_usd_per_job=Decimal(row.max_cost_usd_per_job),
    )


async def _with_aliases(conn: Connection, rows: list[Any]) -> list[Team]:
    """Teams from rows, with the aliases each reaches, in one more query for all."""
    if not rows:
        return []
    aliases: dict[str, list[str]] = defaultdict(list)
    for row in await conn.execute(_reachable_query([r.team_id for r in rows])):
        aliases[row.team_id].append(row.model_alias)
    return [_team(row, aliases[row.team_id]) for row in rows]


async def get_team(conn: Connection, team_id: str) -> Team:
    row = (await conn.execute(_teams_query().where(teams.c.team_id == team_id))).first()
    if row is None:
        raise not_found("team", team_id)
    return (await _with_aliases(conn, [row]))[0]


async def lock_team(conn: Connection, team_id: str) -> Team:
    """The team, with its row locked until commit: admin changes to one team (and its
    keys) run one at a time, and a concurrent archival waits for them or they for it."""
    if (
        await conn.execute(select(teams.c.team_id).where(teams.c.team_id == team_id).with_for_update())
    ).first() is None:
        raise not_found("team", team_id)
    return await get_team(conn, team_id)


async def get_teams(conn: Connection, team_ids: list[str]) -> list[Team]:
    """The teams that exist among `team_ids`, sorted by team_id."""
    if not team_ids:
        return []
    rows = list(await conn.execute(_teams_query().where(teams.c.team_id.in_(team_ids)).order_by(teams.c.team_id)))
    return await _with_aliases(conn, rows)


async def lock_teams(conn: Connection, team_ids: list[str]) -> list[Team]:
    """As lock_team for several teams at once (those that exist), locked in team_id order
    so that two callers locking overlapping sets never wait for each other in a cycle."""
    if not team_ids:
        return []
    await conn.execute(
        select(teams.c.team_id)
        .where(teams.c.team_id.in_(team_ids))
        .order_by(teams.c.team_id.collate("C"))  # code points, as the expiry rounds order teams
        .with_for_update()
    )
    return await get_teams(conn, team_ids)


async def touch_teams(conn: Connection, team_ids: list[str]) -> None:
    """Mark teams changed (updated_at) whose record a deletion elsewhere changed through a
    foreign key (a group link removed, a default_model cleared)."""
    if team_ids:
        await conn.execute(update(teams).where(teams.c.team_id.in_(team_ids)).values(updated_at=func.now()))


async def list_teams(
    conn: Connection, *, organization_id: str, status: str | None, archived: bool, after: str | None, limit: int
) -> list[Team]:
    query = _teams_query().where(teams.c.archived_at.is_not(None) if archived else teams.c.archived_at.is_(None))
    if organization_id:
        query = query.where(teams.c.organization_id == organization_id)
    if status:
        query = query.where(teams.c.status == status)
    if after is not None:
        query = query.where(teams.c.team_id > after)
    rows = list(await conn.execute(query.order_by(teams.c.team_id).limit(limit)))
    return await _with_aliases(conn, rows)


async def update_team(conn: Connection, team_id: str, values: dict[str, Any]) -> None:
    await conn.execute(update(teams).where(teams.c.team_id == team_id).values(**values, updated_at=func.now()))


async def change_groups(conn: Connection, team_id: str, groups: list[str], how: Change) -> None:
    await change_links(conn, team_access_groups, "team_id", team_id, "group_name", groups, how)
    await update_team(conn, team_id, {})


async def open_jobs(conn: Connection, team_id: str) -> int:
    query = select(func.count()).where(
        and_(jobs.c.team_id == team_id, jobs.c.status.in_([s.value for s in OPEN_STATUSES]))
    )
    return (await conn.execute(query)).scalar_one()


async def has_history(conn: Connection, team_id: str) -> bool:
    """Whether the team ever had a job or a ledger entry (which must never be lost)."""
    query = select(exists().where(jobs.c.team_id == team_id) | exists().where(credit_ledger.c.team_id == team_id))
    return bool((await conn.execute(query)).scalar_one())


async def archive_team(conn: Connection, team_id: str) -> None:
    """Archived teams are also 'suspended', so the job code refuses them in any race."""
    await update_team(conn, team_id, {"status": TeamStatus.SUSPENDED.value, "archived_at": func.now()})


async def delete_team(conn: Connection, team_id: str) -> None:
    """Only for a team without history; its keys and group links go with it (CASCADE)."""
    await conn.execute(delete(teams).where(teams.c.team_id == team_id))


async def reachable_alias_details(conn: Connection, team_id: str) -> list[tuple[str, str, str, datetime]]:
    """(alias, display name, description, created at) of every alias the team reaches, sorted."""
    rows = await conn.execute(
        select(
            model_aliases.c.model_alias,
            model_aliases.c.display_name,
            model_aliases.c.description,
            model_aliases.c.created_at,
        )
        .distinct()
        .join(model_alias_groups, model_alias_groups.c.model_alias == model_aliases.c.model_alias)
        .join(team_access_groups, team_access_groups.c.group_name == model_alias_groups.c.group_name)
        .where(team_access_groups.c.team_id == team_id)
        .order_by(model_aliases.c.model_alias)
    )
    return [tuple(row) for row in rows]
