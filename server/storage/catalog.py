"""Organizations, model access groups, model aliases, and the membership links between
groups and aliases or teams.

Lock order: a change that locks rows of several of these takes teams, then groups, then
aliases (several of one kind in name order), so that two changes wait for each other
instead of deadlocking. A group's or alias's deletion locks the teams using it first; a
team's change its team, then its groups, then its default alias; a group's change of its
aliases its group, then the aliases (FOR KEY SHARE); an alias's change of its groups the
groups (FOR KEY SHARE), then its alias."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Table, and_, delete, func, insert, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from server.domain.errors import already_exists, not_found
from server.domain.tenancy import ORGANIZATION_ARCHIVED, AccessGroup, ModelAlias, Organization
from server.storage.database import Connection
from server.storage.tables import (
    known_fields,
    model_access_groups,
    model_alias_groups,
    model_aliases,
    organizations,
    team_access_groups,
    teams,
)

EMPTY_TEXT_ARRAY = literal_column("'{}'::text[]")
Lock = Literal["share", "update"] | None


def _locked(query, lock: Lock):
    if lock == "update":
        return query.with_for_update()
    if lock == "share":
        return query.with_for_update(read=True)
    return query


# ------------------------------------------------------------------------- organizations


async def insert_organization(
    conn: Connection, organization_id: str, name: str, metadata: dict[str, Any]
) -> Organization:
    row = (
        await conn.execute(
            pg_insert(organizations)
            .values(organization_id=organization_id, name=name, metadata=metadata)
            .on_conflict_do_nothing()
            .returning(*organizations.c)
        )
    ).first()
    if row is None:
        raise already_exists("organization", organization_id)
    return Organization(**known_fields(Organization, row))


async def get_organization(conn: Connection, organization_id: str, *, lock: Lock = None) -> Organization:
    """The organization; `lock` "share" keeps it from being archived until commit."""
    query = select(organizations).where(organizations.c.organization_id == organization_id)
    row = (await conn.execute(_locked(query, lock))).first()
    if row is None:
        raise not_found("organization", organization_id)
    return Organization(**known_fields(Organization, row))


async def list_organizations(conn: Connection, status: str, after: str | None, limit: int) -> list[Organization]:
    query = select(organizations).where(organizations.c.status == status)
    if after is not None:
        query = query.where(organizations.c.organization_id > after)
    rows = await conn.execute(query.order_by(organizations.c.organization_id).limit(limit))
    return [Organization(**known_fields(Organization, row)) for row in rows]


async def update_organization(conn: Connection, organization_id: str, values: dict[str, Any]) -> Organization:
    row = (
        await conn.execute(
            update(organizations)
            .where(organizations.c.organization_id == organization_id)
            .values(**values, updated_at=func.now())
            .returning(*organizations.c)
        )
    ).one()
    return Organization(**known_fields(Organization, row))


async def team_counts(conn: Connection, organization_id: str) -> tuple[int, int]:
    """(teams not archived, archived teams) of an organization."""
    row = (
        await conn.execute(
            select(
                func.count().filter(teams.c.archived_at.is_(None)),
                func.count().filter(teams.c.archived_at.is_not(None)),
            ).where(teams.c.organization_id == organization_id)
        )
    ).one()
    return row[0], row[1]


async def archive_organization(conn: Connection, organization_id: str) -> Organization:
    return await update_organization(conn, organization_id, {"status": ORGANIZATION_ARCHIVED})


async def delete_organization(conn: Connection, organization_id: str) -> None:
    await conn.execute(delete(organizations).where(organizations.c.organization_id == organization_id))


# ------------------------------------------------------------------------------ groups


async def insert_group(conn: Connection, group_name: str, display_name: str, description: str) -> None:
    row = (
        await conn.execute(
            pg_insert(model_access_groups)
            .values(group_name=group_name, display_name=display_name, description=description)
            .on_conflict_do_nothing()
            .returning(model_access_groups.c.group_name)
        )
    ).first()
    if row is None:
        raise already_exists("model access group", group_name)


def _groups_query():
    aliases = (
        select(func.coalesce(func.array_agg(model_alias_groups.c.model_alias), EMPTY_TEXT_ARRAY))
        .where(model_alias_groups.c.group_name == model_access_groups.c.group_name)
        .scalar_subquery()
    )
    return select(model_access_groups, aliases.label("model_aliases"))


def _group(row: Any) -> AccessGroup:
    values = known_fields(AccessGroup, row)
    values["model_aliases"] = tuple(sorted(values["model_aliases"]))
    return AccessGroup(**values)


async def get_group(conn: Connection, group_name: str) -> AccessGroup:
    row = (await conn.execute(_groups_query().where(model_access_groups.c.group_name == group_name))).first()
    if row is None:
        raise not_found("model access group", group_name)
    return _group(row)


async def list_groups(conn: Connection, after: str | None, limit: int) -> list[AccessGroup]:
    query = _groups_query()
    if after is not None:
        query = query.where(model_access_groups.c.group_name > after)
    rows = await conn.execute(query.order_by(model_access_groups.c.group_name).limit(limit))
    return [_group(row) for row in rows]


async def lock_group(conn: Connection, group_name: str) -> None:
    """Lock a group against concurrent changes and deletion; NOT_FOUND if it does not exist."""
    query = select(model_access_groups.c.group_name).where(model_access_groups.c.group_name == group_name)
    if (await conn.execute(query.with_for_update())).first() is None:
        raise not_found("model access group", group_name)


async def update_group(conn: Connection, group_name: str, values: dict[str, Any]) -> None:
    await conn.execute(
        update(model_access_groups)
        .where(model_access_groups.c.group_name == group_name)
        .values(**values, updated_at=func.now())
    )


async def teams_using_group(conn: Connection, group_name: str) -> list[str]:
    """Teams that have the group, archived ones too (their record loses it as well), sorted."""
    rows = await conn.execute(
        select(team_access_groups.c.team_id)
        .where(team_access_groups.c.group_name == group_name)
        .order_by(team_access_groups.c.team_id)
    )
    return list(rows.scalars())


async def delete_group(conn: Connection, group_name: str) -> None:
    """Its links to aliases and teams go with it (ON DELETE CASCADE)."""
    await conn.execute(delete(model_access_groups).where(model_access_groups.c.group_name == group_name))


async def ensure_groups_exist(conn: Connection, group_names: list[str]) -> None:
    """NOT_FOUND naming the first group that does not exist. The groups found stay
    locked (FOR KEY SHARE), in name order, so that they cannot be deleted before the
    caller commits. Lock them before any alias (the module's lock order)."""
    await _ensure_exist(conn, model_access_groups.c.group_name, group_names, "model access group")


async def ensure_aliases_exist(conn: Connection, aliases: list[str]) -> None:
    """As ensure_groups_exist, for model aliases."""
    await _ensure_exist(conn, model_aliases.c.model_alias, aliases, "model alias")


async def _ensure_exist(conn: Connection, column, names: list[str], what: str) -> None:
    if not names:
        return
    query = select(column).where(column.in_(names)).order_by(column).with_for_update(read=True, key_share=True)
    found = set((await conn.execute(query)).scalars())
    for name in names:
        if name not in found:
            raise not_found(what, name)


# ------------------------------------------------------------------------------ aliases


async def insert_alias(
    conn: Connection, model_alias: str, models: list[str], display_name: str, description: str, groups: list[str]
) -> None:
    row = (
        await conn.execute(
            pg_insert(model_aliases)
            .values(model_alias=model_alias, models=models, display_name=display_name, description=description)
            .on_conflict_do_nothing()
            .returning(model_aliases.c.model_alias)
        )
    ).first()
    if row is None:
        raise already_exists("model alias", model_alias)
    if groups:
        await conn.execute(insert(model_alias_groups), [{"model_alias": model_alias, "group_name": g} for g in groups])


def _aliases_query():
    groups = (
        select(func.coalesce(func.array_agg(model_alias_groups.c.group_name), EMPTY_TEXT_ARRAY))
        .where(model_alias_groups.c.model_alias == model_aliases.c.model_alias)
        .scalar_subquery()
    )
    return select(model_aliases, groups.label("access_groups"))


def _alias(row: Any) -> ModelAlias:
    values = known_fields(ModelAlias, row)
    values["models"] = tuple(values["models"])
    values["access_groups"] = tuple(sorted(values["access_groups"]))
    return ModelAlias(**values)


async def get_alias(conn: Connection, model_alias: str) -> ModelAlias:
    row = (await conn.execute(_aliases_query().where(model_aliases.c.model_alias == model_alias))).first()
    if row is None:
        raise not_found("model alias", model_alias)
    return _alias(row)


async def list_aliases(conn: Connection, access_group: str, after: str | None, limit: int) -> list[ModelAlias]:
    query = _aliases_query()
    if access_group:
        member = select(model_alias_groups.c.model_alias).where(model_alias_groups.c.group_name == access_group)
        query = query.where(model_aliases.c.model_alias.in_(member))
    if after is not None:
        query = query.where(model_aliases.c.model_alias > after)
    rows = await conn.execute(query.order_by(model_aliases.c.model_alias).limit(limit))
    return [_alias(row) for row in rows]


async def lock_alias(conn: Connection, model_alias: str) -> None:
    query = select(model_aliases.c.model_alias).where(model_aliases.c.model_alias == model_alias)
    if (await conn.execute(query.with_for_update())).first() is None:
        raise not_found("model alias", model_alias)


async def update_alias(conn: Connection, model_alias: str, values: dict[str, Any]) -> None:
    await conn.execute(
        update(model_aliases).where(model_aliases.c.model_alias == model_alias).values(**values, updated_at=func.now())
    )


async def teams_defaulting_to(conn: Connection, model_alias: str) -> list[str]:
    """Teams whose default_model is the alias, archived ones too (theirs is cleared as well), sorted."""
    rows = await conn.execute(
        select(teams.c.team_id).where(teams.c.default_model == model_alias).order_by(teams.c.team_id)
    )
    return list(rows.scalars())


async def delete_alias(conn: Connection, model_alias: str) -> None:
    """Its group links go with it; teams' default_model becomes NULL (ON DELETE SET NULL)."""
    await conn.execute(delete(model_aliases).where(model_aliases.c.model_alias == model_alias))


# ---------------------------------------------------------------------------- membership

Change = Literal["add", "remove", "set"]


async def change_links(
    conn: Connection, table: Table, owner_column: str, owner: str, member_column: str, members: list[str], how: Change
) -> None:
    """Add, remove, or set exactly, the members linked to one owner in a link table
    (team -> groups, alias -> groups, group -> aliases). Members must exist for add/set."""
    owner_col, member_col = table.c[owner_column], table.c[member_column]
    if how in ("remove", "set"):
        condition = member_col.in_(members) if how == "remove" else member_col.not_in(members)
        await conn.execute(delete(table).where(and_(owner_col == owner, condition)))
    if how in ("add", "set") and members:
        await conn.execute(
            pg_insert(table)
            .values([{owner_column: owner, member_column: member} for member in members])
            .on_conflict_do_nothing()
        )


async def add_aliases_to_group(conn: Connection, group_name: str, aliases: list[str]) -> None:
    await change_group_aliases(conn, group_name, aliases, "add")


async def change_group_aliases(conn: Connection, group_name: str, aliases: list[str], how: Change) -> None:
    await change_links(conn, model_alias_groups, "group_name", group_name, "model_alias", aliases, how)


async def change_alias_groups(conn: Connection, model_alias: str, groups: list[str], how: Change) -> None:
    await change_links(conn, model_alias_groups, "model_alias", model_alias, "group_name", groups, how)
