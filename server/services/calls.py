"""LLM calls inside a job, plain and streamed. Every call is recorded, however it ends.

Sequence of one call:
1. one short transaction: the team may work, the alias is reachable for the team, the job
   is open; then, each in one more statement and only for teams with such a limit, the
   call takes one of its job's calls and reserves its worst-case cost under the team's
   per-job limits, and takes a place of the team's calls a minute; then the job becomes
   in_progress. A call refused after it took a place gives it back. A single-call job's
   call takes its place of the team's calls a minute before its job is made (take_place),
   so that a call past that limit makes no job; the call then takes no second one;
2. the upstream call, holding no database connection: the alias's models in order, each
   retried up to SAAS_UPSTREAM_RETRIES times on transient failures (429, 5xx, timeouts);
   a rejected request (400) is reported at once. A stream falls back only before its
   first byte: once content has reached the client, switching models would garble it;
3. one transaction recording the call (succeeded, failed or cancelled): tokens, cost,
   latency, the alias, the model that served it and every model tried; for a team that
   caps the cost of a job, it also turns the call's reservation into its cost, and it counts
   the call in its job's row of job_limits when the job has one (whatever the team's limits
   were when the call started). It updates the job's row only to merge call metadata or
   when the job's recorded last activity would otherwise lag the call's end by more than the
   resolution (`activity_resolution_seconds`); otherwise it locks it FOR KEY SHARE, as the
   call's foreign key does, to read the job's status: a job completed meanwhile is charged
   for the call under a token- or dollar-based budget (charge_late_calls). A record that
   moves no money (a job-based team without per-job limits: credits.record_is_money)
   commits without waiting for PostgreSQL's flush to disk, unless SAAS_ASYNC_CALL_RECORDS
   is off: the completion's commit, which waits, flushes it with everything before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

from server.domain import chat, credits, models, validation
from server.domain.chat import ChatRequest
from server.domain.completion import Answer, Delta, StreamAccumulator, Usage, answer_from
from server.domain.credits import BudgetMode, CostSource, Rates
from server.domain.errors import INTERNAL_ERROR, DomainError, Reason, invalid_argument, not_found, server_shutting_down
from server.domain.jobs import (
    CallRecord,
    CallStatus,
    Job,
    JobStatus,
    activity_resolution_seconds,
    call_limit_reached,
    cost_limit_reached,
    ensure_open,
    ensure_status_open,
    summarize,
)
from server.domain.models import Route
from server.observability import context
from server.services.auth import TeamPrincipal
from server.services.background import Background
from server.services.jobs import charge_late_calls
from server.services.prices import PriceCatalog
from server.services.tokens import TokenCounter, message_characters
from server.storage import jobs as job_store
from server.storage.database import Database, StatementConnection, again_if_lost
from server.storage.jobs import CallContext
from server.upstream.litellm import LiteLLMClient, UpstreamStream

T = TypeVar("T")
log = logging.getLogger(__name__)
_NO_JOB = uuid.UUID(int=0)  # a job id no job has: the context of a call in no job
_MIN_ATTEMPT_SECONDS = 0.1  # the least time an upstream attempt is given
# How long a call's record is written again while the database is unavailable.
RECORD_RETRY_SECONDS = 30.0
# Why a record is written again: the database unavailable, or the write rolled back for
# colliding with another (a deadlock): either way, not written.
_WRITE_AGAIN = (Reason.DATABASE_UNAVAILABLE, Reason.CONFLICTING_CHANGE)


class ContentPolicy:
    """Which completions are stored with the call record (SAAS_RECORD_CONTENT)."""

    NONE = "none"
    PARTIAL = "partial"  # only calls that did not finish normally: what the client got
    ALL = "all"


@dataclass(frozen=True)
class UpstreamPolicy:
    """Deadlines and retries of upstream calls."""

    timeout_seconds: float = 120.0
    stream_idle_timeout_seconds: float = 60.0
    # A started stream that has sent its client nothing for this long sends a KeepAlive,
    # and again after as long (0: never). It does not reset the idle timeout above.
    stream_keepalive_seconds: float = 15.0
    retries: int = 0


@dataclass(frozen=True)
class CallResult:
    call_id: uuid.UUID
    job_id: uuid.UUID
    model_alias: str
    answer: Answer
    usage: Usage
    latency_ms: int
    billed_cost_usd: Decimal


@dataclass(frozen=True)
class StreamStarted:
    call_id: uuid.UUID
    job_id: uuid.UUID
    model_alias: str


@dataclass(frozen=True)
class StreamFinished:
    finish_reason: str
    usage: Usage
    billed_cost_usd: Decimal
    latency_ms: int
    error: DomainError | None = None


@dataclass(frozen=True)
class KeepAlive:
    """Sent while the model is silent, so that the client's connection, and any proxy on
    its way, sees the stream is alive. It carries nothing."""


KEEP_ALIVE = KeepAlive()

StreamEvent = StreamStarted | Delta | KeepAlive | StreamFinished


@dataclass(frozen=True)
class _Prepared:
    job_id: uuid.UUID
    route: Route
    rates: Rates
    job_activity_at: float  # the job's recorded last activity, on time.perf_counter()'s clock
    reserved_usd: Decimal | None = None  # the worst-case cost reserved in the job (cost-limited teams)
    in_job_limits: bool = False  # took a place in the job's limits (teams limiting calls or cost per job)


@dataclass
class _Admission:
    """What a call took before going upstream, to give back if it never goes."""

    job_id: uuid.UUID
    team_id: str
    context: CallContext
    worst_usd: Decimal | None  # reserved in the job (a team that limits the cost of a job)
    placed: bool = False  # took a place of the team's calls a minute
    in_job_limits: bool = False  # took a place and its worst case in the job's limits

    @property
    def takes_places(self) -> bool:
        context = self.context
        return bool(context.calls_per_minute or context.max_calls_per_job or context.max_cost_usd_per_job)


class CallUseCases:
    def __init__(
        self,
        db: Database,
        upstream: LiteLLMClient,
        background: Background,
        tokens: TokenCounter,
        prices: PriceCatalog,
        *,
        policy: UpstreamPolicy = UpstreamPolicy(),
        content_policy: str = ContentPolicy.PARTIAL,
        job_ttl_seconds: float = 86_400.0,
        async_records: bool = True,
    ) -> None:
        self._db = db
        self._upstream = upstream
        self._background = background
        self._tokens = tokens
        self._prices = prices
        self._policy = policy
        self._content_policy = content_policy
        self._async_records = async_records
        self._job_ttl = job_ttl_seconds
        self._activity_resolution = activity_resolution_seconds(job_ttl_seconds)
        self._running: Counter[uuid.UUID] = Counter()  # this process's calls in flight, by job
        # What cut_calls ends at shutdown: the streams under way, the plain calls waiting
        # on the upstream (their tasks), and those it has cancelled.
        self._open_streams: set[UpstreamStream] = set()
        self._waiting: set[asyncio.Task] = set()
        self._cut: set[asyncio.Task] = set()
        self._cutting = False

    @property
    def activity_resolution(self) -> float:
        """How often keep_running_jobs_open should run."""
        return self._activity_resolution

    @contextlib.contextmanager
    def _in_flight(self, job_id: uuid.UUID) -> Iterator[None]:
        """Count a call as running in its job while it runs (keep_running_jobs_open)."""
        self._running[job_id] += 1
        try:
            yield
        finally:
            self._running[job_id] -= 1
            if not self._running[job_id]:
                del self._running[job_id]

    def cut_calls(self) -> int:
        """End every call under way with SERVER_SHUTTING_DOWN, and any that goes upstream
        from now on (Application.stop, just before its grace runs out), so that each
        client is told why, REST ones too: a stream in its last event, a plain call as its
        error. Returns how many."""
        self._cutting = True
        for stream in self._open_streams:
            stream.cut(server_shutting_down())
        for task in self._waiting:
            self._cut.add(task)
            task.cancel()
        return len(self._open_streams) + len(self._waiting)

    @contextlib.contextmanager
    def _open(self, stream: UpstreamStream) -> Iterator[None]:
        self._open_streams.add(stream)
        if self._cutting:
            stream.cut(server_shutting_down())
        try:
            yield
        finally:
            self._open_streams.discard(stream)

    @contextlib.contextmanager
    def _waiting_upstream(self) -> Iterator[None]:
        """A plain call's wait on the upstream, which cut_calls may end: it then raises
        SERVER_SHUTTING_DOWN (the upstream request cancelled) instead of CancelledError."""
        task = asyncio.current_task()
        assert task is not None
        if self._cutting:
            raise server_shutting_down()
        self._waiting.add(task)
        try:
            yield
        except asyncio.CancelledError:
            # Ours alone (the client's cancellation or the grace's would make it 2).
            if task in self._cut and task.cancelling() == 1:
                task.uncancel()
                raise server_shutting_down() from None
            raise
        finally:
            self._waiting.discard(task)
            self._cut.discard(task)

    async def keep_running_jobs_open(self) -> int:
        """Refresh the last activity of the jobs this process has calls running in, where
        it lags by more than the resolution. Run every resolution (server/app.py), so a call
        longer than the TTL holds its job open and the job is not expired under it; a
        process that dies stops doing so, and its jobs expire as abandoned. Returns how
        many jobs it refreshed."""
        if not self._running:
            return 0
        async with self._db.statements() as conn:
            return await job_store.touch_jobs(conn, list(self._running), idle_seconds=self._activity_resolution)

    async def _prepare(
        self,
        principal: TeamPrincipal,
        job_id: str,
        request: ChatRequest,
        context: CallContext | None = None,
        *,
        placed: bool = False,
    ) -> _Prepared:
        """Check the team may work, resolve the alias, check the job is open (and mark it
        in progress on its first call). One query on the common path: a second call in a
        job of a job-based team without limits reads everything it needs in a single
        round trip (none, when given its `context`: a job just made, `for_new_job`).
        Anything else the call takes (`_admit`), a refusal gives back, and so the place of
        the team's calls a minute it was given (`placed`: taken by `take_place`)."""
        jid = validation.job_id(job_id)
        team_id = principal.team_id
        if context is None:
            context = await self._call_context(jid, team_id)
        team = context.team
        admission = _Admission(jid, team_id, context, None, placed=placed and bool(context.calls_per_minute))
        try:
            credits.ensure_can_work(team_id, team.status)
            route = models.resolve(request.model, team.default_model, context.reachable)
            if context.job_status is None:
                raise not_found("job", str(jid))
            ensure_status_open(jid, context.job_status)
            limit = context.max_cost_usd_per_job
            admission.worst_usd = await self._worst_case_cost(team_id, limit, route, request, team.rates)
            pending = context.job_status is JobStatus.PENDING
            plain = team.rates.mode is BudgetMode.JOB_BASED and not admission.takes_places
            if request.call_metadata or (plain and pending):
                async with self._db.statements() as conn:
                    if request.call_metadata:  # merged into the job's when the call succeeds: must fit
                        job = await job_store.get_job(conn, jid, team_id)
                        validation.merged_metadata("call_metadata", job.metadata, request.call_metadata)
                    if plain and pending and not await job_store.start_job(conn, jid, team_id):
                        ensure_open(await job_store.get_job(conn, jid, team_id))  # finished meanwhile: say how
        except BaseException:  # nothing is taken yet but the place it may have been given
            await self._give_back(admission)
            raise
        if not plain:
            await (self._admit_to_the_end(admission) if admission.takes_places else self._admit(admission))
        idle = 0.0 if pending else context.job_idle_seconds  # a job started just now was touched
        if idle > self._job_ttl / 2:
            # Idle long enough to expire before the next round of keep_running_jobs_open:
            # touched now, so it cannot expire under the call (rare: one more statement).
            try:
                async with self._db.statements() as conn:
                    if not await job_store.touch_jobs(conn, [jid], idle_seconds=0):
                        ensure_open(await job_store.get_job(conn, jid, team_id))  # finished meanwhile: say how
            except BaseException:  # the call will not run (or its client is gone): nothing it took is kept
                await self._give_back(admission)
                raise
            idle = 0.0
        activity_at = time.perf_counter() - idle
        return _Prepared(jid, route, team.rates, activity_at, admission.worst_usd, admission.in_job_limits)

    async def _call_context(self, jid: uuid.UUID, team_id: str) -> CallContext:
        """The call's context: a read, so a lost connection need not fail the call."""

        async def read() -> CallContext:
            async with self._db.statements() as conn:
                return await job_store.call_context(conn, jid, team_id)

        return await again_if_lost(read)

    async def _admit(self, admission: _Admission) -> None:
        """What a call takes beyond its context read, in one more connection: a consumption
        budget's check, a place and a reservation under its job's limits, a place of the
        team's calls a minute (unless it was given one); then the job is started. A
        refusal gives back what was taken, so it changes nothing."""
        jid, team_id, context = admission.job_id, admission.team_id, admission.context
        team = context.team
        try:
            async with self._db.statements() as conn:
                if team.rates.mode is not BudgetMode.JOB_BASED:  # what the job consumed so far counts
                    spent = summarize(await job_store.list_calls(conn, jid))
                    credits.ensure_can_spend(team_id, team.rates, spent, team.balance, context.job_reserved)
                # The job's limits before the team's rate: a call its job refuses must not
                # hold a place of the team's calls a minute meanwhile, which its other jobs'
                # calls would be refused for (TEAM_RATE_LIMITED).
                await self._take_job_limits(conn, admission)
                if context.calls_per_minute and not admission.placed:
                    backlog = await job_store.take_call_place(conn, team_id, context.calls_per_minute)
                    credits.ensure_admitted(team_id, context.calls_per_minute, backlog)
                    admission.placed = True
                if context.job_status is JobStatus.PENDING and not await job_store.start_job(conn, jid, team_id):
                    ensure_open(await job_store.get_job(conn, jid, team_id))  # finished meanwhile: say how
        except Exception:
            await self._give_back(admission)
            raise

    async def _admit_to_the_end(self, admission: _Admission) -> None:
        """`_admit` run to its end even if the caller is cancelled meanwhile (a client
        gone, a deadline passed): what it took is then given back, so a call that never
        goes upstream holds no place and no reservation."""
        await self._background.run_to_the_end(self._admit(admission), if_abandoned=lambda _: self._give_back(admission))

    async def _give_back(self, admission: _Admission) -> None:
        """Give back what the call took (best effort: a database that is down is logged)."""
        if not (admission.placed or admission.in_job_limits):
            return
        try:
            async with self._db.statements() as conn:
                if admission.in_job_limits:
                    await job_store.release_job_limits(conn, admission.job_id, admission.worst_usd or Decimal(0))
                if admission.placed:
                    await job_store.give_back_call_place(conn, admission.team_id, admission.context.calls_per_minute)
        except Exception:
            log.exception("could not give back what a refused call of team %s took", admission.team_id)

    async def take_place(self, principal: TeamPrincipal, context: CallContext) -> None:
        """For a team that limits its calls a minute, take a single-call job's place before
        its job is made (`context`: what `check` read), or refuse it (TEAM_RATE_LIMITED),
        so that a call past the limit makes no job. Its call is then given the place
        (`placed`), which it gives back if refused, as must the caller if the call does
        not come to be made (`give_back_place`). A team without such a limit: nothing,
        and no statement. Run to its end even if the caller is cancelled meanwhile: a place
        taken for a caller gone is given back. Taken exactly, as `_admit` takes it, not
        guessed from a read, so that concurrent requests cannot pass the limit."""
        if not context.calls_per_minute:
            return
        team_id, limit = principal.team_id, context.calls_per_minute

        async def take() -> None:
            async with self._db.statements() as conn:
                backlog = await job_store.take_call_place(conn, team_id, limit)
            credits.ensure_admitted(team_id, limit, backlog)

        await self._background.run_to_the_end(take(), if_abandoned=lambda _: self.give_back_place(principal, context))

    async def give_back_place(self, principal: TeamPrincipal, context: CallContext) -> None:
        """Give back the place `take_place` took, for a call that will not be made."""
        await self._give_back(
            _Admission(_NO_JOB, principal.team_id, context, None, placed=bool(context.calls_per_minute))
        )

    async def _worst_case_cost(
        self, team_id: str, limit: Decimal, route: Route, request: ChatRequest, rates: Rates
    ) -> Decimal | None:
        """For a team that caps the cost of a job, the most this call can cost it
        (credits.worst_case_cost over the route's models); None for other teams. The
        prices are cached (a read of LiteLLM's model info at most every few minutes)."""
        if not limit:
            return None
        output_tokens, prices = await self._output_bound_and_prices(
            team_id,
            route,
            request,
            cost_limited=True,
            why=f"team '{team_id}' limits what a job's calls may cost (max_cost_usd_per_job), so each call must "
            "bound its output with max_tokens or max_completion_tokens",
        )
        return credits.worst_case_cost(chat.input_token_bound(request), output_tokens, prices, rates)

    async def _output_bound_and_prices(
        self, team_id: str, route: Route, request: ChatRequest, *, cost_limited: bool, why: str
    ) -> tuple[int, list[tuple[Decimal, Decimal] | None]]:
        """What a worst case is priced from, for a call's reservation and its estimate
        alike: the call's output bound (`max_tokens` is required, `why`) and the prices of
        its route's models, which a team limiting the cost of a job must all know."""
        output_tokens = chat.output_token_bound(request)
        if output_tokens is None:
            raise invalid_argument("max_tokens", f"is required: {why}")
        prices = [await self._prices.price(model) for model in route.models]
        if cost_limited:
            credits.ensure_priced(team_id, route.alias, prices)
        return output_tokens, prices

    @staticmethod
    async def _take_job_limits(conn: StatementConnection, admission: _Admission) -> None:
        """A team that caps the calls or the cost of a job: count the call in its job and
        reserve its worst-case cost, or refuse it (one more statement, for such teams only)."""
        jid, team_id, context, worst_usd = admission.job_id, admission.team_id, admission.context, admission.worst_usd
        if not (context.max_calls_per_job or context.max_cost_usd_per_job):
            return
        refused = await job_store.take_job_limits(
            conn,
            jid,
            max_calls=context.max_calls_per_job,
            max_cost=context.max_cost_usd_per_job,
            worst_usd=worst_usd or Decimal(0),
        )
        if refused is None:
            admission.in_job_limits = True
            return
        if context.max_calls_per_job and refused.calls >= context.max_calls_per_job:
            raise call_limit_reached(jid, team_id, context.max_calls_per_job, refused.calls)
        assert worst_usd is not None  # only the cost limit refuses otherwise
        raise cost_limit_reached(
            jid, team_id, context.max_cost_usd_per_job, refused.spent_usd, refused.reserved_usd, worst_usd
        )

    async def check(self, principal: TeamPrincipal, request: ChatRequest) -> CallContext:
        """What a call would be refused for whatever its job: the team's state, the model,
        and for a team that caps the cost of a job, the call's output bound, its models'
        prices and a worst case past the limit. A single-call job checks this before it is
        made, so such a refusal makes no job. Returns the context read, which the call
        then takes for its new job (`for_new_job`) instead of reading it again."""
        team_id = principal.team_id
        context = await self._call_context(_NO_JOB, team_id)
        credits.ensure_can_work(team_id, context.team.status)
        route = models.resolve(request.model, context.team.default_model, context.reachable)
        limit = context.max_cost_usd_per_job
        worst = await self._worst_case_cost(team_id, limit, route, request, context.team.rates)
        if worst is not None and worst > limit:
            raise cost_limit_reached(None, team_id, limit, Decimal(0), Decimal(0), worst)
        return context

    async def estimate(self, principal: TeamPrincipal, job_id: str, request: ChatRequest) -> credits.CallEstimate:
        """The most the call could cost (EstimateCall): its context read as a call's, sent
        nowhere, changing nothing. With a job, also the job's room under the team's limit
        on the cost of a job."""
        team_id = principal.team_id
        jid = validation.job_id(job_id) if job_id else _NO_JOB
        async with self._db.statements() as conn:
            context = await job_store.call_context(conn, jid, team_id)
            route = models.resolve(request.model, context.team.default_model, context.reachable)
            if job_id and context.job_status is None:
                raise not_found("job", job_id)
            limit = context.max_cost_usd_per_job
            used = await job_store.job_limits(conn, jid) if job_id and limit else None
        output_tokens, prices = await self._output_bound_and_prices(
            team_id, route, request, cost_limited=bool(limit), why="the estimate bounds the call's output by it"
        )
        counted = await self._tokens.off_the_loop(
            lambda: self._tokens.count_messages(request.messages), message_characters(request.messages)
        )
        return credits.estimate_call(
            route.alias,
            chat.input_token_bound(request),
            counted,
            output_tokens,
            prices,
            context.team.rates,
            None if used is None else max(Decimal(0), limit - used.spent_usd - used.reserved_usd),
        )

    async def _with_fallbacks(
        self, call: _CallInProgress, deadline: float | None, attempt: Callable[[str, float], Awaitable[T]]
    ) -> T:
        """Run `attempt(model, timeout)` on the alias's models in order until one succeeds.

        Transient failures are retried on the same model (bounded, with backoff, while the
        wait fits the caller's deadline) and then on the next model, as is a model whose
        set-up the provider refuses (models.falls_back); anything else, or the last
        failure, is raised.
        """
        last: DomainError | None = None
        for model in call.prepared.route.models:
            for retry in range(self._policy.retries + 1):
                if last is not None and deadline is not None and self._timeout(deadline) <= _MIN_ATTEMPT_SECONDS:
                    raise last  # the caller's deadline is spent: another attempt could not answer in time
                call.tried(model)
                call.with_provider = True  # until it answers: a cut meanwhile finds the provider with the prompt
                try:
                    return await attempt(model, self._timeout(deadline))
                except DomainError as error:
                    call.with_provider = False
                    if not models.falls_back(error):
                        raise
                    failed = error
                # The error told when every model failed: a transient one, if any was, so
                # a retry is not ruled out by one model's set-up.
                if last is None or models.is_transient(failed) or not models.is_transient(last):
                    last = failed
                if retry == self._policy.retries or not models.is_transient(failed):
                    break
                delay = models.backoff(retry, failed.retry_after_seconds, random.random())
                if deadline is not None and time.monotonic() + delay >= deadline:
                    break  # no time to wait for this model: the next one may answer now
                await asyncio.sleep(delay)
        assert last is not None
        raise last

    def _timeout(self, deadline: float | None) -> float:
        """The upstream deadline: ours, or the caller's gRPC deadline if that is sooner
        (less a margin to record the call; a first attempt gets at least _MIN_ATTEMPT_SECONDS)."""
        if deadline is None:
            return self._policy.timeout_seconds
        return max(_MIN_ATTEMPT_SECONDS, min(self._policy.timeout_seconds, deadline - time.monotonic() - 0.05))

    async def call(
        self,
        principal: TeamPrincipal,
        job_id: str,
        request: ChatRequest,
        *,
        time_remaining: float | None = None,
        context: CallContext | None = None,
        placed: bool = False,
    ) -> CallResult:
        """The call in its job (`context`: the job's, when the caller has it: `for_new_job`;
        `placed`: `take_place` ran for it, so it takes no place of the team's calls a minute)."""
        deadline = None if time_remaining is None else time.monotonic() + time_remaining
        prepared = await self._prepare(principal, job_id, request, context, placed=placed)
        with self._in_flight(prepared.job_id):
            return await self._call(principal, prepared, request, deadline)

    async def _call(
        self, principal: TeamPrincipal, prepared: _Prepared, request: ChatRequest, deadline: float | None
    ) -> CallResult:
        call = _CallInProgress(self, principal, prepared, request, streamed=False)

        async def attempt(model: str, timeout: float):
            return await self._upstream.complete(model, prepared.route, request, timeout=timeout)

        try:
            with self._waiting_upstream():
                reply = await self._with_fallbacks(call, deadline, attempt)
            call.served_model, call.served_deployment = reply.served_model, reply.served_deployment
            answer = answer_from(reply.body)
        except DomainError as error:
            await call.save(_status_after(error, call), error=error)
            raise
        except asyncio.CancelledError:
            await call.save(CallStatus.CANCELLED)
            raise
        except Exception:  # a fault of ours, also in reading the answer
            await call.save_after_fault()
            raise
        if reply.cost_usd is not None and not answer.usage_implausible:
            answer = replace(answer, reported_cost_usd=reply.cost_usd)
        record = await call.save(CallStatus.SUCCEEDED, answer=answer)
        return CallResult(
            call_id=record.call_id,
            job_id=prepared.job_id,
            model_alias=prepared.route.alias,
            answer=answer,
            usage=Usage(record.prompt_tokens, record.completion_tokens, record.tokens_estimated),
            latency_ms=record.latency_ms,
            billed_cost_usd=record.billed_cost_usd,
        )

    async def stream(
        self,
        principal: TeamPrincipal,
        job_id: str,
        request: ChatRequest,
        *,
        time_remaining: float | None = None,
        context: CallContext | None = None,
        placed: bool = False,
    ) -> AsyncIterator[StreamEvent]:
        """Events of a streamed call: StreamStarted, Deltas, then StreamFinished (`context`
        and `placed` as for `call`); between them a KeepAlive whenever the client has been
        sent nothing for the policy's `stream_keepalive_seconds`.

        Errors before the first event raise (an ordinary RPC error). An upstream failure
        after it ends the stream with StreamFinished(error=...). If the consumer goes
        away, the call is recorded as cancelled with what was received so far.
        """
        deadline = None if time_remaining is None else time.monotonic() + time_remaining
        prepared = await self._prepare(principal, job_id, request, context, placed=placed)
        with self._in_flight(prepared.job_id):
            async with contextlib.aclosing(self._stream(principal, prepared, request, deadline)) as events:
                async for event in events:
                    yield event

    async def _stream(
        self, principal: TeamPrincipal, prepared: _Prepared, request: ChatRequest, deadline: float | None
    ) -> AsyncIterator[StreamEvent]:
        call = _CallInProgress(self, principal, prepared, request, streamed=True)
        accumulator = StreamAccumulator()
        try:
            async with contextlib.AsyncExitStack() as stack:

                async def attempt(model: str, timeout: float) -> UpstreamStream:
                    opened = self._upstream.stream(
                        model,
                        prepared.route,
                        request,
                        timeout=timeout,
                        idle_timeout=self._policy.stream_idle_timeout_seconds,
                    )
                    return await stack.enter_async_context(opened)

                try:
                    with self._waiting_upstream():
                        upstream = await self._with_fallbacks(call, deadline, attempt)
                except DomainError as error:
                    await call.save(_status_after(error, call), error=error)
                    raise
                call.served_model, call.served_deployment = upstream.served_model, upstream.served_deployment
                stack.enter_context(self._open(upstream))
                yield StreamStarted(call.call_id, prepared.job_id, prepared.route.alias)
                silence = _Silence(self._policy.stream_keepalive_seconds)
                try:
                    async with (
                        contextlib.aclosing(upstream.chunks()) as chunks,
                        contextlib.aclosing(silence.broken(chunks)) as heard,
                    ):
                        async for chunk in heard:
                            if chunk is KEEP_ALIVE:
                                yield KEEP_ALIVE
                                continue
                            delta = accumulator.feed(chunk)
                            if not delta.is_empty:
                                call.mark_first_token()
                                silence.ended()
                                yield delta
                except DomainError as error:
                    record = await call.save(
                        _status_after(error, call), answer=accumulator.answer(), error=error, partial=True
                    )
                    yield call.finished(record, error)
                    return
            record = await call.save(CallStatus.SUCCEEDED, answer=accumulator.answer())
            yield call.finished(record)
        except (asyncio.CancelledError, GeneratorExit):
            if not call.saved:  # left in a retry's backoff, the provider has nothing: no answer to count
                answer = accumulator.answer() if call.with_provider else None
                await call.save(CallStatus.CANCELLED, answer=answer, partial=True)
            raise
        except Exception:
            if not call.saved:
                await call.save_after_fault(accumulator.answer())
            raise


