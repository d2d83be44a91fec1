"""Pydantic models of everything the API returns (and of the chat messages it accepts).

They mirror the protos in `protos/saaslitellm/v1/` as Envoy renders them in JSON: field
names are the proto names (`job_id`, `credits_remaining`), enums are their names
(`"COMPLETED"`), timestamps RFC 3339, 64-bit integers strings (parsed back to `int`).
Fields the server adds later are kept (extra fields are allowed), so an older client
keeps working against a newer server.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# An enum field that a newer server may send a value of this client does not know: the
# enum member when it is one (tried first; pydantic's default would keep the plain str),
# else the string as sent.
_ENUM_FIRST = Field(union_mode="left_to_right")


class JobStatus(enum.StrEnum):
    """Lifecycle of a job: PENDING -> IN_PROGRESS (first call) -> COMPLETED | FAILED (or EXPIRED)."""

    STATUS_UNSPECIFIED = "STATUS_UNSPECIFIED"
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


class CallStatus(enum.StrEnum):
    """Outcome of one call of a job."""

    STATUS_UNSPECIFIED = "STATUS_UNSPECIFIED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


CompletionStatus = Literal["completed", "failed", JobStatus.COMPLETED, JobStatus.FAILED]
"""What `complete_job` accepts: `"completed"` or `"failed"`, or the `JobStatus` of either (the
server takes any case; the client sends lower case)."""


# ---------------------------------------------------------------- chat


class FunctionCall(_Model):
    """The function part of a tool call: its name and JSON arguments, as the model produced them."""

    name: str = ""
    arguments: str = ""


class ToolCall(_Model):
    """A tool (function) call requested by the model."""

    id: str = ""
    type: str = "function"
    function: FunctionCall = Field(default_factory=FunctionCall)


class ChatMessage(_Model):
    """One message of an OpenAI-style conversation. Plain dicts are accepted everywhere too."""

    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class Usage(_Model):
    """Token usage of one call; `estimated` when the gateway counted because the provider did not."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    estimated: bool = False


class ChatResponse(_Model):
    """The model's answer to a non-streaming call."""

    content: str = ""
    finish_reason: str = ""
    role: str = "assistant"
    tool_calls: list[ToolCall] = Field(default_factory=list)
    refusal: str = ""
    """Why the model declined to answer, when it did; empty otherwise."""
    logprobs: dict[str, Any] | None = None
    """The answer's tokens' log probabilities as the provider sent them, when the call asked
    for them (`logprobs=True`, `top_logprobs=`): `{"content": [{"token", "logprob", ...}]}`."""
    system_fingerprint: str = ""
    reasoning_content: str = ""
    """The model's reasoning before its answer, when the provider sent it (reasoning models
    such as DeepSeek R1, or Claude with thinking); empty otherwise."""


class CallMetadata(_Model):
    """Tokens, latency, model alias and cost of one call."""

    tokens_used: int = 0
    latency_ms: int = 0
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class LLMCallResponse(_Model):
    """Result of `llm_call`: the answer (`response.content`) and what it cost (`metadata`)."""

    call_id: str
    job_id: str = ""
    response: ChatResponse = Field(default_factory=ChatResponse)
    metadata: CallMetadata = Field(default_factory=CallMetadata)

    @property
    def content(self) -> str:
        """Shortcut for `response.content`."""
        return self.response.content

    @property
    def reasoning_content(self) -> str:
        """Shortcut for `response.reasoning_content`."""
        return self.response.reasoning_content


# ---------------------------------------------------------------- jobs


class JobCosts(_Model):
    """Cost totals of a job and, once it is settled, the team's balance."""

    total_calls: int = 0
    successful_calls: int = 0
    failed_calls: int = 0
    total_tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_cost_usd: float = 0.0
    avg_latency_ms: int = 0
    credit_applied: bool = False
    credits_charged: int = 0
    credits_remaining: int | None = None
    """The team's remaining credits right after the job was settled; None while it is open."""
    credits_shortfall: int = 0
    """Credits a consumption-mode job used beyond what the team could pay; recorded, not charged."""
    credits_refunded: int = 0
    """Credits a refund of the job (an operator's `RefundJob`) gave back to the team; 0 when it was not refunded."""


def _settled_balance(costs: JobCosts) -> int:
    """The balance after a settlement, which the API always sends with a settled job: an
    answer without it is not one this client can read."""
    if costs.credits_remaining is None:
        raise ValueError("the answer names a settled job without credits_remaining; the server is not this API")
    return costs.credits_remaining


