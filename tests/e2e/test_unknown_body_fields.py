"""A REST body field its method's request does not have is refused at the gateway, with the
server's INVALID_ARGUMENT shape naming it, and nothing happens: Envoy's transcoder alone would
drop it without a word (gateway/body_fields.lua)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.e2e.conftest import ADMIN_HEADERS, RestTeam
from tests.e2e.test_transcoder_errors import MESSAGES, refusal, send, violation

HINT = " (a provider's own parameter goes in extra_body)"


def calls_of(api: str, team: RestTeam, job_id: str) -> list[dict]:
    got = requests.get(f"{api}/jobs/{job_id}", headers=team.headers, timeout=10)
    assert got.status_code == 200, got.text
    return got.json()["calls"]


def credits_of(api: str, team: RestTeam) -> dict:
    got = requests.get(f"{api}/credits/teams/{team.team_id}/balance", headers=ADMIN_HEADERS, timeout=10)
    assert got.status_code == 200, got.text
    return got.json()


@pytest.fixture
def job_id(api: str, team: RestTeam) -> str:
    created = requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=team.headers, timeout=10)
    assert created.status_code == 200, created.text
    return created.json()["job_id"]


def test_a_misspelt_call_parameter_is_refused_naming_it_and_the_call_is_not_made(api, team, job_id):
    body = {"model": team.alias, "messages": MESSAGES, "max_token": 5}
    refused = refusal(requests.post(f"{api}/jobs/{job_id}/llm-call", json=body, headers=team.headers, timeout=10))
    assert violation(refused) == {
        "field": "max_token",
        "description": "is not a field of this request; did you mean max_tokens?" + HINT,
        "reason": "",
    }
    assert calls_of(api, team, job_id) == []


def test_a_parameter_of_no_field_points_at_extra_body(api, team, job_id):
    body = {"model": team.alias, "messages": MESSAGES, "min_p": 0.1}
    refused = refusal(requests.post(f"{api}/jobs/{job_id}/llm-call", json=body, headers=team.headers, timeout=10))
    assert refused["message"] == "min_p: is not a field of this request" + HINT
    body = {"model": team.alias, "messages": MESSAGES, "extra_body": {"min_p": 0.1}}
    served = requests.post(f"{api}/jobs/{job_id}/llm-call", json=body, headers=team.headers, timeout=10)
    assert served.status_code == 200, served.text


def test_create_and_call_metadata_names_the_two_it_may_mean_and_creates_nothing(api, team):
    before = credits_of(api, team)
    body = {"job_type": "t", "model": team.alias, "messages": MESSAGES, "metadata": {"a": 1}}
    for path in ("/jobs/create-and-call", "/jobs/create-and-call-stream"):
        refused = refusal(requests.post(f"{api}{path}", json=body, headers=team.headers, timeout=10))
        assert refused["message"] == (
            "metadata: is not a field of this request; did you mean call_metadata or job_metadata?" + HINT
        )
    listed = requests.get(f"{api}/teams/{team.team_id}/jobs", headers=ADMIN_HEADERS, timeout=10)
    assert listed.status_code == 200 and listed.json()["jobs"] == [], listed.text
    assert credits_of(api, team) == before


def test_fields_of_nested_messages_are_checked_with_their_path(api, team, job_id):
    tool_call = {"id": "c1", "type": "function", "function": {"name": "f", "argumnets": "{}"}}
    messages = [*MESSAGES, {"role": "assistant", "tool_calls": [tool_call]}, {"role": "user", "contnet": "x"}]
    refused = refusal(send(api, f"/jobs/{job_id}/llm-call", json.dumps({"messages": messages}), team.headers))
    assert violation(refused)["field"] == "messages[1].tool_calls[0].function.argumnets"
    assert refused["message"].endswith("is not a field of messages[1].tool_calls[0].function; did you mean arguments?")
    tool_call["function"]["arguments"] = tool_call["function"].pop("argumnets")
    refused = refusal(send(api, f"/jobs/{job_id}/llm-call", json.dumps({"messages": messages}), team.headers))
    assert refused["message"] == "messages[2].contnet: is not a field of messages[2]; did you mean content?"
    assert calls_of(api, team, job_id) == []


def test_what_the_transcoder_takes_still_passes(api, team, job_id):
    """Both spellings of a field, escaped keys, and any key inside a JSON-object field."""
    body = (
        '{"messages": [{"role": "user", "content": "hi", "name": "u"}], "maxTokens": 5, "max_completion_tokens": 5,'
        ' "\\u0074emperature": 0.5, "call_metadata": {"anything": {"goes": [1]}}, "response_format": {"type": "text"},'
        ' "extra_body": {"min_p": 0.1}, "stop": ["x"], "tools": [{"type": "function", "function": {"name": "f"}}]}'
    )
    served = send(api, f"/jobs/{job_id}/llm-call", body, team.headers)
    assert served.status_code == 200, served.text
    assert len(calls_of(api, team, job_id)) == 1


def test_an_admin_body_field_is_checked_too_and_nothing_is_made(api):
    body = {"organization_id": "org-unknown-field", "name": "Org", "budget_mod": "JOB_BASED"}
    refused = refusal(requests.post(f"{api}/organizations/create", json=body, headers=ADMIN_HEADERS, timeout=10))
    assert refused["message"] == "budget_mod: is not a field of this request"
    got = requests.get(f"{api}/organizations/org-unknown-field", headers=ADMIN_HEADERS, timeout=10)
    assert got.status_code == 404, got.text


def test_an_odd_key_is_named_as_sent(api, team):
    refused = refusal(send(api, "/jobs/create", '{"job_type": "t", "a\\"b\\u00e9": 1}', team.headers))
    assert violation(refused)["field"] == 'a"bé'
    assert refused["message"] == 'a"bé: is not a field of this request'


def test_an_unknown_field_is_refused_also_when_json_after_it_is_broken(api, team):
    """Where the transcoder would let the fault pass (it skips an unknown field's value
    leniently) and drop the field; otherwise the fault is the transcoder's to explain."""
    body = '{"job_type": "t", "messages": [{"role": "user"}, ]}'
    refused = refusal(send(api, "/jobs/create", body, team.headers))
    assert refused["message"] == "messages: is not a field of this request"
    refused = refusal(send(api, "/jobs/create", '{"job_type": "t", "metadata": {"a": "b}}', team.headers))
    assert violation(refused) is None
    assert refused["message"].startswith("the request body is not valid JSON: "), refused


