import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from saaslitellm.v1 import chat_pb2 as _chat_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Job(_message.Message):
    __slots__ = ("job_id", "team_id", "job_type", "user_id", "status", "metadata", "created_at", "started_at", "completed_at", "error_message", "costs", "calls")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Job.Status]
        PENDING: _ClassVar[Job.Status]
        IN_PROGRESS: _ClassVar[Job.Status]
        COMPLETED: _ClassVar[Job.Status]
        FAILED: _ClassVar[Job.Status]
        EXPIRED: _ClassVar[Job.Status]
    STATUS_UNSPECIFIED: Job.Status
    PENDING: Job.Status
    IN_PROGRESS: Job.Status
    COMPLETED: Job.Status
    FAILED: Job.Status
    EXPIRED: Job.Status
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COSTS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    team_id: str
    job_type: str
    user_id: str
    status: Job.Status
    metadata: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    error_message: str
    costs: JobCosts
    calls: _containers.RepeatedCompositeFieldContainer[CallSummary]
    def __init__(self, job_id: _Optional[str] = ..., team_id: _Optional[str] = ..., job_type: _Optional[str] = ..., user_id: _Optional[str] = ..., status: _Optional[_Union[Job.Status, str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error_message: _Optional[str] = ..., costs: _Optional[_Union[JobCosts, _Mapping]] = ..., calls: _Optional[_Iterable[_Union[CallSummary, _Mapping]]] = ...) -> None: ...

class JobCosts(_message.Message):
    __slots__ = ("total_calls", "successful_calls", "failed_calls", "total_tokens", "total_cost_usd", "avg_latency_ms", "credit_applied", "credits_remaining", "credits_charged", "prompt_tokens", "completion_tokens", "credits_shortfall", "credits_refunded")
    TOTAL_CALLS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_CALLS_FIELD_NUMBER: _ClassVar[int]
    FAILED_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_USD_FIELD_NUMBER: _ClassVar[int]
    AVG_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_APPLIED_FIELD_NUMBER: _ClassVar[int]
    CREDITS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    CREDITS_CHARGED_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_SHORTFALL_FIELD_NUMBER: _ClassVar[int]
    CREDITS_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    total_calls: int
    successful_calls: int
    failed_calls: int
    total_tokens: int
    total_cost_usd: float
    avg_latency_ms: int
    credit_applied: bool
    credits_remaining: int
    credits_charged: int
    prompt_tokens: int
    completion_tokens: int
    credits_shortfall: int
    credits_refunded: int
    def __init__(self, total_calls: _Optional[int] = ..., successful_calls: _Optional[int] = ..., failed_calls: _Optional[int] = ..., total_tokens: _Optional[int] = ..., total_cost_usd: _Optional[float] = ..., avg_latency_ms: _Optional[int] = ..., credit_applied: _Optional[bool] = ..., credits_remaining: _Optional[int] = ..., credits_charged: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., credits_shortfall: _Optional[int] = ..., credits_refunded: _Optional[int] = ...) -> None: ...

class CallSummary(_message.Message):
    __slots__ = ("call_id", "purpose", "model", "status", "tokens", "latency_ms", "cost_usd", "error", "usage", "streamed", "created_at")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[CallSummary.Status]
        SUCCEEDED: _ClassVar[CallSummary.Status]
        FAILED: _ClassVar[CallSummary.Status]
        CANCELLED: _ClassVar[CallSummary.Status]
    STATUS_UNSPECIFIED: CallSummary.Status
    SUCCEEDED: CallSummary.Status
    FAILED: CallSummary.Status
    CANCELLED: CallSummary.Status
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    STREAMED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    purpose: str
    model: str
    status: CallSummary.Status
    tokens: int
    latency_ms: int
    cost_usd: float
    error: str
    usage: _chat_pb2.Usage
    streamed: bool
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, call_id: _Optional[str] = ..., purpose: _Optional[str] = ..., model: _Optional[str] = ..., status: _Optional[_Union[CallSummary.Status, str]] = ..., tokens: _Optional[int] = ..., latency_ms: _Optional[int] = ..., cost_usd: _Optional[float] = ..., error: _Optional[str] = ..., usage: _Optional[_Union[_chat_pb2.Usage, _Mapping]] = ..., streamed: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