class CallSummary(_Model):
    """One call of a job, summarised."""

    call_id: str
    purpose: str = ""
    model: str = ""
    status: Annotated[CallStatus | str, _ENUM_FIRST] = CallStatus.STATUS_UNSPECIFIED
    tokens: int = 0
    latency_ms: int = 0
    cost_usd: float = 0.0
    error: str = ""
    usage: Usage = Field(default_factory=Usage)
    streamed: bool = False
    created_at: datetime | None = None


class Job(_Model):
    """A job: one business operation grouping any number of calls, billed once when completed."""

    job_id: str
    team_id: str = ""
    job_type: str = ""
    user_id: str = ""
    status: Annotated[JobStatus | str, _ENUM_FIRST] = JobStatus.STATUS_UNSPECIFIED
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str = ""
    costs: JobCosts = Field(default_factory=JobCosts)
    calls: list[CallSummary] = Field(default_factory=list)
    """The first 1,000 calls, oldest first; `costs.total_calls` counts them all, and
    `iter_job_calls` reads every one."""


class CompleteJobResponse(_Model):
    """Result of `complete_job`: the final status, cost totals, calls and the team's balance."""

    job_id: str
    status: Annotated[JobStatus | str, _ENUM_FIRST] = JobStatus.STATUS_UNSPECIFIED
    completed_at: datetime | None = None
    costs: JobCosts = Field(default_factory=JobCosts)
    calls: list[CallSummary] = Field(default_factory=list)
    """The first 1,000 calls, oldest first; `costs.total_calls` counts them all, and
    `iter_job_calls` reads every one."""

    @property
    def credits_remaining(self) -> int:
        """The team's remaining credits right after this job was settled
        (`costs.credits_remaining`, which a settled job always has)."""
        return _settled_balance(self.costs)


class GetJobCostsResponse(_Model):
    """Result of `get_job_costs`: a job's cost view, what each call cost and what the job was charged."""

    job_id: str
    job_type: str = ""
    status: Annotated[JobStatus | str, _ENUM_FIRST] = JobStatus.STATUS_UNSPECIFIED
    costs: JobCosts = Field(default_factory=JobCosts)
    calls: list[CallSummary] = Field(default_factory=list)
    """The first 1,000 calls, oldest first; `costs.total_calls` counts them all, and
    `iter_job_calls` reads every one."""


class ListJobCallsResponse(_Model):
    """One page of `list_job_calls`: a job's calls oldest first, as `get_job` shows them."""

    calls: list[CallSummary] = Field(default_factory=list)
    next_page_token: str = ""
    """Pass as `page_token` for the next page; empty on the last page."""


class EstimateCallResponse(_Model):
    """Result of `estimate_call`: the most a call could cost the team, before anything is
    spent. Money is exact (`Decimal`), as the team is billed (provider cost plus markup).

    `max_cost_usd` is a bound (what a team with a cost limit per job reserves for the call);
    `likely_max_cost_usd` takes the input at a tokenizer's estimate instead of its bound;
    `max_credits` is what a single-call job making it could be charged. With a `job_id`,
    when the team limits the cost of a job: `job_cost_remaining_usd` and whether the call
    fits (`fits_job_cost_limit`); None otherwise.
    """

    model: str = ""
    input_tokens_bound: int = 0
    input_tokens_estimate: int = 0
    output_tokens_bound: int = 0
    max_cost_usd: Decimal = Decimal(0)
    likely_max_cost_usd: Decimal = Decimal(0)
    max_credits: int = 0
    job_cost_remaining_usd: Decimal | None = None
    fits_job_cost_limit: bool | None = None


class CreateAndCallResponse(_Model):
    """Result of `create_and_call`: the job (completed; or, ended while its call ran,
    EXPIRED or FAILED and not charged), the answer and what it cost.

    `response` and `metadata` are those of `LLMCallResponse`; `costs` the job's totals,
    with `credits_charged` and `credits_remaining`.
    """

    job_id: str
    status: Annotated[JobStatus | str, _ENUM_FIRST] = JobStatus.STATUS_UNSPECIFIED
    call_id: str = ""
    response: ChatResponse = Field(default_factory=ChatResponse)
    metadata: CallMetadata = Field(default_factory=CallMetadata)
    costs: JobCosts = Field(default_factory=JobCosts)
    completed_at: datetime | None = None

    @property
    def content(self) -> str:
        """Shortcut for `response.content`."""
        return self.response.content

    @property
    def reasoning_content(self) -> str:
        """Shortcut for `response.reasoning_content`."""
        return self.response.reasoning_content

    @property
    def credits_remaining(self) -> int:
        """The team's remaining credits right after the job was settled
        (`costs.credits_remaining`, which a settled job always has)."""
        return _settled_balance(self.costs)


