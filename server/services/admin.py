"""Operator use cases: organizations, model access groups, model aliases, teams, keys,
and the audit log. Each change runs in one transaction with its audit entry."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from server.domain import audit, keys, pagination, tenancy, validation
from server.domain.audit import Actor, AuditEntry
from server.domain.credits import MAX_CREDITS, BudgetMode
from server.domain.errors import DomainError, Kind, Reason, invalid_argument
from server.domain.pagination import Page
from server.domain.tenancy import (
    ARCHIVED,
    DELETED,
    AccessGroup,
    CreatedKey,
    CreatedTeam,
    ModelAlias,
    Organization,
    Team,
    TeamKey,
)
from server.services.auth import ADMIN_ACTOR, KeyChanges, announce_key_change
from server.storage import audit as audit_store
from server.storage import catalog, ledger
from server.storage import keys as key_store
from server.storage import teams as team_store
from server.storage import webhooks as webhook_store
from server.storage.catalog import Change
from server.storage.database import Connection, Database


class ModelCatalog(Protocol):
    """The models the LiteLLM proxy serves (server.upstream.litellm.LiteLLMClient)."""

    async def list_models(self) -> list[str]: ...


class Prices(Protocol):
    """The models' prices (server.services.prices.PriceCatalog)."""

    async def prices_now(self) -> Mapping[str, object] | None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AdminUseCases:
    def __init__(
        self,
        db: Database,
        models: ModelCatalog,
        prices: Prices,
        key_changes: KeyChanges,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._db = db
        self._models = models
        self._prices = prices
        self._key_changes = key_changes
        self._now = clock

    # ------------------------------------------------------------------ organizations

    async def create_organization(
        self, actor: Actor, organization_id: str, name: str, metadata: dict[str, Any]
    ) -> Organization:
        validation.identifier("organization_id", organization_id)
        validation.label("name", name, required=True, max_length=200)
        async with self._db.transaction() as conn:
            org = await catalog.insert_organization(conn, organization_id, name, metadata)
            await _audit(conn, actor, "create", audit.ORGANIZATION, organization_id, None, org)
            return org

    async def get_organization(self, organization_id: str) -> Organization:
        validation.identifier("organization_id", organization_id)
        async with self._db.transaction() as conn:
            return await catalog.get_organization(conn, organization_id)

    async def list_organizations(self, status: str, page_size: int, page_token: str) -> Page[Organization]:
        page = pagination.page_request(page_size, page_token, {"status": status})
        async with self._db.transaction() as conn:
            rows = await catalog.list_organizations(conn, status, pagination.after_id(page), page.size + 1)
        return pagination.page(rows, page, lambda org: (org.organization_id,))

    async def update_organization(
        self, actor: Actor, organization_id: str, name: str | None, metadata: dict[str, Any] | None
    ) -> Organization:
        validation.identifier("organization_id", organization_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = validation.label("name", name, required=True, max_length=200)
        if metadata is not None:
            values["metadata"] = metadata
        async with self._db.transaction() as conn:
            before = await catalog.get_organization(conn, organization_id, lock="update")
            tenancy.ensure_organization_writable(before)
            if not values:
                return before
            after = await catalog.update_organization(conn, organization_id, values)
            await _audit(conn, actor, "update", audit.ORGANIZATION, organization_id, before, after)
            return after

    async def delete_organization(self, actor: Actor, organization_id: str) -> str:
        """DELETED if it never had a team; ARCHIVED if all its teams are archived."""
        validation.identifier("organization_id", organization_id)
        async with self._db.transaction() as conn:
            before = await catalog.get_organization(conn, organization_id, lock="update")
            if before.archived:
                return ARCHIVED
            live, archived = await catalog.team_counts(conn, organization_id)
            tenancy.ensure_no_live_teams(organization_id, live)
            if archived:
                after = await catalog.archive_organization(conn, organization_id)
                await _audit(conn, actor, "archive", audit.ORGANIZATION, organization_id, before, after)
                return ARCHIVED
            tenancy.ensure_no_webhook_endpoints(
                organization_id, await webhook_store.count_organization_endpoints(conn, organization_id)
            )
            await catalog.delete_organization(conn, organization_id)
            await _audit(conn, actor, "delete", audit.ORGANIZATION, organization_id, before, None)
            return DELETED

    # ------------------------------------------------------------------------ groups

    async def create_group(
        self, actor: Actor, group_name: str, display_name: str, description: str, model_aliases: list[str]
    ) -> AccessGroup:
        validation.identifier("group_name", group_name)
        validation.label("display_name", display_name, max_length=200)
        validation.text("description", description)
        aliases = validation.unique_names("model_aliases", model_aliases, validation.model_name)
        async with self._db.transaction() as conn:
            await catalog.ensure_aliases_exist(conn, aliases)
            await catalog.insert_group(conn, group_name, display_name or group_name, description)
            await catalog.add_aliases_to_group(conn, group_name, aliases)
            group = await catalog.get_group(conn, group_name)
            await _audit(conn, actor, "create", audit.GROUP, group_name, None, group)
            return group

    async def get_group(self, group_name: str) -> AccessGroup:
        validation.identifier("group_name", group_name)
        async with self._db.transaction() as conn:
            return await catalog.get_group(conn, group_name)

    async def list_groups(self, page_size: int, page_token: str) -> Page[AccessGroup]:
        page = pagination.page_request(page_size, page_token, {})
        async with self._db.transaction() as conn:
            rows = await catalog.list_groups(conn, pagination.after_id(page), page.size + 1)
        return pagination.page(rows, page, lambda group: (group.group_name,))

    async def update_group(
        self, actor: Actor, group_name: str, display_name: str | None, description: str | None
    ) -> AccessGroup:
        validation.identifier("group_name", group_name)
        values: dict[str, Any] = {}
        if display_name is not None:
            values["display_name"] = validation.label("display_name", display_name, max_length=200) or group_name
        if description is not None:
            values["description"] = validation.text("description", description)
        async with self._db.transaction() as conn:
            await catalog.lock_group(conn, group_name)
            before = await catalog.get_group(conn, group_name)
            if not values:
                return before
            await catalog.update_group(conn, group_name, values)
            after = await catalog.get_group(conn, group_name)
            await _audit(conn, actor, "update", audit.GROUP, group_name, before, after)
            return after

    async def delete_group(self, actor: Actor, group_name: str, force: bool) -> list[str]:
        """Returns the teams that had the group: archived ones (which never block the
        deletion: they are history), and active ones (only possible with force). Each
        team's own trail records what it lost."""
        validation.identifier("group_name", group_name)
        async with self._db.transaction() as conn:
            users = await _lock_users_then(
                conn,
                lambda: catalog.teams_using_group(conn, group_name),
                lambda: catalog.lock_group(conn, group_name),
            )
            before = await catalog.get_group(conn, group_name)
            tenancy.ensure_unused("model access group", group_name, _active(users), "an access group", force)
            await catalog.delete_group(conn, group_name)
            return await _record_deletion(conn, actor, audit.GROUP, group_name, before, users)

    async def change_group_aliases(
        self, actor: Actor, group_name: str, model_aliases: list[str], how: Change
    ) -> AccessGroup:
        validation.identifier("group_name", group_name)
        aliases = validation.unique_names("model_aliases", model_aliases, validation.model_name)
        async with self._db.transaction() as conn:
            await catalog.lock_group(conn, group_name)
            before = await catalog.get_group(conn, group_name)
            if how != "remove":
                await catalog.ensure_aliases_exist(conn, aliases)
            await catalog.change_group_aliases(conn, group_name, aliases, how)
            after = await catalog.get_group(conn, group_name)
            if after.model_aliases != before.model_aliases:
                await catalog.update_group(conn, group_name, {})
                after = await catalog.get_group(conn, group_name)
                await _audit(conn, actor, f"{how}_models", audit.GROUP, group_name, before, after)
            return after

    # ----------------------------------------------------------------------- aliases

    async def catalog_models(self) -> list[str]:
        """The LiteLLM proxy's models; UNAVAILABLE if it cannot be asked."""
        try:
            return sorted(set(await self._models.list_models()))
        except DomainError as error:
            if error.kind is not Kind.UNAVAILABLE:
                raise
            cause: Exception = error
        except ValueError as error:  # a 200 that is not the JSON model list
            cause = error
        raise DomainError(
            Kind.UNAVAILABLE,
            Reason.UPSTREAM_UNAVAILABLE,
            "cannot check models against the LiteLLM catalog: the model gateway is unreachable or did not list "
            "its models; nothing was changed, retry shortly",
        ) from cause

    async def catalog(self) -> tuple[list[str], list[str]]:
        """The proxy's models, and those of them it has no price for (asked now)."""
        models = await self.catalog_models()
        prices = await self._prices.prices_now()
        if prices is None:
            raise DomainError(
                Kind.UNAVAILABLE,
                Reason.UPSTREAM_UNAVAILABLE,
                "cannot read the models' prices: the model gateway did not answer its /model/info; retry shortly",
            )
        return models, [model for model in models if model not in prices]

    async def _check_models(self, actual_model: str, fallback_models: list[str]) -> None:
        tenancy.check_models_known(actual_model, fallback_models, set(await self.catalog_models()))

    @staticmethod
    def _route(actual_model: str, fallback_models: list[str]) -> list[str]:
        validation.model_name("actual_model", actual_model)
        fallbacks = validation.unique_names("fallback_models", fallback_models, validation.model_name)
        if actual_model in fallbacks:
            raise invalid_argument("fallback_models", "must not repeat actual_model")
        return [actual_model, *fallbacks]

    async def create_alias(
        self,
        actor: Actor,
        model_alias: str,
        actual_model: str,
        fallback_models: list[str],
        access_groups: list[str],
        display_name: str,
        description: str,
    ) -> ModelAlias:
        validation.alias_name("model_alias", model_alias)
        models = self._route(actual_model, fallback_models)
        groups = validation.unique_names("access_groups", access_groups)
        validation.label("display_name", display_name, max_length=200)
        validation.text("description", description)
        await self._check_models(models[0], models[1:])
        async with self._db.transaction() as conn:
            await catalog.ensure_groups_exist(conn, groups)
            await catalog.insert_alias(conn, model_alias, models, display_name or model_alias, description, groups)
            alias = await catalog.get_alias(conn, model_alias)
            await _audit(conn, actor, "create", audit.ALIAS, model_alias, None, alias)
            return alias

    async def get_alias(self, model_alias: str) -> ModelAlias:
        validation.model_name("model_alias", model_alias)
        async with self._db.transaction() as conn:
            return await catalog.get_alias(conn, model_alias)

    async def list_aliases(self, access_group: str, page_size: int, page_token: str) -> Page[ModelAlias]:
        if access_group:
            validation.identifier("access_group", access_group)
        page = pagination.page_request(page_size, page_token, {"access_group": access_group})
        async with self._db.transaction() as conn:
            rows = await catalog.list_aliases(conn, access_group, pagination.after_id(page), page.size + 1)
        return pagination.page(rows, page, lambda alias: (alias.model_alias,))

    async def update_alias(
        self,
        actor: Actor,
        model_alias: str,
        actual_model: str | None,
        fallback_models: list[str],
        display_name: str | None,
        description: str | None,
    ) -> ModelAlias:
        validation.model_name("model_alias", model_alias)
        values: dict[str, Any] = {}
        if actual_model is not None:
            values["models"] = self._route(actual_model, fallback_models)
        elif fallback_models:
            raise invalid_argument("fallback_models", "send actual_model with it: the route is replaced as a whole")
        if display_name is not None:
            values["display_name"] = validation.label("display_name", display_name, max_length=200) or model_alias
        if description is not None:
            values["description"] = validation.text("description", description)
        if "models" in values:
            await self._check_models(values["models"][0], values["models"][1:])
        async with self._db.transaction() as conn:
            await catalog.lock_alias(conn, model_alias)
            before = await catalog.get_alias(conn, model_alias)
            if not values:
                return before
            await catalog.update_alias(conn, model_alias, values)
            after = await catalog.get_alias(conn, model_alias)
            await _audit(conn, actor, "update", audit.ALIAS, model_alias, before, after)
            return after

    async def delete_alias(self, actor: Actor, model_alias: str, force: bool) -> list[str]:
        """Returns the teams whose default_model was cleared: archived ones (which never
        block the deletion), and active ones (only possible with force). Each team's own
        trail records it."""
        validation.model_name("model_alias", model_alias)
        async with self._db.transaction() as conn:
            users = await _lock_users_then(
                conn,
                lambda: catalog.teams_defaulting_to(conn, model_alias),
                lambda: catalog.lock_alias(conn, model_alias),
            )
            before = await catalog.get_alias(conn, model_alias)
            tenancy.ensure_unused("model alias", model_alias, _active(users), "the default_model", force)
            await catalog.delete_alias(conn, model_alias)
            return await _record_deletion(conn, actor, audit.ALIAS, model_alias, before, users)

    async def change_alias_groups(
        self, actor: Actor, model_alias: str, access_groups: list[str], how: Change
    ) -> ModelAlias:
        validation.model_name("model_alias", model_alias)
        groups = validation.unique_names("access_groups", access_groups)
        async with self._db.transaction() as conn:
            # The groups before the alias: the order of every change that locks both
            # (catalog's lock order); the other one deadlocked with a group's change.
            if how != "remove":
                await catalog.ensure_groups_exist(conn, groups)
            await catalog.lock_alias(conn, model_alias)
            before = await catalog.get_alias(conn, model_alias)
            await catalog.change_alias_groups(conn, model_alias, groups, how)
            after = await catalog.get_alias(conn, model_alias)
            if after.access_groups != before.access_groups:
                await catalog.update_alias(conn, model_alias, {})
                after = await catalog.get_alias(conn, model_alias)
                await _audit(conn, actor, f"{how}_access_groups", audit.ALIAS, model_alias, before, after)
            return after

    # ------------------------------------------------------------------------- teams

    async def create_team(
        self,
        actor: Actor,
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
        tokens_per_credit: int | None = None,
        credits_per_dollar: str | None = None,
        markup_percent: str | None = None,
        credits_overdraft_limit: int | None = None,
        calls_per_minute: int | None = None,
        low_credit_threshold: int | None = None,
        max_calls_per_job: int | None = None,
        max_cost_usd_per_job: str | None = None,
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
        rates = tenancy.team_update(
            tokens_per_credit=tokens_per_credit,
            credits_per_dollar=credits_per_dollar,
            markup_percent=markup_percent,
            credits_overdraft_limit=credits_overdraft_limit,
            calls_per_minute=calls_per_minute,
            low_credit_threshold=low_credit_threshold,
            max_calls_per_job=max_calls_per_job,
            max_cost_usd_per_job=max_cost_usd_per_job,
        ).columns()
        new_key = keys.new_key()
        async with self._db.transaction() as conn:
            org = await catalog.get_organization(conn, organization_id, lock="share")
            tenancy.ensure_organization_writable(org)
            await catalog.ensure_groups_exist(conn, groups)
            if default_model:
                await _hold_alias(conn, default_model)
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
                rates=rates,
            )
            tenancy.ensure_default_reachable(default_model, await team_store.reachable_aliases(conn, team_id))
            key = await key_store.insert_key(conn, team_id, key_name or tenancy.DEFAULT_KEY_NAME, new_key)
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
            await _audit(conn, actor, "create", audit.TEAM, team_id, None, team)
            await _audit(conn, actor, "create", audit.KEY, str(key.key_id), None, key)
        return CreatedTeam(team=team, key=key, secret=new_key.secret)

    async def get_team(self, team_id: str) -> Team:
        validation.identifier("team_id", team_id)
        async with self._db.transaction() as conn:
            return await team_store.get_team(conn, team_id)

    async def list_teams(self, organization_id: str, status: str, page_size: int, page_token: str) -> Page[Team]:
        """`status` is a Team.Status name; STATUS_UNSPECIFIED means every status but ARCHIVED."""
        if organization_id:
            validation.identifier("organization_id", organization_id)
        archived = status == "ARCHIVED"
        status_value = None if archived or status == "STATUS_UNSPECIFIED" else tenancy.team_status("status", status)
        filters = {"organization_id": organization_id, "status": status}
        page = pagination.page_request(page_size, page_token, filters)
        async with self._db.transaction() as conn:
            if organization_id:
                await catalog.get_organization(conn, organization_id)
            rows = await team_store.list_teams(
                conn,
                organization_id=organization_id,
                status=status_value.value if status_value else None,
                archived=archived,
                after=pagination.after_id(page),
                limit=page.size + 1,
            )
        return pagination.page(rows, page, lambda team: (team.team_id,))

    async def update_team(self, actor: Actor, team_id: str, **fields: Any) -> Team:
        """`fields` are those of tenancy.team_update: the ones the operator sent, or None."""
        validation.identifier("team_id", team_id)
        changes = tenancy.team_update(**fields)
        async with self._db.transaction() as conn:
            before = await team_store.lock_team(conn, team_id)
            tenancy.ensure_team_writable(before)
            if changes.credits_overdraft_limit is not None:
                tenancy.ensure_overdraft_covers(before, changes.credits_overdraft_limit)
            if changes.default_model:
                await _hold_alias(conn, changes.default_model)
                tenancy.ensure_default_reachable(
                    changes.default_model, await team_store.reachable_aliases(conn, team_id)
                )
            columns = changes.columns()
            if not columns:
                return before
            await team_store.update_team(conn, team_id, columns)
            after = await team_store.get_team(conn, team_id)
            await _audit(conn, actor, "update", audit.TEAM, team_id, before, after)
            return after

    async def change_team_groups(self, actor: Actor, team_id: str, access_groups: list[str], how: Change) -> Team:
        validation.identifier("team_id", team_id)
        groups = validation.unique_names("access_groups", access_groups)
        async with self._db.transaction() as conn:
            before = await team_store.lock_team(conn, team_id)
            tenancy.ensure_team_writable(before)
            if how != "remove":
                await catalog.ensure_groups_exist(conn, groups)
            await team_store.change_groups(conn, team_id, groups, how)
            after = await team_store.get_team(conn, team_id)
            if after.access_groups != before.access_groups:
                await _audit(conn, actor, f"{how}_access_groups", audit.TEAM, team_id, before, after)
            return after

    async def delete_team(self, actor: Actor, team_id: str) -> tuple[str, int]:
        """(DELETED or ARCHIVED, how many keys the archival revoked)."""
        validation.identifier("team_id", team_id)
        async with self._key_changes.change(team_id) as change, self._db.transaction() as conn:
            before = await team_store.lock_team(conn, team_id)
            if before.archived:
                return ARCHIVED, 0
            tenancy.ensure_no_open_jobs(team_id, await team_store.open_jobs(conn, team_id))
            if not await team_store.has_history(conn, team_id):
                await team_store.delete_team(conn, team_id)
                await _audit(conn, actor, "delete", audit.TEAM, team_id, before, None)
                outcome, revoked = DELETED, 0
            else:
                await team_store.archive_team(conn, team_id)
                revocations = await key_store.revoke_team_keys(conn, team_id)
                after = await team_store.get_team(conn, team_id)
                await _audit(conn, actor, "archive", audit.TEAM, team_id, before, after)
                for key_before, key_after in revocations:  # each key's own trail says so too
                    await _audit(conn, actor, "revoke", audit.KEY, str(key_before.key_id), key_before, key_after)
                outcome, revoked = ARCHIVED, len(revocations)
            await announce_key_change(conn, team_id, change)
        return outcome, revoked

    # -------------------------------------------------------------------------- keys

    async def create_key(self, actor: Actor, team_id: str, name: str, expires_at: datetime | None) -> CreatedKey:
        validation.identifier("team_id", team_id)
        name = validation.label("name", name, max_length=100) or tenancy.DEFAULT_KEY_NAME
        now = self._now()
        expiry = tenancy.key_expiry("expires_at", expires_at, now)
        new_key = keys.new_key()
        async with self._db.transaction() as conn:
            tenancy.ensure_team_writable(await team_store.lock_team(conn, team_id))
            if await key_store.current_key_named(conn, team_id, name, now) is not None:
                raise DomainError(
                    Kind.ALREADY_EXISTS,
                    Reason.ALREADY_EXISTS,
                    f"team '{team_id}' already has an active key named '{name}'; rotate it to replace it",
                    metadata={"resource": "key", "id": name},
                )
            key = await key_store.insert_key(conn, team_id, name, new_key, expiry)
            await _audit(conn, actor, "create", audit.KEY, str(key.key_id), None, key)
        return CreatedKey(key=key, secret=new_key.secret)

    async def list_keys(self, team_id: str, state: str, page_size: int, page_token: str) -> Page[TeamKey]:
        validation.identifier("team_id", team_id)
        page = pagination.page_request(page_size, page_token, {"team_id": team_id, "state": state})
        position = _key_position(pagination.after(page, str, str))
        async with self._db.transaction() as conn:
            await team_store.get_team(conn, team_id)
            rows = await key_store.list_keys(
                conn, team_id, state=state, now=self._now(), after=position, limit=page.size + 1
            )
        return pagination.page(rows, page, lambda key: (key.created_at.isoformat(), str(key.key_id)))

    async def revoke_key(self, actor: Actor, team_id: str, key_id: str) -> TeamKey:
        validation.identifier("team_id", team_id)
        kid = validation.uuid_field("key_id", key_id)
        async with self._key_changes.change(team_id) as change, self._db.transaction() as conn:
            await team_store.lock_team(conn, team_id)
            before = await key_store.get_key(conn, team_id, kid)
            if before.revoked_at is not None:
                return before
            after = await key_store.revoke_key(conn, kid)
            await _audit(conn, actor, "revoke", audit.KEY, key_id, before, after)
            await announce_key_change(conn, team_id, change)
        return after

    async def rotate_key(
        self, actor: Actor, team_id: str, key_id: str, grace_seconds: int | None, expires_at: datetime | None
    ) -> tuple[CreatedKey, TeamKey]:
        """(the new key with its secret, the old key now expiring after the grace period)."""
        validation.identifier("team_id", team_id)
        kid = validation.uuid_field("key_id", key_id)
        grace = tenancy.rotation_grace(grace_seconds)
        now = self._now()
        expiry = tenancy.key_expiry("expires_at", expires_at, now)
        new_key = keys.new_key()
        async with self._key_changes.change(team_id) as change, self._db.transaction() as conn:
            tenancy.ensure_team_writable(await team_store.lock_team(conn, team_id))
            before = await key_store.get_key(conn, team_id, kid)
            tenancy.ensure_rotatable(before, now)
            created = await key_store.insert_key(conn, team_id, before.name, new_key, expiry)
            retired = await key_store.retire_key(conn, kid, tenancy.end_of_grace(before, now, grace), created.key_id)
            await _audit(conn, actor, "rotate", audit.KEY, key_id, before, retired)
            await _audit(conn, actor, "create", audit.KEY, str(created.key_id), None, created)
            await announce_key_change(conn, team_id, change)
        return CreatedKey(key=created, secret=new_key.secret), retired

    # ------------------------------------------------------------------------- audit

    async def list_audit(
        self, resource_type: str, resource_id: str, page_size: int, page_token: str
    ) -> Page[AuditEntry]:
        if resource_type and resource_type not in audit.RESOURCE_TYPES:
            raise invalid_argument("resource_type", "must be one of " + ", ".join(audit.RESOURCE_TYPES))
        if resource_id and not resource_type:
            raise invalid_argument("resource_type", "is required with resource_id")
        validation.label("resource_id", resource_id, max_length=200)
        filters = {"resource_type": resource_type, "resource_id": resource_id}
        page = pagination.page_request(page_size, page_token, filters)
        position = pagination.after(page, int)
        before_id = None if position is None else position[0]
        async with self._db.transaction() as conn:
            rows = await audit_store.list_entries(
                conn, resource_type=resource_type, resource_id=resource_id, before_id=before_id, limit=page.size + 1
            )
        return pagination.page(rows, page, lambda entry: (entry.audit_id,))


def _key_position(position: tuple[Any, ...] | None) -> tuple[datetime, uuid.UUID] | None:
    """Keys sort by (created_at, key_id), newest first."""
    if position is None:
        return None
    try:
        return datetime.fromisoformat(position[0]), uuid.UUID(position[1])
    except ValueError:
        raise invalid_argument("page_token", "is not a token this API issued") from None


async def _hold_alias(conn: Connection, model_alias: str) -> None:
    """Lock the alias a team is about to name as its default until the transaction ends, so
    a concurrent deletion waits instead of making the write fail; an unknown alias is a bad
    `default_model`, not a 500 from the foreign key."""
    try:
        await catalog.lock_alias(conn, model_alias)
    except DomainError as error:
        if error.kind is not Kind.NOT_FOUND:
            raise
        raise invalid_argument("default_model", f"'{model_alias}' is not a model alias") from None


async def _lock_users_then(
    conn: Connection, users: Callable[[], Awaitable[list[str]]], lock_resource: Callable[[], Awaitable[None]]
) -> list[Team]:
    """Lock the teams that use a group or alias (`users`), then the group or alias itself
    (`lock_resource`), and return those teams as they are now, locked.

    Teams first, as every other change takes them (a team change that names a group or
    alias locks the team, then the group or alias): the other order could deadlock with
    such a change. Holding the group or alias stops new teams from taking it up (their
    foreign key check waits for it); one that did between the two reads is retried with,
    after rolling back to a savepoint, which releases the locks taken since."""
    candidates: set[str] = set()
    while True:
        candidates |= set(await users())
        async with conn.begin_nested() as savepoint:
            locked = await team_store.lock_teams(conn, sorted(candidates))
            await lock_resource()
            now = set(await users())
            if now <= candidates:
                return [team for team in locked if team.team_id in now]
            await savepoint.rollback()


def _active(users: list[Team]) -> list[str]:
    """The teams a deletion would disturb: an archived team is history, it never blocks one."""
    return [team.team_id for team in users if not team.archived]


async def _record_deletion(
    conn: Connection, actor: Actor, resource_type: str, name: str, before: Any, users: list[Team]
) -> list[str]:
    """Audit a group's or alias's deletion, and on each team it changed (`users`, locked,
    as they were before; archived ones too) what the team lost, as
    `<resource type>.delete` with the team before and after. Returns their ids."""
    affected = [team.team_id for team in users]
    await team_store.touch_teams(conn, affected)
    after = {team.team_id: team for team in await team_store.get_teams(conn, affected)}
    await _audit(
        conn, actor, "delete", resource_type, name, before, {"affected_team_ids": affected} if affected else None
    )
    for team in users:
        await _audit(conn, actor, f"{resource_type}.delete", audit.TEAM, team.team_id, team, after[team.team_id])
    return affected


async def _audit(
    conn: Connection, actor: Actor, action: str, resource_type: str, resource_id: str, before: Any, after: Any
) -> None:
    await audit_store.append(conn, audit.record(actor, action, resource_type, resource_id, before, after))