_END = object()


@dataclass(frozen=True)
class _Raised:
    """What the upstream's chunks raised, carried to the stream's loop."""

    error: Exception


class _Silence:
    """Breaks a stream's silence toward its client: `broken` yields the upstream's chunks,
    and KEEP_ALIVE whenever the client has been sent nothing for `interval` seconds (since
    the stream started or `ended` was last called; 0: never).

    One task per stream reads the chunks into a queue of one (the upstream is read at most
    a chunk ahead of the client, so a slow client still holds it back), and one timer
    per interval checks the silence: a chunk costs a queue's put and get, not a task and a
    timed wait of its own. A keep-alive neither cuts a read nor resets the upstream's idle
    timeout; a consumer that goes away cancels the read as it would the loop's own.
    """

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._since = time.monotonic()

    def ended(self) -> None:
        """The client was just sent something."""
        self._since = time.monotonic()

    async def broken(self, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[Any]:
        if not self._interval:
            async for chunk in chunks:
                yield chunk
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

        async def read() -> None:
            try:
                async for chunk in chunks:
                    await queue.put(chunk)
            except Exception as error:  # the loop raises it where it reads the chunks
                await queue.put(_Raised(error))
            else:
                await queue.put(_END)

        def check() -> None:
            nonlocal timer
            quiet = time.monotonic() - self._since
            if quiet >= self._interval and queue.empty():  # the client waits on nothing
                self.ended()
                queue.put_nowait(KEEP_ALIVE)
                quiet = 0.0
            timer = loop.call_later(max(self._interval - quiet, 0.0) or self._interval, check)

        reader = asyncio.ensure_future(read())
        timer = loop.call_later(self._interval, check)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, _Raised):
                    raise item.error
                yield item
        finally:  # also when the consumer goes away: the read is cancelled, its end retrieved
            timer.cancel()
            if not reader.done():
                reader.cancel()
                await asyncio.wait({reader})
            if not reader.cancelled():
                reader.exception()


