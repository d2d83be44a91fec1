"""A synchronous client for scripts: the async client, run on a private event loop.

    with SyncSaasLiteLLMClient(base_url=..., team_id=..., virtual_key=...) as client:
        job = client.create_job("document_analysis")
        reply = client.llm_call(job.job_id, [{"role": "user", "content": "Hi"}])
        print(client.complete_job(job.job_id, "completed").credits_remaining)

Same methods, arguments, models, errors and retries as `SaasLiteLLMClient`. Not for use
inside a running event loop (use the async client there). Threads sharing one client take
turns on its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx
import pydantic

from saas_litellm_client import paging
from saas_litellm_client.client import DEFAULT_TIMEOUT, JobSession, SaasLiteLLMClient
from saas_litellm_client.models import (
    CallSummary,
    CompleteJobResponse,
    CompletionStatus,
    CreateAndCallChunk,
    CreateAndCallResponse,
    CreditBalance,
    CreditTransaction,
    EstimateCallResponse,
    GetJobCostsResponse,
    Job,
    JobStatus,
    ListCreditTransactionsResponse,
    ListJobCallsResponse,
    ListTeamJobsResponse,
    ListTeamModelsResponse,
    LLMCallResponse,
    StreamChunk,
    Usage,
    UsageSummary,
)
from saas_litellm_client.params import Message, Stop, ToolChoice, call_options
from saas_litellm_client.retry import RetryPolicy
from saas_litellm_client.streaming import C, LLMStream

R = TypeVar("R")
T = TypeVar("T", bound=pydantic.BaseModel)


class SyncSaasLiteLLMClient:
    """Blocking twin of `SaasLiteLLMClient`; close it (or use `with`) to release its loop."""

    def __init__(
        self,
        base_url: str,
        team_id: str | None = None,
        virtual_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        auto_idempotency_keys: bool = True,
    ) -> None:
        # A loop of our own, never installed as the thread's current loop: using this client
        # leaves the caller's asyncio state alone. Callers in several threads take turns on it.
        self._loop = asyncio.new_event_loop()
        self._turn = threading.Lock()
        self.aio = SaasLiteLLMClient(
            base_url,
            team_id,
            virtual_key,
            timeout=timeout,
            retry=retry,
            auto_idempotency_keys=auto_idempotency_keys,
        )
        """The async client underneath."""

    def __repr__(self) -> str:
        return f"SyncSaasLiteLLMClient(base_url={self.aio.base_url!r}, team_id={self.aio.team_id!r})"

    def _run(self, coroutine: Coroutine[Any, Any, R]) -> R:
        if self._loop.is_closed():
            coroutine.close()
            raise RuntimeError("this SyncSaasLiteLLMClient is closed")
        if _loop_running():
            coroutine.close()
            raise RuntimeError("SyncSaasLiteLLMClient cannot run inside a running event loop: use SaasLiteLLMClient")
        with self._turn:
            task = self._loop.create_task(coroutine)
            try:
                return self._loop.run_until_complete(task)
            except BaseException:
                # Interrupted (Ctrl-C leaves run_until_complete with the task pending): the
                # task unwinds here, releasing what it holds (a stream's response), so that
                # what runs next on this loop (a job block completing its job as failed)
                # finds it released rather than still running.
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        self._loop.run_until_complete(task)
                raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Releases the streams still open, closes the connections and the private event loop. Idempotent."""
        if self._loop.is_closed():
            return
        try:
            self._run(self.aio.aclose())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()

    def create_job(
        self,
        job_type: str,
        *,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """See `SaasLiteLLMClient.create_job`."""
        return self._run(
            self.aio.create_job(job_type, user_id=user_id, metadata=metadata, idempotency_key=idempotency_key)
        )

    def get_job(self, job_id: str) -> Job:
        """See `SaasLiteLLMClient.get_job`."""
        return self._run(self.aio.get_job(job_id))

    def list_job_calls(
        self, job_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> ListJobCallsResponse:
        """See `SaasLiteLLMClient.list_job_calls`."""
        return self._run(self.aio.list_job_calls(job_id, page_size=page_size, page_token=page_token))

    def iter_job_calls(self, job_id: str, *, page_size: int | None = None) -> Iterator[CallSummary]:
        """See `SaasLiteLLMClient.iter_job_calls`: `for call in client.iter_job_calls(job_id)`, a page at a time."""
        return paging.every_sync(
            lambda token: self.list_job_calls(job_id, page_size=page_size, page_token=token), lambda page: page.calls
        )

    def get_job_costs(self, job_id: str) -> GetJobCostsResponse:
        """See `SaasLiteLLMClient.get_job_costs`."""
        return self._run(self.aio.get_job_costs(job_id))

    def update_job_metadata(self, job_id: str, metadata: Mapping[str, Any]) -> Job:
        """See `SaasLiteLLMClient.update_job_metadata`."""
        return self._run(self.aio.update_job_metadata(job_id, metadata))

    def complete_job(
        self,
        job_id: str,
        status: CompletionStatus,
        *,
        metadata: Mapping[str, Any] | None = None,
        error_message: str | None = None,
    ) -> CompleteJobResponse:
        """See `SaasLiteLLMClient.complete_job`."""
        return self._run(self.aio.complete_job(job_id, status, metadata=metadata, error_message=error_message))

    def llm_call(
        self,
        job_id: str,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        purpose: str | None = None,
        call_metadata: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        top_p: float | None = None,
        stop: Stop | None = None,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        user: str | None = None,
        logit_bias: Mapping[str, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        reasoning_effort: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **provider_params: Any,
    ) -> LLMCallResponse:
        """See `SaasLiteLLMClient.llm_call`."""
        return self._run(self.aio.llm_call(job_id, messages, **call_options(locals())))

    def llm_call_stream(
        self,
        job_id: str,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        purpose: str | None = None,
        call_metadata: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        top_p: float | None = None,
        stop: Stop | None = None,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        user: str | None = None,
        logit_bias: Mapping[str, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        reasoning_effort: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **provider_params: Any,
    ) -> SyncLLMStream[StreamChunk]:
        """See `SaasLiteLLMClient.llm_call_stream`: `for chunk in client.llm_call_stream(...)`."""
        return SyncLLMStream(self, self.aio.llm_call_stream(job_id, messages, **call_options(locals())))

    def structured_call(
        self,
        job_id: str,
        messages: Sequence[Message],
        response_model: type[T],
        *,
        strict: bool | None = None,
        validation_retries: int = 0,
        model: str | None = None,
        purpose: str | None = None,
        call_metadata: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        top_p: float | None = None,
        stop: Stop | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        user: str | None = None,
        logit_bias: Mapping[str, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        reasoning_effort: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **provider_params: Any,
    ) -> T:
        """See `SaasLiteLLMClient.structured_call`."""
        return self._run(
            self.aio.structured_call(
                job_id,
                messages,
                response_model,
                strict=strict,
                validation_retries=validation_retries,
                **call_options(locals()),
            )
        )

    def estimate_call(
        self,
        messages: Sequence[Message],
        *,
        job_id: str | None = None,
        model: str | None = None,
        purpose: str | None = None,
        call_metadata: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        top_p: float | None = None,
        stop: Stop | None = None,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        user: str | None = None,
        logit_bias: Mapping[str, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        reasoning_effort: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **provider_params: Any,
    ) -> EstimateCallResponse:
        """See `SaasLiteLLMClient.estimate_call`."""
        return self._run(self.aio.estimate_call(messages, job_id=job_id, **call_options(locals())))

    def create_and_call(
        self,
        job_type: str,
        messages: Sequence[Message],
        *,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        model: str | None = None,
        purpose: str | None = None,
        call_metadata: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        top_p: float | None = None,
        stop: Stop | None = None,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        user: str | None = None,
        logit_bias: Mapping[str, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        reasoning_effort: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **provider_params: Any,
    ) -> CreateAndCallResponse:
        """See `SaasLiteLLMClient.create_and_call`."""
        return self._run(
            self.aio.create_and_call(
                job_type,
                messages,
                user_id=user_id,
                metadata=metadata,
                idempotency_key=idempotency_key,
                **call_options(locals()),
            )
        )

    def create_and_call_stream(
        self,
        job_type: str,
        messages: Sequence[Message],
        *,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        model: str | None = None,
        purpose: str | None = None,
        call_metadata: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        top_p: float | None = None,
        stop: Stop | None = None,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        user: str | None = None,
        logit_bias: Mapping[str, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        reasoning_effort: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **provider_params: Any,
    ) -> SyncLLMStream[CreateAndCallChunk]:
        """See `SaasLiteLLMClient.create_and_call_stream`: `for chunk in client.create_and_call_stream(...)`."""
        stream = self.aio.create_and_call_stream(
            job_type,
            messages,
            user_id=user_id,
            metadata=metadata,
            idempotency_key=idempotency_key,
            **call_options(locals()),
        )
        return SyncLLMStream(self, stream)

    def get_usage(
        self,
        *,
        start_date: date | str | None = None,
        end_date: date | str | None = None,
        job_type: str | None = None,
        limit: int | None = None,
    ) -> UsageSummary:
        """See `SaasLiteLLMClient.get_usage`."""
        return self._run(self.aio.get_usage(start_date=start_date, end_date=end_date, job_type=job_type, limit=limit))

    def list_models(self, team_id: str | None = None) -> ListTeamModelsResponse:
        """See `SaasLiteLLMClient.list_models`."""
        return self._run(self.aio.list_models(team_id))

    def list_jobs(
        self,
        team_id: str | None = None,
        *,
        status: JobStatus | str | None = None,
        job_type: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ListTeamJobsResponse:
        """See `SaasLiteLLMClient.list_jobs`."""
        return self._run(
            self.aio.list_jobs(team_id, status=status, job_type=job_type, page_size=page_size, page_token=page_token)
        )

    def iter_jobs(
        self,
        team_id: str | None = None,
        *,
        status: JobStatus | str | None = None,
        job_type: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[Job]:
        """See `SaasLiteLLMClient.iter_jobs`: `for job in client.iter_jobs(...)`, a page at a time."""
        return paging.every_sync(
            lambda token: self.list_jobs(
                team_id, status=status, job_type=job_type, page_size=page_size, page_token=token
            ),
            lambda page: page.jobs,
        )

    def get_credit_balance(self, team_id: str | None = None) -> CreditBalance:
        """See `SaasLiteLLMClient.get_credit_balance`."""
        return self._run(self.aio.get_credit_balance(team_id))

    def list_credit_transactions(
        self,
        team_id: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ListCreditTransactionsResponse:
        """See `SaasLiteLLMClient.list_credit_transactions`."""
        return self._run(self.aio.list_credit_transactions(team_id, page_size=page_size, page_token=page_token))

    def iter_credit_transactions(
        self, team_id: str | None = None, *, page_size: int | None = None
    ) -> Iterator[CreditTransaction]:
        """See `SaasLiteLLMClient.iter_credit_transactions`: `for entry in client.iter_credit_transactions()`."""
        return paging.every_sync(
            lambda token: self.list_credit_transactions(team_id, page_size=page_size, page_token=token),
            lambda page: page.transactions,
        )

    def job(
        self,
        job_type: str,
        *,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> AbstractContextManager[SyncJobSession]:
        """See `SaasLiteLLMClient.job`: completed `completed` on success, `failed` on an exception."""
        return self._job(job_type, user_id=user_id, metadata=metadata, idempotency_key=idempotency_key)

    @contextmanager
    def _job(self, job_type: str, **create: Any) -> Iterator[SyncJobSession]:
        manager = self.aio.job(job_type, **create)
        session = self._run(manager.__aenter__())
        try:
            yield SyncJobSession(self, session)
        except BaseException as error:
            self._run(manager.__aexit__(type(error), error, error.__traceback__))
            raise
        self._run(manager.__aexit__(None, None, None))


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class SyncLLMStream(Generic[C]):
    """Blocking twin of `LLMStream`: `for chunk in stream`; `with` releases it early."""

    def __init__(self, client: SyncSaasLiteLLMClient, stream: LLMStream[C]) -> None:
        self._client = client
        self.aio = stream

    @property
    def text(self) -> str:
        """The text received so far."""
        return self.aio.text

    @property
    def final(self) -> C | None:
        """The last chunk (`done=True`), once it arrived."""
        return self.aio.final

    @property
    def call_id(self) -> str | None:
        return self.aio.call_id

    @property
    def job_id(self) -> str | None:
        return self.aio.job_id

    @property
    def usage(self) -> Usage | None:
        return self.aio.usage

    @property
    def cost_usd(self) -> float | None:
        return self.aio.cost_usd

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> C:
        try:
            return self._client._run(anext(self.aio))
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """See `LLMStream.aclose`. A stream left open is closed by its job block, else by its client."""
        self._client._run(self.aio.aclose())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SyncJobSession:
    """Blocking twin of `JobSession`."""

    def __init__(self, client: SyncSaasLiteLLMClient, session: JobSession) -> None:
        self._client = client
        self.aio = session

    @property
    def job(self) -> Job:
        return self.aio.job

    @property
    def job_id(self) -> str:
        return self.aio.job_id

    @property
    def completed(self) -> bool:
        return self.aio.completed

    @property
    def result(self) -> CompleteJobResponse:
        """See `JobSession.result`."""
        return self.aio.result

    def llm_call(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        purpose: str | None = None,
        call_metadata: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        top_p: float | None = None,
        stop: Stop | None = None,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        user: str | None = None,
        logit_bias: Mapping[str, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        reasoning_effort: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **provider_params: Any,
    ) -> LLMCallResponse:
        return self._client._run(self.aio.llm_call(messages, **call_options(locals())))

    def llm_call_stream(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        purpose: str | None = None,
        call_metadata: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        top_p: float | None = None,
        stop: Stop | None = None,
        response_format: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        user: str | None = None,
        logit_bias: Mapping[str, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        reasoning_effort: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **provider_params: Any,
    ) -> SyncLLMStream[StreamChunk]:
        return SyncLLMStream(self._client, self.aio.llm_call_stream(messages, **call_options(locals())))

    def structured_call(
        self,
        messages: Sequence[Message],
        response_model: type[T],
        *,
        strict: bool | None = None,
        validation_retries: int = 0,
        model: str | None = None,
        purpose: str | None = None,
        call_metadata: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        top_p: float | None = None,
        stop: Stop | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        seed: int | None = None,
        user: str | None = None,
        logit_bias: Mapping[str, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        reasoning_effort: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **provider_params: Any,
    ) -> T:
        return self._client._run(
            self.aio.structured_call(
                messages, response_model, strict=strict, validation_retries=validation_retries, **call_options(locals())
            )
        )

    def refresh(self) -> Job:
        return self._client._run(self.aio.refresh())

    def close_streams(self) -> None:
        """See `JobSession.close_streams`."""
        self._client._run(self.aio.close_streams())

    def complete(
        self,
        status: CompletionStatus,
        *,
        metadata: Mapping[str, Any] | None = None,
        error_message: str | None = None,
    ) -> CompleteJobResponse:
        return self._client._run(self.aio.complete(status, metadata=metadata, error_message=error_message))
