"""Job use cases: create (reserving credits), read, complete (charging exactly once)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from server.domain import credits, pagination, validation
from server.domain.errors import DomainError, Kind, Reason, invalid_argument
from server.domain.jobs import (
    CallRecord,
    Job,
    JobStatus,
    JobView,
    activity_resolution_seconds,
    is_repeat_completion,
    requested_final_status,
    single_call_abandon_seconds,
    summarize,
)
from server.domain.pagination import Page
from server.services.auth import TeamPrincipal
from server.storage import credits as credit_store
from server.storage import jobs as job_store
from server.storage import ledger
from server.storage.database import Database

log = logging.getLogger(__name__)

MAX_EMBEDDED_CALLS = 1_000
"""The most calls a response embeds in a job (GetJob, GetJobCosts, CompleteJob,
UpdateJobMetadata, ListTeamJobs): its first, oldest first; its `costs` count them all, and
ListJobCalls pages through every one. A job has no bound of its own (a team without
`max_calls_per_job`, an agent stuck in a loop), and a response past SAAS_MAX_MESSAGE_BYTES
(8 MiB) or Envoy's 16 MiB of JSON cannot be sent: without a bound such a job could no
longer be read, nor its completion answered. A call's summary is about 300 bytes of JSON,
3.7 KB at most (its purpose, model and error at their longest, in 4-byte characters): 1,000
weigh less than half of either limit (tests/unit/test_job_view_bound.py)."""


# A single-call request's key whose job ended free: a retry makes a new job (replayed()).
_FREE = (JobStatus.FAILED, JobStatus.EXPIRED)


class _IdempotentRace(Exception):
    """Another request created the job with the same idempotency key first."""


def check_job_fields(principal: TeamPrincipal, team_id: str, job_type: str, user_id: str, idempotency_key: str) -> None:
    """A new job's own fields, checked before anything is read."""
    check_team(principal, team_id)
    validation.label("job_type", job_type, required=True)
    validation.label("user_id", user_id, max_length=200)
    validation.label("idempotency_key", idempotency_key, max_length=200)


def check_team(principal: TeamPrincipal, team_id: str) -> None:
    """A team_id in a request body must be the key's own team (and a team id at all: an
    error does not echo whatever was sent)."""
    if team_id and team_id != principal.team_id:
        validation.identifier("team_id", team_id)
        raise DomainError(
            Kind.PERMISSION_DENIED,
            Reason.TEAM_MISMATCH,
            f"this virtual key belongs to another team than '{team_id}'",
            metadata={"team_id": team_id},
        )


