"""Errors on the OpenAI-compatible surface (/v1) as OpenAI's SDKs read them.

The SDK builds its exception from the body's `error` member (`e.code`, `e.param`, `e.type`,
`e.message`, `e.body`): every JSON error of a /v1 route, the server's and Envoy's own,
carries one beside this API's `{"code", "message", "details"}`, which stay as they are
(gateway/local_replies.lua). The other routes' errors do not get it."""

from __future__ import annotations

import itertools
import json
import time

import openai
import pytest
import requests

from tests.e2e.conftest import RestTeam, rest_team

PROMPT = [{"role": "user", "content": "hi"}]


def sdk(stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=key, max_retries=0)


def assert_openai_error(response: requests.Response, *, code: str, param: str | None, kind: str) -> dict:
    """The body has this API's fields as before and OpenAI's member saying the same: the
    member."""
    body = response.json()
    assert response.headers["content-type"].startswith("application/json")
    assert set(body) == {"code", "message", "details", "error"}, body
    assert isinstance(body["code"], int) and body["details"][0]["reason"] == code
    error = body["error"]
    assert error == {
        "message": body["message"],
        "type": kind,
        "param": param,
        "code": code,
        "details": body["details"],
    }
    return error


def test_a_bad_key_is_an_authentication_error_naming_its_reason(stack, team):
    client = sdk(stack, "sk-not-a-key")
    for call in (
        client.models.list,
        lambda: client.chat.completions.create(model=team.alias, messages=PROMPT),
        lambda: client.chat.completions.create(model=team.alias, messages=PROMPT, stream=True),
    ):
        with pytest.raises(openai.AuthenticationError) as raised:
            call()
        error = raised.value
        assert (error.code, error.param, error.type) == ("INVALID_API_KEY", None, "invalid_request_error")
        assert error.message == "Error code: 401 - the virtual key is not valid (unknown, revoked or expired)"
        # Code written for this API's shape still finds its details in `e.body`.
        assert error.body["details"][0]["reason"] == "INVALID_API_KEY"

    raw = requests.get(f"{stack.api_url}/v1/models", timeout=10)
    assert raw.status_code == 401
    assert_openai_error(raw, code="MISSING_API_KEY", param=None, kind="invalid_request_error")


def test_a_model_the_team_cannot_call_names_the_reason(stack, api, team):
    other = rest_team(api)
    client = sdk(stack, team.key)
    for model in ("no-such-model", other.alias):
        with pytest.raises(openai.PermissionDeniedError) as raised:
            client.chat.completions.create(model=model, messages=PROMPT)
        # As OpenAI's own model_not_found, no parameter is named: the metadata names the model.
        assert (raised.value.code, raised.value.param) == ("MODEL_NOT_ALLOWED", None)
        assert raised.value.body["details"][0]["metadata"] == {"model": model}
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("no-such-model")
    assert (missing.value.code, missing.value.type) == ("NOT_FOUND", "invalid_request_error")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"n": 2}, "n"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"fallbacks": ["gpt-4"]}, "fallbacks"),
    ],
)
def test_a_bad_field_is_the_errors_param(stack, team, fields, param):
    request = {"model": team.alias, "messages": PROMPT, **fields}
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(stack, team.key).chat.completions.create(
            model=request.pop("model"), messages=request.pop("messages"), extra_body=request
        )
    error = raised.value
    assert (error.code, error.param, error.type) == ("INVALID_REQUEST", param, "invalid_request_error")
    assert error.message.startswith(f"Error code: 400 - {param}: ")

    request = {"model": team.alias, "messages": PROMPT, **fields}
    raw = requests.post(f"{stack.api_url}/v1/chat/completions", json=request, headers=team.headers, timeout=30)
    assert raw.status_code == 400
    member = assert_openai_error(raw, code="INVALID_REQUEST", param=param, kind="invalid_request_error")
    violations = [d for d in member["details"] if d["@type"].endswith("BadRequest")]
    assert violations[0]["field_violations"][0]["field"] == param


def test_no_credits_is_a_rate_limit_error_named_insufficient_credits(stack, api):
    team = rest_team(api, credits=1)
    client = sdk(stack, team.key)
    client.chat.completions.create(model=team.alias, messages=PROMPT)
    # Streamed or not, the refusal comes before the first event: the SDK raises it at once.
    for stream in (False, True):
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model=team.alias, messages=PROMPT, stream=stream)
        assert (raised.value.code, raised.value.type, raised.value.param) == (
            "INSUFFICIENT_CREDITS",
            "rate_limit_error",
            None,
        )
        assert raised.value.body["details"][0]["metadata"]["credits_available"] == "0"


