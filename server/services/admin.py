"""Operator use cases: organizations, model access groups, model aliases, teams."""

from __future__ import annotations

from typing import Any

from server.domain import keys, validation
from server.domain.credits import MAX_CREDITS, BudgetMode
from server.domain.errors import invalid_argument
from server.domain.tenancy import AccessGroup, CreatedTeam, ModelAlias, Organization, Team
from server.storage import catalog, ledger
from server.storage import keys as key_store
from server.storage import teams as team_store
from server.storage.database import Database

ADMIN_ACTOR = "admin"


class AdminUseCases:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_organization(self, organization_id: str, name: str, metadata: dict[str, Any]) -> Organization:
        validation.identifier("organization_id", organization_id)
        validation.label("name", name, required=True, max_length=200)
        async with self._db.transaction() as conn:
            return await catalog.insert_organization(conn, organization_id, name, metadata)

    async def get_organization(self, organization_id: str) -> Organization:
        validation.identifier("organization_id", organization_id)
        async with self._db.transaction() as conn:
            return await catalog.get_organization(conn, organization_id)

    async def create_group(
        self, group_name: str, display_name: str, description: str, model_aliases: list[str]
    ) -> AccessGroup:
        validation.identifier("group_name", group_name)
        validation.label("display_name", display_name, max_length=200)
        validation.text("description", description)
        aliases = validation.unique_names("model_aliases", model_aliases, validation.model_name)
        async with self._db.transaction() as conn:
            await catalog.ensure_aliases_exist(conn, aliases)
            await catalog.insert_group(conn, group_name, display_name or group_name, description)
            await catalog.add_aliases_to_group(conn, group_name, aliases)
            return await catalog.get_group(conn, group_name)

    async def get_group(self, group_name: str) -> AccessGroup:
        validation.identifier("group_name", group_name)
        async with self._db.transaction() as conn:
            return await catalog.get_group(conn, group_name)

    async def create_alias(
        self,
        model_alias: str,
        actual_model: str,
        fallback_models: list[str],
        access_groups: list[str],
        display_name: str,
        description: str,
    ) -> ModelAlias:
        validation.model_name("model_alias", model_alias)
        validation.model_name("actual_model", actual_model)
        fallbacks = validation.unique_names("fallback_models", fallback_models, validation.model_name)
        if actual_model in fallbacks:
            raise invalid_argument("fallback_models", "must not repeat actual_model")
        groups = validation.unique_names("access_groups", access_groups)
        validation.label("display_name", display_name, max_length=200)
        validation.text("description", description)
        async with self._db.transaction() as conn:
            await catalog.ensure_groups_exist(conn, groups)
            await catalog.insert_alias(
                conn, model_alias, [actual_model, *fallbacks], display_name or model_alias, description, groups
            )
            return await catalog.get_alias(conn, model_alias)

    async def get_alias(self, model_alias: str) -> ModelAlias:
        validation.model_name("model_alias", model_alias)
        async with self._db.transaction() as conn:
            return await catalog.get_alias(conn, model_alias)

    async def create_team(
        self,
        *,
        organization_id: str,
        team_id: str,
        team_alias: str,
        access_groups: list[str],
        credits_allocated: int,
        metadata: dict[str, Any],
        default_model: str,
        budget_mode: BudgetMode,
        key_name: str,
    ) -> CreatedTeam:
        """Create a team, its first key and the ledger entry of its initial credits."""
        validation.identifier("organization_id", organization_id)
        validation.identifier("team_id", team_id)
        validation.label("team_alias", team_alias, max_length=200)
        groups = validation.unique_names("access_groups", access_groups)
        if not 0 <= credits_allocated <= MAX_CREDITS:
            raise invalid_argument("credits_allocated", f"must be between 0 and {MAX_CREDITS}")
        if default_model:
            validation.model_name("default_model", default_model)
        validation.label("key_name", key_name, max_length=100)
        new_key = keys.new_key()
        async with self._db.transaction() as conn:
            await catalog.get_organization(conn, organization_id)
            await catalog.ensure_groups_exist(conn, groups)
            await team_store.insert_team(
                conn,
                team_id=team_id,
                organization_id=organization_id,
                team_alias=team_alias,
                default_model=default_model or None,
                metadata=metadata,
                budget_mode=budget_mode,
                credits_allocated=credits_allocated,
                access_groups=groups,
            )
            if default_model and default_model not in await team_store.reachable_aliases(conn, team_id):
                raise invalid_argument("default_model", f"'{default_model}' is not in the team's access groups")
            key = await key_store.insert_key(conn, team_id, key_name or "default", new_key)
            team = await team_store.get_team(conn, team_id)
            if credits_allocated:
                await ledger.append(
                    conn,
                    team_id=team_id,
                    kind="allocation",
                    amount=credits_allocated,
                    balance_after=team.balance,
                    actor=ADMIN_ACTOR,
                    reason="initial allocation",
                )
        return CreatedTeam(team=team, key=key, secret=new_key.secret)

    async def get_team(self, team_id: str) -> Team:
        validation.identifier("team_id", team_id)
        async with self._db.transaction() as conn:
            return await team_store.get_team(conn, team_id)
