"""Property-based fuzzing of the whole REST surface through Envoy, from the generated OpenAPI document.

schemathesis generates requests for every operation of gateway/openapi.json (the document Envoy
serves at /openapi.json): schema-valid ones and schema-violating ones (wrong types, missing
required fields, odd strings, unexpected parameters). Each goes through Envoy with real auth (the
team's virtual key on job routes, the admin key on admin routes), and every response must be:
not a server error, a documented status, of the documented content type, in the documented
schema (errors included), and a rejection whenever the request broke the schema.

Every other schema-valid job request targets a real open job, so calls reach the LiteLLM proxy
and the fake provider rather than stopping at "job not found"; request bodies start from the
document's examples.

Bounded and deterministic: a fixed number of examples per operation, derandomized, no example
database. Skip it locally with `-m "not fuzz"`; raise EXAMPLES_PER_OPERATION to explore more.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.conftest import ADMIN_KEY, ROOT

EXAMPLES_PER_OPERATION = 25
DOCUMENT_PATH = ROOT / "gateway" / "openapi.json"
DOCUMENT = json.loads(DOCUMENT_PATH.read_text())

SCHEMA = schemathesis.openapi.from_path(
    DOCUMENT_PATH,
    config=schemathesis.Config.from_dict(
        {"generation": {"mode": "all", "database": "none", "with-security-parameters": False}}
    ),
)


# Not checked, and why:
# - positive_data_acceptance: the protos carry no machine-readable validation rules (id
#   patterns, lengths, ranges live in comments and server/domain/validation.py), so a
#   schema-valid request may rightly be refused with 400.
def undeclared_method_is_405(ctx, response, case):
    """schemathesis' unsupported_method: 405 with Allow (devstack/envoy.py `_method_routes`).

    Except a QUERY without a body: QUERY (an HTTP method in the making) carries its query as
    content, and Envoy's HTTP/1 codec refuses one without a body with 400 before any route,
    fair for a malformed request."""
    if response.request.method == "QUERY" and not response.request.body:
        return None
    return unsupported_method(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    undeclared_method_is_405,
]


def open_finding(case) -> str | None:
    """The open finding (test_hostile_input.py, xfail) a generated body would hit, if any.

    The fuzz run skips such bodies so that it keeps looking for anything else; each finding
    is pinned by a strict xfail test, which starts failing once the bug is fixed (then delete
    its branch here)."""
    operation = DOCUMENT["paths"][case.path].get(case.method.lower(), {})  # the run tries other methods too
    for parameter in operation.get("parameters", []):
        value = (case.query or {}).get(parameter["name"]) if parameter.get("in") == "query" else None
        if value is not None and "enum" in _resolve(parameter.get("schema", {})) and str(value).lstrip("-").isdigit():
            return "an enum sent as a number"  # proto3 JSON accepts numbers; the document lists names
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None or not isinstance(case.body, dict | list):
        return None
    return _walk(case.body, content["schema"])


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in schema:  # `X or null`
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    if "$ref" in schema:
        return _resolve(DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]])
    return schema


def _walk(value: Any, schema: dict[str, Any]) -> str | None:
    schema = _resolve(schema)
    if "enum" in schema:
        if isinstance(value, int) and not isinstance(value, bool):
            # proto3 JSON (so the transcoder) also accepts an enum's number; the document lists
            # names only. Unknown numbers are refused: test_hostile_input checks that.
            return "an enum sent as a number"
        if isinstance(value, str) and value not in schema["enum"] and value.upper() in schema["enum"]:
            return "enum names are accepted in any case (documented)"
        return None
    if schema.get("additionalProperties") is True and "properties" not in schema:  # google.protobuf.Struct
        return None
    if "items" in schema and value is not None and not isinstance(value, list):
        return "a single value for a repeated field is taken as a one-element list by the transcoder"
    if isinstance(value, list) and "items" in schema:
        items = _resolve(schema["items"])
        if "type" in items and items["type"] != "object" and any(v is None or isinstance(v, list) for v in value):
            return "null or nested lists in a repeated scalar field are dropped or flattened by the transcoder"
        return next((found for v in value if (found := _walk(v, items))), None)
    if isinstance(value, dict) and "properties" in schema:
        properties = schema["properties"]
        return next((found for k, v in value.items() if k in properties and (found := _walk(v, properties[k]))), None)
    return None


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


ALTERNATE = itertools.count()


@pytest.mark.fuzz
@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    # `open_job` is created once per operation and shared by its examples, on purpose.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_rest_surface_survives_generated_requests(case, hostile_stack, tenant, open_job):
    assume(open_finding(case) is None)
    positive = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    if positive and "job_id" in (case.path_parameters or {}) and next(ALTERNATE) % 2:
        case.path_parameters["job_id"] = open_job
    admin = case.operation.tags == ["AdminService"]
    auth = {"X-Admin-Key": ADMIN_KEY} if admin else tenant.headers
    case.call_and_validate(base_url=hostile_stack.api_url, headers=auth, checks=CHECKS, timeout=60)
