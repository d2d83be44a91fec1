"""The admin audit log: appended in the transaction of the change it records."""

from __future__ import annotations

from sqlalchemy import and_, insert, select

from server.domain.audit import AuditEntry, AuditRecord
from server.storage.database import Connection
from server.storage.tables import admin_audit_log


async def append(conn: Connection, record: AuditRecord) -> None:
    await conn.execute(
        insert(admin_audit_log).values(
            actor=record.actor.name,
            request_id=record.actor.request_id,
            peer=record.actor.peer,
            action=record.action,
            resource_type=record.resource_type,
            resource_id=record.resource_id,
            before=record.before,
            after=record.after,
        )
    )


async def list_entries(
    conn: Connection, *, resource_type: str, resource_id: str, before_id: int | None, limit: int
) -> list[AuditEntry]:
    """Newest first; `before_id` is the last audit_id of the previous page."""
    conditions = []
    if resource_type:
        conditions.append(admin_audit_log.c.resource_type == resource_type)
    if resource_id:
        conditions.append(admin_audit_log.c.resource_id == resource_id)
    if before_id is not None:
        conditions.append(admin_audit_log.c.audit_id < before_id)
    query = select(admin_audit_log).where(and_(True, *conditions))
    rows = await conn.execute(query.order_by(admin_audit_log.c.audit_id.desc()).limit(limit))
    return [AuditEntry(**row._mapping) for row in rows]