class ListTeamJobsResponse(_Model):
    """One page of `list_jobs`: jobs newest first, as `get_job` shows them."""

    jobs: list[Job] = Field(default_factory=list)
    next_page_token: str = ""
    """Pass as `page_token` for the next page (same filters); empty on the last page."""


# ---------------------------------------------------------------- usage


class BilledUsage(_Model):
    """A team's figures over a range (or a day, or a job type), as the team is billed.

    Jobs count on the UTC day they were created, with the status they have now; calls on
    the day they were recorded. `billed_cost_usd` is exact (a `Decimal`).
    """

    jobs: int = 0
    jobs_pending: int = 0
    jobs_in_progress: int = 0
    jobs_completed: int = 0
    jobs_failed: int = 0
    jobs_expired: int = 0
    calls: int = 0
    calls_failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    billed_cost_usd: Decimal = Decimal(0)
    credits_charged: int = 0
    """Credits charged for completed jobs, refunded or not."""
    credits_refunded: int = 0
    """Of `credits_charged`, what refunds gave back: the team paid the difference."""


class DailyBilledUsage(_Model):
    """One UTC day of a team's usage."""

    date: date
    usage: BilledUsage = Field(default_factory=BilledUsage)


class JobTypeBilledUsage(_Model):
    """One job type's usage."""

    job_type: str
    usage: BilledUsage = Field(default_factory=BilledUsage)


class UsageSummary(_Model):
    """Result of `get_usage`: the key's team's usage over a range of UTC days.

    `totals` covers the whole range, `days` each day with activity (oldest first),
    `job_types` the top job types by cost. Never the providers' costs.
    """

    team_id: str = ""
    start_date: date
    end_date: date
    totals: BilledUsage = Field(default_factory=BilledUsage)
    days: list[DailyBilledUsage] = Field(default_factory=list)
    job_types: list[JobTypeBilledUsage] = Field(default_factory=list)


# ---------------------------------------------------------------- credits


class BudgetMode(enum.StrEnum):
    """How a team's completed jobs are charged."""

    BUDGET_MODE_UNSPECIFIED = "BUDGET_MODE_UNSPECIFIED"
    """Not set: means JOB_BASED."""
    JOB_BASED = "JOB_BASED"
    """1 credit per completed job, however many calls it made."""
    CONSUMPTION_TOKENS = "CONSUMPTION_TOKENS"
    """ceil(total tokens / tokens_per_credit)."""
    CONSUMPTION_USD = "CONSUMPTION_USD"
    """ceil(billed USD x credits_per_dollar)."""


class CreditTransactionKind(enum.StrEnum):
    """What moved credits in one ledger entry."""

    KIND_UNSPECIFIED = "KIND_UNSPECIFIED"
    ALLOCATION = "ALLOCATION"
    """Credits given when the team was created."""
    TOP_UP = "TOP_UP"
    """Credits added later."""
    RESERVATION = "RESERVATION"
    """A new job holds a credit (amount 0, reserved_delta positive)."""
    CHARGE = "CHARGE"
    """A completed job was charged (amount negative; its reservation consumed)."""
    RELEASE = "RELEASE"
    """A failed or expired job's reservation was given back (amount 0)."""
    ADJUSTMENT = "ADJUSTMENT"
    """The operator corrected the balance."""
    REFUND = "REFUND"
    """A completed job's charge was given back."""
    LATE_CHARGE = "LATE_CHARGE"
    """A call recorded after its job was completed, under a token- or dollar-based budget:
    what it adds to the job's charge."""


class CreditBalance(_Model):
    """Result of `get_credit_balance`: a team's credits and how it is billed.

    `credits_remaining` = `credits_allocated` - `credits_used` (what the team holds);
    `credits_available` = `credits_remaining` - `credits_reserved` (what new jobs can still
    reserve). The lifetime totals (`credits_allocated`, `credits_used`) are exact up to
    2,147,483,647, and that number beyond it.
    """

    team_id: str = ""
    credits_allocated: int = 0
    """Credits ever allocated (initial allocation, top-ups, adjustments)."""
    credits_used: int = 0
    """Credits charged for completed jobs, less refunds."""
    credits_reserved: int = 0
    """Credits held by open jobs."""
    credits_remaining: int = 0
    credits_available: int = 0
    credits_overdraft_limit: int = 0
    """How far below zero consumption-mode settlements may take `credits_available`."""
    budget_mode: Annotated[BudgetMode | str, _ENUM_FIRST] = BudgetMode.BUDGET_MODE_UNSPECIFIED
    tokens_per_credit: int = 0
    """CONSUMPTION_TOKENS: tokens per credit."""
    credits_per_dollar: float = 0.0
    """CONSUMPTION_USD: credits per billed US dollar."""
    markup_percent: float = 0.0
    """Markup on provider cost, in percent, applied to what the team is billed."""
    open_jobs: int = 0
    """Jobs currently open (pending or in progress)."""


