"""Jobs and their calls."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from server.domain.errors import not_found
from server.domain.jobs import OPEN_STATUSES, CallRecord, CallStatus, Job, JobStatus
from server.storage.database import Connection
from server.storage.tables import jobs, llm_calls

_OPEN = [s.value for s in OPEN_STATUSES]


def _job(row: Any) -> Job:
    values = dict(row._mapping)
    values["status"] = JobStatus(values["status"])
    return Job(**values)


async def insert_job(
    conn: Connection,
    *,
    team_id: str,
    job_type: str,
    user_id: str,
    metadata: dict[str, Any],
    credits_reserved: int,
    idempotency_key: str | None,
) -> Job | None:
    """Insert a new pending job. None when the team already has a job with this
    idempotency key (the caller rolls back and returns that job instead)."""
    row = (
        await conn.execute(
            pg_insert(jobs)
            .values(
                job_id=uuid.uuid4(),
                team_id=team_id,
                job_type=job_type,
                user_id=user_id,
                status=JobStatus.PENDING.value,
                metadata=metadata,
                credits_reserved=credits_reserved,
                idempotency_key=idempotency_key,
            )
            .on_conflict_do_nothing(index_elements=[jobs.c.team_id, jobs.c.idempotency_key])
            .returning(*jobs.c)
        )
    ).first()
    return None if row is None else _job(row)


async def find_by_idempotency_key(conn: Connection, team_id: str, key: str) -> Job | None:
    row = (
        await conn.execute(select(jobs).where(and_(jobs.c.team_id == team_id, jobs.c.idempotency_key == key)))
    ).first()
    return None if row is None else _job(row)


async def get_job(conn: Connection, job_id: uuid.UUID, team_id: str, *, for_update: bool = False) -> Job:
    """The team's job; NOT_FOUND for unknown ids and for other teams' jobs alike."""
    query = select(jobs).where(and_(jobs.c.job_id == job_id, jobs.c.team_id == team_id))
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise not_found("job", str(job_id))
    return _job(row)


async def start_job(conn: Connection, job_id: uuid.UUID, team_id: str) -> bool:
    """Mark an open job in progress (first call). False if the job is not open or not the team's."""
    row = (
        await conn.execute(
            update(jobs)
            .where(and_(jobs.c.job_id == job_id, jobs.c.team_id == team_id, jobs.c.status.in_(_OPEN)))
            .values(
                status=JobStatus.IN_PROGRESS.value,
                started_at=func.coalesce(jobs.c.started_at, func.now()),
                last_activity_at=func.now(),
            )
            .returning(jobs.c.job_id)
        )
    ).first()
    return row is not None


async def finish_job(
    conn: Connection,
    job_id: uuid.UUID,
    *,
    status: JobStatus,
    error_message: str,
    metadata_patch: dict[str, Any],
    credits_charged: int,
    credits_remaining_after: int,
    credits_shortfall: int = 0,
) -> Job:
    row = (
        await conn.execute(
            update(jobs)
            .where(jobs.c.job_id == job_id)
            .values(
                status=status.value,
                completed_at=func.now(),
                error_message=error_message,
                metadata=jobs.c.metadata.op("||")(metadata_patch) if metadata_patch else jobs.c.metadata,
                credits_charged=credits_charged,
                credits_remaining_after=credits_remaining_after,
                credits_shortfall=credits_shortfall,
            )
            .returning(*jobs.c)
        )
    ).one()
    return _job(row)


async def mark_refunded(conn: Connection, job_id: uuid.UUID, credits: int) -> None:
    await conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(credits_refunded=credits))


async def abandoned(conn: Connection, idle_seconds: float, limit: int) -> list[Job]:
    """Open jobs idle for longer than `idle_seconds`, locked; jobs another process is
    already expiring are skipped, so several server processes can run the reaper."""
    rows = await conn.execute(
        select(jobs)
        .where(
            and_(
                jobs.c.status.in_(_OPEN),
                jobs.c.last_activity_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, idle_seconds),
            )
        )
        .order_by(jobs.c.last_activity_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_job(row) for row in rows]


async def merge_metadata(conn: Connection, job_id: uuid.UUID, patch: dict[str, Any]) -> None:
    await conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(metadata=jobs.c.metadata.op("||")(patch)))


async def insert_call(conn: Connection, call: CallRecord) -> None:
    await conn.execute(
        insert(llm_calls).values(
            call_id=call.call_id,
            job_id=call.job_id,
            team_id=call.team_id,
            status=call.status.value,
            purpose=call.purpose,
            model_alias=call.model_alias,
            served_model=call.served_model,
            attempted_models=list(call.attempted_models),
            streamed=call.streamed,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            tokens_estimated=call.tokens_estimated,
            provider_cost_usd=call.provider_cost_usd,
            billed_cost_usd=call.billed_cost_usd,
            cost_source=call.cost_source,
            latency_ms=call.latency_ms,
            first_token_ms=call.first_token_ms,
            finish_reason=call.finish_reason,
            error_reason=call.error_reason,
            error_message=call.error_message,
            content=call.content,
        )
    )


async def list_calls(conn: Connection, job_id: uuid.UUID) -> tuple[CallRecord, ...]:
    rows = await conn.execute(
        select(llm_calls).where(llm_calls.c.job_id == job_id).order_by(llm_calls.c.created_at, llm_calls.c.call_id)
    )
    calls = []
    for row in rows:
        values = dict(row._mapping)
        values["status"] = CallStatus(values["status"])
        values["attempted_models"] = tuple(values["attempted_models"])
        values["provider_cost_usd"] = Decimal(values["provider_cost_usd"])
        values["billed_cost_usd"] = Decimal(values["billed_cost_usd"])
        calls.append(CallRecord(**values))
    return tuple(calls)


async def list_team_jobs(
    conn: Connection,
    team_id: str,
    *,
    status: JobStatus | None,
    job_type: str,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Job]:
    """A team's jobs, newest first (created_at, then job_id, descending), after the
    `before` position of a previous page. Served by the (team_id, created_at) index."""
    query = select(jobs).where(jobs.c.team_id == team_id)
    if status is not None:
        query = query.where(jobs.c.status == status.value)
    if job_type:
        query = query.where(jobs.c.job_type == job_type)
    if before is not None:
        query = query.where(tuple_(jobs.c.created_at, jobs.c.job_id) < tuple_(*before))
    query = query.order_by(jobs.c.created_at.desc(), jobs.c.job_id.desc()).limit(limit)
    return [_job(row) for row in await conn.execute(query)]


async def list_calls_of_jobs(conn: Connection, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[CallRecord, ...]]:
    """The calls of several jobs in one query, oldest first per job."""
    found: dict[uuid.UUID, list[CallRecord]] = {job_id: [] for job_id in job_ids}
    if not job_ids:
        return {}
    rows = await conn.execute(
        select(llm_calls)
        .where(llm_calls.c.job_id.in_(job_ids))
        .order_by(llm_calls.c.job_id, llm_calls.c.created_at, llm_calls.c.call_id)
    )
    for row in rows:
        values = dict(row._mapping)
        values["status"] = CallStatus(values["status"])
        values["attempted_models"] = tuple(values["attempted_models"])
        values["provider_cost_usd"] = Decimal(values["provider_cost_usd"])
        values["billed_cost_usd"] = Decimal(values["billed_cost_usd"])
        found[values["job_id"]].append(CallRecord(**values))
    return {job_id: tuple(calls) for job_id, calls in found.items()}
