import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from saaslitellm.v1 import tenancy_pb2 as _tenancy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateOrganizationRequest(_message.Message):
    __slots__ = ("organization_id", "name", "metadata")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    name: str
    metadata: _struct_pb2.Struct
    def __init__(self, organization_id: _Optional[str] = ..., name: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetOrganizationRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class CreateModelAccessGroupRequest(_message.Message):
    __slots__ = ("group_name", "display_name", "description", "model_aliases")
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_ALIASES_FIELD_NUMBER: _ClassVar[int]
    group_name: str
    display_name: str
    description: str
    model_aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group_name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., model_aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class GetModelAccessGroupRequest(_message.Message):
    __slots__ = ("group_name",)
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    group_name: str
    def __init__(self, group_name: _Optional[str] = ...) -> None: ...

class CreateModelRequest(_message.Message):
    __slots__ = ("model_alias", "actual_model", "fallback_models", "access_groups", "display_name", "description", "provider")
    MODEL_ALIAS_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_MODEL_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_MODELS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    model_alias: str
    actual_model: str
    fallback_models: _containers.RepeatedScalarFieldContainer[str]
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    display_name: str
    description: str
    provider: str
    def __init__(self, model_alias: _Optional[str] = ..., actual_model: _Optional[str] = ..., fallback_models: _Optional[_Iterable[str]] = ..., access_groups: _Optional[_Iterable[str]] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., provider: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_alias",)
    MODEL_ALIAS_FIELD_NUMBER: _ClassVar[int]
    model_alias: str
    def __init__(self, model_alias: _Optional[str] = ...) -> None: ...

class CreateTeamRequest(_message.Message):
    __slots__ = ("organization_id", "team_id", "team_alias", "access_groups", "credits_allocated", "metadata", "default_model", "budget_mode", "key_name")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ALIAS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MODE_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    team_id: str
    team_alias: str
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    credits_allocated: int
    metadata: _struct_pb2.Struct
    default_model: str
    budget_mode: _tenancy_pb2.Team.BudgetMode
    key_name: str
    def __init__(self, organization_id: _Optional[str] = ..., team_id: _Optional[str] = ..., team_alias: _Optional[str] = ..., access_groups: _Optional[_Iterable[str]] = ..., credits_allocated: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., default_model: _Optional[str] = ..., budget_mode: _Optional[_Union[_tenancy_pb2.Team.BudgetMode, str]] = ..., key_name: _Optional[str] = ...) -> None: ...

class CreateTeamResponse(_message.Message):
    __slots__ = ("team_id", "organization_id", "team_alias", "virtual_key", "credits_allocated", "credits_remaining", "access_groups", "allowed_model_aliases", "default_model", "budget_mode", "status", "key_prefix", "created_at")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ALIAS_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_KEY_FIELD_NUMBER: _ClassVar[int]
    CREDITS_ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    CREDITS_REMAINING_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODEL_ALIASES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    organization_id: str
    team_alias: str
    virtual_key: str
    credits_allocated: int
    credits_remaining: int
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    allowed_model_aliases: _containers.RepeatedScalarFieldContainer[str]
    default_model: str
    budget_mode: _tenancy_pb2.Team.BudgetMode
    status: _tenancy_pb2.Team.Status
    key_prefix: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, team_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., team_alias: _Optional[str] = ..., virtual_key: _Optional[str] = ..., credits_allocated: _Optional[int] = ..., credits_remaining: _Optional[int] = ..., access_groups: _Optional[_Iterable[str]] = ..., allowed_model_aliases: _Optional[_Iterable[str]] = ..., default_model: _Optional[str] = ..., budget_mode: _Optional[_Union[_tenancy_pb2.Team.BudgetMode, str]] = ..., status: _Optional[_Union[_tenancy_pb2.Team.Status, str]] = ..., key_prefix: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetTeamRequest(_message.Message):
    __slots__ = ("team_id",)
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    def __init__(self, team_id: _Optional[str] = ...) -> None: ...
