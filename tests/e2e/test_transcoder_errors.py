"""What Envoy's gRPC-JSON transcoder refuses itself (a body or query it cannot turn into the
request message, so the server never sees it) has the server's own INVALID_ARGUMENT shape:
code 3, an ErrorInfo with the reason `INVALID_REQUEST`, and, when the transcoder's message
names the field, "field: description", the field in the ErrorInfo's metadata and a
BadRequest field violation naming it (gateway/local_replies.lua)."""

from __future__ import annotations

import pytest
import requests

from devstack.envoy import LOCAL_REPLY_HEADER
from saas_litellm_client import SaasLiteLLMClient, ValidationError
from saas_litellm_client.errors import error_from_response
from tests.e2e.conftest import ADMIN_HEADERS, RestTeam

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
MESSAGES = [{"role": "user", "content": "hi"}]


def send(api: str, path: str, body: str, headers: dict[str, str]) -> requests.Response:
    """POST a raw body: the tests need bodies no JSON encoder would write."""
    return requests.post(
        f"{api}{path}", data=body.encode(), headers={**headers, "content-type": "application/json"}, timeout=10
    )


def refusal(response: requests.Response) -> dict:
    """The body of a 400 INVALID_REQUEST in the server's shape; checks what every such one has."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert LOCAL_REPLY_HEADER not in response.headers  # the gateway's own marker never leaves
    body = response.json()
    # /v1 routes add OpenAI's `error` member after these (tests/e2e/test_openai_errors.py)
    assert list(body)[:3] == ["code", "message", "details"] and set(body) <= {"code", "message", "details", "error"}
    assert body["code"] == 3, body
    info = body["details"][0]
    assert info["@type"] == ERROR_INFO and info["reason"] == "INVALID_REQUEST" and info["domain"] == "saaslitellm"
    return body


def violation(body: dict) -> dict | None:
    """The one field violation, checked against the message and the ErrorInfo's metadata."""
    bad = [d for d in body["details"] if d["@type"] == BAD_REQUEST]
    if not bad:
        assert body["details"][0]["metadata"] == {}, body
        return None
    (only,) = bad[0]["field_violations"]
    assert body["message"] == f"{only['field']}: {only['description']}"
    assert body["details"][0]["metadata"] == {"field": only["field"]}
    return only


@pytest.fixture
def job_id(api: str, team: RestTeam) -> str:
    created = requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=team.headers, timeout=10)
    assert created.status_code == 200, created.text
    return created.json()["job_id"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("create", '{"job_type": "t", "metadata": {"a": [1, }}'),
        ("create", "not json"),
        ("create", '{"job_type": "t}'),
        ("create", '{"metadata": {"a": 1e999}}'),
        ("call", '{"messages": ['),
        ("call", "not json"),
        ("call", '{"messages": []} x'),
        ("call", '{"max_tokens": 5, "stop": "x}'),
    ],
)
def test_malformed_json_is_invalid_request_naming_no_field(api, team, job_id, path, body):
    path = "/jobs/create" if path == "create" else f"/jobs/{job_id}/llm-call"
    refused = refusal(send(api, path, body, team.headers))
    assert violation(refused) is None
    assert refused["message"].startswith("the request body is not valid JSON: "), refused


def test_a_body_that_is_not_an_object_is_invalid_request(api, team):
    refused = refusal(send(api, "/jobs/create", "[]", team.headers))
    assert violation(refused) is None and refused["message"] == "the request body must be a JSON object"


@pytest.mark.parametrize(
    ("value", "shown"), [('"abc"', '"abc"'), ("1.5", "1.5"), ("99999999999", "99999999999"), ("true", "true")]
)
def test_a_non_integer_max_tokens_names_the_field(api, team, job_id, value, shown):
    body = f'{{"messages": [{{"role": "user", "content": "hi"}}], "max_tokens": {value}}}'
    refused = refusal(send(api, f"/jobs/{job_id}/llm-call", body, team.headers))
    assert violation(refused) == {
        "field": "max_tokens",
        "description": f"invalid value {shown}: expected a 32-bit integer",
        "reason": "",
    }