def for_new_job(context: CallContext, job: Job) -> CallContext:
    """The context `check` read before `job` was made, as its call's context: the job
    pending, idle for no time, and its reservation, which its creation took from the team's
    balance, in both (what a read after the creation would say)."""
    balance = context.team.balance
    team = replace(context.team, balance=replace(balance, reserved=balance.reserved + job.credits_reserved))
    return replace(
        context, team=team, job_status=JobStatus.PENDING, job_reserved=job.credits_reserved, job_idle_seconds=0.0
    )


def _log_unrecorded(record: CallRecord, why: str) -> None:
    """What the operator needs to account for a call whose record is lost."""
    log.error(
        "call %s of job %s (team %s) is not recorded: %s; its usage: %d prompt and %d completion tokens, "
        "provider cost %s USD",
        record.call_id,
        record.job_id,
        record.team_id,
        why,
        record.prompt_tokens,
        record.completion_tokens,
        record.provider_cost_usd,
    )


def _status_after(error: DomainError, call: _CallInProgress) -> CallStatus:
    """How a call that ended with `error` is recorded: cut by the shutdown while the
    provider had it, cancelled (the prompt counted, as for a client gone); else failed."""
    if error.reason == Reason.SERVER_SHUTTING_DOWN and call.with_provider:
        return CallStatus.CANCELLED
    return CallStatus.FAILED


