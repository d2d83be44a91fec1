"""Generate the OpenAPI 3.1 document of the REST surface from the descriptor set.

    python scripts/openapi.py   # gateway/descriptor.pb -> gateway/openapi.json

scripts/generate.py calls this after it writes the descriptor set, so `make generate` keeps the
document in sync with the protos and `generate.py --check` fails when it is stale.

The document describes what Envoy's gRPC-JSON transcoder really serves (gateway/envoy.template.yaml):
- paths and methods come from the `google.api.http` rules; fields bound in the path are path
  parameters, `body: "*"` sends the other fields as the JSON body, fields not in the path or
  the body are query parameters;
- schemas follow the proto3 JSON mapping with `preserve_proto_field_names` (snake_case) and
  `always_print_primitive_fields`: a response always carries its fields without presence
  (scalars, enums, repeated), so those are `required` in response schemas; message and
  `optional` fields appear only when set. 64-bit integers are JSON strings, enums their value
  names (requests may use any case), Timestamps RFC 3339 strings, Struct/Value free-form JSON;
- descriptions are the proto comments; every 4xx/5xx is the one error shape
  (google.rpc.Status: `code`, `message`, `details`);
- server-streaming RPCs answer `text/event-stream`, one `data: <json>` event per stream message.

No library on PyPI turns descriptors with HTTP annotations into OpenAPI 3 (the known generators,
protoc-gen-openapiv2 and gnostic's protoc-gen-openapi, are Go plugins), hence this small one.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, field_behavior_pb2
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTOR = ROOT / "gateway" / "descriptor.pb"
OUTPUT = ROOT / "gateway" / "openapi.json"

PACKAGE = "saaslitellm.v1"
TITLE = "SaaS LiteLLM API"
DESCRIPTION = """\
A multi-tenant LLM job API. A team creates a **job** (one business operation), makes any number of
LLM calls in it, plain or streamed as Server-Sent Events, then completes it: a completed job costs
the team credits, a failed one nothing.

**Authentication.** `JobService` routes take the team's virtual key as `Authorization: Bearer sk-...`.
`AdminService` routes take the operator's admin key as `X-Admin-Key: <key>` or as a bearer token.

**Errors** have one JSON shape, `{"code", "message", "details"}`: `code` is the gRPC status code (the
HTTP status follows it), and `details` holds a `google.rpc.ErrorInfo` whose `reason` never changes
(e.g. `INSUFFICIENT_CREDITS`), plus a `google.rpc.BadRequest` naming the field for invalid input.

