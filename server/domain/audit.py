"""The audit log: who changed what, when, from what to what.

Snapshots are the domain objects as plain JSON (what the API shows), built by one pure
function so that a secret can never slip in: the objects given to it hold none.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from server.domain.decimals import plain

ORGANIZATION = "organization"
TEAM = "team"
GROUP = "model_access_group"
ALIAS = "model_alias"
KEY = "team_key"
WEBHOOK_ENDPOINT = "webhook_endpoint"
RESOURCE_TYPES = (ORGANIZATION, TEAM, GROUP, ALIAS, KEY, WEBHOOK_ENDPOINT)


@dataclass(frozen=True)
class Actor:
    """Who made a change: the admin key is one identity; the request says where from."""

    name: str
    request_id: str = ""
    peer: str = ""


@dataclass(frozen=True)
class AuditRecord:
    actor: Actor
    action: str
    resource_type: str
    resource_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    actor: str
    request_id: str
    peer: str
    action: str
    resource_type: str
    resource_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime


def snapshot(value: Any) -> Any:
    """A domain value as JSON-compatible data."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if callable(getattr(value, "audited", None)):  # a value with its own view for the log
        return snapshot(value.audited())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: snapshot(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):  # a stored 0.0000000000 is "0", not "0E-10"
        return plain(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [snapshot(v) for v in value]
    raise TypeError(f"cannot snapshot {type(value).__name__}")


def record(
    actor: Actor, action: str, resource_type: str, resource_id: str, before: Any = None, after: Any = None
) -> AuditRecord:
    return AuditRecord(
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        before=None if before is None else snapshot(before),
        after=None if after is None else snapshot(after),
    )
