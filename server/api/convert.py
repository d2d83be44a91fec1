"""Protobuf <-> domain conversion. No decisions here, only shapes."""

from __future__ import annotations

import logging
import math
from datetime import datetime
from decimal import Decimal
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from saaslitellm.v1 import chat_pb2, credit_service_pb2, job_pb2, job_service_pb2, tenancy_pb2
from server.api import wire
from server.api.errors import to_status
from server.domain import validation
from server.domain.analytics import UsageFigures, UsageReport
from server.domain.chat import MAX_MESSAGES, ChatRequest, build_request
from server.domain.completion import Delta, Usage
from server.domain.credits import CallEstimate
from server.domain.decimals import plain
from server.domain.errors import invalid_argument
from server.domain.jobs import CallRecord, CallStatus, JobStatus, JobView
from server.domain.pagination import Page
from server.services.calls import CallResult, KeepAlive, StreamFinished, StreamStarted
from server.services.credits import BalanceView
from server.services.jobs import MAX_EMBEDDED_CALLS
from server.services.single_call import SingleCallEvent, SingleCallFinished, SingleCallResult
from server.storage.ledger import LedgerEntry

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- JSON-ish values


def _plain(value: Any) -> Any:
    """Struct numbers are doubles; give integral ones back as ints (5, not 5.0), so JSON
    that came in as an integer goes upstream as an integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def struct_to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    return _plain(json_format.MessageToDict(message))


NOT_FINITE = "must be a finite number (JSON has no NaN or Infinity)"


def path_of_non_finite(value: Any, path: str = "") -> str:
    """Where in `value` the first NaN or infinite number is, as `a.b[2]` ("body" if nowhere)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "body"
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = path_of_non_finite(child, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}".lstrip("."))
        if found != "body":
            return found
    return "body"


def _with_numbers(message: Any) -> Any:
    """A Struct, ListValue or Value as plain Python, its numbers as they are, NaN and
    infinities too (json_format refuses them), its other scalars None: enough to say where
    a number JSON cannot carry is."""
    if isinstance(message, struct_pb2.Struct):
        return {key: _with_numbers(value) for key, value in message.fields.items()}
    if isinstance(message, struct_pb2.ListValue):
        return [_with_numbers(value) for value in message.values]
    kind = message.WhichOneof("kind")
    if kind in ("struct_value", "list_value"):
        return _with_numbers(getattr(message, kind))
    return message.number_value if kind == "number_value" else None


def request_json(message: Any, field_name: str) -> Any:
    """Free-form JSON a client sent (a Struct or Value at `field_name`) as plain Python.
    Protobuf carries NaN and infinities, JSON none, so no provider or jsonb column could
    take them: INVALID_ARGUMENT naming where, as /v1 refuses them in a body (native gRPC
    only; REST's JSON cannot hold them)."""
    try:
        return _plain(json_format.MessageToDict(message))
    except ValueError:
        where = path_of_non_finite(_with_numbers(message), field_name)
        if where == "body":  # none found: not the client's NaN
            raise
        raise invalid_argument(where, NOT_FINITE) from None


def stored_struct(request: Any, field_name: str) -> dict[str, Any]:
    """A free-form JSON field the server will store (metadata), checked storable."""
    value = request_json(getattr(request, field_name), field_name)
    validation.json_document(field_name, value)
    return value


