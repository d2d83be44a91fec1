"""The model aliases a team may call, as the team sees them (never the real models)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from server.domain import models, validation
from server.storage import credits as credit_store
from server.storage import teams as team_store
from server.storage.database import Database


@dataclass(frozen=True)
class AvailableModel:
    model_alias: str
    display_name: str
    description: str
    is_default: bool
    created_at: datetime


class TeamModels:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def available(self, team_id: str) -> tuple[list[AvailableModel], str]:
        validation.identifier("team_id", team_id)
        async with self._db.transaction() as conn:
            team = await credit_store.team_state(conn, team_id)
            details = await team_store.reachable_alias_details(conn, team_id)
        default = models.default_alias(team.default_model, [alias for alias, *_ in details]) or ""
        listed = [
            AvailableModel(alias, name, text, alias == default, created) for alias, name, text, created in details
        ]
        return listed, default