class CreditTransaction(_Model):
    """One entry of a team's credit ledger (append-only: the balance is the sum of its entries)."""

    transaction_id: str
    """Entry id, increasing over time."""
    team_id: str = ""
    job_id: str = ""
    """The job that caused the movement; empty for a top-up, an adjustment, the allocation."""
    kind: Annotated[CreditTransactionKind | str, _ENUM_FIRST] = CreditTransactionKind.KIND_UNSPECIFIED
    amount: int = 0
    """Effect on `credits_remaining`."""
    reserved_delta: int = 0
    """Effect on `credits_reserved`."""
    remaining_after: int = 0
    """`credits_remaining` after this entry."""
    reserved_after: int = 0
    """`credits_reserved` after this entry."""
    reason: str = ""
    actor: str = ""
    """Who: `admin`, `key:<key prefix>`, or `system:expiry`."""
    created_at: datetime | None = None


class ListCreditTransactionsResponse(_Model):
    """One page of `list_credit_transactions`: ledger entries newest first, and the balance now."""

    transactions: list[CreditTransaction] = Field(default_factory=list)
    next_page_token: str = ""
    """Pass as `page_token` for the next page; empty on the last page."""
    balance: CreditBalance = Field(default_factory=CreditBalance)
    """The team's balance now."""


# ---------------------------------------------------------------- models


class AvailableModel(_Model):
    """A model alias a team may call (pass `model_alias` as `model`)."""

    model_alias: str
    display_name: str = ""
    description: str = ""
    is_default: bool = False


class ListTeamModelsResponse(_Model):
    """Result of `list_models`: the aliases a team may call, sorted by name, and its default."""

    models: list[AvailableModel] = Field(default_factory=list)
    default_model: str = ""
    """The alias a call that names no model uses; empty when a call must name one."""

    @property
    def aliases(self) -> list[str]:
        """The aliases' names."""
        return [m.model_alias for m in self.models]


# ---------------------------------------------------------------- streaming


class FunctionCallDelta(_Model):
    """A fragment of a streamed function call."""

    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(_Model):
    """A fragment of a streamed tool call."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: FunctionCallDelta | None = None


class StreamDelta(_Model):
    """OpenAI-compatible delta: what one event adds to the answer."""

    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] = Field(default_factory=list)
    refusal: str | None = None
    reasoning_content: str | None = None
    """New text of the model's reasoning, streamed as it thinks, before the answer's `content`."""


class StreamChoice(_Model):
    """OpenAI-compatible streamed choice (always index 0)."""

    index: int = 0
    delta: StreamDelta = Field(default_factory=StreamDelta)
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None
    """This event's tokens' log probabilities, when the call asked for them."""


class ErrorStatus(_Model):
    """A `google.rpc.Status` as JSON: the shape of every error body, and of a stream's in-band error."""

    code: int = 0
    message: str = ""
    details: list[dict[str, Any]] = Field(default_factory=list)


class StreamChunk(_Model):
    """One event of `llm_call_stream`.

    The first event carries `call_id`, `job_id` and `model`; every event carries the new
    text in `content` and the OpenAI view in `choices[0].delta`; the last one has
    `done=True`, `finish_reason`, `usage`, `cost_usd` and `latency_ms`.
    """

    content: str = ""
    choices: list[StreamChoice] = Field(default_factory=list)
    done: bool = False
    call_id: str | None = None
    job_id: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    latency_ms: int | None = None
    error: ErrorStatus | None = None

    @property
    def delta(self) -> StreamDelta | None:
        """`choices[0].delta`, or None on events without a choice (such as the last one)."""
        return self.choices[0].delta if self.choices else None

    @property
    def reasoning_content(self) -> str:
        """The new reasoning text of this event (`delta.reasoning_content`); empty on events
        without any."""
        delta = self.delta
        return (delta.reasoning_content or "") if delta is not None else ""


class CreateAndCallChunk(StreamChunk):
    """One event of `create_and_call_stream`: a `StreamChunk`, and on the last one (`done=True`)
    the job's final status (`job_status`), its `costs` and the team's `credits_remaining`."""

    job_status: Annotated[JobStatus | str | None, _ENUM_FIRST] = None
    costs: JobCosts | None = None
    credits_remaining: int | None = None
