"""Organizations, model access groups and model aliases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from server.domain.errors import already_exists, not_found
from server.domain.tenancy import AccessGroup, ModelAlias, Organization
from server.storage.database import Connection
from server.storage.tables import model_access_groups, model_alias_groups, model_aliases, organizations

EMPTY_TEXT_ARRAY = literal_column("'{}'::text[]")


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
    return Organization(**row._mapping)


async def get_organization(conn: Connection, organization_id: str) -> Organization:
    row = (await conn.execute(select(organizations).where(organizations.c.organization_id == organization_id))).first()
    if row is None:
        raise not_found("organization", organization_id)
    return Organization(**row._mapping)


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


async def get_group(conn: Connection, group_name: str) -> AccessGroup:
    aliases = (
        select(func.coalesce(func.array_agg(model_alias_groups.c.model_alias), EMPTY_TEXT_ARRAY))
        .where(model_alias_groups.c.group_name == model_access_groups.c.group_name)
        .scalar_subquery()
    )
    row = (
        await conn.execute(
            select(model_access_groups, aliases.label("model_aliases")).where(
                model_access_groups.c.group_name == group_name
            )
        )
    ).first()
    if row is None:
        raise not_found("model access group", group_name)
    values = dict(row._mapping)
    values["model_aliases"] = tuple(sorted(values["model_aliases"]))
    return AccessGroup(**values)


async def ensure_groups_exist(conn: Connection, group_names: list[str], field_name: str = "access_groups") -> None:
    """NOT_FOUND naming the first group that does not exist."""
    if not group_names:
        return
    found = set(
        (
            await conn.execute(
                select(model_access_groups.c.group_name).where(model_access_groups.c.group_name.in_(group_names))
            )
        ).scalars()
    )
    for name in group_names:
        if name not in found:
            raise not_found("model access group", name)


async def ensure_aliases_exist(conn: Connection, aliases: list[str]) -> None:
    if not aliases:
        return
    found = set(
        (
            await conn.execute(select(model_aliases.c.model_alias).where(model_aliases.c.model_alias.in_(aliases)))
        ).scalars()
    )
    for name in aliases:
        if name not in found:
            raise not_found("model alias", name)


async def add_aliases_to_group(conn: Connection, group_name: str, aliases: list[str]) -> None:
    if aliases:
        await conn.execute(
            pg_insert(model_alias_groups)
            .values([{"model_alias": a, "group_name": group_name} for a in aliases])
            .on_conflict_do_nothing()
        )


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


async def get_alias(conn: Connection, model_alias: str) -> ModelAlias:
    groups = (
        select(func.coalesce(func.array_agg(model_alias_groups.c.group_name), EMPTY_TEXT_ARRAY))
        .where(model_alias_groups.c.model_alias == model_aliases.c.model_alias)
        .scalar_subquery()
    )
    row = (
        await conn.execute(
            select(model_aliases, groups.label("access_groups")).where(model_aliases.c.model_alias == model_alias)
        )
    ).first()
    if row is None:
        raise not_found("model alias", model_alias)
    values = dict(row._mapping)
    values["models"] = tuple(values["models"])
    values["access_groups"] = tuple(sorted(values["access_groups"]))
    return ModelAlias(**values)