def dict_to_struct(values: dict[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if values:
        struct.update(values)
    return struct


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def usd(value: Decimal) -> float:
    return float(value)


def money(value: Decimal) -> str:
    """Exact USD as a decimal string (usage reports, estimates)."""
    return plain(value)


# ---------------------------------------------------------------- chat requests

_OPTIONAL_SCALARS = (
    "temperature",
    "max_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "user",
    "max_completion_tokens",
    "parallel_tool_calls",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
)


_FORWARDED = frozenset((*_OPTIONAL_SCALARS, "stop", "response_format", "tools", "tool_choice", "logit_bias"))
# Fields of our own requests that do not go to the provider (the job, its type and
# metadata, the team...). Sent in extra_body instead (or at the top of a /v1 body, whose
# other fields all go to the provider), one would reach the provider, with the team's data,
# and the request would go without it: refused, naming where it belongs.
API_OWN_FIELDS = (
    frozenset(
        field.name
        for message in (
            job_service_pb2.CreateAndCallRequest,
            job_service_pb2.LLMCallRequest,
            job_service_pb2.CreateJobRequest,
        )
        for field in message.DESCRIPTOR.fields
    )
    - _FORWARDED
    - {"model", "messages", "extra_body"}
)


def _message(message: chat_pb2.ChatMessage, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role}
    if not message.HasField("content"):
        out["content"] = None
    elif message.content.WhichOneof("kind") == "string_value":  # the common case, without json_format
        out["content"] = message.content.string_value
    else:
        out["content"] = request_json(message.content, f"{where}.content")
    if message.name:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": c.type or "function",
                "function": {"name": c.function.name, "arguments": c.function.arguments},
            }
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


_SINGULAR_FREE_FORM = tuple(name for name in wire.ORDERED_FIELDS if name != "tools")


def _free_form(request: Any) -> dict[str, Any]:
    """The free-form parameters the client set (wire.ORDERED_FIELDS: response_format,
    tools...), with their objects' keys in the order the client wrote them, decoded from
    the request's bytes: the parsed Struct has them in hash order. From the parsed message
    when the bytes are unknown (a request not received by this RPC, e.g. in tests)."""
    names = [name for name in _SINGULAR_FREE_FORM if request.HasField(name)]
    if request.tools:
        names.append("tools")
    if not names:  # most calls: nothing more to do
        return {}
    data = wire.take_bytes(request)
    if data is not None:
        try:
            return wire.decode_fields(data, request.DESCRIPTOR, names)
        except wire.NonFiniteNumber:
            pass  # refused below from the parsed message, naming where, as any JSON field's (request_json)
        except wire.WireError:  # upb parsed these bytes: a decoder bug, not the client's
            log.warning("free-form parameters kept in map order: their bytes did not decode", exc_info=True)
    return {name: _parsed(getattr(request, name), name) for name in names}


def _parsed(field: Any, where: str) -> Any:
    if isinstance(field, struct_pb2.Struct | struct_pb2.Value):
        return request_json(field, where)
    return [_parsed(item, f"{where}[{index}]") for index, item in enumerate(field)]  # tools: repeated Struct


def chat_request(request: Any) -> ChatRequest:
    """A validated ChatRequest from any call request (LLMCall, LLMCallStream, ...).

    Those messages share field names by design; only the fields the client set are kept.
    """
    if len(request.messages) > MAX_MESSAGES:  # before converting them: that costs CPU
        raise invalid_argument("messages", f"must contain at most {MAX_MESSAGES} messages")
    params: dict[str, Any] = {name: getattr(request, name) for name in _OPTIONAL_SCALARS if request.HasField(name)}
    if request.HasField("stop"):
        params["stop"] = request_json(request.stop, "stop")
    free = _free_form(request)
    for key in free.get("extra_body", {}):
        if key in API_OWN_FIELDS:
            raise invalid_argument(
                f"extra_body.{key}",
                "is a field of this API's requests, not a provider parameter: the provider would receive it",
            )
    for name in ("response_format", "tools", "tool_choice", "logit_bias"):
        if name in free:
            params[name] = free[name]
    return build_request(
        model=request.model or request.model_group,
        messages=[_message(m, f"messages[{index}]") for index, m in enumerate(request.messages)],
        params=params,
        extra_body=free.get("extra_body", {}),
        purpose=request.purpose,
        call_metadata=stored_struct(request, "call_metadata") if request.HasField("call_metadata") else {},
    )


# ---------------------------------------------------------------- jobs and calls

_JOB_STATUS = {status: job_pb2.Job.Status.Value(status.name) for status in JobStatus}
_CALL_STATUS = {status: job_pb2.CallSummary.Status.Value(status.name) for status in CallStatus}


def enum_name(field_name: str, enum: Any, value: int) -> str:
    """The name of an enum number a client sent, the zero one included; INVALID_ARGUMENT
    naming the field for a number the enum lacks (protobuf keeps any number in an enum
    field), in the words the gateway uses for an unknown name over REST."""
    if value not in enum.values():
        names = ", ".join(name for name, number in sorted(enum.items(), key=lambda item: item[1]) if number)
        raise invalid_argument(field_name, f"invalid value {value}: expected one of {names}")
    return enum.Name(value)


def job_status_filter(value: int) -> JobStatus | None:
    """The status a list of jobs asks for; None (STATUS_UNSPECIFIED): any."""
    name = enum_name("status", job_pb2.Job.Status, value)
    return None if value == job_pb2.Job.STATUS_UNSPECIFIED else JobStatus[name]


def job_status_name(value: int) -> str:
    """The lower-case status a request named, e.g. `completed`."""
    if value == job_pb2.Job.STATUS_UNSPECIFIED:
        raise invalid_argument("status", 'is required: "completed" or "failed"')
    if value not in job_pb2.Job.Status.values():
        raise invalid_argument("status", 'must be "completed" or "failed"')
    return job_pb2.Job.Status.Name(value).lower()


def usage(value: Usage) -> chat_pb2.Usage:
    return chat_pb2.Usage(
        prompt_tokens=value.prompt_tokens,
        completion_tokens=value.completion_tokens,
        total_tokens=value.total_tokens,
        estimated=value.estimated,
    )


def call_summary(call: CallRecord) -> job_pb2.CallSummary:
    return job_pb2.CallSummary(
        call_id=str(call.call_id),
        purpose=call.purpose,
        model=call.model_alias,
        status=_CALL_STATUS[call.status],
        tokens=call.total_tokens,
        latency_ms=call.latency_ms,
        cost_usd=usd(call.billed_cost_usd),
        error=call.error_message,
        usage=usage(Usage(call.prompt_tokens, call.completion_tokens, call.tokens_estimated)),
        streamed=call.streamed,
        created_at=timestamp(call.created_at),
    )


def embedded_calls(view: JobView) -> list[job_pb2.CallSummary]:
    """The calls a response embeds in a job: its first MAX_EMBEDDED_CALLS, oldest first
    (its costs count them all; ListJobCalls lists every one)."""
    return [call_summary(c) for c in view.calls[:MAX_EMBEDDED_CALLS]]


def job_costs(view: JobView) -> job_pb2.JobCosts:
    """A job's totals. Its token counts saturate at 2,147,483,647 in the API's 32-bit fields
    (an agent looping over long contexts can pass that in one job): a view that fails to
    convert would fail GetJob, and CompleteJob after it committed. The usage reports count
    tokens in 64 bits."""
    costs, job = view.costs, view.job
    result = job_pb2.JobCosts(
        total_calls=saturated(costs.total_calls),
        successful_calls=saturated(costs.successful_calls),
        failed_calls=saturated(costs.failed_calls),
        total_tokens=saturated(costs.total_tokens),
        prompt_tokens=saturated(costs.prompt_tokens),
        completion_tokens=saturated(costs.completion_tokens),
        total_cost_usd=usd(costs.billed_cost_usd),
        avg_latency_ms=costs.avg_latency_ms,
        credit_applied=job.credits_charged > 0,
        credits_charged=job.credits_charged,
        credits_shortfall=job.credits_shortfall,
        credits_refunded=job.credits_refunded,
    )
    if job.credits_remaining_after is not None:
        result.credits_remaining = job.credits_remaining_after
    return result


def job(view: JobView) -> job_pb2.Job:
    record = view.job
    return job_pb2.Job(
        job_id=str(record.job_id),
        team_id=record.team_id,
        job_type=record.job_type,
        user_id=record.user_id,
        status=_JOB_STATUS[record.status],
        metadata=dict_to_struct(record.metadata),
        created_at=timestamp(record.created_at),
        started_at=timestamp(record.started_at),
        completed_at=timestamp(record.completed_at),
        error_message=record.error_message,
        costs=job_costs(view),
        calls=embedded_calls(view),
    )


def complete_job_response(view: JobView) -> job_service_pb2.CompleteJobResponse:
    return job_service_pb2.CompleteJobResponse(
        job_id=str(view.job.job_id),
        status=_JOB_STATUS[view.job.status],
        completed_at=timestamp(view.job.completed_at),
        costs=job_costs(view),
        calls=embedded_calls(view),
    )


def _tool_calls(calls: tuple[dict[str, Any], ...]) -> list[chat_pb2.ToolCall]:
    return [
        chat_pb2.ToolCall(
            id=c.get("id", ""),
            type=c.get("type", "function"),
            function=chat_pb2.FunctionCall(
                name=(c.get("function") or {}).get("name", ""), arguments=(c.get("function") or {}).get("arguments", "")
            ),
        )
        for c in calls
    ]


def llm_call_response(result: CallResult) -> job_service_pb2.LLMCallResponse:
    answer = result.answer
    return job_service_pb2.LLMCallResponse(
        call_id=str(result.call_id),
        job_id=str(result.job_id),
        response=chat_pb2.ChatResponse(
            content=answer.content,
            finish_reason=answer.finish_reason,
            role="assistant",
            tool_calls=_tool_calls(answer.tool_calls),
            refusal=answer.refusal or "",
            logprobs=None if answer.logprobs is None else dict_to_struct(answer.logprobs),
            system_fingerprint=answer.system_fingerprint or "",
            reasoning_content=answer.reasoning_content or "",
        ),
        metadata=chat_pb2.CallMetadata(
            tokens_used=result.usage.total_tokens,
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            latency_ms=result.latency_ms,
            model=result.model_alias,
            cost_usd=usd(result.billed_cost_usd),
        ),
    )


def _tool_call_deltas(fragments: tuple[dict[str, Any], ...]) -> list[chat_pb2.ToolCallDelta]:
    deltas = []
    for fragment in fragments:
        function = fragment.get("function") or {}
        delta = chat_pb2.ToolCallDelta(index=int(fragment.get("index") or 0))
        if fragment.get("id"):
            delta.id = fragment["id"]
        if fragment.get("type"):
            delta.type = fragment["type"]
        if function.get("name"):
            delta.function.name = function["name"]
        if function.get("arguments"):
            delta.function.arguments = function["arguments"]
        deltas.append(delta)
    return deltas


def stream_event(
    event: StreamStarted | Delta | KeepAlive | StreamFinished,
    response_type: type = job_service_pb2.LLMCallStreamResponse,
) -> Any:
    """One streamed event in the wire shape shared by every streaming RPC."""
    if isinstance(event, KeepAlive):
        return response_type(keepalive=True)
    if isinstance(event, StreamStarted):
        return response_type(
            call_id=str(event.call_id),
            job_id=str(event.job_id),
            model=event.model_alias,
            choices=[chat_pb2.StreamChoice(index=0, delta=chat_pb2.StreamDelta(role="assistant"))],
        )
    if isinstance(event, Delta):
        choice = chat_pb2.StreamChoice(
            index=0, delta=chat_pb2.StreamDelta(tool_calls=_tool_call_deltas(event.tool_calls))
        )
        if event.content:
            choice.delta.content = event.content
        if event.finish_reason:
            choice.finish_reason = event.finish_reason
        if event.refusal:
            choice.delta.refusal = event.refusal
        if event.reasoning_content:
            choice.delta.reasoning_content = event.reasoning_content
        if event.logprobs is not None:
            choice.logprobs.CopyFrom(dict_to_struct(event.logprobs))
        return response_type(content=event.content, choices=[choice])
    response = response_type(
        done=True,
        finish_reason=event.finish_reason or ("error" if event.error else "stop"),
        usage=usage(event.usage),
        cost_usd=usd(event.billed_cost_usd),
        latency_ms=event.latency_ms,
    )
    if event.error is not None:
        response.error.CopyFrom(to_status(event.error))
    return response


def job_calls_response(page: Page[CallRecord]) -> job_service_pb2.ListJobCallsResponse:
    return job_service_pb2.ListJobCallsResponse(
        calls=[call_summary(c) for c in page.items], next_page_token=page.next_page_token
    )


def job_costs_response(view: JobView) -> job_service_pb2.GetJobCostsResponse:
    return job_service_pb2.GetJobCostsResponse(
        job_id=str(view.job.job_id),
        job_type=view.job.job_type,
        status=_JOB_STATUS[view.job.status],
        costs=job_costs(view),
        calls=embedded_calls(view),
    )


# ---------------------------------------------------------------- credits

_LEDGER_KIND = {
    kind.name.lower(): credit_service_pb2.CreditTransaction.Kind.Value(kind.name)
    for kind in credit_service_pb2.CreditTransaction.Kind.DESCRIPTOR.values
    if kind.number
}


INT32_MAX = 2**31 - 1


def saturated(value: int) -> int:
    """An unbounded total in one of the API's 32-bit fields: exact up to 2,147,483,647,
    that number beyond."""
    return min(value, INT32_MAX)


def lifetime_credits(value: int) -> int:
    """A lifetime total (credits allocated or used) in the API's 32-bit fields: exact up
    to 2,147,483,647, that number beyond (the totals are unbounded; what a team holds and
    every change are at most MAX_CREDITS, so the other credit fields never saturate)."""
    return saturated(value)


def credit_balance(view: BalanceView) -> credit_service_pb2.CreditBalance:
    balance, rates = view.balance, view.rates
    return credit_service_pb2.CreditBalance(
        team_id=view.team_id,
        credits_allocated=lifetime_credits(balance.allocated),
        credits_used=lifetime_credits(balance.used),
        credits_reserved=balance.reserved,
        credits_remaining=balance.remaining,
        credits_available=balance.available,
        credits_overdraft_limit=rates.overdraft_limit,
        budget_mode=tenancy_pb2.Team.BudgetMode.Value(rates.mode.name),
        tokens_per_credit=rates.tokens_per_credit,
        credits_per_dollar=float(rates.credits_per_dollar),
        markup_percent=float(rates.markup_percent),
        open_jobs=view.open_jobs,
    )


def credit_transaction(entry: LedgerEntry) -> credit_service_pb2.CreditTransaction:
    return credit_service_pb2.CreditTransaction(
        transaction_id=str(entry.entry_id),
        team_id=entry.team_id,
        job_id=str(entry.job_id) if entry.job_id else "",
        kind=_LEDGER_KIND[entry.kind],
        amount=entry.amount,
        reserved_delta=entry.reserved_delta,
        remaining_after=entry.remaining_after,
        reserved_after=entry.reserved_after,
        reason=entry.reason,
        actor=entry.actor,
        created_at=timestamp(entry.created_at),
    )


# ---------------------------------------------------------------- single-call jobs


def estimate_response(value: CallEstimate) -> job_service_pb2.EstimateCallResponse:
    response = job_service_pb2.EstimateCallResponse(
        model=value.model_alias,
        input_tokens_bound=value.input_tokens_bound,
        input_tokens_estimate=value.input_tokens_estimate,
        output_tokens_bound=value.output_tokens_bound,
        max_cost_usd=money(value.max_cost_usd),
        likely_max_cost_usd=money(value.likely_max_cost_usd),
        max_credits=value.max_credits,
    )
    if value.job_cost_remaining_usd is not None:
        response.job_cost_remaining_usd = money(value.job_cost_remaining_usd)
        response.fits_job_cost_limit = bool(value.fits_job_cost_limit)
    return response


def create_and_call_response(result: SingleCallResult) -> job_service_pb2.CreateAndCallResponse:
    call = llm_call_response(result.call)
    return job_service_pb2.CreateAndCallResponse(
        job_id=str(result.view.job.job_id),
        status=_JOB_STATUS[result.view.job.status],
        call_id=call.call_id,
        response=call.response,
        metadata=call.metadata,
        costs=job_costs(result.view),
        completed_at=timestamp(result.view.job.completed_at),
    )


def create_and_call_event(event: SingleCallEvent) -> job_service_pb2.CreateAndCallStreamResponse:
    response_type = job_service_pb2.CreateAndCallStreamResponse
    if not isinstance(event, SingleCallFinished):
        return stream_event(event, response_type)
    response = stream_event(event.call, response_type)
    response.job_status = _JOB_STATUS[event.view.job.status]
    response.costs.CopyFrom(job_costs(event.view))
    if event.view.job.credits_remaining_after is not None:
        response.credits_remaining = event.view.job.credits_remaining_after
    return response


# ---------------------------------------------------------------- a team's usage


# The counts the operator's report (analytics_pb2.UsageFigures) and a team's own
# (BilledUsage) share, under the same names; the money fields differ between the two.
USAGE_COUNTS = (
    "jobs",
    "jobs_pending",
    "jobs_in_progress",
    "jobs_completed",
    "jobs_failed",
    "jobs_expired",
    "calls",
    "calls_failed",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "credits_charged",
    "credits_refunded",
)


def usage_counts(value: UsageFigures) -> dict[str, int]:
    return {name: getattr(value, name) for name in USAGE_COUNTS}


def billed_usage(value: UsageFigures) -> job_service_pb2.BilledUsage:
    """The figures a team may see of its usage: never provider costs or margins."""
    return job_service_pb2.BilledUsage(**usage_counts(value), billed_cost_usd=money(value.billed_cost_usd))


def usage_summary(team_id: str, report: UsageReport) -> job_service_pb2.UsageSummary:
    return job_service_pb2.UsageSummary(
        team_id=team_id,
        start_date=report.range.start.isoformat(),
        end_date=report.range.end.isoformat(),
        totals=billed_usage(report.totals),
        days=[job_service_pb2.DailyBilledUsage(date=d.isoformat(), usage=billed_usage(f)) for d, f in report.days],
        job_types=[job_service_pb2.JobTypeBilledUsage(job_type=t, usage=billed_usage(f)) for t, f in report.job_types],
    )
