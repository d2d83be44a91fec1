"""Render gateway/envoy.template.yaml into a runnable Envoy config.

The template is shared by `make dev`, the tests, the benchmark and docker-compose; only
addresses, ports and timeouts differ between them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "gateway" / "envoy.template.yaml"
DESCRIPTOR = ROOT / "gateway" / "descriptor.pb"
# Holds openapi.json and docs/ (the pages Envoy serves at /openapi.json, /docs and /redoc).
DOCS_ROOT = ROOT / "gateway"
# The REST surface (generated from the protos' HTTP annotations by scripts/generate.py).
OPENAPI = ROOT / "gateway" / "openapi.json"
# The Lua that rewrites the transcoder's refusals into the server's error shape; inlined
# into the Lua filter after the template's own code.
LOCAL_REPLIES_LUA = ROOT / "gateway" / "local_replies.lua"
# The Lua that refuses request body fields the transcoder would drop; inlined after it.
BODY_FIELDS_LUA = ROOT / "gateway" / "body_fields.lua"
# Marks Envoy's own 400s (its value: Envoy's response code details) for that Lua, which
# removes it before the reply leaves.
LOCAL_REPLY_HEADER = "x-gateway-local-reply"
# The OpenAI-compatible surface: its routes carry the Lua metadata `openai: true`, for which
# that Lua adds OpenAI's {"error": {...}} to each JSON error (so do the template's routes of
# the OpenAIService methods these paths become after transcoding).
OPENAI_PREFIX = "/v1"

# Static routes of the API documentation: path -> (file under docs_root, content type).
# Assets are served as files so the pages work offline (gateway/docs/README.md). Pages and
# the document are revalidated on every load; the vendored assets may be cached for an hour.
HTML, JS, CSS = "text/html; charset=utf-8", "text/javascript; charset=utf-8", "text/css; charset=utf-8"
DOCS_FILES: dict[str, tuple[str, str]] = {
    "/openapi.json": ("openapi.json", "application/json"),
    "/docs": ("docs/swagger.html", HTML),
    "/docs/swagger-ui.css": ("docs/swagger-ui/swagger-ui.css", CSS),
    "/docs/swagger-ui-bundle.js": ("docs/swagger-ui/swagger-ui-bundle.js", JS),
    "/redoc": ("docs/redoc.html", HTML),
    "/redoc/redoc.standalone.js": ("docs/redoc/redoc.standalone.js", JS),
}
DOCS_REDIRECTS = {"/docs/": "/docs", "/redoc/": "/redoc"}

# Envoy's own error replies (bad JSON, unknown path, no healthy backend...) reshaped into
# the body gRPC errors have after transcoding: {"code": <gRPC code>, "message", "details":
# [ErrorInfo]}, so that a client branches on details[].reason for these too. HTTP status ->
# (gRPC code, reason, our message or None to keep Envoy's). Envoy's own messages are kept
# where they help the client (a JSON parse error names the field); where they are Envoy
# internals ("upstream connect error..."), ours replaces them. The Lua filter
# (gateway/local_replies.lua) turns the transcoder's 400s into "field: description" with a
# BadRequest naming the field.
LOCAL_REPLY_CODES: dict[int, tuple[int, str, str | None]] = {
    400: (3, "INVALID_REQUEST", None),
    401: (16, "UNAUTHENTICATED", "unauthenticated"),
    403: (7, "PERMISSION_DENIED", "permission denied"),
    404: (5, "NOT_FOUND", None),
    405: (12, "METHOD_NOT_ALLOWED", None),  # the method routes' body names the methods the path accepts
    408: (4, "GATEWAY_TIMEOUT", "request timed out"),
    413: (3, "INVALID_REQUEST", "request body too large (the limit is 4 MiB)"),
    # An HTTP version Envoy's codec does not take (it takes HTTP/1.0 too: accept_http_10).
    426: (3, "INVALID_REQUEST", "unsupported HTTP version: send HTTP/1.1 (or HTTP/1.0, HTTP/2)"),
    429: (8, "RATE_LIMITED", "too many requests"),
    431: (3, "INVALID_REQUEST", "request headers too large"),
    500: (13, "INTERNAL", "internal error"),
    # A Transfer-Encoding other than chunked (`gzip, chunked`): Envoy's codec refuses it.
    501: (3, "INVALID_REQUEST", "unsupported Transfer-Encoding: send the body as is or chunked"),
    502: (14, "SERVER_UNAVAILABLE", "the API server is unavailable; retry shortly"),
    503: (14, "SERVER_UNAVAILABLE", "the API server is unavailable; retry shortly"),
    504: (4, "GATEWAY_TIMEOUT", "the request timed out"),
}
DEFAULT_METRICS_PORT = 9464  # the server's SAAS_METRICS_PORT default


@dataclass(frozen=True)
class EnvoyConfig:
    """Where Envoy listens and which gRPC server processes it balances over."""

    listen_port: int
    admin_port: int
    grpc_backends: tuple[tuple[str, int], ...]
    listen_host: str = "127.0.0.1"
    descriptor: Path = field(default=DESCRIPTOR)
    idle_timeout: str = "300s"
    # The time to receive a whole request (408 after it).
    request_timeout: str = "60s"
    health_interval: str = "1s"
    docs_root: Path = field(default=DOCS_ROOT)
    # The server processes' Prometheus endpoints, behind GET /metrics; None: each gRPC
    # backend's host on the server's default metrics port.
    metrics_backends: tuple[tuple[str, int], ...] | None = None
    # An OTLP/HTTP traces URL (http://host:port/v1/traces): Envoy traces every request.
    otlp_traces_endpoint: str | None = None


def _mappers() -> str:
    indent = " " * 20
    # A native gRPC call (the Lua filter sets its dynamic metadata saaslitellm.grpc) gets the
    # message alone, which Envoy sends as its grpc-message; every other local reply, the JSON
    # error. The flag, not the content-type: the transcoder makes a refused REST request's
    # application/grpc.
    grpc_flag = (
        "metadata_filter: { matcher: { filter: saaslitellm, path: [{ key: grpc }], value: { bool_match: true } },"
        " match_if_key_not_found: false }"
    )
    lines = []
    for status, (_, _, message) in sorted(LOCAL_REPLY_CODES.items()):
        if message is not None:
            lines += [
                f"{indent}- filter:",
                f"{indent}    and_filter:",
                f"{indent}      filters:",
                f"{indent}        - status_code_filter:",
                f"{indent}            comparison: {{ op: EQ, value: {{ default_value: {status}, runtime_key: local_reply_{status} }} }}",
                f"{indent}        - {grpc_flag}",
                f"{indent}  body: {{ inline_string: {json.dumps(message)} }}",
            ]
    lines.append(f"{indent}- filter: {{ {grpc_flag} }}")  # the others' own message, as is
    for status, (code, reason, message) in sorted(LOCAL_REPLY_CODES.items()):
        lines += [
            f"{indent}- filter:",
            f"{indent}    status_code_filter:",
            f"{indent}      comparison: {{ op: EQ, value: {{ default_value: {status}, runtime_key: local_reply_{status} }} }}",
        ]
        if message is not None:
            lines.append(f"{indent}  body: {{ inline_string: {json.dumps(message)} }}")
        lines += [
            f"{indent}  body_format_override:",
            f"{indent}    content_type: application/json",
            f"{indent}    json_format:",
            f"{indent}      code: {code}",
            f'{indent}      message: "%LOCAL_REPLY_BODY%"',
            f"{indent}      details:",
            f'{indent}        - "@type": type.googleapis.com/google.rpc.ErrorInfo',
            f"{indent}          reason: {reason}",
            f"{indent}          domain: saaslitellm",
            f"{indent}          metadata: {{}}",
        ]
        if status == 400:
            lines += [
                f"{indent}  headers_to_add:",
                f'{indent}    - header: {{ key: {LOCAL_REPLY_HEADER}, value: "%RESPONSE_CODE_DETAILS%" }}',
            ]
    return "\n".join(lines)


@functools.lru_cache(maxsize=4)
def _parsed(descriptor: Path, mtime_ns: int) -> tuple[descriptor_pb2.FileDescriptorProto, ...]:
    return tuple(descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes()).file)


def _files(descriptor: Path) -> tuple[descriptor_pb2.FileDescriptorProto, ...]:
    """The descriptor set's files, read once per version of the file."""
    return _parsed(descriptor, descriptor.stat().st_mtime_ns)


