import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from saaslitellm.v1 import tenancy_pb2 as _tenancy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreditBalance(_message.Message):
    __slots__ = ("team_id", "credits_allocated", "credits_used", "credits_reserved", "credits_remaining", "credits_available", "credits_overdraft_limit", "budget_mode", "tokens_per_credit", "credits_per_dollar", "markup_percent", "open_jobs")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    CREDITS_ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    CREDITS_USED_FIELD_NUMBER: _ClassVar[int]
    CREDITS_RESERVED_FIELD_NUMBER: _ClassVar[int]
    CREDITS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    CREDITS_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    CREDITS_OVERDRAFT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MODE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_CREDIT_FIELD_NUMBER: _ClassVar[int]
    CREDITS_PER_DOLLAR_FIELD_NUMBER: _ClassVar[int]
    MARKUP_PERCENT_FIELD_NUMBER: _ClassVar[int]
    OPEN_JOBS_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    credits_allocated: int
    credits_used: int
    credits_reserved: int
    credits_remaining: int
    credits_available: int
    credits_overdraft_limit: int
    budget_mode: _tenancy_pb2.Team.BudgetMode
    tokens_per_credit: int
    credits_per_dollar: float
    markup_percent: float
    open_jobs: int
    def __init__(self, team_id: _Optional[str] = ..., credits_allocated: _Optional[int] = ..., credits_used: _Optional[int] = ..., credits_reserved: _Optional[int] = ..., credits_remaining: _Optional[int] = ..., credits_available: _Optional[int] = ..., credits_overdraft_limit: _Optional[int] = ..., budget_mode: _Optional[_Union[_tenancy_pb2.Team.BudgetMode, str]] = ..., tokens_per_credit: _Optional[int] = ..., credits_per_dollar: _Optional[float] = ..., markup_percent: _Optional[float] = ..., open_jobs: _Optional[int] = ...) -> None: ...

class GetCreditBalanceRequest(_message.Message):
    __slots__ = ("team_id",)
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    def __init__(self, team_id: _Optional[str] = ...) -> None: ...

class CreditTransaction(_message.Message):
    __slots__ = ("transaction_id", "team_id", "job_id", "kind", "amount", "reserved_delta", "remaining_after", "reserved_after", "reason", "actor", "created_at")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[CreditTransaction.Kind]
        ALLOCATION: _ClassVar[CreditTransaction.Kind]
        TOP_UP: _ClassVar[CreditTransaction.Kind]
        RESERVATION: _ClassVar[CreditTransaction.Kind]
        CHARGE: _ClassVar[CreditTransaction.Kind]
        RELEASE: _ClassVar[CreditTransaction.Kind]
        ADJUSTMENT: _ClassVar[CreditTransaction.Kind]
        REFUND: _ClassVar[CreditTransaction.Kind]
        LATE_CHARGE: _ClassVar[CreditTransaction.Kind]
    KIND_UNSPECIFIED: CreditTransaction.Kind
    ALLOCATION: CreditTransaction.Kind
    TOP_UP: CreditTransaction.Kind
    RESERVATION: CreditTransaction.Kind
    CHARGE: CreditTransaction.Kind
    RELEASE: CreditTransaction.Kind
    ADJUSTMENT: CreditTransaction.Kind
    REFUND: CreditTransaction.Kind
    LATE_CHARGE: CreditTransaction.Kind
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RESERVED_DELTA_FIELD_NUMBER: _ClassVar[int]
    REMAINING_AFTER_FIELD_NUMBER: _ClassVar[int]
    RESERVED_AFTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    team_id: str
    job_id: str
    kind: CreditTransaction.Kind
    amount: int
    reserved_delta: int
    remaining_after: int
    reserved_after: int
    reason: str
    actor: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, transaction_id: _Optional[str] = ..., team_id: _Optional[str] = ..., job_id: _Optional[str] = ..., kind: _Optional[_Union[CreditTransaction.Kind, str]] = ..., amount: _Optional[int] = ..., reserved_delta: _Optional[int] = ..., remaining_after: _Optional[int] = ..., reserved_after: _Optional[int] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListCreditTransactionsRequest(_message.Message):
    __slots__ = ("team_id", "page_size", "page_token")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    page_size: int
    page_token: str
    def __init__(self, team_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCreditTransactionsResponse(_message.Message):
    __slots__ = ("transactions", "next_page_token", "balance")
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[CreditTransaction]
    next_page_token: str
    balance: CreditBalance
    def __init__(self, transactions: _Optional[_Iterable[_Union[CreditTransaction, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., balance: _Optional[_Union[CreditBalance, _Mapping]] = ...) -> None: ...

class AddCreditsRequest(_message.Message):
    __slots__ = ("team_id", "credits", "reason", "idempotency_key")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    credits: int
    reason: str
    idempotency_key: str
    def __init__(self, team_id: _Optional[str] = ..., credits: _Optional[int] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class AddCreditsResponse(_message.Message):
    __slots__ = ("team_id", "credits_added", "transaction", "balance")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    CREDITS_ADDED_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    credits_added: int
    transaction: CreditTransaction
    balance: CreditBalance
    def __init__(self, team_id: _Optional[str] = ..., credits_added: _Optional[int] = ..., transaction: _Optional[_Union[CreditTransaction, _Mapping]] = ..., balance: _Optional[_Union[CreditBalance, _Mapping]] = ...) -> None: ...

class AdjustCreditsRequest(_message.Message):
    __slots__ = ("team_id", "credits", "reason", "idempotency_key")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    credits: int
    reason: str
    idempotency_key: str
    def __init__(self, team_id: _Optional[str] = ..., credits: _Optional[int] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class AdjustCreditsResponse(_message.Message):
    __slots__ = ("team_id", "transaction", "balance")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    transaction: CreditTransaction
    balance: CreditBalance
    def __init__(self, team_id: _Optional[str] = ..., transaction: _Optional[_Union[CreditTransaction, _Mapping]] = ..., balance: _Optional[_Union[CreditBalance, _Mapping]] = ...) -> None: ...

class RefundJobRequest(_message.Message):
    __slots__ = ("team_id", "job_id", "reason")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    job_id: str
    reason: str
    def __init__(self, team_id: _Optional[str] = ..., job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RefundJobResponse(_message.Message):
    __slots__ = ("transaction", "balance", "already_refunded")
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    ALREADY_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    transaction: CreditTransaction
    balance: CreditBalance
    already_refunded: bool
    def __init__(self, transaction: _Optional[_Union[CreditTransaction, _Mapping]] = ..., balance: _Optional[_Union[CreditBalance, _Mapping]] = ..., already_refunded: _Optional[bool] = ...) -> None: ...
