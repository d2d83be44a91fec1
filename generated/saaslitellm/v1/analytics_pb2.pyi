from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UsageFigures(_message.Message):
    __slots__ = ("jobs", "jobs_pending", "jobs_in_progress", "jobs_completed", "jobs_failed", "jobs_expired", "calls", "calls_failed", "prompt_tokens", "completion_tokens", "total_tokens", "provider_cost_usd", "billed_cost_usd", "margin_usd", "credits_charged", "provider_cost_usd_per_credit", "credits_refunded")
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
    PROVIDER_COST_USD_FIELD_NUMBER: _ClassVar[int]
    BILLED_COST_USD_FIELD_NUMBER: _ClassVar[int]
    MARGIN_USD_FIELD_NUMBER: _ClassVar[int]
    CREDITS_CHARGED_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_COST_USD_PER_CREDIT_FIELD_NUMBER: _ClassVar[int]
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
    provider_cost_usd: str
    billed_cost_usd: str
    margin_usd: str
    credits_charged: int
    provider_cost_usd_per_credit: str
    credits_refunded: int
    def __init__(self, jobs: _Optional[int] = ..., jobs_pending: _Optional[int] = ..., jobs_in_progress: _Optional[int] = ..., jobs_completed: _Optional[int] = ..., jobs_failed: _Optional[int] = ..., jobs_expired: _Optional[int] = ..., calls: _Optional[int] = ..., calls_failed: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., provider_cost_usd: _Optional[str] = ..., billed_cost_usd: _Optional[str] = ..., margin_usd: _Optional[str] = ..., credits_charged: _Optional[int] = ..., provider_cost_usd_per_credit: _Optional[str] = ..., credits_refunded: _Optional[int] = ...) -> None: ...

class DailyUsage(_message.Message):
    __slots__ = ("date", "usage")
    DATE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    date: str
    usage: UsageFigures
    def __init__(self, date: _Optional[str] = ..., usage: _Optional[_Union[UsageFigures, _Mapping]] = ...) -> None: ...

class JobTypeUsage(_message.Message):
    __slots__ = ("job_type", "usage")
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    job_type: str
    usage: UsageFigures
    def __init__(self, job_type: _Optional[str] = ..., usage: _Optional[_Union[UsageFigures, _Mapping]] = ...) -> None: ...

class DailyJobTypeUsage(_message.Message):
    __slots__ = ("date", "job_type", "usage")
    DATE_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    date: str
    job_type: str
    usage: UsageFigures
    def __init__(self, date: _Optional[str] = ..., job_type: _Optional[str] = ..., usage: _Optional[_Union[UsageFigures, _Mapping]] = ...) -> None: ...

class TeamUsage(_message.Message):
    __slots__ = ("team_id", "usage")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    usage: UsageFigures
    def __init__(self, team_id: _Optional[str] = ..., usage: _Optional[_Union[UsageFigures, _Mapping]] = ...) -> None: ...

class UsageReport(_message.Message):
    __slots__ = ("start_date", "end_date", "totals", "days", "job_types", "daily_job_types", "teams")
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPES_FIELD_NUMBER: _ClassVar[int]
    DAILY_JOB_TYPES_FIELD_NUMBER: _ClassVar[int]
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    start_date: str
    end_date: str
    totals: UsageFigures
    days: _containers.RepeatedCompositeFieldContainer[DailyUsage]
    job_types: _containers.RepeatedCompositeFieldContainer[JobTypeUsage]
    daily_job_types: _containers.RepeatedCompositeFieldContainer[DailyJobTypeUsage]
    teams: _containers.RepeatedCompositeFieldContainer[TeamUsage]
    def __init__(self, start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., totals: _Optional[_Union[UsageFigures, _Mapping]] = ..., days: _Optional[_Iterable[_Union[DailyUsage, _Mapping]]] = ..., job_types: _Optional[_Iterable[_Union[JobTypeUsage, _Mapping]]] = ..., daily_job_types: _Optional[_Iterable[_Union[DailyJobTypeUsage, _Mapping]]] = ..., teams: _Optional[_Iterable[_Union[TeamUsage, _Mapping]]] = ...) -> None: ...