def _api_files(descriptor: Path) -> list[descriptor_pb2.FileDescriptorProto]:
    return [file for file in _files(descriptor) if file.package.startswith("saaslitellm.")]


def _types(
    files: Iterable[descriptor_pb2.FileDescriptorProto],
) -> tuple[dict[str, descriptor_pb2.DescriptorProto], dict[str, descriptor_pb2.EnumDescriptorProto]]:
    """The messages and the enums of `files`, nested ones included, by full name."""
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}

    def walk(
        prefix: str,
        message_types: Iterable[descriptor_pb2.DescriptorProto],
        enum_types: Iterable[descriptor_pb2.EnumDescriptorProto],
    ) -> None:
        for enum in enum_types:
            enums[f"{prefix}.{enum.name}"] = enum
        for message in message_types:
            messages[f"{prefix}.{message.name}"] = message
            walk(f"{prefix}.{message.name}", message.nested_type, message.enum_type)

    for file in files:
        walk(file.package, file.message_type, file.enum_type)
    return messages, enums


def _enum_values(descriptor: Path) -> dict[str, str]:
    """Each of the API's enums (full name) -> its value names but the zero one, by number."""
    _, enums = _types(_api_files(descriptor))
    return {
        name: ", ".join(v.name for v in sorted((v for v in enum.value if v.number != 0), key=lambda v: v.number))
        for name, enum in sorted(enums.items())
    }