def test_the_shape_is_the_servers_own(api, team, job_id):
    """Same keys in the same order as an INVALID_REQUEST the server itself makes."""
    server = requests.post(
        f"{api}/jobs/{job_id}/llm-call", json={"messages": MESSAGES, "max_tokens": 0}, headers=team.headers, timeout=10
    )
    gateway = send(api, f"/jobs/{job_id}/llm-call", '{"messages": [], "max_tokens": "x"}', team.headers)
    ours, theirs = refusal(server), refusal(gateway)
    assert violation(ours)["field"] == violation(theirs)["field"] == "max_tokens"

    def keys(body: dict) -> list:
        return [list(body), *[list(d) for d in body["details"]], list(body["details"][1]["field_violations"][0])]

    assert keys(theirs) == keys(ours)


@pytest.mark.parametrize("status", ["bogus", "done", "true"])
def test_an_unknown_status_names_the_field_and_leaves_the_job_open(api, team, job_id, status):
    body = '{"status": true}' if status == "true" else f'{{"status": "{status}"}}'
    refused = refusal(send(api, f"/jobs/{job_id}/complete", body, team.headers))
    found = violation(refused)
    assert found["field"] == "status"
    assert found["description"].endswith("expected one of PENDING, IN_PROGRESS, COMPLETED, FAILED, EXPIRED")
    job = requests.get(f"{api}/jobs/{job_id}", headers=team.headers, timeout=10).json()
    assert job["status"] == "PENDING"
    done = send(api, f"/jobs/{job_id}/complete", '{"status": "failed"}', team.headers)
    assert done.status_code == 200 and done.json()["status"] == "FAILED"


def test_an_unknown_enum_name_in_an_admin_body_lists_the_values(api):
    body = '{"organization_id": "o", "team_id": "t", "budget_mode": "per_call"}'
    refused = refusal(send(api, "/teams/create", body, ADMIN_HEADERS))
    assert violation(refused) == {
        "field": "budget_mode",
        "description": 'invalid value "per_call": expected one of JOB_BASED, CONSUMPTION_TOKENS, CONSUMPTION_USD',
        "reason": "",
    }


@pytest.mark.parametrize(
    ("value", "description"),
    [
        ('"x"', 'invalid value "x": expected a JSON object'),
        ("5", "invalid value 5: expected a JSON object"),
        ("true", "invalid value true: expected a JSON object"),
    ],
)
def test_metadata_of_the_wrong_type_names_the_field(api, team, job_id, value, description):
    for method, path, body in [
        ("POST", "/jobs/create", f'{{"job_type": "t", "metadata": {value}}}'),
        ("PATCH", f"/jobs/{job_id}/metadata", f'{{"metadata": {value}}}'),
        ("POST", f"/jobs/{job_id}/complete", f'{{"status": "completed", "metadata": {value}}}'),
    ]:
        response = requests.request(
            method, f"{api}{path}", data=body, headers={**team.headers, "content-type": "application/json"}, timeout=10
        )
        assert violation(refusal(response)) == {"field": "metadata", "description": description, "reason": ""}, path


@pytest.mark.parametrize(
    ("body", "field", "description"),
    [
        ('{"messages": [{"role": 5, "content": "x"}]}', "messages[0].role", "invalid value 5: expected a string"),
        # A repeated field's value that is not a list: the transcoder would make it a list of
        # one (gateway/body_fields.lua refuses it first).
        ('{"messages": "hello"}', "messages", "must be a JSON array"),
        ('{"messages": {"role": "user", "content": "x"}}', "messages", "must be a JSON array"),
        (
            '{"messages": [{"role": "user", "content": "x", "tool_calls": [{"id": 5}]}]}',
            "messages[0].tool_calls[0].id",
            "invalid value 5: expected a string",
        ),
        ('{"messages": [{"role": {"a": 1}}]}', "messages[0].role", "must be a single value, not a JSON object"),
        ('{"messages": [], "temperature": "hot"}', "temperature", 'invalid value "hot": expected a number'),
        # Sent in proto3 JSON's camelCase, named as the API documents it.
        ('{"messages": [], "maxTokens": "x"}', "max_tokens", 'invalid value "x": expected a 32-bit integer'),
        ('{"messages": [], "job_id": "other"}', "job_id", "must not differ from its value in the URL path"),
    ],
)
def test_nested_and_other_wrong_types_name_the_field(api, team, job_id, body, field, description):
    refused = refusal(send(api, f"/jobs/{job_id}/llm-call", body, team.headers))
    assert violation(refused) == {"field": field, "description": description, "reason": ""}


def test_an_object_for_a_string_names_the_field(api, team):
    refused = refusal(send(api, "/jobs/create", '{"job_type": {"a": 1}}', team.headers))
    assert violation(refused)["field"] == "job_type"