This document is generated from the protos (`scripts/openapi.py`); the same API is served over
native gRPC on the same port.
"""

# How each RPC authenticates (see the service comments in the protos): admin services and
# admin methods of mixed services take the admin key; reads about one team take either.
ADMIN_SERVICES = {f"{PACKAGE}.AdminService", f"{PACKAGE}.WebhookService"}
ADMIN_METHODS = {f"{PACKAGE}.CreditService.{name}" for name in ("AddCredits", "AdjustCredits", "RefundJob")}
TEAM_OR_ADMIN_METHODS = {
    f"{PACKAGE}.CreditService.GetCreditBalance",
    f"{PACKAGE}.CreditService.ListCreditTransactions",
    f"{PACKAGE}.JobService.ListTeamModels",
    f"{PACKAGE}.JobService.ListJobCalls",
    f"{PACKAGE}.AdminJobService.ListTeamJobs",
}
SECURITY_SCHEMES = {
    "teamKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "The team's virtual key (`sk-...`), shown once when the team or key is created.",
    },
    "adminKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Admin-Key",
        "description": "The operator's admin key (`SAAS_ADMIN_KEY`).",
    },
    "adminBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's admin key sent as `Authorization: Bearer <key>`.",
    },
}
TEAM_SECURITY = [{"teamKey": []}]
ADMIN_SECURITY = [{"adminKey": []}, {"adminBearer": []}]


def _security(service: str, method: str) -> list[dict[str, list]]:
    if service in ADMIN_SERVICES or f"{service}.{method}" in ADMIN_METHODS:
        return ADMIN_SECURITY
    if f"{service}.{method}" in TEAM_OR_ADMIN_METHODS:
        return TEAM_SECURITY + ADMIN_SECURITY
    return TEAM_SECURITY


def _headers(*described: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "header", "required": False, "description": text, "schema": {"type": "string"}}
        for name, text in described
    ]


# Request headers the server reads as gRPC metadata, which protos cannot declare.
HEADER_PARAMETERS = {
    f"{PACKAGE}.JobService.CreateJob": _headers(
        (
            "Idempotency-Key",
            "Makes the create safe to retry: the same key returns the same job (like `idempotency_key`).",
        )
    ),
    f"{PACKAGE}.OpenAIService.CreateChatCompletion": _headers(
        (
            "X-Job-Id",
            "Make the call inside this open job (it stays open). Without it, the request is a single-call job.",
        ),
        ("X-Job-Type", "The single-call job's type (default `chat_completion`); not with `X-Job-Id`."),
        ("X-Call-Purpose", "A label of the call inside its job, like LLMCall's `purpose`."),
        ("Idempotency-Key", "Makes the single-call job safe to retry: the same key never makes a second job."),
    ),
}

# RPCs that take or return `google.api.HttpBody` carry a wire format of their own (OpenAI's),
# which no proto message describes: their bodies are described here, by hand.
HTTP_BODY = ".google.api.HttpBody"
_OPENAI_MESSAGE = {
    "type": "object",
    "properties": {"role": {"type": "string"}, "content": {}},
    "required": ["role"],
    "additionalProperties": True,
}
_CHAT_COMPLETION = {
    "type": "object",
    "description": "OpenAI's `chat.completion` object; `id` is `chatcmpl-` and the call id.",
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string", "description": "The alias the call was made with."},
        "choices": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "usage": {
            "type": "object",
            "properties": {
                name: {"type": "integer"} for name in ("prompt_tokens", "completion_tokens", "total_tokens")
            },
        },
    },
    "required": ["id", "object", "created", "model", "choices", "usage"],
}
HTTP_BODIES: dict[str, dict[str, Any]] = {
    f"{PACKAGE}.OpenAIService.CreateChatCompletion": {
        "request": {
            "type": "object",
            "description": "OpenAI's chat completion request. Fields not listed here reach the provider unchanged.",
            "properties": {
                "model": {"type": "string", "description": "One of the team's aliases; empty: its default."},
                "messages": {"type": "array", "items": _OPENAI_MESSAGE, "minItems": 1},
                "stream": {"type": "boolean"},
                "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
                "n": {"const": 1},
                "metadata": {"type": "object", "description": "Merged into the job's metadata after success."},
                "user": {"type": "string", "description": "A single-call job's user id; also sent upstream."},
            },
            "required": ["messages"],
            "additionalProperties": True,
        },
        "example": {"model": "ChatAgent", "messages": [{"role": "user", "content": "Analyze this..."}]},
        "response": {
            "description": "A `chat.completion` object (JSON), or with `stream: true` OpenAI's Server-Sent "
            "Events: `data: <chat.completion.chunk>` per delta, a usage chunk with "
            "`stream_options.include_usage`, then `data: [DONE]`. An error after the stream began is an event "
            '`data: {"error": {"message", "type", "code"}}` and no `[DONE]`. Headers `x-job-id` and '
            "`x-call-id` name the job and the call.",
            "content": {
                "application/json": {"schema": _CHAT_COMPLETION},
                "text/event-stream": {"schema": {"type": "string"}},
            },
        },
    }
}

# Request bodies for "Try it out" (the integration overview's Quick Start), checked against the
# body's fields at generation time so they cannot drift from the protos.
REQUEST_EXAMPLES = {
    f"{PACKAGE}.AdminService.CreateOrganization": {"organization_id": "org_acme", "name": "ACME Corporation"},
    f"{PACKAGE}.AdminService.CreateModelAccessGroup": {"group_name": "gpt-models", "description": "GPT models"},
    f"{PACKAGE}.AdminService.CreateModel": {
        "model_alias": "ChatAgent",
        "actual_model": "fake-gpt",
        "fallback_models": ["fake-gpt-backup"],
        "access_groups": ["gpt-models"],
    },
    f"{PACKAGE}.AdminService.CreateTeam": {
        "organization_id": "org_acme",
        "team_id": "acme-corp",
        "team_alias": "ACME Corp Team",
        "access_groups": ["gpt-models"],
        "credits_allocated": 1000,
    },
    f"{PACKAGE}.JobService.CreateJob": {"job_type": "document_analysis", "metadata": {"document_id": "doc_123"}},
    f"{PACKAGE}.JobService.LLMCall": {"messages": [{"role": "user", "content": "Analyze this..."}]},
    f"{PACKAGE}.JobService.LLMCallStream": {"messages": [{"role": "user", "content": "Tell me a story"}]},
    f"{PACKAGE}.JobService.CompleteJob": {"status": "COMPLETED"},
}

ERROR_SCHEMA = "google.rpc.Status"
ERROR_DESCRIPTION = (
    "An error. Envoy's own errors have the same shape, with an `ErrorInfo` reason of their own: a body or "
    "query it cannot read (bad JSON, a wrong type, a field the request does not have, a list of the wrong "
    "shape) is 400 INVALID_REQUEST, with a `BadRequest` naming the field where it can tell; a body over 4 MiB "
    "is 413 and headers too large 431, both INVALID_REQUEST; an unknown path is 404 NOT_FOUND, a method the "
    "path does not take 405 METHOD_NOT_ALLOWED (code 12), no server answering 503 SERVER_UNAVAILABLE, the "
    "gateway's timeout 504 GATEWAY_TIMEOUT. On the `/v1` routes the body also has OpenAI's member, which the "
    "OpenAI SDKs read: `error`: {`message`, `type` (`invalid_request_error` for a 4xx, `rate_limit_error` for "
    "429, `server_error` for a 5xx), `param` (the field a `BadRequest` names, else null), `code` (the "
    "`ErrorInfo` reason), `details`}."
)
ERROR_FIELDS = {
    "code": "The gRPC status code; the HTTP status follows it: 3 INVALID_ARGUMENT and 9 FAILED_PRECONDITION "
    "400, 16 UNAUTHENTICATED 401, 7 PERMISSION_DENIED 403, 5 NOT_FOUND 404, 6 ALREADY_EXISTS and 10 ABORTED "
    "409, 8 RESOURCE_EXHAUSTED 429, 12 UNIMPLEMENTED 405 (the gateway: a method the path does not take), "
    "13 INTERNAL 500, 14 UNAVAILABLE 503, 4 DEADLINE_EXCEEDED 504.",
    "message": "What went wrong, for people. It never contains keys, upstream bodies or real model names.",
    "details": "A `google.rpc.ErrorInfo` whose `reason` never changes (branch on it, e.g. "
    "`INSUFFICIENT_CREDITS`); for invalid input also a `google.rpc.BadRequest` naming the field; for rate "
    "limits a `google.rpc.RetryInfo`.",
}
# Error detail messages worth documenting although no field names them (they travel in `details`).
DETAIL_MESSAGES = ["google.rpc.ErrorInfo", "google.rpc.BadRequest", "google.rpc.RetryInfo"]

F = descriptor_pb2.FieldDescriptorProto
SCALARS: dict[int, dict[str, Any]] = {
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    F.TYPE_FLOAT: {"type": "number", "format": "float"},
    F.TYPE_INT32: {"type": "integer", "format": "int32"},
    F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    F.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    # proto3 JSON: 64-bit integers are strings (requests may also send numbers).
    F.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_UINT64: {"type": "string", "format": "int64", "pattern": "^[0-9]+$"},
    F.TYPE_FIXED64: {"type": "string", "format": "int64", "pattern": "^[0-9]+$"},
    F.TYPE_BYTES: {"type": "string", "format": "byte", "description": "Base64."},
}
# What requests may send instead: 64-bit integers as strings or numbers.
INPUT_SCALARS: dict[int, dict[str, Any]] = {
    kind: {**schema, "type": ["string", "integer"]}
    for kind, schema in SCALARS.items()
    if schema.get("format") == "int64" and schema["type"] == "string"
}
WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True, "description": "A JSON object."},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "items": {}, "description": "A JSON array."},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time", "description": "RFC 3339, UTC."},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$", "description": "E.g. `1.5s`."},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated field paths."},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {
            "@type": {
                "type": "string",
                "description": "The message type, e.g. `type.googleapis.com/google.rpc.ErrorInfo`.",
            }
        },
        "required": ["@type"],
        "additionalProperties": True,
        "description": "A message of the type `@type` names, its fields next to `@type`.",
    },
}
WRAPPERS = {
    "google.protobuf.DoubleValue": F.TYPE_DOUBLE,
    "google.protobuf.FloatValue": F.TYPE_FLOAT,
    "google.protobuf.Int64Value": F.TYPE_INT64,
    "google.protobuf.UInt64Value": F.TYPE_UINT64,
    "google.protobuf.Int32Value": F.TYPE_INT32,
    "google.protobuf.UInt32Value": F.TYPE_UINT32,
    "google.protobuf.BoolValue": F.TYPE_BOOL,
    "google.protobuf.StringValue": F.TYPE_STRING,
    "google.protobuf.BytesValue": F.TYPE_BYTES,
}
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# Message types a query parameter can carry (their JSON form is a string or a scalar).
QUERY_MESSAGES = {*WRAPPERS, "google.protobuf.FieldMask", "google.protobuf.Timestamp", "google.protobuf.Duration"}
CROSS_REFERENCE = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")

# SourceCodeInfo path components (descriptor.proto field numbers).
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM = 2, 3, 4
ENUM_VALUE, SERVICE_METHOD = 2, 2


@dataclass
class Message:
    proto: descriptor_pb2.DescriptorProto
    comment: str
    field_comments: list[str]


@dataclass
class Enum:
    proto: descriptor_pb2.EnumDescriptorProto
    comment: str
    value_comments: list[str]


@dataclass
class Method:
    service: str  # full name
    proto: descriptor_pb2.MethodDescriptorProto
    comment: str


class Descriptors:
    """Messages, enums and methods of a FileDescriptorSet, by full name, with their comments."""

    def __init__(self, descriptor_set: bytes) -> None:
        self.messages: dict[str, Message] = {}
        self.enums: dict[str, Enum] = {}
        self.services: list[tuple[str, str]] = []  # (full name, comment), in file order
        self.methods: list[Method] = []
        for file in descriptor_pb2.FileDescriptorSet.FromString(descriptor_set).file:
            comments = {tuple(loc.path): _clean(loc.leading_comments) for loc in file.source_code_info.location}
            prefix = f".{file.package}" if file.package else ""
            for i, message in enumerate(file.message_type):
                self._message(message, prefix, (FILE_MESSAGE, i), comments)
            for i, enum in enumerate(file.enum_type):
                self._enum(enum, prefix, (FILE_ENUM, i), comments)
            for i, service in enumerate(file.service):
                name = f"{file.package}.{service.name}"
                self.services.append((name, comments.get((FILE_SERVICE, i), "")))
                for j, method in enumerate(service.method):
                    self.methods.append(Method(name, method, comments.get((FILE_SERVICE, i, SERVICE_METHOD, j), "")))

    def _message(self, proto, prefix: str, path: tuple[int, ...], comments: dict) -> None:
        name = f"{prefix}.{proto.name}"
        field_comments = [comments.get((*path, MESSAGE_FIELD, i), "") for i in range(len(proto.field))]
        self.messages[name] = Message(proto, comments.get(path, ""), field_comments)
        for i, nested in enumerate(proto.nested_type):
            self._message(nested, name, (*path, MESSAGE_NESTED, i), comments)
        for i, enum in enumerate(proto.enum_type):
            self._enum(enum, name, (*path, MESSAGE_ENUM, i), comments)

    def _enum(self, proto, prefix: str, path: tuple[int, ...], comments: dict) -> None:
        value_comments = [comments.get((*path, ENUM_VALUE, i), "") for i in range(len(proto.value))]
        self.enums[f"{prefix}.{proto.name}"] = Enum(proto, comments.get(path, ""), value_comments)


def _clean(comment: str) -> str:
    """A proto comment as Markdown: the leading space of each line removed, lines kept, and
    Google's cross-reference syntax `[text][target]` reduced to `text`."""
    lines = [line[1:] if line.startswith(" ") else line for line in comment.strip("\n").split("\n")]
    return CROSS_REFERENCE.sub(r"\1", "\n".join(lines)).strip()