# ---------------------------------------------------------------- what must not get past it


def jobs_of(api: str, team: RestTeam) -> list:
    listed = requests.get(f"{api}/teams/{team.team_id}/jobs", headers=ADMIN_HEADERS, timeout=10)
    assert listed.status_code == 200, listed.text
    return listed.json()["jobs"]


@pytest.mark.parametrize("path", ["/jobs/create/", "/jobs/create//", "//jobs/create", "/jobs//create"])
def test_another_spelling_of_the_path_is_checked_too(api, team, path):
    """The transcoder maps these to CreateJob; the route that carries the check did not match
    them (a bug hunt: 200, the field dropped)."""
    refused = refusal(
        requests.post(f"{api}{path}", json={"job_type": "t", "max_token": 1}, headers=team.headers, timeout=10)
    )
    assert violation(refused)["field"] == "max_token"
    assert jobs_of(api, team) == []
    served = requests.post(f"{api}{path}", json={"job_type": "t"}, headers=team.headers, timeout=10)
    assert served.status_code == 200, served.text


def test_a_path_no_route_of_the_api_matches_is_not_found_and_not_transcoded(api, team):
    """Envoy normalizes a path first (a percent-encoded letter is the letter: checked like
    the path it spells); what then matches no route of the API is 404, never transcoded."""
    body = {"job_type": "t", "max_token": 1}
    encoded = refusal(requests.post(f"{api}/jobs/cre%61te", json=body, headers=team.headers, timeout=10))
    assert violation(encoded)["field"] == "max_token"
    for path in ("/nope", "/jobz/create", "/jobs/create/x"):
        missing = requests.post(f"{api}{path}", json=body, headers=team.headers, timeout=10)
        assert missing.status_code == 404, (path, missing.text)
        assert missing.json()["details"][0]["reason"] == "NOT_FOUND"
    assert jobs_of(api, team) == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/grpc-web",
        "application/grpc-web+json",
        "application/grpcx",
        "application/grpc-json",
        "application/grpc;x",
        "application/grpc; charset=utf-8",
    ],
)
def test_a_content_type_that_only_looks_like_grpc_is_checked(api, team, content_type):
    """Envoy's transcoder takes these as JSON; the check skipped anything starting with
    application/grpc, and the header clean-up with it (a -bin header that is not base64 was a
    500)."""
    headers = {**team.headers, "content-type": content_type, "x-note-bin": "!!!"}
    refused = refusal(
        requests.post(f"{api}/jobs/create", data=b'{"job_type": "t", "max_token": 1}', headers=headers, timeout=10)
    )
    assert violation(refused)["field"] == "max_token"
    assert jobs_of(api, team) == []


