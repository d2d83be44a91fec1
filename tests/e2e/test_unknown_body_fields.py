"""A REST body field its method's request does not have is refused at the gateway, with the
server's INVALID_ARGUMENT shape naming it, and nothing happens: Envoy's transcoder alone would
drop it without a word (gateway/body_fields.lua)."""

from __future__ import annotations

import json

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