def _messages(descriptor: Path) -> dict[str, descriptor_pb2.DescriptorProto]:
    """Every message of the API (and the protobuf types it uses), by full name."""
    return _types(_files(descriptor))[0]


def _bindings(descriptor: Path) -> Iterator[tuple[str, str, annotations_pb2.HttpRule, str]]:
    """Every REST binding of the API: (path template, HTTP method, the binding, the full name
    of its method's request message)."""
    for file in _api_files(descriptor):
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    verb = binding.WhichOneof("pattern")
                    if verb and verb != "custom":
                        yield getattr(binding, verb), verb.upper(), binding, method.input_type.lstrip(".")


def _body_requests(descriptor: Path) -> dict[tuple[str, str], str | None]:
    """(path template, HTTP method) -> what body_fields.lua checks a request body against,
    for every binding of the API: the request message's full name when the request is the
    whole body (`body: "*"`) and a message of the API's own; "" when the request takes no
    body (the transcoder would still read a JSON body into it, unchecked: any is refused);
    None when the body is the server's to read (`google.api.HttpBody`: /v1's chat
    completions)."""
    found: dict[tuple[str, str], str | None] = {}
    for template, verb, binding, message in _bindings(descriptor):
        if binding.body not in ("", "*"):
            raise ValueError(f"{template}: body_fields.lua does not check a body that is one field")
        if not binding.body:
            found[(template, verb)] = ""
        else:
            found[(template, verb)] = message if message.startswith("saaslitellm.") else None
    return found