@pytest.mark.parametrize(
    "body",
    [
        '{\f"job_type": "t", "max_token": 1}',
        '\f{"job_type": "t", "max_token": 1}',
        '\v{"job_type": "t", "max_token": 1}',
        '{"job_type": "t",\v"max_token": 1}',
        '{"job_type": "t", max_token: 1}',
        "{'job_type': 't', 'max_token': 1}",
        '{"job_type": \'a,b\', "max_token": 1}',
        '{"job_type": "t", "metadata": {"a": 1,}, "max_token": 1}',
        '{"job_type": "t", "metadata": {"a": [1,]}, "max_token": 1}',
        '{"job_type": "t", "metadata": {"a": \'x}\'}, "max_token": 1}',
    ],
)
def test_json_the_transcoder_would_read_leniently_is_refused_as_not_json(api, team, body):
    """The transcoder's parser takes these and drops max_token (a bug hunt: 200, job made)."""
    refused = refusal(send(api, "/jobs/create", body, team.headers))
    assert violation(refused) is None
    assert refused["message"].startswith("the request body is not valid JSON: "), refused
    assert " at byte " in refused["message"]
    assert jobs_of(api, team) == []


@pytest.mark.parametrize(
    "body",
    [
        '{"model_alias": "M", "actual_model": "fake-gpt", "access_groups": ["g",], "fallback_models": "x"}',
        '{"model_alias": "M", "actual_model": "fake-gpt", "access_groups": [\f["g"]], "fallback_models": [null, "x"]}',
    ],
)
def test_lists_in_lenient_json_are_not_reshaped(api, body):
    refused = refusal(
        requests.post(
            f"{api}/models/create",
            data=body.encode(),
            headers={**ADMIN_HEADERS, "content-type": "application/json"},
            timeout=10,
        )
    )
    assert refused["message"].startswith("the request body is not valid JSON: "), refused
    assert requests.get(f"{api}/models/M", headers=ADMIN_HEADERS, timeout=10).status_code == 404


def test_a_long_unknown_key_is_named_short_and_refused_at_once(api, team):
    """The suggestion compared the whole key with every field (a 4 MiB key held an Envoy
    worker for 20 s), and a key echoed three times past 4 MiB made the refusal a 500."""
    key = "x" * 1_450_000
    refused = refusal(send(api, "/jobs/create", json.dumps({"job_type": "t", key: 1}), team.headers))
    assert violation(refused)["field"] == "x" * 64 + "..."
    assert refused["message"] == "x" * 64 + "...: is not a field of this request"
    empty = refusal(send(api, "/jobs/create", '{"job_type": "t", "": 1}', team.headers))
    assert violation(empty)["field"] == '""'


def test_a_body_on_a_method_that_takes_none_is_refused(api, team, job_id):
    """The transcoder reads a JSON body into a GET's or DELETE's request too: unchecked, a
    misspelt field was dropped and a body field the API documents as a query parameter
    (DELETE ?force=true) took effect (a bug hunt)."""
    group = f"g-{job_id[:8]}"
    created = requests.post(
        f"{api}/model-access-groups/create", json={"group_name": group}, headers=ADMIN_HEADERS, timeout=10
    )
    assert created.status_code == 200, created.text
    for method, path, headers, body in (
        ("DELETE", f"/model-access-groups/{group}", ADMIN_HEADERS, '{"forse": true, "force": true}'),
        ("GET", f"/jobs/{job_id}", team.headers, '{"bogus": 1}'),
        ("GET", "/teams", ADMIN_HEADERS, "{'page_size': 1, bogus: 1,}"),
    ):
        response = requests.request(
            method,
            f"{api}{path}",
            data=body.encode(),
            headers={**headers, "content-type": "application/json"},
            timeout=10,
        )
        refused = refusal(response)
        assert refused["message"] == "this method takes no request body: send its fields in the path or the query"
    assert requests.get(f"{api}/model-access-groups/{group}", headers=ADMIN_HEADERS, timeout=10).status_code == 200
    # No body, or an empty object, as some clients send with a DELETE: served.
    for body in (b"", b"{}", b" { } "):
        got = requests.get(
            f"{api}/jobs/{job_id}", data=body, headers={**team.headers, "content-type": "application/json"}, timeout=10
        )
        assert got.status_code == 200, (body, got.text)


def test_a_timestamp_must_be_a_string_not_an_object_with_unchecked_keys(api, team):
    """The transcoder also takes {"seconds": ..., "nanos": ...} for a timestamp, dropping a
    misspelt key inside it (a bug hunt)."""
    path = f"{api}/teams/{team.team_id}/keys/create"
    seconds = int((datetime.now(UTC) + timedelta(days=30)).timestamp())
    body = {"name": "k-object", "expires_at": {"seconds": seconds, "nanos_typo": 5}}
    refused = refusal(requests.post(path, json=body, headers=ADMIN_HEADERS, timeout=10))
    assert violation(refused) == {
        "field": "expires_at",
        "description": 'invalid value: expected an RFC 3339 timestamp such as "2026-01-31T00:00:00Z"',
        "reason": "",
    }
    in_a_month = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    served = requests.post(path, json={"name": "k-string", "expires_at": in_a_month}, headers=ADMIN_HEADERS, timeout=10)
    assert served.status_code == 200, served.text