class JobUseCases:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        principal: TeamPrincipal,
        *,
        team_id: str,
        job_type: str,
        user_id: str,
        metadata: dict[str, Any],
        idempotency_key: str,
    ) -> Job:
        """Create a pending job and reserve its credit, in one transaction. A retry with
        the same idempotency key returns the first job."""
        job, _ = await self.create_or_replay(
            principal,
            team_id=team_id,
            job_type=job_type,
            user_id=user_id,
            metadata=metadata,
            idempotency_key=idempotency_key,
        )
        return job

    async def create_or_replay(
        self,
        principal: TeamPrincipal,
        *,
        team_id: str,
        job_type: str,
        user_id: str,
        metadata: dict[str, Any],
        idempotency_key: str,
        single_call: bool = False,
    ) -> tuple[Job, bool]:
        """Like create; the flag says whether the job is new (False: an idempotent retry).
        With `single_call` (a single-call request's job), a key whose job failed or expired,
        free, makes a new job under the same key: the request is tried again; and the job is
        marked, so that it expires soon if its request is abandoned (expire_abandoned)."""
        check_job_fields(principal, team_id, job_type, user_id, idempotency_key)
        if idempotency_key and (existing := await self.replayed(principal, job_type, idempotency_key, single_call)):
            return existing, False
        try:
            job = await self._reserve_and_insert(
                principal, job_type, user_id, metadata, idempotency_key or None, single_call
            )
            return job, True
        except _IdempotentRace:
            async with self._db.transaction() as conn:
                existing = await job_store.find_by_idempotency_key(conn, principal.team_id, idempotency_key)
            assert existing is not None
            return _same_request(existing, job_type), False

    async def replayed(
        self, principal: TeamPrincipal, job_type: str, idempotency_key: str, single_call: bool
    ) -> Job | None:
        """The job a retry with `idempotency_key` gets back: the key's job
        (IDEMPOTENCY_KEY_REUSED if it is of another type); None if the key holds none, or,
        for a single-call request, only a free one (failed, expired), which it tries again."""
        async with self._db.transaction() as conn:
            existing = await job_store.find_by_idempotency_key(conn, principal.team_id, idempotency_key)
        if existing is None:
            return None
        _same_request(existing, job_type)
        if single_call and existing.status in _FREE:
            return None
        return existing

    async def _reserve_and_insert(
        self,
        principal: TeamPrincipal,
        job_type: str,
        user_id: str,
        metadata: dict[str, Any],
        idempotency_key: str | None,
        single_call: bool,
    ) -> Job:
        team_id = principal.team_id
        needed = credits.reservation(credits.Rates())
        if idempotency_key is None:  # the common case: one statement, no conflict possible
            async with self._db.statements() as statements:
                job = await job_store.create_reserving(
                    statements,
                    team_id=team_id,
                    job_type=job_type,
                    user_id=user_id,
                    metadata=metadata,
                    credits=needed,
                    actor=principal.actor,
                    reason=f"job {job_type} created",
                    single_call=single_call,
                )
            if job is None:  # refused: say why
                async with self._db.statements() as conn:
                    team = await credit_store.team_state(conn, team_id)
                credits.ensure_can_work(team_id, team.status)
                raise credits.insufficient_credits(team_id, team.balance, needed)
            return job
        async with self._db.transaction() as conn:
            balance = await credit_store.reserve(conn, team_id, needed)
            if balance is None:
                # A request with the same key may have taken the last credit while this one
                # waited for the team's row: its job is this request's answer, not a refusal.
                existing = await job_store.find_by_idempotency_key(conn, team_id, idempotency_key)
                if existing is not None and not (single_call and existing.status in _FREE):
                    raise _IdempotentRace()
                team = await credit_store.team_state(conn, team_id)
                credits.ensure_can_work(team_id, team.status)
                raise credits.insufficient_credits(team_id, team.balance, needed)
            job = await job_store.insert_job(
                conn,
                team_id=team_id,
                job_type=job_type,
                user_id=user_id,
                metadata=metadata,
                credits_reserved=needed,
                idempotency_key=idempotency_key,
                single_call=single_call,
            )
            if job is None:
                raise _IdempotentRace()  # rolls the reservation back
            await ledger.append(
                conn,
                team_id=team_id,
                job_id=job.job_id,
                kind="reservation",
                amount=0,
                reserved_delta=needed,
                balance_after=balance,
                actor=principal.actor,
                reason=f"job {job.job_type} created",
            )
        return job

    async def get(self, principal: TeamPrincipal, job_id: str) -> JobView:
        jid = validation.job_id(job_id)
        async with self._db.statements() as conn:
            job = await job_store.get_job(conn, jid, principal.team_id)
            calls = await job_store.list_calls(conn, jid)
        return JobView(job, calls)

    async def list_calls(
        self, reader: TeamPrincipal | None, job_id: str, page_size: int, page_token: str
    ) -> Page[CallRecord]:
        """A page of a job's calls, oldest first: of the `reader` team's job, or of any
        team's (None: the admin key). Paged by (created_at, call_id), the order the job
        views show them in; what a pass may miss is said on ListJobCalls (job_service.proto)."""
        jid = validation.job_id(job_id)
        request = pagination.page_request(page_size, page_token, {"job_id": str(jid)})
        after = _call_position(pagination.after(request, str, str))
        async with self._db.statements() as conn:
            calls = await job_store.list_calls_page(
                conn, jid, None if reader is None else reader.team_id, after=after, limit=request.size + 1
            )
        return pagination.page(calls, request, lambda call: (call.created_at.isoformat(), str(call.call_id)))

    async def merge_metadata(self, principal: TeamPrincipal, job_id: str, patch: dict[str, Any]) -> JobView:
        """Shallow-merge `patch` into the job's metadata, in any status, under the job's row
        lock, so concurrent merges of different keys all land."""
        jid = validation.job_id(job_id)
        async with self._db.statements(transaction=True) as conn:
            job = await job_store.merge_metadata(conn, jid, principal.team_id, patch)
            calls = await job_store.list_calls(conn, jid)
        return JobView(job, calls)

    async def complete(
        self, principal: TeamPrincipal, job_id: str, *, status: str, metadata: dict[str, Any], error_message: str
    ) -> JobView:
        """Settle a job: charge it (completed) or release its reservation (failed).

        The job row is locked for the whole transaction, so concurrent completions of one
        job serialise; the second sees a finished job and returns the stored result. The
        charge is decided on the team's rates and balance read without its lock, and the
        settling statement applies it only if they still hold (in two round trips: lock
        the job and read, then settle and commit), so the team's row, which every job of
        the team updates, stays locked for one statement. When they changed meanwhile, or
        the balance caps the charge, it is decided again under the team's lock.
        """
        jid = validation.job_id(job_id)
        requested = requested_final_status(status)
        validation.text("error_message", error_message)
        for optimistic in (True, False):
            async with self._db.statements(transaction=True) as conn:
                job, calls, team = await job_store.read_for_settlement(
                    conn, jid, principal.team_id, lock_team=not optimistic
                )
                if is_repeat_completion(job, requested):
                    return JobView(job, calls)
                validation.merged_metadata("metadata", job.metadata, metadata)
                settlement = credits.settle(
                    team.rates,
                    summarize(calls),
                    team.balance,
                    job.credits_reserved,
                    completed=requested is JobStatus.COMPLETED,
                )
                if optimistic and settlement.shortfall:
                    continue  # the balance decides how much: decide under the team's lock
                finished = await job_store.settle_job(
                    conn,
                    job,
                    status=requested,
                    charge=settlement.charged,
                    shortfall=settlement.shortfall,
                    error_message=error_message,
                    metadata_patch=metadata,
                    actor=principal.actor,
                    reason=_settlement_reason(job, requested, settlement),
                    decided_on=team.rates if optimistic else None,
                    commit=True,
                )
                if finished is not None:
                    return JobView(finished, calls)
        raise RuntimeError(f"settling job {jid} under the team's lock wrote nothing")

    async def expire_abandoned(self, idle_seconds: float, batch: int = 100) -> int:
        """Expire open jobs idle longer than `idle_seconds`, and single-call jobs abandoned
        (single_call_abandon_seconds), and release their reservations.

        Run periodically by the server itself (see server/app.py); safe in several
        processes at once (rows are locked with SKIP LOCKED). Returns how many expired.
        """
        abandon = single_call_abandon_seconds(idle_seconds)
        async with self._db.transaction() as conn:
            # A call refreshes its job's last activity only once it lags by the resolution:
            # waiting that much longer means no job expires before `idle_seconds`.
            stale = await job_store.abandoned(conn, idle_seconds + activity_resolution_seconds(idle_seconds), batch)
            singles = []
            if len(stale) < batch:
                singles = await job_store.abandoned(conn, abandon, batch - len(stale), single_call=True)
            # A single-call job idle past both limits is in both lists (this transaction's
            # own row locks do not skip it): it is settled once, as abandoned.
            expiring = {job.job_id: (job, f"expired after {idle_seconds:g} s without activity") for job in stale}
            for job in singles:
                expiring[job.job_id] = (
                    job,
                    f"expired: no server process ran its call for {abandon:g} s (one failed, or lost the "
                    "database); its idempotency key is free again",
                )
            # Each settlement locks its team's row until the batch commits: in team order
            # (code points, as teams.lock_teams orders them), so that two processes' rounds
            # (or a round and a change of several teams) wait for each other instead of
            # deadlocking.
            for job, why in sorted(expiring.values(), key=lambda entry: entry[0].team_id):
                await self._expire(conn, job, why)
        return len(expiring)

    @staticmethod
    async def _expire(conn, job: Job, why: str) -> None:
        await job_store.settle_job(
            conn,
            job,
            status=JobStatus.EXPIRED,
            charge=0,
            shortfall=0,
            error_message=f"{why}; its reservation was released",
            metadata_patch={},
            actor="system:expiry",
            reason=f"job {job.job_type} {why}",
        )


