import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Organization(_message.Message):
    __slots__ = ("organization_id", "name", "status", "metadata", "created_at", "updated_at")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Organization.Status]
        ACTIVE: _ClassVar[Organization.Status]
        ARCHIVED: _ClassVar[Organization.Status]
    STATUS_UNSPECIFIED: Organization.Status
    ACTIVE: Organization.Status
    ARCHIVED: Organization.Status
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    name: str
    status: Organization.Status
    metadata: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, organization_id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[Organization.Status, str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Team(_message.Message):
    __slots__ = ("team_id", "organization_id", "team_alias", "status", "budget_mode", "access_groups", "allowed_model_aliases", "default_model", "metadata", "credits_allocated", "credits_used", "credits_reserved", "credits_remaining", "credits_available", "created_at", "updated_at", "tokens_per_credit", "credits_per_dollar", "markup_percent", "credits_overdraft_limit", "archived_at", "calls_per_minute", "low_credit_threshold", "max_calls_per_job", "max_cost_usd_per_job")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Team.Status]
        ACTIVE: _ClassVar[Team.Status]
        SUSPENDED: _ClassVar[Team.Status]
        PAUSED: _ClassVar[Team.Status]
        ARCHIVED: _ClassVar[Team.Status]
    STATUS_UNSPECIFIED: Team.Status
    ACTIVE: Team.Status
    SUSPENDED: Team.Status
    PAUSED: Team.Status
    ARCHIVED: Team.Status
    class BudgetMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        BUDGET_MODE_UNSPECIFIED: _ClassVar[Team.BudgetMode]
        JOB_BASED: _ClassVar[Team.BudgetMode]
        CONSUMPTION_TOKENS: _ClassVar[Team.BudgetMode]
        CONSUMPTION_USD: _ClassVar[Team.BudgetMode]
    BUDGET_MODE_UNSPECIFIED: Team.BudgetMode
    JOB_BASED: Team.BudgetMode
    CONSUMPTION_TOKENS: Team.BudgetMode
    CONSUMPTION_USD: Team.BudgetMode
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ALIAS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MODE_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODEL_ALIASES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREDITS_ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    CREDITS_USED_FIELD_NUMBER: _ClassVar[int]
    CREDITS_RESERVED_FIELD_NUMBER: _ClassVar[int]
    CREDITS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    CREDITS_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_CREDIT_FIELD_NUMBER: _ClassVar[int]
    CREDITS_PER_DOLLAR_FIELD_NUMBER: _ClassVar[int]
    MARKUP_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CREDITS_OVERDRAFT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_AT_FIELD_NUMBER: _ClassVar[int]
    CALLS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    LOW_CREDIT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_CALLS_PER_JOB_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_PER_JOB_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    organization_id: str
    team_alias: str
    status: Team.Status
    budget_mode: Team.BudgetMode
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    allowed_model_aliases: _containers.RepeatedScalarFieldContainer[str]
    default_model: str
    metadata: _struct_pb2.Struct
    credits_allocated: int
    credits_used: int
    credits_reserved: int
    credits_remaining: int
    credits_available: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    tokens_per_credit: int
    credits_per_dollar: str
    markup_percent: str
    credits_overdraft_limit: int
    archived_at: _timestamp_pb2.Timestamp
    calls_per_minute: int
    low_credit_threshold: int
    max_calls_per_job: int
    max_cost_usd_per_job: str
    def __init__(self, team_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., team_alias: _Optional[str] = ..., status: _Optional[_Union[Team.Status, str]] = ..., budget_mode: _Optional[_Union[Team.BudgetMode, str]] = ..., access_groups: _Optional[_Iterable[str]] = ..., allowed_model_aliases: _Optional[_Iterable[str]] = ..., default_model: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., credits_allocated: _Optional[int] = ..., credits_used: _Optional[int] = ..., credits_reserved: _Optional[int] = ..., credits_remaining: _Optional[int] = ..., credits_available: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tokens_per_credit: _Optional[int] = ..., credits_per_dollar: _Optional[str] = ..., markup_percent: _Optional[str] = ..., credits_overdraft_limit: _Optional[int] = ..., archived_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., calls_per_minute: _Optional[int] = ..., low_credit_threshold: _Optional[int] = ..., max_calls_per_job: _Optional[int] = ..., max_cost_usd_per_job: _Optional[str] = ...) -> None: ...

class TeamKey(_message.Message):
    __slots__ = ("key_id", "team_id", "name", "key_prefix", "state", "created_at", "expires_at", "revoked_at", "last_used_at", "replaced_by_key_id")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[TeamKey.State]
        ACTIVE: _ClassVar[TeamKey.State]
        REVOKED: _ClassVar[TeamKey.State]
        EXPIRED: _ClassVar[TeamKey.State]
    STATE_UNSPECIFIED: TeamKey.State
    ACTIVE: TeamKey.State
    REVOKED: TeamKey.State
    EXPIRED: TeamKey.State
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    team_id: str
    name: str
    key_prefix: str
    state: TeamKey.State
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    last_used_at: _timestamp_pb2.Timestamp
    replaced_by_key_id: str
    def __init__(self, key_id: _Optional[str] = ..., team_id: _Optional[str] = ..., name: _Optional[str] = ..., key_prefix: _Optional[str] = ..., state: _Optional[_Union[TeamKey.State, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replaced_by_key_id: _Optional[str] = ...) -> None: ...

class ModelAccessGroup(_message.Message):
    __slots__ = ("group_name", "display_name", "description", "model_aliases", "created_at", "updated_at")
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_ALIASES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    group_name: str
    display_name: str
    description: str
    model_aliases: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, group_name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., model_aliases: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ModelAlias(_message.Message):
    __slots__ = ("model_alias", "actual_model", "fallback_models", "access_groups", "display_name", "description", "created_at", "updated_at")
    MODEL_ALIAS_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_MODEL_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_MODELS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    model_alias: str
    actual_model: str
    fallback_models: _containers.RepeatedScalarFieldContainer[str]
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    display_name: str
    description: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, model_alias: _Optional[str] = ..., actual_model: _Optional[str] = ..., fallback_models: _Optional[_Iterable[str]] = ..., access_groups: _Optional[_Iterable[str]] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
