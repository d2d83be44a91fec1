import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from saaslitellm.v1 import analytics_pb2 as _analytics_pb2
from saaslitellm.v1 import audit_pb2 as _audit_pb2
from saaslitellm.v1 import tenancy_pb2 as _tenancy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
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
    __slots__ = ("organization_id", "team_id", "team_alias", "access_groups", "credits_allocated", "metadata", "default_model", "budget_mode", "key_name", "tokens_per_credit", "credits_per_dollar", "markup_percent", "credits_overdraft_limit", "calls_per_minute", "low_credit_threshold", "max_calls_per_job", "max_cost_usd_per_job")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ALIAS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MODE_FIELD_NUMBER: _ClassVar[int]
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_CREDIT_FIELD_NUMBER: _ClassVar[int]
    CREDITS_PER_DOLLAR_FIELD_NUMBER: _ClassVar[int]
    MARKUP_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CREDITS_OVERDRAFT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CALLS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    LOW_CREDIT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_CALLS_PER_JOB_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_PER_JOB_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    team_id: str
    team_alias: str
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    credits_allocated: int
    metadata: _struct_pb2.Struct
    default_model: str
    budget_mode: _tenancy_pb2.Team.BudgetMode
    key_name: str
    tokens_per_credit: int
    credits_per_dollar: str
    markup_percent: str
    credits_overdraft_limit: int
    calls_per_minute: int
    low_credit_threshold: int
    max_calls_per_job: int
    max_cost_usd_per_job: str
    def __init__(self, organization_id: _Optional[str] = ..., team_id: _Optional[str] = ..., team_alias: _Optional[str] = ..., access_groups: _Optional[_Iterable[str]] = ..., credits_allocated: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., default_model: _Optional[str] = ..., budget_mode: _Optional[_Union[_tenancy_pb2.Team.BudgetMode, str]] = ..., key_name: _Optional[str] = ..., tokens_per_credit: _Optional[int] = ..., credits_per_dollar: _Optional[str] = ..., markup_percent: _Optional[str] = ..., credits_overdraft_limit: _Optional[int] = ..., calls_per_minute: _Optional[int] = ..., low_credit_threshold: _Optional[int] = ..., max_calls_per_job: _Optional[int] = ..., max_cost_usd_per_job: _Optional[str] = ...) -> None: ...

class CreateTeamResponse(_message.Message):
    __slots__ = ("team_id", "organization_id", "team_alias", "virtual_key", "credits_allocated", "credits_remaining", "access_groups", "allowed_model_aliases", "default_model", "budget_mode", "status", "key_prefix", "created_at", "key_id")
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
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
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
    key_id: str
    def __init__(self, team_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., team_alias: _Optional[str] = ..., virtual_key: _Optional[str] = ..., credits_allocated: _Optional[int] = ..., credits_remaining: _Optional[int] = ..., access_groups: _Optional[_Iterable[str]] = ..., allowed_model_aliases: _Optional[_Iterable[str]] = ..., default_model: _Optional[str] = ..., budget_mode: _Optional[_Union[_tenancy_pb2.Team.BudgetMode, str]] = ..., status: _Optional[_Union[_tenancy_pb2.Team.Status, str]] = ..., key_prefix: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key_id: _Optional[str] = ...) -> None: ...

class GetTeamRequest(_message.Message):
    __slots__ = ("team_id",)
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    def __init__(self, team_id: _Optional[str] = ...) -> None: ...

class ListOrganizationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "status")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    status: _tenancy_pb2.Organization.Status
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., status: _Optional[_Union[_tenancy_pb2.Organization.Status, str]] = ...) -> None: ...

