"""The async client: jobs, calls (plain, streamed, structured), single-call jobs, the team's
costs, usage, models, jobs and credits; typed errors, safe retries."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date, datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from saas_litellm_client import paging
from saas_litellm_client._version import __version__
from saas_litellm_client.errors import (
    APIConnectionError,
    APITimeoutError,
    SaasLiteLLMError,
    StructuredOutputError,
    error_from_response,
)
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
    UsageSummary,
)
from saas_litellm_client.params import (
    Message,
    Stop,
    ToolChoice,
    call_body,
    call_options,
    message_dict,
    session_options,
)
from saas_litellm_client.retry import Repeat, RetryPolicy, retry_delay
from saas_litellm_client.schema import response_format
from saas_litellm_client.streaming import LLMStream

log = logging.getLogger("saas_litellm_client")

T = TypeVar("T", bound=pydantic.BaseModel)
M = TypeVar("M", bound=pydantic.BaseModel)

DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
"""Per request: 10 s to connect, 120 s for each read (an LLM call can take a while)."""

MAX_ERROR_MESSAGE = 1000
"""The server's limit for a failed job's `error_message`."""

CUT_CALL_RECORD_TIMEOUT = 10.0
"""How long closing a stream cut before its final event waits, at most, for the server to
record the call (it does once it sees the client gone: normally within milliseconds)."""


def api_root(base_url: str) -> str:
    """`http://host:8003` or `http://host:8003/api` -> `http://host:8003/api`."""
    root = base_url.rstrip("/")
    return root if root.endswith("/api") else f"{root}/api"


def _connection_error(error: httpx.HTTPError, method: str, path: str) -> APIConnectionError:
    """An httpx failure as our exception; whether the request can have reached the server."""
    not_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    cls = APITimeoutError if isinstance(error, httpx.TimeoutException) else APIConnectionError
    return cls(f"{method} {path}: {type(error).__name__}: {error}", request_sent=not not_sent)


def describe_exception(error: BaseException) -> str:
    """A failed job's `error_message`: the exception's type and text, within the server's limits."""
    text = f"{type(error).__name__}: {error}".replace("\x00", "")
    return text if len(text) <= MAX_ERROR_MESSAGE else text[: MAX_ERROR_MESSAGE - 3] + "..."


def validation_feedback(error: pydantic.ValidationError) -> str:
    """The message that asks the model to correct a reply that did not validate."""
    problems = [
        f"- {'.'.join(str(p) for p in item['loc']) or '(root)'}: {item['msg']}"
        for item in error.errors(include_url=False)[:20]
    ]
    return (
        "Your previous reply does not match the required JSON schema:\n"
        + "\n".join(problems)
        + "\nReply again with only the corrected JSON document."
    )


