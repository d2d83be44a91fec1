import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from saaslitellm.v1 import chat_pb2 as _chat_pb2
from saaslitellm.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateJobRequest(_message.Message):
    __slots__ = ("team_id", "job_type", "user_id", "metadata", "idempotency_key")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    job_type: str
    user_id: str
    metadata: _struct_pb2.Struct
    idempotency_key: str
    def __init__(self, team_id: _Optional[str] = ..., job_type: _Optional[str] = ..., user_id: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class UpdateJobMetadataRequest(_message.Message):
    __slots__ = ("job_id", "metadata")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    metadata: _struct_pb2.Struct
    def __init__(self, job_id: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetJobCostsRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobCostsResponse(_message.Message):
    __slots__ = ("job_id", "job_type", "status", "costs", "calls")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COSTS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    job_type: str
    status: _job_pb2.Job.Status
    costs: _job_pb2.JobCosts
    calls: _containers.RepeatedCompositeFieldContainer[_job_pb2.CallSummary]
    def __init__(self, job_id: _Optional[str] = ..., job_type: _Optional[str] = ..., status: _Optional[_Union[_job_pb2.Job.Status, str]] = ..., costs: _Optional[_Union[_job_pb2.JobCosts, _Mapping]] = ..., calls: _Optional[_Iterable[_Union[_job_pb2.CallSummary, _Mapping]]] = ...) -> None: ...

class ListJobCallsRequest(_message.Message):
    __slots__ = ("job_id", "page_size", "page_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    page_size: int
    page_token: str
    def __init__(self, job_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobCallsResponse(_message.Message):
    __slots__ = ("calls", "next_page_token")
    CALLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[_job_pb2.CallSummary]
    next_page_token: str
    def __init__(self, calls: _Optional[_Iterable[_Union[_job_pb2.CallSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("start_date", "end_date", "job_type", "limit")
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    start_date: str
    end_date: str
    job_type: str
    limit: int
    def __init__(self, start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., job_type: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class BilledUsage(_message.Message):
    __slots__ = ("jobs", "jobs_pending", "jobs_in_progress", "jobs_completed", "jobs_failed", "jobs_expired", "calls", "calls_failed", "prompt_tokens", "completion_tokens", "total_tokens", "billed_cost_usd", "credits_charged", "credits_refunded")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    JOBS_PENDING_FIELD_NUMBER: _ClassVar[int]
    JOBS_IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    JOBS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    JOBS_FAILED_FIELD_NUMBER: _ClassVar[int]
    JOBS_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FAILED_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    BILLED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    CREDITS_CHARGED_FIELD_NUMBER: _ClassVar[int]
    CREDITS_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    jobs: int
    jobs_pending: int
    jobs_in_progress: int
    jobs_completed: int
    jobs_failed: int
    jobs_expired: int
    calls: int
    calls_failed: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    billed_cost_usd: str
    credits_charged: int
    credits_refunded: int
    def __init__(self, jobs: _Optional[int] = ..., jobs_pending: _Optional[int] = ..., jobs_in_progress: _Optional[int] = ..., jobs_completed: _Optional[int] = ..., jobs_failed: _Optional[int] = ..., jobs_expired: _Optional[int] = ..., calls: _Optional[int] = ..., calls_failed: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., billed_cost_usd: _Optional[str] = ..., credits_charged: _Optional[int] = ..., credits_refunded: _Optional[int] = ...) -> None: ...

class DailyBilledUsage(_message.Message):
    __slots__ = ("date", "usage")
    DATE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    date: str
    usage: BilledUsage
    def __init__(self, date: _Optional[str] = ..., usage: _Optional[_Union[BilledUsage, _Mapping]] = ...) -> None: ...

class JobTypeBilledUsage(_message.Message):
    __slots__ = ("job_type", "usage")
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    job_type: str
    usage: BilledUsage
    def __init__(self, job_type: _Optional[str] = ..., usage: _Optional[_Union[BilledUsage, _Mapping]] = ...) -> None: ...

class UsageSummary(_message.Message):
    __slots__ = ("team_id", "start_date", "end_date", "totals", "days", "job_types")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPES_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    start_date: str
    end_date: str
    totals: BilledUsage
    days: _containers.RepeatedCompositeFieldContainer[DailyBilledUsage]
    job_types: _containers.RepeatedCompositeFieldContainer[JobTypeBilledUsage]
    def __init__(self, team_id: _Optional[str] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., totals: _Optional[_Union[BilledUsage, _Mapping]] = ..., days: _Optional[_Iterable[_Union[DailyBilledUsage, _Mapping]]] = ..., job_types: _Optional[_Iterable[_Union[JobTypeBilledUsage, _Mapping]]] = ...) -> None: ...

class ListTeamModelsRequest(_message.Message):
    __slots__ = ("team_id",)
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    def __init__(self, team_id: _Optional[str] = ...) -> None: ...

class AvailableModel(_message.Message):
    __slots__ = ("model_alias", "display_name", "description", "is_default")
    MODEL_ALIAS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    model_alias: str
    display_name: str
    description: str
    is_default: bool
    def __init__(self, model_alias: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., is_default: _Optional[bool] = ...) -> None: ...

class ListTeamModelsResponse(_message.Message):
    __slots__ = ("models", "default_model")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[AvailableModel]
    default_model: str
    def __init__(self, models: _Optional[_Iterable[_Union[AvailableModel, _Mapping]]] = ..., default_model: _Optional[str] = ...) -> None: ...

class LLMCallRequest(_message.Message):
    __slots__ = ("job_id", "model", "messages", "purpose", "call_metadata", "model_group", "temperature", "max_tokens", "top_p", "stop", "response_format", "tools", "tool_choice", "frequency_penalty", "presence_penalty", "seed", "user", "max_completion_tokens", "parallel_tool_calls", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort", "extra_body")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CALL_METADATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_GROUP_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PENALTY_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_PENALTY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    MAX_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    LOGIT_BIAS_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    TOP_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    REASONING_EFFORT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_BODY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[_chat_pb2.ChatMessage]
    purpose: str
    call_metadata: _struct_pb2.Struct
    model_group: str
    temperature: float
    max_tokens: int
    top_p: float
    stop: _struct_pb2.Value
    response_format: _struct_pb2.Struct
    tools: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    tool_choice: _struct_pb2.Value
    frequency_penalty: float
    presence_penalty: float
    seed: int
    user: str
    max_completion_tokens: int
    parallel_tool_calls: bool
    logit_bias: _struct_pb2.Struct
    logprobs: bool
    top_logprobs: int
    reasoning_effort: str
    extra_body: _struct_pb2.Struct
    def __init__(self, job_id: _Optional[str] = ..., model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_chat_pb2.ChatMessage, _Mapping]]] = ..., purpose: _Optional[str] = ..., call_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_group: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., response_format: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., tool_choice: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., frequency_penalty: _Optional[float] = ..., presence_penalty: _Optional[float] = ..., seed: _Optional[int] = ..., user: _Optional[str] = ..., max_completion_tokens: _Optional[int] = ..., parallel_tool_calls: _Optional[bool] = ..., logit_bias: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., logprobs: _Optional[bool] = ..., top_logprobs: _Optional[int] = ..., reasoning_effort: _Optional[str] = ..., extra_body: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class LLMCallResponse(_message.Message):
    __slots__ = ("call_id", "response", "metadata", "job_id")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    response: _chat_pb2.ChatResponse
    metadata: _chat_pb2.CallMetadata
    job_id: str
    def __init__(self, call_id: _Optional[str] = ..., response: _Optional[_Union[_chat_pb2.ChatResponse, _Mapping]] = ..., metadata: _Optional[_Union[_chat_pb2.CallMetadata, _Mapping]] = ..., job_id: _Optional[str] = ...) -> None: ...

class LLMCallStreamRequest(_message.Message):
    __slots__ = ("job_id", "model", "messages", "purpose", "call_metadata", "model_group", "temperature", "max_tokens", "top_p", "stop", "response_format", "tools", "tool_choice", "frequency_penalty", "presence_penalty", "seed", "user", "max_completion_tokens", "parallel_tool_calls", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort", "extra_body")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CALL_METADATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_GROUP_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PENALTY_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_PENALTY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    MAX_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    LOGIT_BIAS_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    TOP_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    REASONING_EFFORT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_BODY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[_chat_pb2.ChatMessage]
    purpose: str
    call_metadata: _struct_pb2.Struct
    model_group: str
    temperature: float
    max_tokens: int
    top_p: float
    stop: _struct_pb2.Value
    response_format: _struct_pb2.Struct
    tools: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    tool_choice: _struct_pb2.Value
    frequency_penalty: float
    presence_penalty: float
    seed: int
    user: str
    max_completion_tokens: int
    parallel_tool_calls: bool
    logit_bias: _struct_pb2.Struct
    logprobs: bool
    top_logprobs: int
    reasoning_effort: str
    extra_body: _struct_pb2.Struct
    def __init__(self, job_id: _Optional[str] = ..., model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_chat_pb2.ChatMessage, _Mapping]]] = ..., purpose: _Optional[str] = ..., call_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_group: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., response_format: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., tool_choice: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., frequency_penalty: _Optional[float] = ..., presence_penalty: _Optional[float] = ..., seed: _Optional[int] = ..., user: _Optional[str] = ..., max_completion_tokens: _Optional[int] = ..., parallel_tool_calls: _Optional[bool] = ..., logit_bias: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., logprobs: _Optional[bool] = ..., top_logprobs: _Optional[int] = ..., reasoning_effort: _Optional[str] = ..., extra_body: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class LLMCallStreamResponse(_message.Message):
    __slots__ = ("call_id", "job_id", "content", "choices", "done", "finish_reason", "usage", "cost_usd", "error", "model", "latency_ms", "keepalive")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    KEEPALIVE_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    job_id: str
    content: str
    choices: _containers.RepeatedCompositeFieldContainer[_chat_pb2.StreamChoice]
    done: bool
    finish_reason: str
    usage: _chat_pb2.Usage
    cost_usd: float
    error: _status_pb2.Status
    model: str
    latency_ms: int
    keepalive: bool
    def __init__(self, call_id: _Optional[str] = ..., job_id: _Optional[str] = ..., content: _Optional[str] = ..., choices: _Optional[_Iterable[_Union[_chat_pb2.StreamChoice, _Mapping]]] = ..., done: _Optional[bool] = ..., finish_reason: _Optional[str] = ..., usage: _Optional[_Union[_chat_pb2.Usage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., model: _Optional[str] = ..., latency_ms: _Optional[int] = ..., keepalive: _Optional[bool] = ...) -> None: ...

class CompleteJobRequest(_message.Message):
    __slots__ = ("job_id", "status", "metadata", "error_message")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: _job_pb2.Job.Status
    metadata: _struct_pb2.Struct
    error_message: str
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[_job_pb2.Job.Status, str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error_message: _Optional[str] = ...) -> None: ...

class CompleteJobResponse(_message.Message):
    __slots__ = ("job_id", "status", "completed_at", "costs", "calls")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    COSTS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: _job_pb2.Job.Status
    completed_at: _timestamp_pb2.Timestamp
    costs: _job_pb2.JobCosts
    calls: _containers.RepeatedCompositeFieldContainer[_job_pb2.CallSummary]
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[_job_pb2.Job.Status, str]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., costs: _Optional[_Union[_job_pb2.JobCosts, _Mapping]] = ..., calls: _Optional[_Iterable[_Union[_job_pb2.CallSummary, _Mapping]]] = ...) -> None: ...

class EstimateCallRequest(_message.Message):
    __slots__ = ("job_id", "model", "messages", "purpose", "call_metadata", "model_group", "temperature", "max_tokens", "top_p", "stop", "response_format", "tools", "tool_choice", "frequency_penalty", "presence_penalty", "seed", "user", "max_completion_tokens", "parallel_tool_calls", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort", "extra_body")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CALL_METADATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_GROUP_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PENALTY_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_PENALTY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    MAX_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    LOGIT_BIAS_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    TOP_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    REASONING_EFFORT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_BODY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[_chat_pb2.ChatMessage]
    purpose: str
    call_metadata: _struct_pb2.Struct
    model_group: str
    temperature: float
    max_tokens: int
    top_p: float
    stop: _struct_pb2.Value
    response_format: _struct_pb2.Struct
    tools: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    tool_choice: _struct_pb2.Value
    frequency_penalty: float
    presence_penalty: float
    seed: int
    user: str
    max_completion_tokens: int
    parallel_tool_calls: bool
    logit_bias: _struct_pb2.Struct
    logprobs: bool
    top_logprobs: int
    reasoning_effort: str
    extra_body: _struct_pb2.Struct
    def __init__(self, job_id: _Optional[str] = ..., model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_chat_pb2.ChatMessage, _Mapping]]] = ..., purpose: _Optional[str] = ..., call_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_group: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., response_format: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., tool_choice: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., frequency_penalty: _Optional[float] = ..., presence_penalty: _Optional[float] = ..., seed: _Optional[int] = ..., user: _Optional[str] = ..., max_completion_tokens: _Optional[int] = ..., parallel_tool_calls: _Optional[bool] = ..., logit_bias: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., logprobs: _Optional[bool] = ..., top_logprobs: _Optional[int] = ..., reasoning_effort: _Optional[str] = ..., extra_body: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class EstimateCallResponse(_message.Message):
    __slots__ = ("model", "input_tokens_bound", "input_tokens_estimate", "output_tokens_bound", "max_cost_usd", "likely_max_cost_usd", "max_credits", "job_cost_remaining_usd", "fits_job_cost_limit")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_BOUND_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_BOUND_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    LIKELY_MAX_COST_USD_FIELD_NUMBER: _ClassVar[int]
    MAX_CREDITS_FIELD_NUMBER: _ClassVar[int]
    JOB_COST_REMAINING_USD_FIELD_NUMBER: _ClassVar[int]
    FITS_JOB_COST_LIMIT_FIELD_NUMBER: _ClassVar[int]
    model: str
    input_tokens_bound: int
    input_tokens_estimate: int
    output_tokens_bound: int
    max_cost_usd: str
    likely_max_cost_usd: str
    max_credits: int
    job_cost_remaining_usd: str
    fits_job_cost_limit: bool
    def __init__(self, model: _Optional[str] = ..., input_tokens_bound: _Optional[int] = ..., input_tokens_estimate: _Optional[int] = ..., output_tokens_bound: _Optional[int] = ..., max_cost_usd: _Optional[str] = ..., likely_max_cost_usd: _Optional[str] = ..., max_credits: _Optional[int] = ..., job_cost_remaining_usd: _Optional[str] = ..., fits_job_cost_limit: _Optional[bool] = ...) -> None: ...

class CreateAndCallRequest(_message.Message):
    __slots__ = ("team_id", "job_type", "user_id", "job_metadata", "idempotency_key", "model", "messages", "purpose", "call_metadata", "model_group", "temperature", "max_tokens", "top_p", "stop", "response_format", "tools", "tool_choice", "frequency_penalty", "presence_penalty", "seed", "user", "max_completion_tokens", "parallel_tool_calls", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort", "extra_body")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_METADATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CALL_METADATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_GROUP_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PENALTY_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_PENALTY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    MAX_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    LOGIT_BIAS_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    TOP_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    REASONING_EFFORT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_BODY_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    job_type: str
    user_id: str
    job_metadata: _struct_pb2.Struct
    idempotency_key: str
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[_chat_pb2.ChatMessage]
    purpose: str
    call_metadata: _struct_pb2.Struct
    model_group: str
    temperature: float
    max_tokens: int
    top_p: float
    stop: _struct_pb2.Value
    response_format: _struct_pb2.Struct
    tools: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    tool_choice: _struct_pb2.Value
    frequency_penalty: float
    presence_penalty: float
    seed: int
    user: str
    max_completion_tokens: int
    parallel_tool_calls: bool
    logit_bias: _struct_pb2.Struct
    logprobs: bool
    top_logprobs: int
    reasoning_effort: str
    extra_body: _struct_pb2.Struct
    def __init__(self, team_id: _Optional[str] = ..., job_type: _Optional[str] = ..., user_id: _Optional[str] = ..., job_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_chat_pb2.ChatMessage, _Mapping]]] = ..., purpose: _Optional[str] = ..., call_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_group: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., response_format: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., tool_choice: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., frequency_penalty: _Optional[float] = ..., presence_penalty: _Optional[float] = ..., seed: _Optional[int] = ..., user: _Optional[str] = ..., max_completion_tokens: _Optional[int] = ..., parallel_tool_calls: _Optional[bool] = ..., logit_bias: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., logprobs: _Optional[bool] = ..., top_logprobs: _Optional[int] = ..., reasoning_effort: _Optional[str] = ..., extra_body: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CreateAndCallResponse(_message.Message):
    __slots__ = ("job_id", "status", "call_id", "response", "metadata", "costs", "completed_at")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    COSTS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: _job_pb2.Job.Status
    call_id: str
    response: _chat_pb2.ChatResponse
    metadata: _chat_pb2.CallMetadata
    costs: _job_pb2.JobCosts
    completed_at: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[_job_pb2.Job.Status, str]] = ..., call_id: _Optional[str] = ..., response: _Optional[_Union[_chat_pb2.ChatResponse, _Mapping]] = ..., metadata: _Optional[_Union[_chat_pb2.CallMetadata, _Mapping]] = ..., costs: _Optional[_Union[_job_pb2.JobCosts, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAndCallStreamRequest(_message.Message):
    __slots__ = ("team_id", "job_type", "user_id", "job_metadata", "idempotency_key", "model", "messages", "purpose", "call_metadata", "model_group", "temperature", "max_tokens", "top_p", "stop", "response_format", "tools", "tool_choice", "frequency_penalty", "presence_penalty", "seed", "user", "max_completion_tokens", "parallel_tool_calls", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort", "extra_body")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_METADATA_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CALL_METADATA_FIELD_NUMBER: _ClassVar[int]
    MODEL_GROUP_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PENALTY_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_PENALTY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    MAX_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    LOGIT_BIAS_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    TOP_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    REASONING_EFFORT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_BODY_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    job_type: str
    user_id: str
    job_metadata: _struct_pb2.Struct
    idempotency_key: str
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[_chat_pb2.ChatMessage]
    purpose: str
    call_metadata: _struct_pb2.Struct
    model_group: str
    temperature: float
    max_tokens: int
    top_p: float
    stop: _struct_pb2.Value
    response_format: _struct_pb2.Struct
    tools: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    tool_choice: _struct_pb2.Value
    frequency_penalty: float
    presence_penalty: float
    seed: int
    user: str
    max_completion_tokens: int
    parallel_tool_calls: bool
    logit_bias: _struct_pb2.Struct
    logprobs: bool
    top_logprobs: int
    reasoning_effort: str
    extra_body: _struct_pb2.Struct
    def __init__(self, team_id: _Optional[str] = ..., job_type: _Optional[str] = ..., user_id: _Optional[str] = ..., job_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_chat_pb2.ChatMessage, _Mapping]]] = ..., purpose: _Optional[str] = ..., call_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_group: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., response_format: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., tool_choice: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., frequency_penalty: _Optional[float] = ..., presence_penalty: _Optional[float] = ..., seed: _Optional[int] = ..., user: _Optional[str] = ..., max_completion_tokens: _Optional[int] = ..., parallel_tool_calls: _Optional[bool] = ..., logit_bias: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., logprobs: _Optional[bool] = ..., top_logprobs: _Optional[int] = ..., reasoning_effort: _Optional[str] = ..., extra_body: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CreateAndCallStreamResponse(_message.Message):
    __slots__ = ("call_id", "job_id", "content", "choices", "done", "finish_reason", "usage", "cost_usd", "error", "model", "latency_ms", "job_status", "costs", "credits_remaining", "keepalive")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    JOB_STATUS_FIELD_NUMBER: _ClassVar[int]
    COSTS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    KEEPALIVE_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    job_id: str
    content: str
    choices: _containers.RepeatedCompositeFieldContainer[_chat_pb2.StreamChoice]
    done: bool
    finish_reason: str
    usage: _chat_pb2.Usage
    cost_usd: float
    error: _status_pb2.Status
    model: str
    latency_ms: int
    job_status: _job_pb2.Job.Status
    costs: _job_pb2.JobCosts
    credits_remaining: int
    keepalive: bool
    def __init__(self, call_id: _Optional[str] = ..., job_id: _Optional[str] = ..., content: _Optional[str] = ..., choices: _Optional[_Iterable[_Union[_chat_pb2.StreamChoice, _Mapping]]] = ..., done: _Optional[bool] = ..., finish_reason: _Optional[str] = ..., usage: _Optional[_Union[_chat_pb2.Usage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., model: _Optional[str] = ..., latency_ms: _Optional[int] = ..., job_status: _Optional[_Union[_job_pb2.Job.Status, str]] = ..., costs: _Optional[_Union[_job_pb2.JobCosts, _Mapping]] = ..., credits_remaining: _Optional[int] = ..., keepalive: _Optional[bool] = ...) -> None: ...