def _path_fields(descriptor: Path) -> dict[tuple[str, str], list[dict[str, str | int]]]:
    """(path template, HTTP method) -> the request fields its path binds, for every binding
    of the API: each as {"name" (as the API documents it), "json_name", "segment" (its
    position in the path, the first segment after the leading slash being 1)}.
    body_fields.lua refuses them in the query, and in a body that differs from the path."""
    messages = _messages(descriptor)
    found: dict[tuple[str, str], list[dict[str, str | int]]] = {}
    for template, verb, _, message in _bindings(descriptor):
        fields = {item.name: item for item in messages[message].field}
        bound = []
        for segment, part in enumerate(template.strip("/").split("/"), start=1):
            variable = re.fullmatch(r"\{([^}]*)\}", part)
            if variable is None:
                if "{" in part:
                    raise ValueError(f"{template}: a variable that is not a whole segment")
                continue
            name = variable.group(1)
            if name not in fields:  # `{a.b}`, `{name=x/*}`: one field, one segment only
                raise ValueError(f"{template}: {{{name}}} is not one field of one segment")
            bound.append({"name": name, "json_name": fields[name].json_name, "segment": segment})
        found[(template, verb)] = bound
    return found


def _single_fields(descriptor: Path) -> dict[tuple[str, str], list[dict[str, str]]]:
    """(path template, HTTP method) -> the request fields the query may give, each once, for
    every binding of the API: those that are not repeated (a list or a map, whose values the
    query may add up) nor bound by the path, as {"name" (as the API documents it),
    "json_name"}. The transcoder takes the last of a field's values and drops the others
    without a word (`?start_date=a&startDate=b` reads b): body_fields.lua refuses a second
    one. A sub-message's fields (`a.b`) are the transcoder's."""
    messages, bound = _messages(descriptor), _path_fields(descriptor)
    found: dict[tuple[str, str], list[dict[str, str]]] = {}
    for template, verb, _, message in _bindings(descriptor):
        taken = {entry["name"] for entry in bound[(template, verb)]}
        found[(template, verb)] = [
            {"name": item.name, "json_name": item.json_name}
            for item in messages[message].field
            if item.label != item.LABEL_REPEATED and item.name not in taken
        ]
    return found


# Values that may be any JSON, a list or a null among them: a list of them is any list.
ANY_JSON = ("google.protobuf.Value", "google.protobuf.ListValue")
# Well-known types whose JSON is a string (body_fields.lua refuses anything else).
STRING_ENCODED = ("google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask")


def _body_fields(descriptor: Path) -> dict[str, dict[str, str | None]]:
    """Each API message a request body can hold -> {field name, in both spellings -> None for
    a value body_fields.lua does not look into, the full name of the message it is, or for a
    repeated field "[]" and its messages' full name, if they are the API's}."""
    messages = _messages(descriptor)
    found: dict[str, dict[str, str | None]] = {}
    todo = sorted({message for message in _body_requests(descriptor).values() if message})
    while todo:
        name = todo.pop()
        if name in found:
            continue
        fields: dict[str, str | None] = {}
        for item in messages[name].field:
            nested = item.type_name.lstrip(".")
            inner = nested if item.type == item.TYPE_MESSAGE and nested.startswith("saaslitellm.") else None
            if inner is not None:
                todo.append(inner)
            kind = inner
            if nested in STRING_ENCODED and item.label != item.LABEL_REPEATED:
                kind = nested  # its JSON is a string; the transcoder also takes an object, unchecked
            if nested in messages and messages[nested].options.map_entry:
                value = messages[nested].field[1].type_name.lstrip(".")
                if value.startswith("saaslitellm."):
                    raise ValueError(f"{name}.{item.name}: a map of messages, which body_fields.lua cannot check")
                kind = None
            elif item.label == item.LABEL_REPEATED and nested not in ANY_JSON:
                kind = "[]" + (inner or "")
            fields[item.name] = fields[item.json_name] = kind
        found[name] = fields
    return dict(sorted(found.items()))


def _lua_local_replies(descriptor: Path) -> str:
    """gateway/local_replies.lua after the two names it reads, indented for the template."""
    indent = " " * 26
    table = [f"  [{json.dumps(name)}] = {json.dumps(values)}," for name, values in _enum_values(descriptor).items()]
    source = [
        f"local LOCAL_REPLY_HEADER = {json.dumps(LOCAL_REPLY_HEADER)}",
        "local ENUM_VALUES = {",
        *table,
        "}",
        *LOCAL_REPLIES_LUA.read_text().splitlines(),
    ]
    return "\n".join(f"{indent}{line}" if line else "" for line in source)


