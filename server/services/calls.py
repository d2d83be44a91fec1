"""LLM calls inside a job, plain and streamed. Every call is recorded, however it ends.

Sequence of one call:
1. one short transaction: team may work, the alias is reachable for the team, the job is
   open (and becomes in_progress);
2. the upstream call, holding no database connection;
3. one transaction recording the call (succeeded, failed or cancelled).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

from server.domain import credits, models, validation
from server.domain.chat import ChatRequest
from server.domain.completion import Answer, Delta, StreamAccumulator, Usage, answer_from
from server.domain.credits import BudgetMode, Rates
from server.domain.errors import DomainError
from server.domain.jobs import CallRecord, CallStatus, ensure_open, summarize
from server.domain.models import Route
from server.services.auth import TeamPrincipal
from server.services.background import Background
from server.services.tokens import TokenCounter
from server.storage import credits as credit_store
from server.storage import jobs as job_store
from server.storage import teams as team_store
from server.storage.database import Database
from server.upstream.litellm import LiteLLMClient


class ContentPolicy:
    """Which completions are stored with the call record (SAAS_RECORD_CONTENT)."""

    NONE = "none"
    PARTIAL = "partial"  # only calls that did not finish normally: what the client got
    ALL = "all"


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


StreamEvent = StreamStarted | Delta | StreamFinished


@dataclass(frozen=True)
class _Prepared:
    job_id: uuid.UUID
    route: Route
    rates: Rates


class CallUseCases:
    def __init__(
        self,
        db: Database,
        upstream: LiteLLMClient,
        background: Background,
        tokens: TokenCounter,
        *,
        timeout_seconds: float,
        content_policy: str = ContentPolicy.PARTIAL,
    ) -> None:
        self._db = db
        self._upstream = upstream
        self._background = background
        self._tokens = tokens
        self._timeout = timeout_seconds
        self._content_policy = content_policy

    def timeout(self, time_remaining: float | None) -> float:
        """The upstream deadline: ours, or the caller's gRPC deadline if that is sooner."""
        if time_remaining is None:
            return self._timeout
        return max(0.1, min(self._timeout, time_remaining - 0.05))

    async def _prepare(self, principal: TeamPrincipal, job_id: str, request: ChatRequest) -> _Prepared:
        jid = validation.job_id(job_id)
        async with self._db.transaction() as conn:
            team = await credit_store.team_state(conn, principal.team_id)
            credits.ensure_can_work(principal.team_id, team.status)
            reachable = await team_store.reachable_aliases(conn, principal.team_id)
            route = models.resolve(request.model, team.default_model, reachable)
            job = await job_store.get_job(conn, jid, principal.team_id)
            ensure_open(job)
            if team.rates.mode is not BudgetMode.JOB_BASED:
                spent = summarize(await job_store.list_calls(conn, jid))
                credits.ensure_can_spend(principal.team_id, team.rates, spent, team.balance, job.credits_reserved)
            if not await job_store.start_job(conn, jid, principal.team_id):
                ensure_open(await job_store.get_job(conn, jid, principal.team_id))
        return _Prepared(jid, route, team.rates)

    async def call(
        self, principal: TeamPrincipal, job_id: str, request: ChatRequest, *, time_remaining: float | None = None
    ) -> CallResult:
        prepared = await self._prepare(principal, job_id, request)
        call = _CallInProgress(self, principal, prepared, request, streamed=False)
        try:
            reply = await self._upstream.complete(prepared.route, request, timeout=self.timeout(time_remaining))
        except DomainError as error:
            await call.save(CallStatus.FAILED, error=error)
            raise
        except asyncio.CancelledError:
            await call.save(CallStatus.CANCELLED)
            raise
        call.served_model, call.attempted = reply.served_model, reply.attempted_models
        answer = call.answer_from_reply(reply.body, reply.cost_usd)
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
        self, principal: TeamPrincipal, job_id: str, request: ChatRequest, *, time_remaining: float | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Events of a streamed call: StreamStarted, Deltas, then StreamFinished.

        Errors before the first event raise (an ordinary RPC error). An upstream failure
        after it ends the stream with StreamFinished(error=...). If the consumer goes
        away, the call is recorded as cancelled with what was received so far.
        """
        prepared = await self._prepare(principal, job_id, request)
        call = _CallInProgress(self, principal, prepared, request, streamed=True)
        accumulator = StreamAccumulator()
        started = False
        try:
            try:
                async with self._upstream.stream(
                    prepared.route, request, timeout=self.timeout(time_remaining)
                ) as upstream:
                    call.served_model, call.attempted = upstream.served_model, upstream.attempted_models
                    started = True
                    yield StreamStarted(call.call_id, prepared.job_id, prepared.route.alias)
                    async for chunk in upstream.chunks():
                        delta = accumulator.feed(chunk)
                        if delta.is_empty:
                            continue
                        call.mark_first_token()
                        yield delta
            except DomainError as error:
                if not started:
                    await call.save(CallStatus.FAILED, error=error)
                    raise
                record = await call.save(CallStatus.FAILED, answer=accumulator.answer(), error=error, partial=True)
                yield call.finished(record, error)
                return
            record = await call.save(CallStatus.SUCCEEDED, answer=accumulator.answer())
            yield call.finished(record)
        except (asyncio.CancelledError, GeneratorExit):
            if not call.saved:
                await call.save(CallStatus.CANCELLED, answer=accumulator.answer(), partial=True)
            raise


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
        self.attempted: tuple[str, ...] = (prepared.route.primary,)
        self.saved = False

    def mark_first_token(self) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = self._elapsed_ms()

    def _elapsed_ms(self) -> int:
        return round((time.perf_counter() - self.started) * 1000)

    def answer_from_reply(self, body: dict, header_cost: Decimal | None) -> Answer:
        answer = answer_from(body)
        if header_cost is not None:
            answer = Answer(answer.content, answer.finish_reason, answer.tool_calls, answer.usage, header_cost)
        return answer

    def _usage(self, status: CallStatus, answer: Answer | None) -> Usage:
        """Reported usage; counted with the tokenizer when the provider sent none for a
        request it did process (an answer or part of one, or a call cut by the client);
        zero for a request the provider refused."""
        if answer is not None and answer.usage is not None:
            return answer.usage
        if answer is None and status is not CallStatus.CANCELLED:
            return Usage()
        tokens = self.owner._tokens
        completion = "" if answer is None else answer.content
        return Usage(tokens.count_messages(self.request.messages), tokens.count_text(completion), estimated=True)

    async def save(
        self,
        status: CallStatus,
        *,
        answer: Answer | None = None,
        error: DomainError | None = None,
        partial: bool = False,
    ) -> CallRecord:
        """Record the call in its own task, so a cancelled request still records it."""
        usage = self._usage(status, answer)
        if answer is not None and answer.reported_cost_usd is not None:
            provider_cost, source = answer.reported_cost_usd, "litellm"
        else:
            provider_cost, source = Decimal(0), "none"
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
            attempted_models=self.attempted,
            streamed=self.streamed,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            tokens_estimated=usage.estimated,
            provider_cost_usd=provider_cost,
            billed_cost_usd=credits.billed_cost(provider_cost, self.prepared.rates),
            cost_source=source,
            latency_ms=self._elapsed_ms(),
            first_token_ms=self.first_token_ms,
            finish_reason="" if answer is None else answer.finish_reason,
            error_reason="" if error is None else error.reason,
            error_message="" if error is None else error.message,
            content=answer.content if keep_content and answer is not None else None,
        )
        self.saved = True
        await self.owner._background.run_to_completion(self._write(record))
        return record

    async def _write(self, record: CallRecord) -> None:
        async with self.owner._db.transaction() as conn:
            await job_store.insert_call(conn, record)
            if record.status is CallStatus.SUCCEEDED and self.request.call_metadata:
                await job_store.merge_metadata(conn, record.job_id, self.request.call_metadata)

    def finished(self, record: CallRecord, error: DomainError | None = None) -> StreamFinished:
        return StreamFinished(
            finish_reason=record.finish_reason,
            usage=Usage(record.prompt_tokens, record.completion_tokens, record.tokens_estimated),
            billed_cost_usd=record.billed_cost_usd,
            latency_ms=record.latency_ms,
            error=error,
        )
