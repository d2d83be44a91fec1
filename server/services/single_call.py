"""One job, one call, in one request: create, call, complete.

Built from the same use cases as the three-step flow (JobUseCases, CallUseCases), so a
single-call job reserves, records and charges exactly like any other job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from server.domain.chat import ChatRequest
from server.domain.completion import Delta
from server.domain.errors import SHUTDOWN_CUT, DomainError, Kind, Reason
from server.domain.jobs import Job, JobStatus, JobView
from server.services.auth import TeamPrincipal
from server.services.background import Background
from server.services.calls import CallResult, CallUseCases, KeepAlive, StreamFinished, StreamStarted, for_new_job
from server.services.jobs import JobUseCases, check_job_fields
from server.storage.jobs import CallContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    team_id: str
    job_type: str
    user_id: str
    metadata: dict[str, Any]
    idempotency_key: str


@dataclass(frozen=True)
class SingleCallResult:
    view: JobView
    call: CallResult


@dataclass(frozen=True)
class SingleCallFinished:
    """The last event: the call's end and the settled job."""

    call: StreamFinished
    view: JobView


SingleCallEvent = StreamStarted | Delta | KeepAlive | SingleCallFinished


class SingleCallUseCases:
    def __init__(self, jobs: JobUseCases, calls: CallUseCases, background: Background) -> None:
        self._jobs = jobs
        self._calls = calls
        self._background = background
        # Set when the server's shutdown cuts the calls still running (Application._cut,
        # just before its grace runs out): a call that ends from then on was not left by
        # its client, who is told SERVER_SHUTTING_DOWN or UNAVAILABLE, and retries.
        self.server_stopping = False

    async def _create(self, principal: TeamPrincipal, spec: JobSpec) -> Job:
        """A new job. A retry with an idempotency key whose job is open or charged is
        refused, naming that job: making the call again would pay for it twice. A key whose
        job failed (free) is tried again, in a new job under the same key."""
        job, is_new = await self._jobs.create_or_replay(
            principal,
            team_id=spec.team_id,
            job_type=spec.job_type,
            user_id=spec.user_id,
            metadata=spec.metadata,
            idempotency_key=spec.idempotency_key,
            single_call=True,
        )
        if not is_new:
            raise _already_processed(job)
        return job

    async def _checked(self, principal: TeamPrincipal, spec: JobSpec, request: ChatRequest) -> CallContext:
        """The refusals no job could pass, before the job is made, so that they make none:
        the request's own fields, then what CallUseCases.check reads; then, for a team
        that limits its calls a minute, the call takes its place (CallUseCases.take_place),
        which `_created` gives back if no call is to be made, and the call's admission
        otherwise. A retry whose key holds a job that is open or charged is told so first,
        whatever the check says now (the team paused or at its rate since, the alias gone):
        it must not read as a request not run."""
        check_job_fields(principal, spec.team_id, spec.job_type, spec.user_id, spec.idempotency_key)
        try:
            context = await self._calls.check(principal, request)
            await self._calls.take_place(principal, context)
            return context
        except DomainError:
            if spec.idempotency_key and (
                job := await self._jobs.replayed(principal, spec.job_type, spec.idempotency_key, single_call=True)
            ):
                raise _already_processed(job) from None
            raise

    async def _create_to_the_end(self, principal: TeamPrincipal, spec: JobSpec) -> Job:
        """`_create` run to its end even if the caller is cancelled meanwhile (a client
        gone, a deadline passed during the insert): the job it made is then failed at once,
        releasing its credit and freeing its idempotency key, instead of staying pending
        until it expires."""
        return await self._background.run_to_the_end(
            self._create(principal, spec),
            if_abandoned=lambda job: self._settle(
                principal, job, JobStatus.FAILED, "the client went away before the call"
            ),
        )

    async def _created(self, principal: TeamPrincipal, spec: JobSpec, context: CallContext) -> Job:
        """`_create_to_the_end`, giving back the call's place (`_checked`) if no job is made
        for it: refused (out of credits, a retry of a job open or charged), or its client
        gone meanwhile."""
        try:
            return await self._create_to_the_end(principal, spec)
        except BaseException:
            await self._calls.give_back_place(principal, context)
            raise

    async def _settle(self, principal: TeamPrincipal, job: Job, status: JobStatus, error: str = "") -> JobView:
        """Complete the job in its own task: a client that went away must not leave it open."""
        return await self._background.run_to_completion(
            self._jobs.complete(principal, str(job.job_id), status=status.value, metadata={}, error_message=error)
        )

    async def _settle_answered(self, principal: TeamPrincipal, job: Job, status: JobStatus, error: str = "") -> JobView:
        """Settle the job of a call that has ended, its answer recorded. If the job ended
        meanwhile (expired as abandoned: this process stalled past the abandonment; or
        settled by a CompleteJob on its id), the answer is the client's all the same, with
        the job as it ended (charged only if completed), as an LLMCall in a job failed
        under it is answered: an error would throw away a recorded answer, and the
        client's retry pay the provider again."""
        try:
            return await self._settle(principal, job, status, error)
        except DomainError as settling:
            if settling.reason != Reason.JOB_ALREADY_FINISHED:
                raise
            log.warning("single-call job %s ended while its call ran (%s); its answer is sent", job.job_id, settling)
            return await self._jobs.get(principal, str(job.job_id))

    async def _settle_after(self, error: DomainError, principal: TeamPrincipal, job: Job) -> None:
        """Fail the job of a call that failed with `error`, which the client is told, naming
        the job, even if the settlement fails too (the database unavailable: the job then
        expires as one whose client went away, its credit released)."""
        try:
            await self._settle(principal, job, JobStatus.FAILED, error.message)
        except DomainError as settling:
            log.warning("single-call job %s is not failed yet (%s); it expires unless completed", job.job_id, settling)

    async def call(
        self, principal: TeamPrincipal, spec: JobSpec, request: ChatRequest, *, time_remaining: float | None = None
    ) -> SingleCallResult:
        context = await self._checked(principal, spec, request)
        job = await self._created(principal, spec, context)
        try:
            result = await self._calls.call(
                principal,
                str(job.job_id),
                request,
                time_remaining=time_remaining,
                context=for_new_job(context, job),
                placed=True,
            )
        except DomainError as error:
            await self._settle_after(error, principal, job)
            raise _with_job(error, job) from None
        except asyncio.CancelledError:
            why = SHUTDOWN_CUT if self.server_stopping else "the client went away before the answer"
            await self._settle(principal, job, JobStatus.FAILED, why)
            raise
        except Exception:  # a fault of ours: the job must not stay open holding its credit
            await self._settle(principal, job, JobStatus.FAILED, "internal error")
            raise
        return SingleCallResult(await self._settle_answered(principal, job, JobStatus.COMPLETED), result)

    async def stream(
        self, principal: TeamPrincipal, spec: JobSpec, request: ChatRequest, *, time_remaining: float | None = None
    ) -> AsyncIterator[SingleCallEvent]:
        context = await self._checked(principal, spec, request)
        job = await self._created(principal, spec, context)
        produced = False
        settled = False
        events = self._calls.stream(
            principal,
            str(job.job_id),
            request,
            time_remaining=time_remaining,
            context=for_new_job(context, job),
            placed=True,
        )
        try:
            # Closed before the job is settled below, so a call cut short is recorded first.
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, StreamFinished):
                        status = JobStatus.FAILED if event.error else JobStatus.COMPLETED
                        settled = True  # from here on by this settlement, which runs to its end
                        view = await self._settle_answered(
                            principal, job, status, event.error.message if event.error else ""
                        )
                        yield SingleCallFinished(event, view)
                        return
                    produced = produced or (isinstance(event, Delta) and _produces(event))
                    yield event
        except DomainError as error:  # before the first event: an ordinary error
            if not settled:
                settled = True
                await self._settle_after(error, principal, job)
            raise _with_job(error, job) from None
        except Exception:  # a fault of ours: the job must not stay open holding its credit
            if not settled:
                settled = True
                await self._settle(principal, job, JobStatus.FAILED, "internal error")
            raise
        except (asyncio.CancelledError, GeneratorExit):
            if not settled:
                if self.server_stopping:
                    # Cut by the server's shutdown: the client gets UNAVAILABLE, no final
                    # event, and retries; so the job is free, and its key too.
                    await self._settle(principal, job, JobStatus.FAILED, SHUTDOWN_CUT)
                else:
                    # The client went away: it consumed what was produced, so the job is
                    # charged if there was any; a job that produced nothing is failed.
                    status = JobStatus.COMPLETED if produced else JobStatus.FAILED
                    await self._settle(principal, job, status, "" if produced else "the client went away")
            raise


def _produces(delta: Delta) -> bool:
    """Whether a delta carries something the model produced for the client: text, tool
    calls, a refusal or its reasoning (a reasoning model's first tokens)."""
    return bool(delta.content or delta.tool_calls or delta.refusal or delta.reasoning_content)


def _already_processed(job: Job) -> DomainError:
    return DomainError(
        Kind.ALREADY_EXISTS,
        Reason.REQUEST_ALREADY_PROCESSED,
        f"a request with this idempotency key already created job {job.job_id} ({job.status.value}); "
        f"read its result with GET /api/jobs/{job.job_id}",
        metadata={"job_id": str(job.job_id), "status": job.status.value},
    )


def _with_job(error: DomainError, job: Job) -> DomainError:
    """The error, telling the client which job it created (now failed)."""
    return dataclasses.replace(error, metadata={**error.metadata, "job_id": str(job.job_id)})
