"""The admin audit log: appended in the transaction of the change it records.

Entries take their audit_id in the order they commit, so the log can be paged by
audit_id without skipping one (see `append`).
"""

from __future__ import annotations

from sqlalchemy import and_, insert, select, text

from server.domain.audit import AuditEntry, AuditRecord
from server.storage.database import Connection
from server.storage.tables import admin_audit_log, known_fields

_APPEND_LOCK = 7_242_003  # pg advisory lock id: entries take their audit_id one transaction at a time


async def append(conn: Connection, record: AuditRecord) -> None:
    """Append an entry; call it last in the transaction, after every other lock it takes.

    The entry takes its audit_id under a transaction-level advisory lock, held until the
    transaction commits or rolls back, so entries take their ids one transaction at a
    time, in the order those commit (a commit is visible before its locks are released).
    A reader therefore sees the log as a prefix of audit_id order: an entry committed
    after a page was read has a greater id than any entry that page showed, and paging
    newest first never skips one (`list_entries`).

    Without the lock an id was taken at INSERT, before commit: an entry committed after
    a reader had paged past its id was never shown. The lock costs an audited change one
    more statement, and a wait while another audited change goes from its append to its
    commit: admin changes only (job creation and LLM calls are never audited), which
    append after taking their other locks and only read afterwards, so the waits are
    short and no holder of this lock waits for a change that waits for it (no deadlock).
    A change that locked a row after appending could deadlock with one holding that row
    and waiting here.

    A visibility horizon (listing only entries older than the oldest transaction in
    flight) would spare writers the wait but hide the newest entries, the operator's own
    change included, while any writing transaction on the server is open.
    """
    await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _APPEND_LOCK})
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
    """Newest first; `before_id` is the last audit_id of the previous page.

    Complete by construction of audit_id (`append`): nothing is hidden, and a pass shows
    every entry committed before its first page; entries committed while it pages come
    before its first page, for the next pass."""
    conditions = []
    if resource_type:
        conditions.append(admin_audit_log.c.resource_type == resource_type)
    if resource_id:
        conditions.append(admin_audit_log.c.resource_id == resource_id)
    if before_id is not None:
        conditions.append(admin_audit_log.c.audit_id < before_id)
    query = select(admin_audit_log).where(and_(True, *conditions))
    rows = await conn.execute(query.order_by(admin_audit_log.c.audit_id.desc()).limit(limit))
    return [AuditEntry(**known_fields(AuditEntry, row)) for row in rows]