def test_a_timestamp_of_the_wrong_form_names_the_field(api, team):
    refused = refusal(send(api, f"/teams/{team.team_id}/keys/create", '{"expires_at": "tomorrow"}', ADMIN_HEADERS))
    assert violation(refused) == {
        "field": "expires_at",
        "description": 'invalid value: expected an RFC 3339 timestamp such as "2026-01-31T00:00:00Z"',
        "reason": "",
    }


@pytest.mark.parametrize(
    ("query", "field", "description"),
    [
        ("page_size=abc", "page_size", 'invalid value "abc": expected a 32-bit integer'),
        (
            "status=bogus",
            "status",
            'invalid value "bogus": expected one of PENDING, IN_PROGRESS, COMPLETED, FAILED, EXPIRED',
        ),
        ("colour=red", "colour", "is not a query parameter of this method"),
    ],
)
def test_a_bad_query_parameter_names_it(api, team, query, field, description):
    response = requests.get(f"{api}/teams/{team.team_id}/jobs?{query}", headers=team.headers, timeout=10)
    assert violation(refusal(response)) == {"field": field, "description": description, "reason": ""}


def test_an_array_where_a_value_belongs_is_invalid_request(api, team, job_id):
    """The transcoder names the enclosing object here, not the field: no field is named
    (a client would point at the wrong one); the message says which object holds it."""
    top = refusal(send(api, "/jobs/create", '{"job_type": ["t"], "metadata": [1]}', team.headers))
    assert violation(top) is None
    nested = refusal(send(api, f"/jobs/{job_id}/llm-call", '{"messages": [{"role": ["user"]}]}', team.headers))
    assert violation(nested) is None
    assert nested["message"] == "a field of messages[0] has a JSON array where a single value belongs"


def test_other_gateway_errors_keep_their_shape_with_a_reason(api, team):
    """Only the transcoder's refusals are rewritten; Envoy's other refusals keep their message
    and carry a reason to branch on, like the server's."""
    missing = requests.post(f"{api}/no/such/route", json={}, headers=team.headers, timeout=10)
    too_large = requests.post(f"{api}/jobs/create", data=b"x" * (4 * 2**20 + 1), headers=team.headers, timeout=30)
    wrong_method = requests.put(f"{api}/jobs/create", json={}, headers=team.headers, timeout=10)
    for response, status, code, reason in (
        (missing, 404, 5, "NOT_FOUND"),
        (too_large, 413, 3, "INVALID_REQUEST"),
        (wrong_method, 405, 12, "METHOD_NOT_ALLOWED"),
    ):
        assert response.status_code == status, response.text
        assert LOCAL_REPLY_HEADER not in response.headers
        body = response.json()
        assert body["code"] == code and body["message"], body
        assert body["details"] == [{"@type": ERROR_INFO, "reason": reason, "domain": "saaslitellm", "metadata": {}}], (
            body
        )
    assert too_large.json()["message"] == "request body too large (the limit is 4 MiB)"
    assert wrong_method.json()["message"] == "/api/jobs/create accepts GET, POST"


def test_the_python_client_raises_them_as_validation_errors_naming_the_field(stack, api, team, job_id):
    refused = send(api, f"/jobs/{job_id}/llm-call", '{"messages": [], "max_tokens": "abc"}', team.headers)
    error = error_from_response(refused.status_code, refused.content)
    assert type(error) is ValidationError and error.reason == "INVALID_REQUEST" and error.field == "max_tokens"
    malformed = send(api, "/jobs/create", "{", team.headers)
    error = error_from_response(malformed.status_code, malformed.content)
    assert type(error) is ValidationError and error.reason == "INVALID_REQUEST" and error.field is None


async def test_the_typed_client_gets_the_field_from_the_gateway(stack, team):
    async with SaasLiteLLMClient(base_url=stack.api_url, team_id=team.team_id, virtual_key=team.key) as client:
        job = await client.create_job("t")
        with pytest.raises(ValidationError) as raised:
            await client.llm_call(job.job_id, MESSAGES, max_tokens="many")  # type: ignore[typeddict-item]
        assert raised.value.reason == "INVALID_REQUEST" and raised.value.field == "max_tokens"
        assert raised.value.http_status == 400
        with pytest.raises(ValidationError) as raised:
            await client.complete_job(job.job_id, "finished")  # type: ignore[arg-type]
        assert raised.value.reason == "INVALID_REQUEST" and raised.value.field == "status"
