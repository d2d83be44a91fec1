"""Jobs and their calls: the state machine and the cost totals, free of I/O."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from server.domain.decimals import plain
from server.domain.errors import DomainError, Kind, Reason, invalid_argument


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in (JobStatus.PENDING, JobStatus.IN_PROGRESS)


OPEN_STATUSES = (JobStatus.PENDING, JobStatus.IN_PROGRESS)
FINAL_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED)


def single_call_abandon_seconds(ttl_seconds: float) -> float:
    """How long a single-call job may stay open without activity before it is taken for
    abandoned and expired: five activity resolutions (5 minutes with the default TTL), at
    least 5 s, at most the TTL. Its one call runs within one request, and the process
    running it refreshes the job's activity every resolution
    (CallUseCases.keep_running_jobs_open), so it lags by two resolutions at most: a job
    idle for five has no process running its call (one died, or lost the database), and
    expiring it releases its credit and its idempotency key for the client's retry."""
    return min(ttl_seconds, max(5.0, 5 * activity_resolution_seconds(ttl_seconds)))


def activity_resolution_seconds(ttl_seconds: float) -> float:
    """How far a job's recorded last activity may lag the end of its latest call: 1% of
    the expiry TTL, at most a minute. A call's record refreshes it only when it would lag
    by more than that (or the call merges metadata into the job), so most calls leave the
    job's row alone: its UPDATE, an indexed column and the usage trigger were a fifth of
    PostgreSQL's work per call. Expiry waits the TTL plus this much, so no job expires
    sooner than its TTL after its last call ended."""
    return min(60.0, ttl_seconds / 100)


class CallStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Job:
    """A job as stored."""

    job_id: uuid.UUID
    team_id: str
    job_type: str
    user_id: str
    status: JobStatus
    metadata: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str = ""
    credits_reserved: int = 0
    credits_charged: int = 0
    credits_remaining_after: int | None = None
    credits_shortfall: int = 0
    credits_refunded: int = 0
    idempotency_key: str | None = None
    last_activity_at: datetime | None = None
    single_call: bool = False  # made by a single-call request (CreateAndCall)


@dataclass(frozen=True)
class CallRecord:
    """One LLM call as recorded: what was asked, what served it, what it cost."""

    call_id: uuid.UUID
    job_id: uuid.UUID
    team_id: str
    status: CallStatus
    model_alias: str
    purpose: str = ""
    served_model: str = ""
    attempted_models: tuple[str, ...] = ()
    streamed: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_estimated: bool = False
    provider_cost_usd: Decimal = Decimal(0)
    billed_cost_usd: Decimal = Decimal(0)
    cost_source: str = "none"
    latency_ms: int = 0
    first_token_ms: int | None = None
    finish_reason: str = ""
    error_reason: str = ""
    error_message: str = ""
    content: str | None = None
    created_at: datetime | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class JobCosts:
    """Totals over a job's calls."""

    total_calls: int = 0
    successful_calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    billed_cost_usd: Decimal = Decimal(0)
    provider_cost_usd: Decimal = Decimal(0)
    avg_latency_ms: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# Why a provider refuses a call without doing any work: rate limited, or unavailable.
PROVIDER_REFUSALS = (Reason.UPSTREAM_RATE_LIMITED, Reason.UPSTREAM_UNAVAILABLE)


def refused_by_provider(call: CallRecord) -> bool:
    """A failed call the provider refused without doing any work (no tokens): it does not
    count toward its job's call limit, so a client's retries of a provider's 429 or 503
    (the typed client's own included) do not use up the job's calls."""
    return call.status is CallStatus.FAILED and not call.total_tokens and call.error_reason in PROVIDER_REFUSALS


def job_limits_calls(call: CallRecord, *, admitted: bool) -> int:
    """What recording `call` adds to its job's count of calls in job_limits: a call that
    took its place at admission (`admitted`, under a per-job limit) was counted then, and
    gives its place back if the provider refused it without work; any other call counts
    itself now, unless the provider refused it so (as a job's first limited call counts
    the calls recorded before it)."""
    refused = refused_by_provider(call)
    if admitted:
        return -1 if refused else 0
    return 0 if refused else 1