def _json_names(descriptor: Path) -> dict[str, str]:
    """The JSON name of each field a request body can hold -> its name, where they differ
    (`jobType` -> `job_type`): body_fields.lua refuses a field given twice, by either
    spelling. One table for all messages, so no JSON name may be a field's name, or two
    fields' JSON name (ValueError)."""
    messages = _messages(descriptor)
    fields = [(message, item) for message in _body_fields(descriptor) for item in messages[message].field]
    names = {item.name for _, item in fields}
    found: dict[str, str] = {}
    for message, item in fields:
        if item.json_name != item.name:
            if item.json_name in names or found.setdefault(item.json_name, item.name) != item.name:
                raise ValueError(f"{message}.{item.name}: its JSON name {item.json_name} is another field's too")
    return dict(sorted(found.items()))


def _lua_body_fields(descriptor: Path) -> str:
    """gateway/body_fields.lua after the tables it reads, indented for the template."""
    indent = " " * 26
    table = ["local BODY_FIELDS = {"]
    for message, fields in _body_fields(descriptor).items():
        table.append(f"  [{json.dumps(message)}] = {{")
        table += [
            f"    [{json.dumps(name)}] = {json.dumps(inner) if inner else 'false'},"
            for name, inner in sorted(fields.items())
        ]
        table.append("  },")
    table += ["}", "local JSON_NAMES = {"]
    table += [
        f"  [{json.dumps(json_name)}] = {json.dumps(name)}," for json_name, name in _json_names(descriptor).items()
    ]
    source = [*table, "}", *BODY_FIELDS_LUA.read_text().splitlines()]
    return "\n".join(f"{indent}{line}" if line else "" for line in source)


def _endpoints(backends: tuple[tuple[str, int], ...]) -> str:
    indent = " " * 14
    if not backends:
        return f"{indent}[]"
    return "\n".join(
        f"{indent}- endpoint: {{ address: {{ socket_address: {{ address: {host}, port_value: {port} }} }} }}"
        for host, port in backends
    )


def _docs_routes(docs_root: Path) -> str:
    """direct_response routes serving the documentation files, with the transcoder off."""
    indent = " " * 24
    no_transcoding = [
        f"{indent}  typed_per_filter_config:",
        f"{indent}    envoy.filters.http.grpc_json_transcoder:",
        f'{indent}      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig',
        f"{indent}      disabled: true",
    ]
    lines = []
    for path, (file, content_type) in DOCS_FILES.items():
        cache = "public, max-age=3600" if content_type in (JS, CSS) else "no-cache"
        lines += [f"{indent}- match: {{ path: {json.dumps(path)} }}", *no_transcoding]
        lines += [
            f"{indent}  direct_response:",
            f"{indent}    status: 200",
            f"{indent}    body: {{ filename: {json.dumps(str(docs_root / file))} }}",
            f"{indent}  response_headers_to_add:",
            f"{indent}    - header: {{ key: content-type, value: {json.dumps(content_type)} }}",
            f"{indent}    - header: {{ key: cache-control, value: {json.dumps(cache)} }}",
            f"{indent}    - header: {{ key: x-content-type-options, value: nosniff }}",
        ]
    for path, target in DOCS_REDIRECTS.items():
        lines += [f"{indent}- match: {{ path: {json.dumps(path)} }}", *no_transcoding]
        lines.append(f"{indent}  redirect: {{ path_redirect: {json.dumps(target)} }}")
    return "\n".join(lines)


def _path_regex(template: str) -> str:
    """`/api/jobs/{job_id}/complete` -> `^/api/jobs/[^/]+/complete/?$` (a variable is one
    segment; a trailing slash is the same path, as the transcoder takes it)."""
    parts = re.split(r"\{[^}]+\}", template)
    return "^" + "[^/]+".join(re.escape(part) for part in parts) + "/?$"


def _is_openai(path: str) -> bool:
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