class ListOrganizationsResponse(_message.Message):
    __slots__ = ("organizations", "next_page_token")
    ORGANIZATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organizations: _containers.RepeatedCompositeFieldContainer[_tenancy_pb2.Organization]
    next_page_token: str
    def __init__(self, organizations: _Optional[_Iterable[_Union[_tenancy_pb2.Organization, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateOrganizationRequest(_message.Message):
    __slots__ = ("organization_id", "name", "metadata")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    name: str
    metadata: _struct_pb2.Struct
    def __init__(self, organization_id: _Optional[str] = ..., name: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class DeleteOrganizationRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class DeleteOrganizationResponse(_message.Message):
    __slots__ = ("organization_id", "outcome")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[DeleteOrganizationResponse.Outcome]
        DELETED: _ClassVar[DeleteOrganizationResponse.Outcome]
        ARCHIVED: _ClassVar[DeleteOrganizationResponse.Outcome]
    OUTCOME_UNSPECIFIED: DeleteOrganizationResponse.Outcome
    DELETED: DeleteOrganizationResponse.Outcome
    ARCHIVED: DeleteOrganizationResponse.Outcome
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    outcome: DeleteOrganizationResponse.Outcome
    def __init__(self, organization_id: _Optional[str] = ..., outcome: _Optional[_Union[DeleteOrganizationResponse.Outcome, str]] = ...) -> None: ...

class ListModelAccessGroupsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelAccessGroupsResponse(_message.Message):
    __slots__ = ("model_access_groups", "next_page_token")
    MODEL_ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    model_access_groups: _containers.RepeatedCompositeFieldContainer[_tenancy_pb2.ModelAccessGroup]
    next_page_token: str
    def __init__(self, model_access_groups: _Optional[_Iterable[_Union[_tenancy_pb2.ModelAccessGroup, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateModelAccessGroupRequest(_message.Message):
    __slots__ = ("group_name", "display_name", "description")
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    group_name: str
    display_name: str
    description: str
    def __init__(self, group_name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class DeleteModelAccessGroupRequest(_message.Message):
    __slots__ = ("group_name", "force")
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    group_name: str
    force: bool
    def __init__(self, group_name: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteModelAccessGroupResponse(_message.Message):
    __slots__ = ("group_name", "affected_team_ids")
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_TEAM_IDS_FIELD_NUMBER: _ClassVar[int]
    group_name: str
    affected_team_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group_name: _Optional[str] = ..., affected_team_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AddModelAccessGroupModelsRequest(_message.Message):
    __slots__ = ("group_name", "model_aliases")
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ALIASES_FIELD_NUMBER: _ClassVar[int]
    group_name: str
    model_aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group_name: _Optional[str] = ..., model_aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveModelAccessGroupModelsRequest(_message.Message):
    __slots__ = ("group_name", "model_aliases")
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ALIASES_FIELD_NUMBER: _ClassVar[int]
    group_name: str
    model_aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group_name: _Optional[str] = ..., model_aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class SetModelAccessGroupModelsRequest(_message.Message):
    __slots__ = ("group_name", "model_aliases")
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ALIASES_FIELD_NUMBER: _ClassVar[int]
    group_name: str
    model_aliases: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group_name: _Optional[str] = ..., model_aliases: _Optional[_Iterable[str]] = ...) -> None: ...

class ListCatalogModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCatalogModelsResponse(_message.Message):
    __slots__ = ("models", "unpriced_models")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    UNPRICED_MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedScalarFieldContainer[str]
    unpriced_models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, models: _Optional[_Iterable[str]] = ..., unpriced_models: _Optional[_Iterable[str]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "access_group")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUP_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    access_group: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., access_group: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_tenancy_pb2.ModelAlias]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[_tenancy_pb2.ModelAlias, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateModelRequest(_message.Message):
    __slots__ = ("model_alias", "actual_model", "fallback_models", "display_name", "description")
    MODEL_ALIAS_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_MODEL_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_MODELS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    model_alias: str
    actual_model: str
    fallback_models: _containers.RepeatedScalarFieldContainer[str]
    display_name: str
    description: str
    def __init__(self, model_alias: _Optional[str] = ..., actual_model: _Optional[str] = ..., fallback_models: _Optional[_Iterable[str]] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("model_alias", "force")
    MODEL_ALIAS_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    model_alias: str
    force: bool
    def __init__(self, model_alias: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ("model_alias", "affected_team_ids")
    MODEL_ALIAS_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_TEAM_IDS_FIELD_NUMBER: _ClassVar[int]
    model_alias: str
    affected_team_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_alias: _Optional[str] = ..., affected_team_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AddModelAccessGroupsRequest(_message.Message):
    __slots__ = ("model_alias", "access_groups")
    MODEL_ALIAS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    model_alias: str
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_alias: _Optional[str] = ..., access_groups: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveModelAccessGroupsRequest(_message.Message):
    __slots__ = ("model_alias", "access_groups")
    MODEL_ALIAS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    model_alias: str
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_alias: _Optional[str] = ..., access_groups: _Optional[_Iterable[str]] = ...) -> None: ...

class SetModelAccessGroupsRequest(_message.Message):
    __slots__ = ("model_alias", "access_groups")
    MODEL_ALIAS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    model_alias: str
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_alias: _Optional[str] = ..., access_groups: _Optional[_Iterable[str]] = ...) -> None: ...

class ListTeamsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "organization_id", "status")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    organization_id: str
    status: _tenancy_pb2.Team.Status
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., organization_id: _Optional[str] = ..., status: _Optional[_Union[_tenancy_pb2.Team.Status, str]] = ...) -> None: ...

class ListTeamsResponse(_message.Message):
    __slots__ = ("teams", "next_page_token")
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    teams: _containers.RepeatedCompositeFieldContainer[_tenancy_pb2.Team]
    next_page_token: str
    def __init__(self, teams: _Optional[_Iterable[_Union[_tenancy_pb2.Team, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateTeamRequest(_message.Message):
    __slots__ = ("team_id", "team_alias", "metadata", "status", "budget_mode", "tokens_per_credit", "credits_per_dollar", "markup_percent", "credits_overdraft_limit", "default_model", "calls_per_minute", "low_credit_threshold", "max_calls_per_job", "max_cost_usd_per_job")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ALIAS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MODE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_CREDIT_FIELD_NUMBER: _ClassVar[int]
    CREDITS_PER_DOLLAR_FIELD_NUMBER: _ClassVar[int]
    MARKUP_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CREDITS_OVERDRAFT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    CALLS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    LOW_CREDIT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_CALLS_PER_JOB_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_USD_PER_JOB_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    team_alias: str
    metadata: _struct_pb2.Struct
    status: _tenancy_pb2.Team.Status
    budget_mode: _tenancy_pb2.Team.BudgetMode
    tokens_per_credit: int
    credits_per_dollar: str
    markup_percent: str
    credits_overdraft_limit: int
    default_model: str
    calls_per_minute: int
    low_credit_threshold: int
    max_calls_per_job: int
    max_cost_usd_per_job: str
    def __init__(self, team_id: _Optional[str] = ..., team_alias: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., status: _Optional[_Union[_tenancy_pb2.Team.Status, str]] = ..., budget_mode: _Optional[_Union[_tenancy_pb2.Team.BudgetMode, str]] = ..., tokens_per_credit: _Optional[int] = ..., credits_per_dollar: _Optional[str] = ..., markup_percent: _Optional[str] = ..., credits_overdraft_limit: _Optional[int] = ..., default_model: _Optional[str] = ..., calls_per_minute: _Optional[int] = ..., low_credit_threshold: _Optional[int] = ..., max_calls_per_job: _Optional[int] = ..., max_cost_usd_per_job: _Optional[str] = ...) -> None: ...

class DeleteTeamRequest(_message.Message):
    __slots__ = ("team_id",)
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    def __init__(self, team_id: _Optional[str] = ...) -> None: ...

class DeleteTeamResponse(_message.Message):
    __slots__ = ("team_id", "outcome", "keys_revoked")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[DeleteTeamResponse.Outcome]
        DELETED: _ClassVar[DeleteTeamResponse.Outcome]
        ARCHIVED: _ClassVar[DeleteTeamResponse.Outcome]
    OUTCOME_UNSPECIFIED: DeleteTeamResponse.Outcome
    DELETED: DeleteTeamResponse.Outcome
    ARCHIVED: DeleteTeamResponse.Outcome
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    KEYS_REVOKED_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    outcome: DeleteTeamResponse.Outcome
    keys_revoked: int
    def __init__(self, team_id: _Optional[str] = ..., outcome: _Optional[_Union[DeleteTeamResponse.Outcome, str]] = ..., keys_revoked: _Optional[int] = ...) -> None: ...

class AddTeamAccessGroupsRequest(_message.Message):
    __slots__ = ("team_id", "access_groups")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, team_id: _Optional[str] = ..., access_groups: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveTeamAccessGroupsRequest(_message.Message):
    __slots__ = ("team_id", "access_groups")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, team_id: _Optional[str] = ..., access_groups: _Optional[_Iterable[str]] = ...) -> None: ...

class SetTeamAccessGroupsRequest(_message.Message):
    __slots__ = ("team_id", "access_groups")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_GROUPS_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    access_groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, team_id: _Optional[str] = ..., access_groups: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateTeamKeyRequest(_message.Message):
    __slots__ = ("team_id", "name", "expires_at")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    name: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, team_id: _Optional[str] = ..., name: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateTeamKeyResponse(_message.Message):
    __slots__ = ("key", "virtual_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_KEY_FIELD_NUMBER: _ClassVar[int]
    key: _tenancy_pb2.TeamKey
    virtual_key: str
    def __init__(self, key: _Optional[_Union[_tenancy_pb2.TeamKey, _Mapping]] = ..., virtual_key: _Optional[str] = ...) -> None: ...

class ListTeamKeysRequest(_message.Message):
    __slots__ = ("team_id", "page_size", "page_token", "state")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    page_size: int
    page_token: str
    state: _tenancy_pb2.TeamKey.State
    def __init__(self, team_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_tenancy_pb2.TeamKey.State, str]] = ...) -> None: ...

class ListTeamKeysResponse(_message.Message):
    __slots__ = ("keys", "next_page_token")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[_tenancy_pb2.TeamKey]
    next_page_token: str
    def __init__(self, keys: _Optional[_Iterable[_Union[_tenancy_pb2.TeamKey, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeTeamKeyRequest(_message.Message):
    __slots__ = ("team_id", "key_id")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    key_id: str
    def __init__(self, team_id: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class RotateTeamKeyRequest(_message.Message):
    __slots__ = ("team_id", "key_id", "grace_period_seconds", "expires_at")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    key_id: str
    grace_period_seconds: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, team_id: _Optional[str] = ..., key_id: _Optional[str] = ..., grace_period_seconds: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RotateTeamKeyResponse(_message.Message):
    __slots__ = ("key", "virtual_key", "previous_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_KEY_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_KEY_FIELD_NUMBER: _ClassVar[int]
    key: _tenancy_pb2.TeamKey
    virtual_key: str
    previous_key: _tenancy_pb2.TeamKey
    def __init__(self, key: _Optional[_Union[_tenancy_pb2.TeamKey, _Mapping]] = ..., virtual_key: _Optional[str] = ..., previous_key: _Optional[_Union[_tenancy_pb2.TeamKey, _Mapping]] = ...) -> None: ...

class ListAuditEntriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "resource_type", "resource_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    resource_type: str
    resource_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., resource_type: _Optional[str] = ..., resource_id: _Optional[str] = ...) -> None: ...

class ListAuditEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_audit_pb2.AuditEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[_audit_pb2.AuditEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetTeamUsageRequest(_message.Message):
    __slots__ = ("team_id", "start_date", "end_date", "job_type", "limit")
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    team_id: str
    start_date: str
    end_date: str
    job_type: str
    limit: int
    def __init__(self, team_id: _Optional[str] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., job_type: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class GetOrganizationUsageRequest(_message.Message):
    __slots__ = ("organization_id", "start_date", "end_date", "job_type", "limit")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    start_date: str
    end_date: str
    job_type: str
    limit: int
    def __init__(self, organization_id: _Optional[str] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., job_type: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...