async def charge_late_calls(db: Database, job_id: uuid.UUID, team_id: str, actor: str) -> int:
    """Charge a completed job for calls recorded after its settlement (they ran on after
    the job was completed), under a token- or dollar-based budget: what its charge over
    all its calls adds to what was settled, both at the budget mode and rates the job was
    settled under (a rate or mode changed since must not re-price the calls already
    charged), capped at what the team can pay now; the rest counts as shortfall. The
    job's row and then the team's are locked, as a settlement locks them, so late calls
    of one job recorded at once charge it once between them. A refunded job is not
    charged again, nor a job whose team was archived meanwhile (an archived team's balance
    and ledger no longer change; the call is recorded all the same). Returns the credits
    charged."""
    async with db.statements(transaction=True) as conn:
        job, calls, team, settled_on = await job_store.read_for_late_charge(conn, job_id, team_id)
        if job.status is not JobStatus.COMPLETED or job.credits_refunded:
            return 0
        late = credits.settle_late(
            settled_on, summarize(calls), team.balance, job.credits_charged + job.credits_shortfall
        )
        if not (late.charged or late.shortfall):
            return 0
        reason = f"job {job.job_type}: calls recorded after it was completed"
        if late.shortfall:
            reason += f"; {late.shortfall} credits due beyond balance and overdraft not charged"
        charged = await job_store.charge_late(
            conn, job, charge=late.charged, shortfall=late.shortfall, actor=actor, reason=reason
        )
        if charged is None:
            log.info("job %s: a call recorded after its team %s was archived is not charged", job_id, team_id)
            return 0
        return late.charged