def _openai_metadata(indent: str) -> list[str]:
    """The metadata of a route of the OpenAI-compatible surface (its errors get OpenAI's member)."""
    return [
        f"{indent}  metadata:",
        f"{indent}    filter_metadata:",
        f"{indent}      envoy.filters.http.lua: {{ openai: true }}",
    ]


def _method_routes(openapi: Path, descriptor: Path) -> str:
    """405 with an Allow header for a known REST path called with a method it does not take.

    Without these the transcoder answers 404 "Could not resolve ... to a method". Each
    (path, method) the API serves first gets a route of its own that leaves it to the
    transcoder (which rewrites the path to the gRPC method and routes again), so that e.g.
    GET /api/teams/create still reaches GetTeam; any other method on a known path then
    matches the path's 405 route, which switches the transcoder off. Allow lists what the
    path serves, including through a templated path it also matches.
    """
    indent = " " * 24
    paths = {path: sorted(m.upper() for m in ops) for path, ops in json.loads(openapi.read_text())["paths"].items()}
    regexes = {path: re.compile(_path_regex(path)) for path in paths}
    bodies = _body_requests(descriptor)
    bound, single = _path_fields(descriptor), _single_fields(descriptor)
    lines: list[str] = []
    # The transcoder prefers a literal segment to a variable (POST /api/teams/create is
    # CreateTeam, not a method on /api/teams/{team_id}): so do these routes, whose metadata
    # must be the method's the transcoder will pick.
    for path in sorted(paths, key=lambda path: [part.startswith("{") for part in path.split("/")]):
        for method in paths[path]:
            lines += [
                f"{indent}- match:",
                f"{indent}    safe_regex: {{ regex: {json.dumps(_path_regex(path))} }}",
                f'{indent}    headers: [{{ name: ":method", string_match: {{ exact: {method} }} }}]',
                f"{indent}  route: {{ cluster: grpc_server, timeout: 60s }}",
            ]
            # The request message, whose fields body_fields.lua checks the body against; ""
            # for a method whose request is not the body (the transcoder would still read a
            # JSON body into it, over the path's values too): any body is refused; None for
            # a raw body the server reads (/v1/chat/completions).
            message = bodies[(path, method)]
            # The fields the path binds, which the query must not name (the transcoder would
            # take the query's value over the path's) nor a body give another value; and
            # those the query may give once only (the transcoder would take the last value).
            # A request that is the whole body takes nothing from the query (body_fields.lua
            # refuses any parameter): no field of it is looked for there.
            lua: dict[str, object] = {"body": message} if message is not None else {}
            if _is_openai(path):
                lua["openai"] = True
            if bound[(path, method)]:
                lua["path_fields"] = bound[(path, method)]
            if single[(path, method)] and not message:
                lua["single_fields"] = single[(path, method)]
            if lua:
                entries = ", ".join(f"{key}: {json.dumps(value)}" for key, value in lua.items())
                lines += [
                    f"{indent}  metadata:",
                    f"{indent}    filter_metadata:",
                    f"{indent}      envoy.filters.http.lua: {{ {entries} }}",
                ]
    for path in paths:
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        allowed = sorted({m for other, methods in paths.items() if regexes[other].match(concrete) for m in methods})
        message = f"{path} accepts {', '.join(allowed)}"
        lines += [
            f"{indent}- match: {{ safe_regex: {{ regex: {json.dumps(_path_regex(path))} }} }}",
            f"{indent}  typed_per_filter_config:",
            f"{indent}    envoy.filters.http.grpc_json_transcoder:",
            f'{indent}      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig',
            f"{indent}      disabled: true",
            f"{indent}  direct_response: {{ status: 405, body: {{ inline_string: {json.dumps(message)} }} }}",
            f"{indent}  response_headers_to_add:",
            f"{indent}    - header: {{ key: allow, value: {json.dumps(', '.join(allowed))} }}",
        ]
        if _is_openai(path):
            lines += _openai_metadata(indent)
    # A path under /v1 that is not one (an OpenAI endpoint this API does not serve) is
    # refused as the other /v1 errors are, naming those it serves.
    served = ", ".join(f"{method} {path}" for path in paths if _is_openai(path) for method in paths[path])
    lines += [
        f"{indent}- match: {{ path_separated_prefix: {json.dumps(OPENAI_PREFIX)} }}",
        f"{indent}  typed_per_filter_config:",
        f"{indent}    envoy.filters.http.grpc_json_transcoder:",
        f'{indent}      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig',
        f"{indent}      disabled: true",
        f"{indent}  direct_response:",
        f"{indent}    status: 404",
        f"{indent}    body: {{ inline_string: {json.dumps(f'not a path of this API: {OPENAI_PREFIX} serves {served}')} }}",
        *_openai_metadata(indent),
    ]
    # Any other path is not the API's. The transcoder would still map some of them to a
    # method (a percent-encoded letter, say), past the routes above and so past the checks
    # their metadata drives (gateway/body_fields.lua): they end here, untranscoded.
    lines += [
        f'{indent}- match: {{ prefix: "/" }}',
        f"{indent}  typed_per_filter_config:",
        f"{indent}    envoy.filters.http.grpc_json_transcoder:",
        f'{indent}      "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig',
        f"{indent}      disabled: true",
        f'{indent}  direct_response: {{ status: 404, body: {{ inline_string: "not a path of this API (see /docs)" }} }}',
    ]
    return "\n".join(lines)