class _CallInProgress:
    """The facts of one call as they become known, and how to record them once."""

    def __init__(
        self,
        owner: CallUseCases,
        principal: TeamPrincipal,
        prepared: _Prepared,
        request: ChatRequest,
        *,
        streamed: bool,
    ) -> None:
        self.owner = owner
        self.principal = principal
        self.prepared = prepared
        self.request = request
        self.streamed = streamed
        self.call_id = uuid.uuid4()
        self.started = time.perf_counter()
        self.first_token_ms: int | None = None
        self.served_model = ""
        self.served_deployment = ""  # LiteLLM's id of the deployment that served, when it said
        self.attempted: list[str] = []
        self.with_provider = False  # an attempt under way: the provider has (or may have) the prompt
        self.saved = False

    def tried(self, model: str) -> None:
        """One more attempt on `model`: a retried model is listed again, so the record
        shows every request the providers had (and may bill)."""
        self.attempted.append(model)

    def mark_first_token(self) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = self._elapsed_ms()

    def _elapsed_ms(self) -> int:
        return round((time.perf_counter() - self.started) * 1000)

    async def _usage(self, status: CallStatus, answer: Answer | None, error: DomainError | None) -> Usage:
        """Reported usage; counted with the tokenizer when the provider sent none for a
        request it did process, or may have: an answer or part of one, a call cut (by its
        client or the shutdown) while the provider had it, a call that timed out waiting
        for the provider (it had the prompt, and providers bill a prompt read before the
        caller gave up), a reply we could not read; zero for a request the provider
        refused, or a call cut between attempts (in a retry's backoff)."""
        if answer is not None and answer.usage is not None:
            return answer.usage
        processed = error is not None and (
            error.reason == Reason.UPSTREAM_TIMEOUT or error.metadata.get("reply") == "malformed"
        )
        if answer is None and not (status is CallStatus.CANCELLED and self.with_provider) and not processed:
            return Usage()
        tokens, request = self.owner._tokens, self.request

        def count() -> tuple[int, int]:
            prompt = tokens.count_messages(request.messages) + tokens.count_json(request.params.get("tools"))
            if answer is None:
                return prompt, 0
            # Reasoning is output the provider bills (as completion tokens), sent or not.
            reasoning = tokens.count_text(answer.reasoning_content or "")
            return prompt, tokens.count_text(answer.content) + tokens.count_tool_calls(answer.tool_calls) + reasoning

        written_characters = 0 if answer is None else len(answer.content) + len(answer.reasoning_content or "")
        characters = message_characters(request.messages) + written_characters
        prompt, written = await tokens.off_the_loop(count, characters)
        bound = chat.output_token_bound(self.request)
        if bound is not None:  # the provider stopped there: a count past it is the tokenizer's, not the provider's
            written = min(written, bound)
        return Usage(prompt, written, estimated=True)

    async def _cost(self, usage: Usage, answer: Answer | None) -> tuple[Decimal, CostSource]:
        """Provider cost: as LiteLLM reported it, else computed from the price of the
        deployment that served the call, or of its model's priciest when LiteLLM did not
        say which (credits.provider_cost); a call with tokens and no price is reported as
        unpriced. A reported cost that the known price does not give for the call's usage
        has the prices read again before the call is recorded (PriceCatalog.check_reported),
        so the caller's next call is bounded at a price raised in LiteLLM."""
        reported = None if answer is None else answer.reported_cost_usd
        model = self.served_model or (self.attempted[-1] if self.attempted else self.prepared.route.primary)
        deployment, prices = self.served_deployment, self.owner._prices
        price = await prices.price(model, deployment) if credits.needs_price(reported, usage) else None
        cost, source = credits.provider_cost(reported, usage, price)
        if source is CostSource.NONE and usage.total_tokens:
            prices.unpriced(model)
        elif source is CostSource.LITELLM and not usage.estimated:
            await prices.check_reported(model, deployment, usage, cost)
        return cost, source

    async def save(
        self,
        status: CallStatus,
        *,
        answer: Answer | None = None,
        error: DomainError | None = None,
        partial: bool = False,
    ) -> CallRecord:
        """Record the call in its own task, so a cancelled request still records it."""
        self.saved = True
        return await self.owner._background.run_to_completion(self._save(status, answer, error, partial))

    async def save_after_fault(self, answer: Answer | None = None) -> None:
        """Record a call cut short by a fault of ours (a bug, not a refusal) as failed,
        with what it received, so its reservation is settled; best effort, as the fault is
        raised anyway and reported as INTERNAL."""
        try:
            await self.save(CallStatus.FAILED, answer=answer, error=INTERNAL_ERROR, partial=answer is not None)
        except Exception:
            log.exception("could not record call %s after a fault", self.call_id)

    async def _save(self, status: CallStatus, answer: Answer | None, error: DomainError | None, partial: bool):
        usage = await self._usage(status, answer, error)
        provider_cost, source = await self._cost(usage, answer)
        policy = self.owner._content_policy
        keep_content = answer is not None and (
            policy == ContentPolicy.ALL
            or (policy == ContentPolicy.PARTIAL and (partial or status is not CallStatus.SUCCEEDED))
        )
        record = CallRecord(
            call_id=self.call_id,
            job_id=self.prepared.job_id,
            team_id=self.principal.team_id,
            status=status,
            model_alias=self.prepared.route.alias,
            purpose=self.request.purpose,
            served_model=self.served_model,
            attempted_models=tuple(self.attempted),
            streamed=self.streamed,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            tokens_estimated=usage.estimated,
            provider_cost_usd=provider_cost,
            billed_cost_usd=credits.billed_cost(provider_cost, self.prepared.rates),
            cost_source=source.value,
            latency_ms=self._elapsed_ms(),
            first_token_ms=self.first_token_ms,
            finish_reason="" if answer is None else answer.finish_reason,
            error_reason="" if error is None else error.reason,
            error_message="" if error is None else error.message,
            content=answer.content if keep_content and answer is not None else None,
        )
        patch = self.request.call_metadata if record.status is CallStatus.SUCCEEDED else None
        # The job's recorded last activity is refreshed only when it would otherwise lag
        # the end of this call by more than the resolution.
        lag = time.perf_counter() - self.prepared.job_activity_at
        job = await self._record(record, patch, touch_job=lag > self.owner._activity_resolution)
        # Whether a late call is charged follows the budget its job was settled under, not
        # the one the call started under: the team may have switched in between. (A record
        # written by an attempt whose answer was lost: charge_late_calls decides.)
        if job is None or job.settled_without_the_call:
            await charge_late_calls(self.owner._db, record.job_id, record.team_id, self.principal.actor)
        return record

    async def _record(
        self, record: CallRecord, patch: dict[str, Any] | None, *, touch_job: bool
    ) -> job_store.JobAtRecord | None:
        """Write the record. The provider has done the work, and its cost is in no other
        place: while the database is unavailable (a connection lost, a restart) the write
        is tried again, on a new connection, for up to RECORD_RETRY_SECONDS. None when an
        earlier attempt had written it and only its answer was lost."""
        deadline = time.monotonic() + RECORD_RETRY_SECONDS
        delay, retried = 0.05, False
        try:
            while True:
                try:
                    async with self.owner._db.statements() as conn:
                        if retried and await job_store.call_recorded(conn, record.call_id):
                            return None
                        return await job_store.record_call(
                            conn,
                            record,
                            patch,
                            touch_job=touch_job,
                            in_job_limits=self.prepared.in_job_limits,
                            reserved_usd=self.prepared.reserved_usd,
                            durable=self._durable(),
                        )
                except DomainError as error:
                    if error.reason not in _WRITE_AGAIN or time.monotonic() + delay > deadline:
                        _log_unrecorded(record, str(error))
                        raise
                    if not retried:
                        log.warning("call %s: writing its record again (%s)", record.call_id, error.reason)
                await asyncio.sleep(delay)
                delay, retried = min(delay * 2, 1.0), True
        except asyncio.CancelledError:  # the server stopped first (its record may be written: check the call id)
            _log_unrecorded(record, "the server stopped before its record was written")
            raise

    def _durable(self) -> bool:
        """Whether the record's commit waits for PostgreSQL's flush to disk: always when it
        moves money, else unless SAAS_ASYNC_CALL_RECORDS is off. A record that does not is
        flushed by the next commit that waits, its job's completion at the latest."""
        return not self.owner._async_records or credits.record_is_money(
            self.prepared.rates, in_job_limits=self.prepared.in_job_limits
        )

    def finished(self, record: CallRecord, error: DomainError | None = None) -> StreamFinished:
        if error is not None and (request := context.get()) is not None:
            request.stream_error_reason = error.reason  # the access line says how the stream ended
        return StreamFinished(
            finish_reason=record.finish_reason,
            usage=Usage(record.prompt_tokens, record.completion_tokens, record.tokens_estimated),
            billed_cost_usd=record.billed_cost_usd,
            latency_ms=record.latency_ms,
            error=error,
        )