def _call_position(position: tuple[Any, ...] | None) -> tuple[datetime, uuid.UUID] | None:
    """A page token's position in a job's calls (a call's created_at and call_id, as
    written by list_calls); INVALID_ARGUMENT for one no page could have ended on (a
    token is not signed: a forged one fails here, not in the database)."""
    if position is None:
        return None
    try:
        created_at, call_id = datetime.fromisoformat(position[0]), uuid.UUID(position[1])
    except ValueError:
        raise invalid_argument("page_token", "is not a token this API issued") from None
    if created_at.tzinfo is None:
        raise invalid_argument("page_token", "is not a token this API issued")
    return created_at, call_id


def _settlement_reason(job: Job, requested: JobStatus, settlement: credits.Settlement) -> str:
    reason = f"job {job.job_type} {requested.value}"
    if settlement.shortfall:
        reason += f"; {settlement.shortfall} credits due beyond balance and overdraft not charged"
    return reason


def _same_request(job: Job, job_type: str) -> Job:
    if job.job_type != job_type:
        raise DomainError(
            Kind.ALREADY_EXISTS,
            Reason.IDEMPOTENCY_KEY_REUSED,
            "this idempotency key was already used for a different job; use a new key for a new job",
            metadata={"job_id": str(job.job_id)},
        )
    return job