def test_a_provider_failure_is_a_server_error(stack, team):
    with pytest.raises(openai.InternalServerError) as raised:
        sdk(stack, team.key).chat.completions.create(
            model=team.alias, messages=[{"role": "user", "content": "x [fake status=500]"}]
        )
    assert (raised.value.status_code, raised.value.type) == (503, "server_error")
    assert raised.value.code == "UPSTREAM_UNAVAILABLE"


def test_the_gateways_own_replies_on_v1_have_it_too(stack, team: RestTeam):
    v1 = f"{stack.api_url}/v1"
    # An OpenAI endpoint this API does not serve: 404, naming those it serves.
    with pytest.raises(openai.NotFoundError) as raised:
        sdk(stack, team.key).embeddings.create(model=team.alias, input="x")
    assert raised.value.code == "NOT_FOUND" and "POST /v1/chat/completions" in raised.value.message
    unknown = requests.get(f"{v1}/files", headers=team.headers, timeout=10)
    assert unknown.status_code == 404
    assert_openai_error(unknown, code="NOT_FOUND", param=None, kind="invalid_request_error")

    wrong_method = requests.delete(f"{v1}/models", headers=team.headers, timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET"
    assert_openai_error(wrong_method, code="METHOD_NOT_ALLOWED", param=None, kind="invalid_request_error")

    # The Lua filter's own refusal (a query parameter the method does not take).
    query = requests.get(f"{v1}/models?page=2", headers=team.headers, timeout=10)
    assert query.status_code == 400
    assert_openai_error(query, code="INVALID_REQUEST", param="page", kind="invalid_request_error")

    too_large = requests.post(
        f"{v1}/chat/completions",
        data=b'{"model": "' + b"x" * (4 * 1024 * 1024) + b'"}',
        headers={**team.headers, "content-type": "application/json"},
        timeout=30,
    )
    assert too_large.status_code == 413
    member = assert_openai_error(too_large, code="INVALID_REQUEST", param=None, kind="invalid_request_error")
    assert member["message"] == "request body too large (the limit is 4 MiB)"


def test_the_other_routes_errors_keep_their_shape_alone(stack, api, team):
    refusals = [
        requests.get(f"{api}/jobs/3f2b1c9e-8a41-4d2b-9a7e-0c5d6e7f8a9b", timeout=10),  # no key: the server's
        requests.get(f"{api}/jobs/not-a-uuid", headers=team.headers, timeout=10),  # BadRequest
        requests.get(f"{api}/no-such-path", timeout=10),  # Envoy's 404
        requests.delete(f"{api}/jobs/create", timeout=10),  # 405
        requests.get(f"{api}/usage?limit=1&limit=2", headers=team.headers, timeout=10),  # the Lua filter's 400
        requests.post(
            f"{api}/jobs/create", data=b"{", headers={**team.headers, "content-type": "application/json"}, timeout=10
        ),  # the transcoder's 400
        requests.post(
            f"{api}/jobs/create",
            data=b" " * (4 * 1024 * 1024 + 1),
            headers={**team.headers, "content-type": "application/json"},
            timeout=30,
        ),  # 413
        requests.get(f"{stack.api_url}/v1x/models", timeout=10),  # not under /v1
    ]
    assert [r.status_code for r in refusals] == [401, 400, 404, 405, 400, 400, 413, 404]
    for refused in refusals:
        assert set(refused.json()) == {"code", "message", "details"}, refused.text


def test_a_v1_answer_and_stream_pass_unchanged_and_unbatched(stack, team):
    """Only errors are read: a stream's chunks leave as the provider sends them, each about
    60 ms after the previous one, not bunched."""
    answer = requests.post(
        f"{stack.api_url}/v1/chat/completions",
        json={"model": team.alias, "messages": PROMPT},
        headers=team.headers,
        timeout=30,
    )
    assert answer.status_code == 200 and "error" not in answer.json()

    body = {
        "model": team.alias,
        "stream": True,
        "messages": [{"role": "user", "content": "story [fake tokens=8 chunks=8 delay_ms=60]"}],
    }
    arrivals, events = [], []
    with requests.post(
        f"{stack.api_url}/v1/chat/completions", json=body, headers=team.headers, stream=True, timeout=30
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        for line in response.iter_lines(chunk_size=1):
            if line.startswith(b"data: "):
                events.append(line[6:])
                if events[-1] != b"[DONE]" and json.loads(events[-1])["choices"][0]["delta"].get("content"):
                    arrivals.append(time.perf_counter())
    assert events[-1] == b"[DONE]" and len(arrivals) == 8, events
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(arrivals)]
    assert all(25 <= gap <= 200 for gap in gaps), gaps
