"""Jobs and their calls."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, null, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from server.domain import validation
from server.domain.credits import BudgetMode, Rates
from server.domain.errors import not_found
from server.domain.jobs import (
    OPEN_STATUSES,
    PROVIDER_REFUSALS,
    CallRecord,
    CallStatus,
    Job,
    JobStatus,
    job_limits_calls,
)
from server.storage.credits import LOCK_TEAM_STATE, TEAM_STATE, TeamState, team_state_of
from server.storage.database import Connection, Statement, StatementConnection, as_statements
from server.storage.tables import column_list, jobs, known_fields, llm_calls

log = logging.getLogger(__name__)

_OPEN = [s.value for s in OPEN_STATUSES]


def _job(row: Any) -> Job:
    """From a SQLAlchemy row or a StatementConnection's named tuple, of the jobs columns
    `_JOB_COLUMNS` names: those a Job has (not creation_seq, the team list's order, nor
    the settled_* rates a late charge prices at, read_for_late_charge)."""
    values = known_fields(Job, row)
    values["status"] = JobStatus(values["status"])
    return Job(**values)


# An idempotency key is unique among the jobs that did not end free, failed or expired
# (0012). The index's predicate is written out, not bound: ON CONFLICT finds a partial
# unique index only from literal values (a prepared statement's generic plan could not
# prove that bound values imply its predicate).
_FREE_ENDS = (JobStatus.FAILED.value, JobStatus.EXPIRED.value)
_KEY_HOLDERS = text(f"status NOT IN ({', '.join(repr(status) for status in _FREE_ENDS)})")


async def insert_job(
    conn: Connection,
    *,
    team_id: str,
    job_type: str,
    user_id: str,
    metadata: dict[str, Any],
    credits_reserved: int,
    idempotency_key: str | None,
    single_call: bool = False,
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
                single_call=single_call,
            )
            .on_conflict_do_nothing(index_elements=[jobs.c.team_id, jobs.c.idempotency_key], index_where=_KEY_HOLDERS)
            .returning(*jobs.c)
        )
    ).first()
    return None if row is None else _job(row)


async def find_by_idempotency_key(conn: Connection, team_id: str, key: str) -> Job | None:
    """The job the key names: the one that is open or charged, else the latest that failed
    or expired (a single-call request may be retried over those, each try a job)."""
    row = (
        await conn.execute(
            select(jobs)
            .where(and_(jobs.c.team_id == team_id, jobs.c.idempotency_key == key))
            .order_by(jobs.c.status.in_(_FREE_ENDS), jobs.c.creation_seq.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else _job(row)


# The columns this release knows, never `*` (tables.py, column_list): statements that
# build a Job or a CallRecord read only these.
_JOB_COLUMNS = column_list(jobs)
_CALL_COLUMNS = column_list(llm_calls)
# A job's calls as the job views and settlements read them: every column but the answer's
# text (`content`, read back as NULL), which none of them shows or counts and which may be
# most of a call's bytes (a job can have made hundreds of thousands of calls).
_LISTED_CALL_COLUMNS = ", ".join(
    "NULL AS content" if column.name == "content" else column.name for column in llm_calls.c
)
_GET_JOB = Statement(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = :job_id AND team_id = :team_id")
_LOCK_JOB = Statement(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = :job_id AND team_id = :team_id FOR UPDATE")
_LIST_CALLS = Statement(
    f"SELECT {_LISTED_CALL_COLUMNS} FROM llm_calls WHERE job_id = :job_id ORDER BY created_at, call_id"
)
# A finished job's calls, retention's archived ones too (a late charge: a stream may outlive
# the retention of its job's other calls).
_LIST_ALL_CALLS = Statement(
    f"""SELECT {_CALL_COLUMNS} FROM (
            SELECT {_LISTED_CALL_COLUMNS} FROM llm_calls WHERE job_id = :job_id
            UNION ALL SELECT {_LISTED_CALL_COLUMNS} FROM llm_calls_archive WHERE job_id = :job_id
        ) calls ORDER BY created_at, call_id"""
)


async def get_job(
    conn: Connection | StatementConnection, job_id: uuid.UUID, team_id: str, *, for_update: bool = False
) -> Job:
    """The team's job; NOT_FOUND for unknown ids and for other teams' jobs alike."""
    statements = await as_statements(conn)
    row = await statements.first(_LOCK_JOB if for_update else _GET_JOB, {"job_id": job_id, "team_id": team_id})
    if row is None:
        raise not_found("job", str(job_id))
    return _job(row)


_SET_METADATA = Statement(
    f"""
    UPDATE jobs SET metadata = CAST(:metadata AS jsonb)
     WHERE job_id = :job_id AND team_id = :team_id
    RETURNING {_JOB_COLUMNS}
    """
)


async def merge_metadata(conn: StatementConnection, job_id: uuid.UUID, team_id: str, patch: dict[str, Any]) -> Job:
    """The job with `patch`'s keys set in its metadata, if that stays within
    MAX_JOB_METADATA_BYTES (else INVALID_ARGUMENT, and nothing changes); NOT_FOUND as
    get_job. In a transaction: the job's row is locked while the merge is measured, so
    concurrent merges of different keys all land."""
    job = await get_job(conn, job_id, team_id, for_update=True)
    merged = validation.merged_metadata("metadata", job.metadata, patch)
    row = await conn.first(_SET_METADATA, {"job_id": job_id, "team_id": team_id, "metadata": json.dumps(merged)})
    return _job(row)


_START_JOB = Statement(
    """
    UPDATE jobs
       SET status = 'in_progress', started_at = coalesce(started_at, now()), last_activity_at = now()
     WHERE job_id = :job_id AND team_id = :team_id AND status IN ('pending', 'in_progress')
    RETURNING job_id
    """
)


async def start_job(conn: StatementConnection, job_id: uuid.UUID, team_id: str) -> bool:
    """Mark an open job in progress (first call). False if the job is not open or not the team's."""
    return await conn.first(_START_JOB, {"job_id": job_id, "team_id": team_id}) is not None