def _tracing(endpoint: str | None) -> tuple[str, str]:
    """The connection manager's tracing block and the collector's cluster, or nothing."""
    if not endpoint:
        return "", ""
    url = urlsplit(endpoint)
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"the OTLP endpoint must be an http:// URL, got {endpoint!r}")
    port = url.port or 4318
    tracing = f"""                tracing:
                  random_sampling: {{ value: 100 }}
                  provider:
                    name: envoy.tracers.opentelemetry
                    typed_config:
                      "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
                      service_name: envoy
                      http_service:
                        http_uri: {{ uri: {json.dumps(endpoint)}, cluster: otlp_collector, timeout: 2s }}"""
    cluster = f"""    - name: otlp_collector
      type: STRICT_DNS
      connect_timeout: 1s
      load_assignment:
        cluster_name: otlp_collector
        endpoints:
          - lb_endpoints:
              - endpoint: {{ address: {{ socket_address: {{ address: {url.hostname}, port_value: {port} }} }} }}
# Send finished spans every second (Envoy's default is 5 s).
layered_runtime:
  layers:
    - name: tracing
      static_layer:
        tracing.opentelemetry.flush_interval_ms: 1000"""
    return tracing, cluster


def render(config: EnvoyConfig) -> str:
    """The Envoy YAML for `config`."""
    tracing, tracing_cluster = _tracing(config.otlp_traces_endpoint)
    return Template(TEMPLATE.read_text()).substitute(
        LISTEN_HOST=config.listen_host,
        LISTEN_PORT=config.listen_port,
        ADMIN_PORT=config.admin_port,
        DESCRIPTOR=str(config.descriptor),
        IDLE_TIMEOUT=config.idle_timeout,
        REQUEST_TIMEOUT=config.request_timeout,
        HEALTH_INTERVAL=config.health_interval,
        LOCAL_REPLY_MAPPERS=_mappers(),
        LUA_LOCAL_REPLIES=_lua_local_replies(DESCRIPTOR),
        LUA_BODY_FIELDS=_lua_body_fields(DESCRIPTOR),
        DOCS_ROUTES=_docs_routes(config.docs_root),
        METHOD_ROUTES=_method_routes(OPENAPI, DESCRIPTOR),
        GRPC_ENDPOINTS=_endpoints(config.grpc_backends),
        METRICS_ENDPOINTS=_endpoints(
            config.metrics_backends
            if config.metrics_backends is not None
            else tuple((host, DEFAULT_METRICS_PORT) for host, _ in config.grpc_backends)
        ),
        TRACING=tracing,
        TRACING_CLUSTER=tracing_cluster,
    )
