"""The whole OpenAI chat surface through the job API and the real LiteLLM proxy.

The fake provider records each request it receives; the tests compare what the client sent
through Envoy -> server -> LiteLLM with what reached the provider."""

from __future__ import annotations

import json

import requests


def post(api, path, body, team, **kwargs):
    return requests.post(f"{api}{path}", json=body, headers=team.headers, timeout=30, **kwargs)


def provider_requests(stack) -> list[dict]:
    return requests.get(f"{stack.fake_url}/_fake/requests", timeout=5).json()["requests"]


def clear_provider_requests(stack) -> None:
    requests.delete(f"{stack.fake_url}/_fake/requests", timeout=5)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
            "required": ["city", "days"],
        },
    },
}


def test_every_parameter_reaches_the_provider_unchanged(stack, api, team):
    job = post(api, "/jobs/create", {"job_type": "t"}, team).json()
    clear_provider_requests(stack)
    parts = [
        {"type": "text", "text": "Describe this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    sent = {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": parts}],
        "temperature": 0.3,
        "max_tokens": 50,
        "top_p": 0.9,
        "stop": ["END", "STOP"],
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "seed": 42,
        "user": "end-user-7",
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
    }
    reply = post(api, f"/jobs/{job['job_id']}/llm-call", sent, team)
    assert reply.status_code == 200, reply.text
    (received,) = [r["body"] for r in provider_requests(stack)]
    assert received["model"] == "fake-gpt"
    for name, value in sent.items():
        assert received[name] == value, name
    assert json.loads(reply.json()["response"]["content"])  # json_object answered with JSON


def test_tool_calls_come_back_plain_and_streamed(api, team):
    job = post(api, "/jobs/create", {"job_type": "t"}, team).json()
    body = {
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    plain = post(api, f"/jobs/{job['job_id']}/llm-call", body, team).json()
    (call,) = plain["response"]["tool_calls"]
    assert call["function"]["name"] == "get_weather" and call["id"]
    arguments = json.loads(call["function"]["arguments"])
    assert set(arguments) == {"city", "days"} and 1 <= arguments["days"] <= 7
    assert plain["response"]["finish_reason"] == "tool_calls"

    streamed = post(api, f"/jobs/{job['job_id']}/llm-call-stream", body, team, stream=True)
    events = [json.loads(line[6:]) for line in streamed.iter_lines() if line.startswith(b"data: ")]
    fragments = [tc for e in events for c in e["choices"] for tc in c["delta"].get("tool_calls", [])]
    assert fragments[0]["function"]["name"] == "get_weather" and fragments[0]["id"]
    joined = "".join(f["function"].get("arguments", "") for f in fragments)
    assert json.loads(joined) == arguments  # same deterministic answer, streamed in pieces
    assert events[-1]["done"] and events[-1]["finish_reason"] == "tool_calls"

    # The tool result goes back in the conversation and the model answers.
    follow_up = {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 21}'},
        ],
        "tools": [WEATHER_TOOL],
    }
    answer = post(api, f"/jobs/{job['job_id']}/llm-call", follow_up, team)
    assert answer.status_code == 200, answer.text
    assert answer.json()["response"]["content"]


def test_json_schema_response_format(api, team):
    job = post(api, "/jobs/create", {"job_type": "t"}, team).json()
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "email": {"type": "string"}},
        "required": ["name", "age", "email"],
        "additionalProperties": False,
    }
    reply = post(
        api,
        f"/jobs/{job['job_id']}/llm-call",
        {
            "messages": [{"role": "user", "content": "Extract: Ada, 36, ada@example.com"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "Person", "schema": schema, "strict": True},
            },
        },
        team,
    )
    person = json.loads(reply.json()["response"]["content"])
    assert set(person) == {"name", "age", "email"} and isinstance(person["age"], int)


def test_provider_rejection_is_a_400_with_the_providers_message_and_no_internals(stack, api, team):
    job = post(api, "/jobs/create", {"job_type": "t"}, team).json()
    response = post(
        api, f"/jobs/{job['job_id']}/llm-call", {"messages": [{"role": "user", "content": "x [fake status=400]"}]}, team
    )
    assert response.status_code == 400
    body = response.json()
    assert body["details"][0]["reason"] == "UPSTREAM_REJECTED"
    for secret in ("fake-gpt", "fake-provider-key", stack.config.litellm_master_key, "Traceback", "litellm."):
        assert secret not in body["message"]


def test_rate_limit_carries_retry_info_through_litellm(api):
    from tests.e2e.conftest import rest_team

    team = rest_team(api, models=("fake-gpt",))
    job = post(api, "/jobs/create", {"job_type": "t"}, team).json()
    response = post(
        api,
        f"/jobs/{job['job_id']}/llm-call",
        {"messages": [{"role": "user", "content": "x [fake status=429 retry_after=4]"}]},
        team,
    )
    assert response.status_code == 429
    details = response.json()["details"]
    assert details[0]["reason"] == "UPSTREAM_RATE_LIMITED"
    (retry,) = [d for d in details if d["@type"].endswith("RetryInfo")]
    assert retry["retry_delay"] == "4s"
    assert response.headers["retry-after"] == "4"  # for HTTP clients that know no RetryInfo


def test_a_content_part_without_its_value_is_400_not_the_provider_being_down(stack, api, team):
    """LiteLLM answers 500 on it, which read as 503 UPSTREAM_UNAVAILABLE, tried on the
    fallback model, and retried by SDKs; now the server refuses it before any upstream call
    (/v1: tests/e2e/test_openai_endpoint.py)."""
    job = post(api, "/jobs/create", {"job_type": "t"}, team).json()
    clear_provider_requests(stack)
    messages = [{"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url"}]}]
    refused = post(api, f"/jobs/{job['job_id']}/llm-call", {"messages": messages}, team)
    assert refused.status_code == 400, refused.text
    assert refused.json()["message"] == 'messages[0].content[1].image_url: must be a URL, or an object with a "url"'
    assert provider_requests(stack) == []
    assert requests.get(f"{api}/jobs/{job['job_id']}", headers=team.headers, timeout=10).json()["calls"] == []