async def mark_refunded(conn: Connection, job_id: uuid.UUID, credits: int) -> None:
    await conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(credits_refunded=credits))


async def abandoned(conn: Connection, idle_seconds: float, limit: int, *, single_call: bool = False) -> list[Job]:
    """Open jobs idle for longer than `idle_seconds` (with `single_call`: single-call jobs
    only), locked; jobs another process is already expiring are skipped, so several server
    processes can run the reaper."""
    conditions = [
        jobs.c.status.in_(_OPEN),
        jobs.c.last_activity_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, idle_seconds),
    ]
    if single_call:
        conditions.append(jobs.c.single_call)
    rows = await conn.execute(
        select(jobs)
        .where(and_(*conditions))
        .order_by(jobs.c.last_activity_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_job(row) for row in rows]


_TOUCH_JOBS = Statement(
    """
    UPDATE jobs SET last_activity_at = now()
     WHERE job_id = ANY(:job_ids) AND status IN ('pending', 'in_progress')
       AND last_activity_at < now() - make_interval(secs => :idle_seconds)
    RETURNING job_id
    """
)


async def touch_jobs(conn: StatementConnection, job_ids: list[uuid.UUID], *, idle_seconds: float) -> int:
    """Set to now the last activity of those of the open jobs whose last activity is
    older than `idle_seconds`; returns how many it set."""
    return len(await conn.all(_TOUCH_JOBS, {"job_ids": job_ids, "idle_seconds": idle_seconds}))


async def list_calls(conn: Connection | StatementConnection, job_id: uuid.UUID) -> tuple[CallRecord, ...]:
    """Every call of the job, oldest first (by created_at, then call_id), without `content`."""
    statements = await as_statements(conn)
    return tuple(_call(row) for row in await statements.all(_LIST_CALLS, {"job_id": job_id}))


# A page of a job's calls in the order of _LIST_CALLS, after a position (created_at,
# call_id) or from the start, served by the (job_id, created_at) index. `:any_team` (the
# admin key) reads any team's job; otherwise only `:team_id`'s, as get_job.
_JOB_EXISTS = Statement(
    "SELECT EXISTS (SELECT FROM jobs WHERE job_id = :job_id AND (:any_team OR team_id = :team_id)) AS found"
)
_CALLS_PAGE = f"""
    SELECT {_LISTED_CALL_COLUMNS} FROM llm_calls
     WHERE job_id = :job_id AND (:any_team OR team_id = :team_id) {{after}}
     ORDER BY created_at, call_id
     LIMIT :limit
"""
_FIRST_CALLS = Statement(_CALLS_PAGE.format(after=""))
_CALLS_AFTER = Statement(_CALLS_PAGE.format(after="AND (created_at, call_id) > (:after_created_at, :after_call_id)"))


async def list_calls_page(
    conn: StatementConnection,
    job_id: uuid.UUID,
    team_id: str | None,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[CallRecord]:
    """At most `limit` of the job's calls, oldest first, after the position `after` (a
    call's created_at and call_id) or from the first; without `content`. The job must be
    `team_id`'s (None: any team's): NOT_FOUND otherwise, as for an unknown job. Both are
    read in one round trip."""
    params: dict[str, Any] = {"job_id": job_id, "any_team": team_id is None, "team_id": team_id or "", "limit": limit}
    if after is None:
        page = _FIRST_CALLS
    else:
        page = _CALLS_AFTER
        params["after_created_at"], params["after_call_id"] = after
    job_rows, call_rows = await conn.batch((_JOB_EXISTS, params), (page, params))
    if not job_rows[0].found:
        raise not_found("job", str(job_id))
    return [_call(row) for row in call_rows]


def _call(row: Any) -> CallRecord:
    """From a StatementConnection's named tuple or a SQLAlchemy row."""
    values = known_fields(CallRecord, row)
    values["status"] = CallStatus(values["status"])
    values["attempted_models"] = tuple(values["attempted_models"])
    values["provider_cost_usd"] = Decimal(values["provider_cost_usd"])
    values["billed_cost_usd"] = Decimal(values["billed_cost_usd"])
    return CallRecord(**values)


async def read_for_settlement(
    conn: StatementConnection, job_id: uuid.UUID, team_id: str, *, lock_team: bool
) -> tuple[Job, tuple[CallRecord, ...], TeamState]:
    """In a transaction: lock the team's job, read its calls and the team's state (its row
    locked too with `lock_team`, after the job's, as every settlement locks them), in one
    round trip. NOT_FOUND as get_job."""
    job_row, calls, team = await _read_locked(conn, job_id, team_id, lock_team=lock_team)
    return _job(job_row), calls, team


async def read_for_late_charge(
    conn: StatementConnection, job_id: uuid.UUID, team_id: str
) -> tuple[Job, tuple[CallRecord, ...], TeamState, Rates]:
    """As read_for_settlement with the team's row locked, and the rates to charge the
    job's calls at: the budget mode and conversion rates the job was settled under, so
    that a rate changed since does not re-price the calls already charged, with the
    team's current markup and overdraft limit (what it can pay now). A job settled before
    migration 0018 did not keep them: the team's current rates."""
    row, calls, team = await _read_locked(conn, job_id, team_id, lock_team=True, archived_calls=True)
    rates = team.rates
    if row.settled_budget_mode is not None:
        rates = dataclasses.replace(
            rates,
            mode=BudgetMode(row.settled_budget_mode),
            tokens_per_credit=row.settled_tokens_per_credit,
            credits_per_dollar=Decimal(row.settled_credits_per_dollar),
        )
    return _job(row), calls, team, rates


async def _read_locked(
    conn: StatementConnection, job_id: uuid.UUID, team_id: str, *, lock_team: bool, archived_calls: bool = False
) -> tuple[Any, tuple[CallRecord, ...], TeamState]:
    job_rows, call_rows, team_rows = await conn.batch(
        (_LOCK_JOB, {"job_id": job_id, "team_id": team_id}),
        (_LIST_ALL_CALLS if archived_calls else _LIST_CALLS, {"job_id": job_id}),
        (LOCK_TEAM_STATE if lock_team else TEAM_STATE, {"team_id": team_id}),
    )
    if not job_rows:
        raise not_found("job", str(job_id))
    if not team_rows:
        raise not_found("team", team_id)
    return job_rows[0], tuple(_call(row) for row in call_rows), team_state_of(team_rows[0])


@dataclass(frozen=True)
class CallContext:
    """Everything a call needs to start, read in one query."""

    team: TeamState
    reachable: dict[str, tuple[str, ...]]
    job_status: JobStatus | None  # None: no such job for this team
    job_reserved: int
    job_idle_seconds: float  # since the job's recorded last activity
    calls_per_minute: int = 0  # the team's limit; 0: none
    max_calls_per_job: int = 0  # the team's limit; 0: none
    max_cost_usd_per_job: Decimal = Decimal(0)  # the team's limit; 0: none


_CALL_CONTEXT = Statement(
    """
    SELECT t.status, t.budget_mode, t.tokens_per_credit, t.credits_per_dollar, t.markup_percent,
           t.credits_overdraft_limit, t.default_model, t.credits_allocated, t.credits_used,
           t.credits_reserved, j.status AS job_status, j.credits_reserved AS job_reserved,
           date_part('epoch', now() - j.last_activity_at) AS job_idle_seconds,
           t.calls_per_minute, t.max_calls_per_job, t.max_cost_usd_per_job,
           (SELECT coalesce(jsonb_object_agg(a.model_alias, a.models), '{}'::jsonb)
              FROM model_aliases a
             WHERE a.model_alias IN (SELECT g.model_alias
                                       FROM model_alias_groups g
                                       JOIN team_access_groups tg ON tg.group_name = g.group_name
                                      WHERE tg.team_id = t.team_id)) AS reachable
      FROM teams t
      LEFT JOIN jobs j ON j.job_id = :job_id AND j.team_id = t.team_id
     WHERE t.team_id = :team_id
    """
)


async def call_context(conn: StatementConnection, job_id: uuid.UUID, team_id: str) -> CallContext:
    """The team's state, the aliases it reaches and the job, in one round trip."""
    row = await conn.first(_CALL_CONTEXT, {"job_id": job_id, "team_id": team_id})
    if row is None:
        raise not_found("team", team_id)
    return CallContext(
        team=team_state_of(row),
        reachable={alias: tuple(models) for alias, models in row.reachable.items()},
        job_status=None if row.job_status is None else JobStatus(row.job_status),
        job_reserved=row.job_reserved or 0,
        job_idle_seconds=row.job_idle_seconds or 0.0,
        calls_per_minute=row.calls_per_minute,
        max_calls_per_job=row.max_calls_per_job,
        max_cost_usd_per_job=row.max_cost_usd_per_job,
    )


# GCRA (see tables.team_call_rates): the call takes a place if the team's next place is
# at most a minute ahead once it is pushed by one interval, in one statement under the row
# lock of the team's rate row, so every process and replica counts the same places. Only
# teams with a limit run it: the others pay nothing for the feature.
_TAKE_CALL_PLACE = Statement(
    """
    WITH taken AS (
        INSERT INTO team_call_rates AS r (team_id, tat)
        VALUES (:team_id, now() + make_interval(secs => :interval))
        ON CONFLICT (team_id) DO UPDATE
           SET tat = greatest(r.tat, now()) + make_interval(secs => :interval)
         WHERE greatest(r.tat, now()) + make_interval(secs => :interval) <= now() + interval '1 minute'
        RETURNING r.team_id
    )
    SELECT EXISTS (SELECT FROM taken) AS taken,
           (SELECT date_part('epoch', r.tat - now()) FROM team_call_rates r WHERE r.team_id = :team_id) AS backlog
    """
)


async def take_call_place(conn: StatementConnection, team_id: str, calls_per_minute: int) -> float | None:
    """Take one of the team's places for a call: None if taken, else how far ahead of now
    (seconds) its next place was, which says when to retry."""
    row = await conn.first(_TAKE_CALL_PLACE, {"team_id": team_id, "interval": 60 / calls_per_minute})
    return None if row.taken else float(row.backlog or 0.0)


# A call refused after it took its place gives it back: the team's next place moves one
# interval earlier, as if the call had never come (GCRA treats any next place in the past
# as now).
_GIVE_BACK_CALL_PLACE = Statement(
    "UPDATE team_call_rates SET tat = tat - make_interval(secs => :interval) WHERE team_id = :team_id"
)


async def give_back_call_place(conn: StatementConnection, team_id: str, calls_per_minute: int) -> None:
    await conn.run(_GIVE_BACK_CALL_PLACE, {"team_id": team_id, "interval": 60 / calls_per_minute})


# A limited team's call takes its place in its job's row of job_limits, in one statement
# under that row's lock, so concurrent calls in one job can neither begin more calls than
# the limit nor reserve more dollars than the job has left: one more call, and its
# worst-case cost reserved. A job's first limited call creates the row from what the job
# recorded before (calls made, and what they cost) while the team had no limit, and only
# if the call fits; the scan of those calls is skipped once the row exists. Once it
# exists, every call recorded in the job counts itself there (record_call), limited or
# not, so the row never misses a call (a call running when the limit was set, or made
# while it was removed).
# What a job recorded before its row of job_limits existed: scanned only while it does not.
_EARLIER_CALLS = f"""
    SELECT count(*) FILTER (WHERE NOT (status = 'failed' AND prompt_tokens + completion_tokens = 0
                                       AND error_reason IN ({", ".join(f"'{r}'" for r in PROVIDER_REFUSALS)})))
               AS calls,
           coalesce(sum(billed_cost_usd), 0) AS spent
      FROM llm_calls
     WHERE job_id = :job_id AND NOT EXISTS (SELECT FROM job_limits WHERE job_id = :job_id)
"""
# job_limits_earlier_calls (migration 0021) is _EARLIER_CALLS made exact against the
# records of calls in flight: it scans only once it holds the job's row FOR UPDATE, which
# waits for the records in progress (they hold its FOR KEY SHARE lock) and makes those that
# start meanwhile wait for this statement, then count themselves in the row it makes
# (job_limits_count_call); the scan takes a snapshot of its own, after the wait. Zeros
# when the row exists: the scan and the lock are skipped.
_TAKE_JOB_LIMITS = Statement(
    """
    WITH earlier AS (SELECT calls, spent FROM job_limits_earlier_calls(:job_id))
    INSERT INTO job_limits AS l (job_id, calls, cost_reserved_usd, cost_spent_usd)
    SELECT :job_id, earlier.calls + 1, :worst_usd, earlier.spent
      FROM earlier
     WHERE (:max_calls = 0 OR earlier.calls < :max_calls)
       AND (CAST(:max_cost AS numeric) = 0 OR earlier.spent + :worst_usd <= :max_cost)
    ON CONFLICT (job_id) DO UPDATE
       SET calls = l.calls + 1, cost_reserved_usd = l.cost_reserved_usd + :worst_usd
     WHERE (:max_calls = 0 OR l.calls < :max_calls)
       AND (CAST(:max_cost AS numeric) = 0 OR l.cost_spent_usd + l.cost_reserved_usd + :worst_usd <= :max_cost)
    RETURNING l.job_id
    """
)
# A call refused before its job had a row of job_limits (a limit set below what the job
# had already made or spent) leaves the row made, with what the job recorded (counted as
# the first admitted call would count it): its later calls are then refused by the row,
# instead of each one scanning the job's calls again under its row lock (a job stuck in a
# loop may have made hundreds of thousands). Once the row exists, every recorded call
# counts itself in it (job_limits_count_call); without one yet, nothing is written.
_KEEP_JOB_LIMITS = Statement(
    """
    INSERT INTO job_limits (job_id, calls, cost_reserved_usd, cost_spent_usd)
    SELECT :job_id, earlier.calls, 0, earlier.spent FROM job_limits_earlier_calls(:job_id) AS earlier
    ON CONFLICT (job_id) DO NOTHING
    """
)
# A call admitted but never made (refused later in its admission, or its caller gone)
# gives back its place and its reservation.
_RELEASE_JOB_LIMITS = Statement(
    """
    UPDATE job_limits SET calls = calls - 1, cost_reserved_usd = cost_reserved_usd - :worst_usd
     WHERE job_id = :job_id
    """
)


async def release_job_limits(conn: StatementConnection, job_id: uuid.UUID, worst_usd: Decimal) -> None:
    await conn.run(_RELEASE_JOB_LIMITS, {"job_id": job_id, "worst_usd": worst_usd})


# The row as a refused call left it, read in a statement of its own: the refusing
# statement's snapshot may predate the concurrent call whose row version refused it.
# Without a row yet, what the job recorded before the team had a limit, as the first
# limited call would count it (its calls are scanned only then, as in _TAKE_JOB_LIMITS).
_JOB_LIMITS = Statement(
    f"""
    SELECT coalesce(l.calls, earlier.calls) AS calls,
           coalesce(l.cost_spent_usd, earlier.spent) AS cost_spent_usd,
           coalesce(l.cost_reserved_usd, 0) AS cost_reserved_usd
      FROM ({_EARLIER_CALLS}) AS earlier
      LEFT JOIN job_limits l ON l.job_id = :job_id
    """
)


@dataclass(frozen=True)
class JobLimitsState:
    """A job's row of job_limits."""

    calls: int = 0
    spent_usd: Decimal = Decimal(0)
    reserved_usd: Decimal = Decimal(0)


async def take_job_limits(
    conn: StatementConnection, job_id: uuid.UUID, *, max_calls: int, max_cost: Decimal, worst_usd: Decimal
) -> JobLimitsState | None:
    """Count one more call in the job and reserve its worst-case cost; None when taken,
    else the job's state that refused it (`max_calls`, `max_cost`: 0 for no limit)."""
    params = {"job_id": job_id, "max_calls": max_calls, "max_cost": max_cost, "worst_usd": worst_usd}
    if await conn.first(_TAKE_JOB_LIMITS, params) is not None:
        return None
    await conn.run(_KEEP_JOB_LIMITS, {"job_id": job_id})
    return await job_limits(conn, job_id)


async def job_limits(conn: StatementConnection, job_id: uuid.UUID) -> JobLimitsState:
    """The job's row of job_limits; without one, what its recorded calls made and cost."""
    row = await conn.first(_JOB_LIMITS, {"job_id": job_id})
    return JobLimitsState(row.calls, Decimal(row.cost_spent_usd), Decimal(row.cost_reserved_usd))


def _storable(text_: str) -> str:
    """PostgreSQL text cannot hold NUL; a provider's answer might. The call must be
    recorded whatever the provider sent, so NUL becomes U+FFFD."""
    return text_.replace("\x00", "\ufffd")


_INSERT_CALL_SQL = """
    INSERT INTO llm_calls (call_id, job_id, team_id, status, purpose, model_alias, served_model,
                           attempted_models, streamed, prompt_tokens, completion_tokens,
                           tokens_estimated, provider_cost_usd, billed_cost_usd, cost_source,
                           latency_ms, first_token_ms, finish_reason, error_reason, error_message,
                           content)
    VALUES (:call_id, :job_id, :team_id, :status, :purpose, :model_alias, :served_model,
            :attempted_models, :streamed, :prompt_tokens, :completion_tokens,
            :tokens_estimated, :provider_cost_usd, :billed_cost_usd, :cost_source,
            :latency_ms, :first_token_ms, :finish_reason, :error_reason, :error_message,
            :content)
"""
# The call's metadata is merged only if the job's then stays within its limit: checked
# before the call too, but calls running at once could together pass it. The job's status
# is returned as the update finds it, after any settlement holding the job's lock.
_TOUCH_JOB_SQL = """
    UPDATE jobs
       SET last_activity_at = now(),
           metadata = CASE WHEN CAST(:metadata_patch AS jsonb) = '{}'::jsonb THEN metadata
                           WHEN octet_length(CAST(metadata || CAST(:metadata_patch AS jsonb) AS text))
                                <= :max_metadata_bytes
                           THEN metadata || CAST(:metadata_patch AS jsonb)
                           ELSE metadata END
     WHERE job_id = (SELECT job_id FROM inserted)
    RETURNING metadata @> CAST(:metadata_patch AS jsonb) AS merged, status, settled_budget_mode
"""
# Otherwise the job's status, read under a lock that waits for a settlement holding the
# job's row (FOR UPDATE) to commit and then sees its outcome; and that a settlement waits
# for in turn, so it reads the call once this statement commits. Either the settlement
# counts the call, or this statement sees the job settled without it (and the budget mode
# it was settled under, which says whether the call is charged late). It is the lock the
# foreign key's check of the inserted call takes anyway, taken earlier in the statement.
_WATCH_JOB_SQL = """
    SELECT true AS merged, status, settled_budget_mode FROM jobs WHERE job_id = :job_id FOR KEY SHARE
"""
# Once the job's row is locked (watched or touched), the call counts itself in its job's
# row of job_limits, if the job has one (migration 0021, job_limits_count_call): its cost,
# and the call itself unless it took its place at its admission; a call admitted under a
# cost limit moves its reservation to that cost. The function's UPDATE takes a snapshot of
# its own, after the lock: it sees a row made by a call admitted after this statement
# began, whose scan of the job's recorded calls could not see this one.
_COUNT_CALL_SQL = """
    SELECT merged, status, settled_budget_mode,
           job_limits_count_call(:job_id, :calls_counted, :reserved_usd, :billed_cost_usd) AS counted{commit}
      FROM job
"""
# A record that carries no money (record_call's `durable`) turns synchronous_commit off for
# its own transaction, from inside the statement: no round trip more, and the setting ends
# with the transaction (is_local), so the connection's next one waits for its flush again.
_ASYNC_COMMIT_SQL = ",\n           set_config('synchronous_commit', 'off', true) AS commit_mode"


def _record_call_statement(touching: bool, durable: bool) -> Statement:
    job = _TOUCH_JOB_SQL if touching else _WATCH_JOB_SQL
    count = _COUNT_CALL_SQL.format(commit="" if durable else _ASYNC_COMMIT_SQL)
    return Statement(f"WITH inserted AS ({_INSERT_CALL_SQL} RETURNING job_id), job AS ({job}) {count}")


_RECORD_CALL = {
    (touching, durable): _record_call_statement(touching, durable)
    for touching in (False, True)
    for durable in (False, True)
}


@dataclass(frozen=True)
class JobAtRecord:
    """The job of a call, as the statement recording the call found it."""

    status: JobStatus
    settled_budget_mode: BudgetMode | None  # None: not settled, or settled before migration 0018

    @property
    def settled_without_the_call(self) -> bool:
        """Completed before the call was recorded, under a budget that charges calls
        (services/jobs.py, charge_late_calls): the late call must be charged. A job
        settled before migration 0018 did not keep its mode: charge_late_calls decides."""
        return self.status is JobStatus.COMPLETED and self.settled_budget_mode is not BudgetMode.JOB_BASED


_CALL_RECORDED = Statement("SELECT 1 FROM llm_calls WHERE call_id = :call_id")


async def call_recorded(conn: StatementConnection, call_id: uuid.UUID) -> bool:
    return await conn.first(_CALL_RECORDED, {"call_id": call_id}) is not None


async def record_call(
    conn: StatementConnection,
    call: CallRecord,
    metadata_patch: dict[str, Any] | None,
    *,
    touch_job: bool,
    in_job_limits: bool = False,
    reserved_usd: Decimal | None = None,
    durable: bool = True,
) -> JobAtRecord:
    """Insert the call, and in the same statement: when there is a metadata patch or
    `touch_job`, merge the patch into its job and set the job's last activity to now,
    else lock the job's row FOR KEY SHARE; then count the call in its job's row of
    job_limits if there is one: its cost (billed) always; the call itself unless it took
    its place at admission (`in_job_limits`), and for one that did, give that place back
    if the provider refused it without work; its reservation (`reserved_usd`, a call
    admitted under a cost limit) becomes its cost.

    Returns the job's status and the budget mode it was settled under: `completed` means
    the job was settled without this call (it ran on after its job was completed), which
    a token- or dollar-based budget then charges (services/jobs.py, charge_late_calls),
    whatever the team's budget was when the call started.

    Not `durable`: the statement's transaction commits without waiting for PostgreSQL to
    flush it to disk (asynchronous commit; on the connection's transaction, if it is in
    one). Every later synchronous commit flushes it first, the settlement of its job
    included, so only a crash of PostgreSQL within wal_writer_delay x 3 (0.6 s by default)
    can lose it, and then with the whole statement: nothing else it wrote survives it.

    A prepared statement: building a Core insert/update per call cost more CPU than the
    database work (seen in profiles of the hot path)."""
    touching = bool(metadata_patch or touch_job)
    job = await conn.first(
        _RECORD_CALL[touching, durable],
        {
            "call_id": call.call_id,
            "job_id": call.job_id,
            "team_id": call.team_id,
            "status": call.status.value,
            "purpose": _storable(call.purpose),
            "model_alias": call.model_alias,
            "served_model": _storable(call.served_model),
            "attempted_models": list(call.attempted_models),
            "streamed": call.streamed,
            "prompt_tokens": call.prompt_tokens,
            "completion_tokens": call.completion_tokens,
            "tokens_estimated": call.tokens_estimated,
            "provider_cost_usd": call.provider_cost_usd,
            "billed_cost_usd": call.billed_cost_usd,
            "cost_source": call.cost_source,
            "latency_ms": call.latency_ms,
            "first_token_ms": call.first_token_ms,
            "finish_reason": _storable(call.finish_reason),
            "error_reason": call.error_reason,
            "error_message": _storable(call.error_message),
            "content": None if call.content is None else _storable(call.content),
            "metadata_patch": json.dumps(metadata_patch or {}),
            "max_metadata_bytes": validation.MAX_JOB_METADATA_BYTES,
            "calls_counted": job_limits_calls(call, admitted=in_job_limits),
            "reserved_usd": (reserved_usd or Decimal(0)) if in_job_limits else Decimal(0),
        },
    )
    if not job.merged:
        log.warning(
            "call %s: its call_metadata was not merged into job %s, whose metadata would pass %d bytes",
            call.call_id,
            call.job_id,
            validation.MAX_JOB_METADATA_BYTES,
        )
    mode = job.settled_budget_mode
    return JobAtRecord(JobStatus(job.status), None if mode is None else BudgetMode(mode))


_CREATE_RESERVING = Statement(
    f"""
    WITH reserved AS (
        UPDATE teams
           SET credits_reserved = credits_reserved + :credits
         WHERE team_id = :team_id AND status = 'active'
           AND credits_allocated - credits_used - credits_reserved >= :credits
        RETURNING credits_allocated, credits_used, credits_reserved
    ), job AS (
        INSERT INTO jobs (job_id, team_id, job_type, user_id, status, metadata, credits_reserved, single_call)
        SELECT :job_id, :team_id, :job_type, :user_id, 'pending', CAST(:metadata AS jsonb), :credits, :single_call
          FROM reserved
        RETURNING {_JOB_COLUMNS}
    ), entry AS (
        INSERT INTO credit_ledger (team_id, job_id, kind, amount, reserved_delta, remaining_after,
                                   reserved_after, reason, actor)
        SELECT :team_id, job.job_id, 'reservation', 0, :credits, r.credits_allocated - r.credits_used,
               r.credits_reserved, :reason, :actor
          FROM reserved r, job
        RETURNING entry_id
    )
    SELECT {column_list(jobs, "job")} FROM job, entry
    """
)


async def create_reserving(
    conn: StatementConnection,
    *,
    team_id: str,
    job_type: str,
    user_id: str,
    metadata: dict[str, Any],
    credits: int,
    actor: str,
    reason: str,
    single_call: bool = False,
) -> Job | None:
    """Reserve `credits`, insert the pending job and its ledger entry, in one statement.

    None when the team is not active or short of credits: then nothing was written (every
    insert reads from the conditional UPDATE). For creates without an idempotency key;
    those with one use the transaction in services/jobs.py, which must see conflicts.
    """
    row = await conn.first(
        _CREATE_RESERVING,
        {
            "team_id": team_id,
            "job_id": uuid.uuid4(),
            "job_type": job_type,
            "user_id": user_id,
            "metadata": json.dumps(metadata),
            "credits": credits,
            "actor": actor,
            "reason": reason,
            "single_call": single_call,
        },
    )
    return None if row is None else _job(row)


_SETTLE = Statement(
    f"""
    WITH team AS (
        UPDATE teams
           SET credits_reserved = credits_reserved - :release,
               credits_used = credits_used + :charge,
               updated_at = now()
         WHERE team_id = :team_id
           AND (NOT :guarded
                OR (budget_mode = :budget_mode
                    AND tokens_per_credit = :tokens_per_credit
                    AND credits_per_dollar = :credits_per_dollar
                    AND credits_overdraft_limit = :overdraft_limit
                    AND credits_allocated - credits_used - credits_reserved + :release
                        + credits_overdraft_limit >= :charge))
        RETURNING credits_allocated, credits_used, credits_reserved, budget_mode, tokens_per_credit,
                  credits_per_dollar
    ), entry AS (
        INSERT INTO credit_ledger (team_id, job_id, kind, amount, reserved_delta, remaining_after,
                                   reserved_after, reason, actor)
        SELECT :team_id, :job_id, :kind, -CAST(:charge AS bigint), -CAST(:release AS bigint),
               t.credits_allocated - t.credits_used, t.credits_reserved, :reason, :actor
          FROM team t
        RETURNING entry_id
    ), job AS (
        UPDATE jobs j
           SET status = :status, completed_at = now(), error_message = :error_message,
               metadata = j.metadata || CAST(:metadata_patch AS jsonb),
               credits_charged = :charge, credits_shortfall = :shortfall,
               credits_remaining_after = t.credits_allocated - t.credits_used,
               settled_budget_mode = t.budget_mode, settled_tokens_per_credit = t.tokens_per_credit,
               settled_credits_per_dollar = t.credits_per_dollar
          FROM team t
         WHERE j.job_id = :job_id
        RETURNING {column_list(jobs, "j")}
    )
    SELECT {column_list(jobs, "job")} FROM job, entry
    """
)


async def settle_job(
    conn: Connection | StatementConnection,
    job: Job,
    *,
    status: JobStatus,
    charge: int,
    shortfall: int,
    error_message: str,
    metadata_patch: dict[str, Any],
    actor: str,
    reason: str,
    decided_on: Rates | None = None,
    commit: bool = False,
) -> Job | None:
    """Settle a locked open job in one statement: release its reservation, charge it,
    append the ledger entry (`charge`, or `release` when nothing is charged on failure
    or expiry) and record the final status, with the team's budget mode and conversion
    rates as its row has them (those the charge was decided on: checked with
    `decided_on`, read under the team's lock otherwise), which a call recorded later is
    charged at (read_for_late_charge). The ledger's unique (job_id, kind) makes a second
    settlement of the same job fail loudly.

    `decided_on`: the charge was decided on these rates, read without locking the team.
    The statement then changes nothing and returns None unless the team's row, as it
    updates it, still has them and can still pay the charge (the decision holds), so a
    settlement never waits on the team's lock for more than its own statement.
    `commit`: end the `statements(transaction=True)` block's transaction in the same
    round trip."""
    statements = await as_statements(conn)
    rates = decided_on or Rates()  # unused unless decided_on
    params = {
        "team_id": job.team_id,
        "job_id": job.job_id,
        "release": job.credits_reserved,
        "charge": charge,
        "shortfall": shortfall,
        "kind": "charge" if status is JobStatus.COMPLETED else "release",
        "status": status.value,
        "error_message": error_message,
        "metadata_patch": json.dumps(metadata_patch or {}),
        "actor": actor,
        "reason": reason,
        "guarded": decided_on is not None,
        "budget_mode": rates.mode.value,
        "tokens_per_credit": rates.tokens_per_credit,
        "credits_per_dollar": rates.credits_per_dollar,
        "overdraft_limit": rates.overdraft_limit,
    }
    if commit:
        (rows,) = await statements.batch((_SETTLE, params), commit=True)
        row = rows[0] if rows else None
    else:
        row = await statements.first(_SETTLE, params)
    if row is not None:
        return _job(row)
    if decided_on is None:  # the team row is gone: cannot happen while the job references it
        raise RuntimeError(f"settling job {job.job_id} wrote nothing")
    return None


# The `job.late_charge` webhook event is written in the same statement (webhook_enqueue,
# migration 0006; nothing when no endpoint wants it), so an operator billing its own
# customers from `job.completed` learns what the job cost beyond it.
_CHARGE_LATE = Statement(
    f"""
    WITH team AS (
        UPDATE teams
           SET credits_used = credits_used + :charge, updated_at = now()
         WHERE team_id = :team_id AND archived_at IS NULL
        RETURNING organization_id, credits_allocated, credits_used, credits_reserved
    ), entry AS (
        INSERT INTO credit_ledger (team_id, job_id, kind, amount, reserved_delta, remaining_after,
                                   reserved_after, reason, actor)
        SELECT :team_id, :job_id, 'late_charge', -CAST(:charge AS bigint), 0,
               t.credits_allocated - t.credits_used, t.credits_reserved, :reason, :actor
          FROM team t
        RETURNING entry_id
    ), job AS (
        UPDATE jobs
           SET credits_charged = credits_charged + :charge, credits_shortfall = credits_shortfall + :shortfall
         WHERE job_id = :job_id AND EXISTS (SELECT FROM team)
        RETURNING {_JOB_COLUMNS}
    ), event AS (
        SELECT webhook_enqueue('job.late_charge', team.organization_id, jsonb_build_object(
                   'job_id', job.job_id,
                   'team_id', job.team_id,
                   'organization_id', team.organization_id,
                   'job_type', job.job_type,
                   'status', upper(job.status),
                   'late_credits_charged', CAST(:charge AS bigint),
                   'late_credits_shortfall', CAST(:shortfall AS bigint),
                   'credits_charged', job.credits_charged,
                   'credits_shortfall', job.credits_shortfall))
          FROM job, team
    )
    SELECT {column_list(jobs, "job")} FROM job, entry, (SELECT count(*) FROM event) AS enqueued
    """
)


async def charge_late(
    conn: StatementConnection, job: Job, *, charge: int, shortfall: int, actor: str, reason: str
) -> Job | None:
    """Charge a locked, completed job `charge` more credits (its team's row locked too),
    and count `shortfall` more as due beyond the balance, with a `late_charge` ledger
    entry, in one statement that commits the block's transaction. None, and nothing
    written, when the team has been archived since: its balance and ledger no longer change."""
    params = {
        "team_id": job.team_id,
        "job_id": job.job_id,
        "charge": charge,
        "shortfall": shortfall,
        "actor": actor,
        "reason": reason,
    }
    (rows,) = await conn.batch((_CHARGE_LATE, params), commit=True)
    return _job(rows[0]) if rows else None


async def list_team_jobs(
    conn: Connection,
    team_id: str,
    *,
    status: JobStatus | None,
    job_type: str,
    before: int | None,
    limit: int,
) -> list[tuple[int, Job]]:
    """A team's jobs, newest first, each with its position (creation_seq): those before
    the `before` position of a previous page. Served by the (team_id, creation_seq) index.

    The order is the order the jobs' creations committed, so paging never skips one: a job
    takes its creation_seq when it is inserted, and every way of creating a job inserts it
    only after reserving its credit, an UPDATE of the team's row whose lock it holds until
    it commits (migration 0011). A reader therefore sees a team's jobs as a prefix of that
    order: a job committed after a page was read comes before every job that page showed,
    never among or after them. Nothing is hidden for the sake of this (a committed job is
    listed at once), and creating a job pays only the nextval.

    Paging by created_at could not promise that: it is the creating transaction's start,
    before the team's lock was taken, so a job could commit after a reader had paged past
    its place. A visibility horizon (listing only jobs older than the oldest transaction
    in flight, pg_snapshot_xmin) would have worked too, but it would hide every new job
    while any writing transaction on the server, in any database, was still open.

    Bounds: a pass shows the jobs committed before its first page, not those created
    while it pages (they come first, for the next pass). Two jobs created at once appear
    in the order they took the team's lock, so their created_at may be out of order by the
    time one waited. `status` is read as it is when each page is read: a job whose status
    changes during the pass may be left out or shown, like any filter on what changes."""
    query = select(jobs).where(jobs.c.team_id == team_id)
    if status is not None:
        query = query.where(jobs.c.status == status.value)
    if job_type:
        query = query.where(jobs.c.job_type == job_type)
    if before is not None:
        query = query.where(jobs.c.creation_seq < before)
    query = query.order_by(jobs.c.creation_seq.desc()).limit(limit)
    return [(row.creation_seq, _job(row)) for row in await conn.execute(query)]


async def list_calls_of_jobs(conn: Connection, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[CallRecord, ...]]:
    """The calls of several jobs in one query, oldest first per job, without `content`
    (as list_calls)."""
    found: dict[uuid.UUID, list[CallRecord]] = {job_id: [] for job_id in job_ids}
    if not job_ids:
        return {}
    rows = await conn.execute(
        select(*(null().label("content") if c.name == "content" else c for c in llm_calls.c))
        .where(llm_calls.c.job_id.in_(job_ids))
        .order_by(llm_calls.c.job_id, llm_calls.c.created_at, llm_calls.c.call_id)
    )
    for row in rows:
        call = _call(row)
        found[call.job_id].append(call)
    return {job_id: tuple(calls) for job_id, calls in found.items()}