def _summary(comment: str) -> str:
    first = comment.split("\n\n")[0].replace("\n", " ")
    end = first.find(". ")
    return (first[: end + 1] if end >= 0 else first).strip()


def component_name(full_name: str) -> str:
    """`.saaslitellm.v1.Job.Status` -> `Job.Status`; other packages keep their full name."""
    name = full_name.lstrip(".")
    return name.removeprefix(f"{PACKAGE}.")


def ref(full_name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{component_name(full_name)}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` or JSON null."""
    if "$ref" in schema:
        return {"anyOf": [{"$ref": schema["$ref"]}, {"type": "null"}]}
    if "type" not in schema:  # any JSON value already
        return schema
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*types, "null"]}


def has_presence(field: descriptor_pb2.FieldDescriptorProto) -> bool:
    """Whether JSON omits the field when unset (else always_print_primitive_fields prints it)."""
    if field.label == F.LABEL_REPEATED:
        return False
    return field.type == F.TYPE_MESSAGE or field.HasField("oneof_index")


def behaviors(field: descriptor_pb2.FieldDescriptorProto) -> list[int]:
    return list(field.options.Extensions[field_behavior_pb2.field_behavior])


class Generator:
    def __init__(self, descriptors: Descriptors) -> None:
        self.d = descriptors
        self.schemas: dict[str, dict[str, Any]] = {}
        self.pending: list[str] = []  # full names referenced but not yet emitted
        self.inputs: set[str] = set()  # messages that appear in requests (field REQUIRED is what counts there)

    # ------------------------------------------------------------------ schemas
    def field_schema(self, field: descriptor_pb2.FieldDescriptorProto, as_input: bool = False) -> dict[str, Any]:
        if field.type == F.TYPE_MESSAGE:
            entry = self.d.messages[field.type_name].proto
            if entry.options.map_entry:
                value = self.field_schema(entry.field[1], as_input)
                return {"type": "object", "additionalProperties": value}
            single = self.type_schema(field.type_name)
        elif field.type == F.TYPE_ENUM:
            single = self.type_schema(field.type_name)
        elif as_input and field.type in INPUT_SCALARS:
            single = dict(INPUT_SCALARS[field.type])
        else:
            single = dict(SCALARS[field.type])
        if field.label == F.LABEL_REPEATED:
            return {"type": "array", "items": single}
        return single

    def type_schema(self, full_name: str) -> dict[str, Any]:
        name = full_name.lstrip(".")
        if name in WELL_KNOWN:
            return dict(WELL_KNOWN[name])
        if name in WRAPPERS:
            scalar = dict(SCALARS[WRAPPERS[name]])
            return {**scalar, "type": [scalar["type"], "null"]}
        if component_name(full_name) not in self.schemas and full_name not in self.pending:
            self.pending.append(full_name)
        return ref(full_name)

    def message_schema(self, full_name: str, omit: frozenset[str] = frozenset()) -> dict[str, Any]:
        message = self.d.messages[full_name]
        as_input = full_name in self.inputs
        properties: dict[str, Any] = {}
        required: list[str] = []
        oneofs: dict[int, list[str]] = {}
        for field, comment in zip(message.proto.field, message.field_comments, strict=True):
            if field.name in omit:
                continue
            schema = self.field_schema(field, as_input)
            if as_input and field_behavior_pb2.REQUIRED not in behaviors(field):
                schema = nullable(schema)  # proto3 JSON reads null as "not set"
            described = self._describe(schema, comment)
            if field.options.deprecated:
                described["deprecated"] = True
            if field_behavior_pb2.OUTPUT_ONLY in behaviors(field):
                described["readOnly"] = True
            properties[field.name] = described
            if as_input:
                if field_behavior_pb2.REQUIRED in behaviors(field):
                    required.append(field.name)
            elif not has_presence(field):
                required.append(field.name)
            if field.HasField("oneof_index") and not field.proto3_optional:
                oneofs.setdefault(field.oneof_index, []).append(field.name)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        if as_input:
            # The gateway refuses a field the request does not have (gateway/body_fields.lua).
            schema["additionalProperties"] = False
        description = message.comment
        for index, names in oneofs.items():
            listed = ", ".join(f"`{n}`" for n in names)
            description += f"\n\nAt most one of {listed} (`{message.proto.oneof_decl[index].name}`)."
        if description.strip():
            schema["description"] = description.strip()
        return schema

    @staticmethod
    def _describe(schema: dict[str, Any], comment: str) -> dict[str, Any]:
        # The field's comment wins over its type's (OpenAPI 3.1 allows siblings of $ref).
        return {**schema, "description": comment} if comment else schema

    def enum_schema(self, full_name: str) -> dict[str, Any]:
        enum = self.d.enums[full_name]
        values = [v.name for v in enum.proto.value]
        lines = [enum.comment, ""] if enum.comment else []
        lines += [f"- `{v}`: {c}" if c else f"- `{v}`" for v, c in zip(values, enum.value_comments, strict=True)]
        if "any case" not in enum.comment:
            lines += ["", "Requests may spell values in any case."]
        return {"type": "string", "enum": values, "description": "\n".join(lines).strip()}

    def emit_pending(self) -> None:
        while self.pending:
            full_name = self.pending.pop(0)
            name = component_name(full_name)
            if name in self.schemas:
                continue
            if full_name in self.d.enums:
                self.schemas[name] = self.enum_schema(full_name)
            else:
                self.schemas[name] = {}  # reserve the name: recursive messages refer to it
                self.schemas[name] = self.message_schema(full_name)
        if ERROR_SCHEMA in self.schemas:  # Google's comments speak of Google's APIs: say what ours do
            error = self.schemas[ERROR_SCHEMA]
            error["description"] = ERROR_DESCRIPTION
            for name, description in ERROR_FIELDS.items():
                error["properties"][name]["description"] = description

    def mark_inputs(self, full_name: str) -> None:
        """Record `full_name` and every message reachable from it as a request message."""
        if full_name in self.inputs or full_name not in self.d.messages:
            return
        self.inputs.add(full_name)
        for field in self.d.messages[full_name].proto.field:
            if field.type == F.TYPE_MESSAGE:
                self.mark_inputs(field.type_name)

    # ------------------------------------------------------------------ operations
    def operations(self) -> dict[str, dict[str, Any]]:
        methods = [m for m in self.d.methods if m.proto.options.HasExtension(annotations_pb2.http)]
        for method in methods:
            if method.proto.input_type != HTTP_BODY:
                self.mark_inputs(method.proto.input_type)
        paths: dict[str, dict[str, Any]] = {}
        for method in methods:
            rule = method.proto.options.Extensions[annotations_pb2.http]
            for index, binding in enumerate([rule, *rule.additional_bindings]):
                verb = binding.WhichOneof("pattern")
                if verb not in HTTP_METHODS:
                    sys.exit(f"{method.service}.{method.proto.name}: unsupported HTTP rule {verb!r}")
                template = getattr(binding, verb)
                path, path_fields = parse_template(template)
                operation = self.operation(method, binding, path_fields, index)
                paths.setdefault(path, {})[verb] = operation
        self.emit_pending()
        self.add_links(paths)
        return paths

    def operation(self, method: Method, binding, path_fields: list[str], index: int) -> dict[str, Any]:
        """The operation of one HTTP binding (`index` 0 for the main rule, then additional bindings)."""
        full = f"{method.service}.{method.proto.name}"
        service = method.service.rsplit(".", 1)[-1]
        request = self.d.messages[method.proto.input_type]
        fields = {f.name: (f, c) for f, c in zip(request.proto.field, request.field_comments, strict=True)}
        operation_id = f"{service}_{method.proto.name}" + (f"_{index}" if index else "")
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "tags": [service],
            "summary": _summary(method.comment) or method.proto.name,
            "security": _security(method.service, method.proto.name),
        }
        if method.comment != operation["summary"]:
            operation["description"] = method.comment
        parameters: list[dict[str, Any]] = []
        for name in path_fields:
            field, comment = self.path_field(request, name, full)
            parameters.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "description": comment,
                    "schema": self.field_schema(field),
                }
            )
        bound = {name.split(".")[0] for name in path_fields}
        raw = HTTP_BODIES.get(full)
        if (method.proto.input_type == HTTP_BODY or method.proto.output_type == HTTP_BODY) and raw is None:
            sys.exit(f"{full} carries a google.api.HttpBody: describe its bodies in HTTP_BODIES")
        if method.proto.input_type == HTTP_BODY:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": raw["request"], "example": raw["example"]}},
            }
        elif binding.body == "*":
            operation["requestBody"] = self.body(method.proto.input_type, frozenset(bound))
            if full in REQUEST_EXAMPLES:
                example = REQUEST_EXAMPLES[full]
                unknown = set(example) - set(self.schemas[component_name(method.proto.input_type)]["properties"])
                if unknown:
                    sys.exit(f"{full}: the example's fields {sorted(unknown)} are not in the request body")
                operation["requestBody"]["content"]["application/json"]["example"] = example
        elif binding.body:
            field, comment = fields[binding.body]
            operation["requestBody"] = {
                "required": True,
                "description": comment,
                "content": {"application/json": {"schema": self.field_schema(field)}},
            }
            bound.add(binding.body)
        if binding.body != "*":
            parameters += self.query_parameters(request, bound)
        parameters += HEADER_PARAMETERS.get(full, [])
        if parameters:
            operation["parameters"] = parameters
        if binding.response_body:
            sys.exit(f"{full}: response_body is not supported by Envoy's transcoder for JSON messages")
        operation["responses"] = {
            "200": raw["response"] if method.proto.output_type == HTTP_BODY else self.success(method),
            "4XX": {"$ref": "#/components/responses/Error"},
            "5XX": {"$ref": "#/components/responses/Error"},
        }
        if method.proto.options.deprecated:
            operation["deprecated"] = True
        return operation

    def path_field(self, request: Message, name: str, rpc: str) -> tuple[descriptor_pb2.FieldDescriptorProto, str]:
        """The field a path variable binds (`team_id`, or a nested one: `team.team_id`)."""
        message = request
        for depth, part in enumerate(name.split(".")):
            found = [(f, c) for f, c in zip(message.proto.field, message.field_comments, strict=True) if f.name == part]
            if not found:
                sys.exit(f"{rpc}: path variable {name!r} names no field")
            field, comment = found[0]
            if depth < name.count("."):
                message = self.d.messages[field.type_name]
        return field, comment

    def body(self, full_name: str, omit: frozenset[str]) -> dict[str, Any]:
        """The JSON body of `body: "*"`: the request message without its path-bound fields."""
        name = component_name(full_name)
        schema = self.message_schema(full_name, omit)
        if name in self.schemas and self.schemas[name] != schema:
            sys.exit(f"{full_name} is used as a body with different path fields; give each RPC its own request")
        self.schemas[name] = schema
        self.emit_pending()
        return {"required": True, "content": {"application/json": {"schema": ref(full_name)}}}

    def query_parameters(self, request: Message, bound: set[str]) -> list[dict[str, Any]]:
        """Fields neither in the path nor in the body: query parameters (scalars, enums, lists of them)."""
        parameters = []
        for field, comment in zip(request.proto.field, request.field_comments, strict=True):
            if field.name in bound or (
                field.type == F.TYPE_MESSAGE and field.type_name.lstrip(".") not in QUERY_MESSAGES
            ):
                continue
            schema = self.field_schema(field, as_input=True)
            parameter = {"name": field.name, "in": "query", "description": comment, "schema": schema}
            if field_behavior_pb2.REQUIRED in behaviors(field):
                parameter["required"] = True
            if field.label == F.LABEL_REPEATED:
                parameter["explode"] = True
            parameters.append(parameter)
        return parameters

    def success(self, method: Method) -> dict[str, Any]:
        output = method.proto.output_type
        schema = self.type_schema(output)
        if not method.proto.server_streaming:
            return {"description": "OK", "content": {"application/json": {"schema": schema}}}
        name = component_name(output)
        description = (
            "Server-Sent Events, flushed as they are produced: each event is one line "
            f"`data: <json>` followed by a blank line, where `<json>` is one `{name}` (see Schemas). "
            "The last event has `done: true`; a stream that ends without it was cut."
        )
        # Before OpenAPI 3.2 (`itemSchema`), the schema of an event-stream describes one event.
        event = {
            "type": "object",
            "description": f"One event: `data` is a `{name}` as JSON.",
            "properties": {"data": {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}},
            "required": ["data"],
        }
        return {"description": description, "content": {"text/event-stream": {"schema": event}}}

    def add_links(self, paths: dict[str, dict[str, Any]]) -> None:
        """OpenAPI links: a response field that another operation of the same service takes as a
        path parameter (CreateJob's `job_id` -> GetJob, LLMCall...). Tools follow them."""
        operations = [op for item in paths.values() for op in item.values()]
        for source in operations:
            response = source["responses"]["200"]
            content = response["content"].get("application/json")
            if not content or "$ref" not in content["schema"]:
                continue
            properties = self.schemas[content["schema"]["$ref"].rsplit("/", 1)[-1]]["properties"]
            links = {}
            for target in operations:
                if target is source or target["tags"] != source["tags"]:
                    continue
                path_names = [p["name"] for p in target.get("parameters", []) if p["in"] == "path"]
                if path_names and all(n in properties for n in path_names):
                    links[target["operationId"]] = {
                        "operationId": target["operationId"],
                        "parameters": {n: f"$response.body#/{n}" for n in path_names},
                    }
            if links:
                response["links"] = links


def parse_template(template: str) -> tuple[str, list[str]]:
    """`/api/jobs/{job_id}` -> (`/api/jobs/{job_id}`, [`job_id`]); `{name=things/*}` -> `{name}`."""
    path, fields, i = "", [], 0
    while i < len(template):
        if template[i] == "{":
            end = template.index("}", i)
            name = template[i + 1 : end].split("=")[0]
            fields.append(name)
            path += "{" + name + "}"
            i = end + 1
        else:
            path += template[i]
            i += 1
    return path, fields


def build(descriptor_set: bytes) -> dict[str, Any]:
    """The OpenAPI document of every service in the descriptor set that has HTTP rules."""
    descriptors = Descriptors(descriptor_set)
    generator = Generator(descriptors)
    paths = generator.operations()
    for name in [ERROR_SCHEMA, *DETAIL_MESSAGES]:
        generator.type_schema(f".{name}")
    generator.emit_pending()
    services = {m.service for m in descriptors.methods if m.proto.options.HasExtension(annotations_pb2.http)}
    tags = [
        {"name": name.rsplit(".", 1)[-1], "description": comment}
        for name, comment in descriptors.services
        if name in services
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": PACKAGE.rsplit(".", 1)[-1], "description": DESCRIPTION},
        "servers": [{"url": "/", "description": "This gateway (Envoy)."}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": dict(sorted(generator.schemas.items())),
            "responses": {
                "Error": {
                    "description": "An error (4xx or 5xx).",
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
                }
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def render(descriptor_set: bytes) -> str:
    return json.dumps(build(descriptor_set), indent=2, ensure_ascii=False) + "\n"


def write(descriptor: Path, output: Path) -> None:
    output.write_text(render(descriptor.read_bytes()), encoding="utf-8")


if __name__ == "__main__":
    write(DESCRIPTOR, OUTPUT)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