class SaasLiteLLMClient:
    """Async client of the SaaS LiteLLM job API.

        async with SaasLiteLLMClient(base_url="http://localhost:8003", team_id="acme-corp",
                                     virtual_key="sk-...") as client:
            job = await client.create_job("document_analysis")
            response = await client.llm_call(job_id=job.job_id, messages=[{"role": "user", "content": "Hi"}])
            result = await client.complete_job(job.job_id, "completed")
            print(result.credits_remaining)

    `base_url` is the API's address (with or without the `/api` suffix); `team_id` is sent
    with creates (the server checks it is the key's team; optional); `virtual_key` is the
    team's key, sent as a bearer token and never shown (not in `repr`, not in errors).
    `retry` bounds the retries of transient failures (429, 503; see `RetryPolicy`);
    `RetryPolicy(max_attempts=1)` disables them. `auto_idempotency_keys` gives each
    `create_job` a fresh key unless one is passed, so that its retries are safe; without a
    key a create is never retried. `http_client` lets you bring your own `httpx.AsyncClient`
    (it is then yours to close).
    """

    def __init__(
        self,
        base_url: str,
        team_id: str | None = None,
        virtual_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        auto_idempotency_keys: bool = True,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if not virtual_key:
            raise ValueError("virtual_key is required: the team's key, 'sk-...'")
        self.base_url = api_root(base_url)
        self.team_id = team_id
        self.retry = retry or RetryPolicy()
        self.auto_idempotency_keys = auto_idempotency_keys
        self._headers = {
            "Authorization": f"Bearer {virtual_key}",
            "User-Agent": f"saas-litellm-client/{__version__} httpx/{httpx.__version__}",
        }
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._open_streams: set[LLMStream[Any]] = set()  # streams whose response is open

    def __repr__(self) -> str:
        return f"SaasLiteLLMClient(base_url={self.base_url!r}, team_id={self.team_id!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Releases the streams still open (one left with `break`, say), then closes the
        connections (unless the `http_client` was given)."""
        try:
            for stream in list(self._open_streams):
                await stream._release()
        finally:
            if self._owns_http:
                await self._http.aclose()

    # ------------------------------------------------------------ jobs

    async def create_job(
        self,
        job_type: str,
        *,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Creates a job and reserves the credit it will cost when completed.

        Raises `InsufficientCreditsError` when the team has no credit available,
        `TeamMismatchError` when `team_id` is not the key's team. A retry with the same
        `idempotency_key` returns the same job (and reserves once).
        """
        key = idempotency_key or (uuid.uuid4().hex if self.auto_idempotency_keys else None)
        body: dict[str, Any] = {"job_type": job_type}
        if self.team_id:
            body["team_id"] = self.team_id
        if user_id is not None:
            body["user_id"] = user_id
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return await self._request(
            "POST",
            "/jobs/create",
            Job,
            json=body,
            headers={"Idempotency-Key": key} if key else None,
            repeat=Repeat.IDEMPOTENT if key else Repeat.NEVER,
        )

    async def get_job(self, job_id: str) -> Job:
        """The job with its status, cost totals and calls (its first 1,000: `iter_job_calls`
        reads them all). `JobNotFoundError` if unknown (or another team's)."""
        return await self._request("GET", f"/jobs/{_segment(job_id)}", Job, repeat=Repeat.IDEMPOTENT)

    async def list_job_calls(
        self, job_id: str, *, page_size: int | None = None, page_token: str | None = None
    ) -> ListJobCallsResponse:
        """One page of a job's calls, oldest first, each as `get_job` shows it: all of them,
        where a job shows only its first 1,000 (`job.costs.total_calls` counts them all).

        `page_size` defaults to 50 (more than 1,000 is taken as 1,000); pass
        `next_page_token` as `page_token` for the next page, or use `iter_job_calls`.
        `JobNotFoundError` if unknown (or another team's).
        """
        params = {"page_size": page_size, "page_token": page_token}
        return await self._request(
            "GET", f"/jobs/{_segment(job_id)}/calls", ListJobCallsResponse, params=params, repeat=Repeat.IDEMPOTENT
        )

    def iter_job_calls(self, job_id: str, *, page_size: int | None = None) -> AsyncIterator[CallSummary]:
        """Every call of `list_job_calls`, oldest first, fetching the pages as it goes:
        `async for call in client.iter_job_calls(job_id)`."""
        return paging.every(
            lambda token: self.list_job_calls(job_id, page_size=page_size, page_token=token), lambda page: page.calls
        )

    async def get_job_costs(self, job_id: str) -> GetJobCostsResponse:
        """A job's cost view: each call's tokens and billed cost, the totals and the credits charged.

        `JobNotFoundError` if unknown (or another team's).
        """
        return await self._request(
            "GET", f"/jobs/{_segment(job_id)}/costs", GetJobCostsResponse, repeat=Repeat.IDEMPOTENT
        )

    async def update_job_metadata(self, job_id: str, metadata: Mapping[str, Any]) -> Job:
        """Sets `metadata`'s keys in the job's metadata (a shallow merge), in any status."""
        return await self._request(
            "PATCH",
            f"/jobs/{_segment(job_id)}/metadata",
            Job,
            json={"metadata": dict(metadata)},
            repeat=Repeat.IDEMPOTENT,  # setting the same keys again changes nothing
        )

    async def complete_job(
        self,
        job_id: str,
        status: CompletionStatus,
        *,
        metadata: Mapping[str, Any] | None = None,
        error_message: str | None = None,
    ) -> CompleteJobResponse:
        """Completes a job: `completed` charges its credit, `failed` releases it (the
        `JobStatus` of either will do: `JobStatus.COMPLETED`).

        Repeating the same completion returns the same result and never charges twice;
        the other status raises `JobAlreadyFinishedError`.
        """
        body: dict[str, Any] = {"status": str(status).lower()}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if error_message is not None:
            body["error_message"] = error_message
        return await self._request(
            "POST", f"/jobs/{_segment(job_id)}/complete", CompleteJobResponse, json=body, repeat=Repeat.IDEMPOTENT
        )

    def job(
        self,
        job_type: str,
        *,
        user_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> AbstractAsyncContextManager[JobSession]:
        """A job for the length of an `async with` block:

            async with client.job("document_analysis") as job:
                summary = await job.llm_call(messages=[...])
            print(job.result.credits_remaining)

        On leaving the block normally the job is completed `completed`; when the block
        raises, it is completed `failed` (with the exception as `error_message`, so no
        credit is charged) and the exception propagates. A job completed inside the block
        (`await job.complete(...)`) is left as it is. Either way, the streams the block
        opened and left (a `break` out of `async for`) are closed first, and the job is
        completed only once the server has recorded their calls, so that it is settled
        with them (see `LLMStream.aclose`).
        """
        return self._job(job_type, user_id=user_id, metadata=metadata, idempotency_key=idempotency_key)

    @asynccontextmanager
    async def _job(self, job_type: str, **create: Any) -> AsyncIterator[JobSession]:
        session = JobSession(self, await self.create_job(job_type, **create))
        try:
            yield session
        except BaseException as error:
            try:
                await session.close_streams()
                if not session.completed:
                    await session.complete("failed", error_message=describe_exception(error))
            except Exception as completion_error:  # the original error matters more
                error.add_note(f"completing job {session.job_id} as failed failed too: {completion_error}")
            raise
        await session.close_streams()
        if not session.completed:
            await session.complete("completed")

    # ------------------------------------------------------------ calls

    async def llm_call(
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
        """Makes one LLM call in an open job and returns the answer with its tokens and cost.

        The keyword arguments are OpenAI chat parameters (`model`, `temperature`,
        `max_tokens`, `response_format`, `tools`, ...; see `CallOptions`) plus `purpose` and
        `call_metadata`; any other keyword is a provider parameter, sent in `extra_body`
        (`top_k=40`), unless it names a field of the API's requests (`job_metadata`,
        `status`, ...): TypeError, saying what to use instead.
        Transient failures (rate limits, an unavailable provider) are retried per `retry`.
        """
        body = call_body(messages, call_options(locals()))
        return await self._request(
            "POST",
            f"/jobs/{_segment(job_id)}/llm-call",
            LLMCallResponse,
            json=body,
            repeat=Repeat.AFTER_REFUSAL,
        )

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
    ) -> LLMStream[StreamChunk]:
        """Streams one LLM call: `async for chunk in client.llm_call_stream(job_id=..., messages=[...])`.

        Each chunk has the new text in `content` (and `delta`); the last has `done=True`,
        `usage` and `cost_usd`. Errors before the first event are raised like `llm_call`'s
        (and retried the same way); after it, nothing is retried: an in-band error raises
        its typed exception, a stream that ends without its final event `StreamCutError`.
        Keyword arguments as `llm_call`'s.
        """
        body = call_body(messages, call_options(locals()))
        path = f"/jobs/{_segment(job_id)}/llm-call-stream"
        return LLMStream(
            lambda: self._open_stream(path, body),
            StreamChunk,
            settle=lambda call_id: self._cut_call_recorded(job_id, call_id),
            open_streams=self._open_streams,
        )

    async def _cut_call_recorded(self, job_id: str, call_id: str) -> None:
        """Waits until the server has recorded a streamed call the client cut, so that a
        completion of the job that follows is settled with it (a call recorded after its
        job's completion is not charged, and the completion does not wait for it).

        The server records such a call as soon as it sees the client gone: this polls the
        job's calls, briefly, and gives up (with a warning) after `CUT_CALL_RECORD_TIMEOUT`
        or on an error, since closing a stream should not fail.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CUT_CALL_RECORD_TIMEOUT
        delay = 0.01
        while True:
            try:
                costs = await self.get_job_costs(job_id)
            except SaasLiteLLMError as error:
                log.warning("could not check that job %s recorded its cut call %s: %s", job_id, call_id, error)
                return
            if any(call.call_id == call_id for call in costs.calls):
                return
            if loop.time() + delay > deadline:
                log.warning(
                    "job %s has not recorded its cut call %s after %.0fs; going on without it",
                    job_id,
                    call_id,
                    CUT_CALL_RECORD_TIMEOUT,
                )
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def structured_call(
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
        """Asks for JSON that fits `response_model` and returns it validated, as an instance.

        The model's JSON schema is sent as a `json_schema` `response_format` (strict mode
        when the model allows it; `strict=False` turns it off). A reply that does not
        validate raises `StructuredOutputError` with the raw content. With
        `validation_retries=1` the model is first asked once more, shown the validation
        errors (each attempt is a call of the job, and costs what it costs).
        """
        options = call_options(locals())
        if "response_format" in options:
            raise TypeError("structured_call sets response_format itself; use llm_call to pass your own")
        if validation_retries < 0:
            raise ValueError("validation_retries must be >= 0")
        options["response_format"] = response_format(response_model, strict=strict)
        conversation = [message_dict(m) for m in messages]
        attempts = validation_retries + 1
        for attempt in range(1, attempts + 1):
            result = await self._request(
                "POST",
                f"/jobs/{_segment(job_id)}/llm-call",
                LLMCallResponse,
                json=call_body(conversation, options),
                repeat=Repeat.AFTER_REFUSAL,
            )
            raw = result.response.content
            try:
                return response_model.model_validate_json(raw)
            except pydantic.ValidationError as error:
                if attempt == attempts:
                    raise StructuredOutputError(
                        f"the reply does not fit {response_model.__name__} after {attempts} attempt(s): "
                        f"{error.error_count()} validation error(s)",
                        raw_content=raw,
                        validation_error=error,
                        response=result,
                        attempts=attempts,
                    ) from error
                log.info("structured reply did not validate; asking again (attempt %d of %d)", attempt + 1, attempts)
                conversation = [
                    *conversation,
                    {"role": "assistant", "content": raw},
                    {"role": "user", "content": validation_feedback(error)},
                ]
        raise AssertionError("unreachable")  # pragma: no cover

    async def estimate_call(
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
        """The most `llm_call(job_id, messages, **options)` could cost, before anything is
        spent: nothing goes to a provider. `max_tokens` (or `max_completion_tokens`) is
        required: it bounds the output. With `job_id`, also what the job may still cost
        under the team's limit and whether the call fits."""
        body = call_body(messages, call_options(locals()))
        if job_id is not None:
            body["job_id"] = job_id
        return await self._request(
            "POST", "/jobs/estimate-call", EstimateCallResponse, json=body, repeat=Repeat.IDEMPOTENT
        )

    # ------------------------------------------------------------ single-call jobs

    async def create_and_call(
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
        """Creates a job, makes one call in it and completes it, in one request.

        Returns the answer (`content`, `response`), the call's `metadata`, the job's final
        `status` and `costs` with `credits_remaining`. `metadata` is the job's (sent as
        `job_metadata`); the other keywords are `llm_call`'s (`job_metadata=` is a TypeError:
        use `metadata=`). When the call fails the job is failed
        (not charged) and the call's typed error is raised, `metadata["job_id"]` naming the job.
        Transient failures are retried as `llm_call`'s; each attempt is a new job, and a
        failed one costs nothing. With `idempotency_key`, any request may be repeated, even
        one whose answer was lost: the server runs a request again only if the key's last
        job failed, and refuses it otherwise (`RequestAlreadyProcessedError`, naming the
        job the key's request created), so the request is charged at most once.
        """
        body = self._single_call_body(job_type, messages, user_id, metadata, call_options(locals()))
        return await self._request(
            "POST",
            "/jobs/create-and-call",
            CreateAndCallResponse,
            json=body,
            headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
            repeat=Repeat.IDEMPOTENT if idempotency_key else Repeat.AFTER_REFUSAL,
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
    ) -> LLMStream[CreateAndCallChunk]:
        """`create_and_call`, streamed: `async for chunk in client.create_and_call_stream(...)`.

        The chunks are `llm_call_stream`'s (the first carries `job_id`, also `stream.job_id`);
        the last (`stream.final`) adds the job's `job_status`, `costs` and `credits_remaining`.
        Errors and retries as `llm_call_stream`'s, keys as `create_and_call`'s. If the
        stream fails after it began, the job is failed (not charged); if you stop reading
        early, the job is completed (charged) when content had been produced, else failed.
        """
        body = self._single_call_body(job_type, messages, user_id, metadata, call_options(locals()))
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        repeat = Repeat.IDEMPOTENT if idempotency_key else Repeat.AFTER_REFUSAL
        return LLMStream(
            lambda: self._open_stream("/jobs/create-and-call-stream", body, headers=headers, repeat=repeat),
            CreateAndCallChunk,
            open_streams=self._open_streams,
        )

    def _single_call_body(
        self,
        job_type: str,
        messages: Sequence[Message],
        user_id: str | None,
        metadata: Mapping[str, Any] | None,
        options: Mapping[str, Any],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"job_type": job_type}
        if self.team_id:
            body["team_id"] = self.team_id
        if user_id is not None:
            body["user_id"] = user_id
        if metadata is not None:
            body["job_metadata"] = dict(metadata)
        return {**body, **call_body(messages, options, creates_job=True)}

    # ------------------------------------------------------------ the team

    async def get_usage(
        self,
        *,
        start_date: date | str | None = None,
        end_date: date | str | None = None,
        job_type: str | None = None,
        limit: int | None = None,
    ) -> UsageSummary:
        """The key's team's usage over a range of UTC days: jobs by status, calls, tokens,
        billed cost (exact, a `Decimal`) and credits charged, in all, by day and by job type.

        `end_date` defaults to today, `start_date` to 29 days before it (at most 366 days in
        all); `job_type` keeps one job type; `limit` bounds `job_types` (default 10, at most
        1000). Exact at once: a job counts as soon as it exists.
        """
        params = {
            "start_date": _day(start_date, "start_date"),
            "end_date": _day(end_date, "end_date"),
            "job_type": job_type,
            "limit": limit,
        }
        return await self._request("GET", "/usage", UsageSummary, params=params, repeat=Repeat.IDEMPOTENT)

    async def list_models(self, team_id: str | None = None) -> ListTeamModelsResponse:
        """The model aliases the team may call (`aliases`), and its `default_model`.

        `team_id` defaults to the client's; another team's is `TeamMismatchError`.
        """
        path = f"/teams/{_segment(self._team(team_id), 'team_id')}/models"
        return await self._request("GET", path, ListTeamModelsResponse, repeat=Repeat.IDEMPOTENT)

    async def list_jobs(
        self,
        team_id: str | None = None,
        *,
        status: JobStatus | str | None = None,
        job_type: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ListTeamJobsResponse:
        """One page of the team's jobs, newest first, each as `get_job` shows it.

        `status` (`JobStatus.COMPLETED` or `"completed"`) and `job_type` filter them;
        `page_size` is at most 100 (default 20); pass `next_page_token` as `page_token`
        (with the same filters) for the next page, or use `iter_jobs`. `team_id` defaults
        to the client's; another team's is `TeamMismatchError`.
        """
        params = {
            "status": str(status).upper() if status is not None else None,
            "job_type": job_type,
            "page_size": page_size,
            "page_token": page_token,
        }
        path = f"/teams/{_segment(self._team(team_id), 'team_id')}/jobs"
        return await self._request("GET", path, ListTeamJobsResponse, params=params, repeat=Repeat.IDEMPOTENT)

    def iter_jobs(
        self,
        team_id: str | None = None,
        *,
        status: JobStatus | str | None = None,
        job_type: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[Job]:
        """Every job of `list_jobs`, newest first, fetching the pages as it goes:
        `async for job in client.iter_jobs(status="failed")`."""
        return paging.every(
            lambda token: self.list_jobs(
                team_id, status=status, job_type=job_type, page_size=page_size, page_token=token
            ),
            lambda page: page.jobs,
        )

    async def get_credit_balance(self, team_id: str | None = None) -> CreditBalance:
        """The team's credits: `credits_remaining` (what it holds), `credits_available` (what
        new jobs can still reserve), `credits_reserved` (held by open jobs), lifetime
        `credits_allocated` and `credits_used`, and how it is billed (`budget_mode`, ...).

        `team_id` defaults to the client's; another team's is `TeamMismatchError`.
        """
        path = f"/credits/teams/{_segment(self._team(team_id), 'team_id')}/balance"
        return await self._request("GET", path, CreditBalance, repeat=Repeat.IDEMPOTENT)

    async def list_credit_transactions(
        self,
        team_id: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ListCreditTransactionsResponse:
        """One page of the team's credit ledger, newest first (`transactions`: allocation,
        top-ups, each job's reservation and charge or release, adjustments, refunds, late
        charges), with the `balance` now.

        `page_size` defaults to 50 (more than 500 is taken as 500); pass `next_page_token` as
        `page_token` for the next page, or use `iter_credit_transactions`. `team_id` defaults
        to the client's; another team's is `TeamMismatchError`.
        """
        params = {"page_size": page_size, "page_token": page_token}
        path = f"/credits/teams/{_segment(self._team(team_id), 'team_id')}/transactions"
        return await self._request("GET", path, ListCreditTransactionsResponse, params=params, repeat=Repeat.IDEMPOTENT)

    def iter_credit_transactions(
        self, team_id: str | None = None, *, page_size: int | None = None
    ) -> AsyncIterator[CreditTransaction]:
        """Every entry of `list_credit_transactions`, newest first, fetching the pages as it
        goes: `async for entry in client.iter_credit_transactions()`."""
        return paging.every(
            lambda token: self.list_credit_transactions(team_id, page_size=page_size, page_token=token),
            lambda page: page.transactions,
        )

    def _team(self, team_id: str | None) -> str:
        team = team_id or self.team_id
        if not team:
            raise ValueError("this client has no team_id: pass team_id=... (or create the client with one)")
        return team

    # ------------------------------------------------------------ transport

    async def _request(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        repeat: Repeat,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> M:
        query = {name: value for name, value in (params or {}).items() if value is not None}
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(
                    method,
                    self.base_url + path,
                    json=json,
                    params=query or None,
                    headers={**self._headers, **(headers or {})},
                )
            except httpx.HTTPError as transport_error:
                error: SaasLiteLLMError = _connection_error(transport_error, method, path)
                cause: BaseException | None = transport_error
            else:
                if response.is_success:
                    return _parse(model, response)
                error = error_from_response(response.status_code, response.content, response.headers.get("retry-after"))
                cause = None
            delay = retry_delay(error, attempt=attempt, policy=self.retry, repeat=repeat)
            if delay is None:
                raise error from cause
            log.info("retrying %s %s in %.2fs after %s (attempt %d)", method, path, delay, error, attempt + 1)
            await asyncio.sleep(delay)

    async def _open_stream(
        self,
        path: str,
        body: dict[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        repeat: Repeat = Repeat.AFTER_REFUSAL,
    ) -> httpx.Response:
        """Sends a streaming call; retries only failures that come before the stream starts."""
        attempt = 0
        while True:
            attempt += 1
            request = self._http.build_request(
                "POST",
                self.base_url + path,
                json=body,
                headers={**self._headers, "Accept": "text/event-stream", **(headers or {})},
            )
            try:
                response = await self._http.send(request, stream=True)
            except httpx.HTTPError as transport_error:
                error: SaasLiteLLMError = _connection_error(transport_error, "POST", path)
                cause: BaseException | None = transport_error
            else:
                if response.is_success:
                    return response
                try:
                    content = await response.aread()
                finally:
                    await response.aclose()
                error = error_from_response(response.status_code, content, response.headers.get("retry-after"))
                cause = None
            delay = retry_delay(error, attempt=attempt, policy=self.retry, repeat=repeat)
            if delay is None:
                raise error from cause
            log.info("retrying POST %s in %.2fs after %s (attempt %d)", path, delay, error, attempt + 1)
            await asyncio.sleep(delay)


class JobSession:
    """An open job inside `async with client.job(...)`: its calls need no `job_id`.

    `job` is the job as created (or last refreshed); `result` is its completion, once the
    block has ended or `complete()` was called.
    """

    def __init__(self, client: SaasLiteLLMClient, job: Job) -> None:
        self.client = client
        self.job = job
        self._result: CompleteJobResponse | None = None
        self._streams: list[LLMStream[StreamChunk]] = []  # opened here and not known closed

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def completed(self) -> bool:
        """True once the job was completed (either way)."""
        return self._result is not None

    @property
    def result(self) -> CompleteJobResponse:
        """The completion: final status, cost totals, calls and `credits_remaining`.

        Raises RuntimeError while the job is still open.
        """
        if self._result is None:
            raise RuntimeError(f"job {self.job_id} is still open: its result exists once it is completed")
        return self._result

    def __repr__(self) -> str:
        return f"JobSession(job_id={self.job_id!r}, completed={self.completed})"

    async def llm_call(
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
        """`SaasLiteLLMClient.llm_call` in this job."""
        return await self.client.llm_call(self.job_id, messages, **session_options(locals()))

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
    ) -> LLMStream[StreamChunk]:
        """`SaasLiteLLMClient.llm_call_stream` in this job; closed when the job is completed, at the latest."""
        stream = self.client.llm_call_stream(self.job_id, messages, **session_options(locals()))
        self._streams = [s for s in self._streams if not s.closed]
        self._streams.append(stream)
        return stream

    async def close_streams(self) -> None:
        """Closes the streams of this session still open (`LLMStream.aclose`): each waits
        until the server has recorded a call it cut. Done before every completion."""
        streams, self._streams = self._streams, []
        for stream in streams:
            await stream.aclose()

    async def structured_call(
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
        """`SaasLiteLLMClient.structured_call` in this job."""
        return await self.client.structured_call(
            self.job_id,
            messages,
            response_model,
            strict=strict,
            validation_retries=validation_retries,
            **session_options(locals()),
        )

    async def refresh(self) -> Job:
        """Fetches the job again (status, cost totals, calls so far)."""
        self.job = await self.client.get_job(self.job_id)
        return self.job

    async def complete(
        self,
        status: CompletionStatus,
        *,
        metadata: Mapping[str, Any] | None = None,
        error_message: str | None = None,
    ) -> CompleteJobResponse:
        """Completes the job now, after closing its streams still open (`close_streams`);
        leaving the `async with` block then leaves it as it is."""
        await self.close_streams()
        self._result = await self.client.complete_job(
            self.job_id, status, metadata=metadata, error_message=error_message
        )
        return self._result


def _segment(value: str, name: str = "job_id") -> str:
    """An id as one URL path segment: a stray `/` or `?` cannot change the route."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return quote(value, safe="")


def _day(value: date | str | None, name: str) -> str | None:
    """A `date` as `YYYY-MM-DD`; a string as it is (the server checks it)."""
    if isinstance(value, datetime):
        raise TypeError(f"{name} must be a date (UTC day) or 'YYYY-MM-DD', not a datetime")
    return value.isoformat() if isinstance(value, date) else value


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except pydantic.ValidationError as error:
        raise SaasLiteLLMError(
            f"unexpected {model.__name__} from {response.request.method} {response.request.url.path}: {error}"
        ) from error