def summarize(calls: Iterable[CallRecord]) -> JobCosts:
    calls = list(calls)
    succeeded = sum(1 for c in calls if c.status is CallStatus.SUCCEEDED)
    latencies = [c.latency_ms for c in calls if c.latency_ms]
    return JobCosts(
        total_calls=len(calls),
        successful_calls=succeeded,
        failed_calls=len(calls) - succeeded,
        prompt_tokens=sum(c.prompt_tokens for c in calls),
        completion_tokens=sum(c.completion_tokens for c in calls),
        billed_cost_usd=sum((c.billed_cost_usd for c in calls), Decimal(0)),
        provider_cost_usd=sum((c.provider_cost_usd for c in calls), Decimal(0)),
        avg_latency_ms=round(sum(latencies) / len(latencies)) if latencies else 0,
    )


@dataclass(frozen=True)
class JobView:
    """A job with its calls, as GetJob and CompleteJob return it."""

    job: Job
    calls: tuple[CallRecord, ...] = field(default=())

    @property
    def costs(self) -> JobCosts:
        return summarize(self.calls)


def ensure_open(job: Job) -> None:
    """Calls are accepted only on open jobs."""
    ensure_status_open(job.job_id, job.status)


def ensure_status_open(job_id: uuid.UUID, status: JobStatus) -> None:
    if not status.is_open:
        raise DomainError(
            Kind.FAILED_PRECONDITION,
            Reason.JOB_NOT_OPEN,
            f"job {job_id} is {status.value}; calls are accepted only on pending or in_progress jobs",
            metadata={"job_id": str(job_id), "status": status.value},
        )


def call_limit_reached(job_id: uuid.UUID, team_id: str, limit: int, made: int) -> DomainError:
    """A limited team's job has begun all the calls a job may make (`made`: more than the
    limit when it was set while the job's calls ran)."""
    return DomainError(
        Kind.FAILED_PRECONDITION,
        Reason.JOB_CALL_LIMIT_REACHED,
        f"job {job_id} has made {made} LLM call{'' if made == 1 else 's'}, and team '{team_id}' allows at most "
        f"{limit} in one job; complete it, and make further calls in a new job",
        metadata={"job_id": str(job_id), "max_calls_per_job": str(limit)},
    )


def cost_limit_reached(
    job_id: uuid.UUID | None, team_id: str, limit: Decimal, spent: Decimal, reserved: Decimal, needed: Decimal
) -> DomainError:
    """A cost-limited team's job cannot fit this call's worst case beside what it has
    spent and what its calls in flight reserved (no job: no job could fit it)."""
    allowed = f"the ${plain(limit)} team '{team_id}' allows a job"
    if needed > limit:
        message = f"this call could cost up to ${plain(needed)}, more than {allowed}: ask for fewer tokens (max_tokens)"
    elif spent + needed > limit:
        message = (
            f"job {job_id} has spent ${plain(spent)} of {allowed}; this call could cost up to ${plain(needed)}: "
            "complete the job and make further calls in a new one, or ask for fewer tokens (max_tokens)"
        )
    else:
        message = (
            f"job {job_id} has spent ${plain(spent)} and its calls in flight reserved ${plain(reserved)} of {allowed}; "
            f"this call could cost up to ${plain(needed)}: retry when they have finished, or ask for fewer tokens"
        )
    return DomainError(
        Kind.FAILED_PRECONDITION,
        Reason.JOB_COST_LIMIT_REACHED,
        message,
        metadata={
            **({} if job_id is None else {"job_id": str(job_id)}),
            "max_cost_usd_per_job": plain(limit),
            "spent_usd": plain(spent),
            "reserved_usd": plain(reserved),
            "call_worst_case_usd": plain(needed),
        },
    )


def requested_final_status(value: str) -> JobStatus:
    """The status a client may complete a job with."""
    if value not in (JobStatus.COMPLETED.value, JobStatus.FAILED.value):
        raise invalid_argument("status", 'must be "completed" or "failed"')
    return JobStatus(value)


def is_repeat_completion(job: Job, requested: JobStatus) -> bool:
    """True when `job` already ended as `requested` (an idempotent repeat); False when it
    is open and can be settled now. Any other combination is a conflict."""
    if job.status.is_open:
        return False
    if job.status is requested:
        return True
    raise DomainError(
        Kind.FAILED_PRECONDITION,
        Reason.JOB_ALREADY_FINISHED,
        f"job {job.job_id} is already {job.status.value}; it cannot be {requested.value} now",
        metadata={"job_id": str(job.job_id), "status": job.status.value},
    )
