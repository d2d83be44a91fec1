"""The OpenAI-compatible entry point (/v1), driven by the OpenAI SDK and by raw HTTP.

Everything goes through Envoy -> server -> LiteLLM -> fake provider; the job and the
credits are read back through the job API and PostgreSQL."""

from __future__ import annotations

import json

import openai
import psycopg
import pytest
import requests

from tests.e2e.conftest import ADMIN_HEADERS, RestTeam, rest_team
from tests.e2e.test_openai_surface import WEATHER_TOOL, clear_provider_requests, provider_requests


def sdk(stack, team: RestTeam, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{stack.api_url}/v1", api_key=team.key, max_retries=0, default_headers=headers or None
    )


def job(api: str, team: RestTeam, job_id: str) -> dict:
    return requests.get(f"{api}/jobs/{job_id}", headers=team.headers, timeout=10).json()


def balance(api: str, team: RestTeam) -> dict:
    return requests.get(f"{api}/credits/teams/{team.team_id}/balance", headers=team.headers, timeout=10).json()


def jobs_of(stack, team: RestTeam) -> int:
    with psycopg.connect(stack.postgres.url) as conn:
        return conn.execute("SELECT count(*) FROM jobs WHERE team_id = %s", (team.team_id,)).fetchone()[0]


def sse_events(response: requests.Response) -> list[str]:
    """The `data:` payloads of an event stream, in order, `[DONE]` included."""
    return [line[6:].decode() for line in response.iter_lines() if line.startswith(b"data: ")]


def post_completion(stack, team: RestTeam, body: dict, headers: dict | None = None, **kwargs) -> requests.Response:
    return requests.post(
        f"{stack.api_url}/v1/chat/completions",
        json=body,
        headers={**team.headers, **(headers or {})},
        timeout=30,
        **kwargs,
    )


def test_a_completion_is_a_single_call_job_charged_one_credit(stack, api, team):
    raw = sdk(stack, team).chat.completions.with_raw_response.create(
        model=team.alias,
        messages=[{"role": "user", "content": "Summarize this [fake echo=1]"}],
        user="end-user-7",
        metadata={"ticket": "T-42"},
    )
    completion = raw.parse()
    assert completion.object == "chat.completion" and completion.model == team.alias
    assert completion.choices[0].message.content == "Summarize this"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    job_id, call_id = raw.headers["x-job-id"], raw.headers["x-call-id"]
    assert completion.id == f"chatcmpl-{call_id}"

    recorded = job(api, team, job_id)
    assert (recorded["status"], recorded["job_type"], recorded["user_id"]) == (
        "COMPLETED",
        "chat_completion",
        "end-user-7",
    )
    assert recorded["metadata"] == {"ticket": "T-42"}
    assert [c["call_id"] for c in recorded["calls"]] == [call_id]
    assert recorded["costs"]["total_tokens"] == completion.usage.total_tokens
    assert recorded["costs"]["credits_charged"] == 1 and balance(api, team)["credits_remaining"] == 99


def test_a_stream_inside_an_open_job_keeps_the_job_open(stack, api, team):
    created = requests.post(f"{api}/jobs/create", json={"job_type": "agent_run"}, headers=team.headers, timeout=10)
    job_id = created.json()["job_id"]
    client = sdk(stack, team, **{"X-Job-Id": job_id, "X-Call-Purpose": "draft"})
    chunks = list(
        client.chat.completions.create(
            model=team.alias,
            messages=[{"role": "user", "content": "story [fake tokens=6 chunks=3]"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert len({c.id for c in chunks}) == 1

    # A second, plain call in the same job; the job stays open until it is completed.
    client.chat.completions.create(model=team.alias, messages=[{"role": "user", "content": "again"}])
    open_job = job(api, team, job_id)
    assert open_job["status"] == "IN_PROGRESS" and open_job["costs"]["total_calls"] == 2
    assert [c["purpose"] for c in open_job["calls"]] == ["draft", "draft"]
    assert len(text.split()) == 6 and open_job["calls"][0]["usage"]["completion_tokens"] == 6
    done = requests.post(
        f"{api}/jobs/{job_id}/complete", json={"status": "completed"}, headers=team.headers, timeout=10
    )
    assert done.json()["costs"]["credits_remaining"] == 99  # two calls, one credit


def test_the_stream_is_openai_framed_and_ends_with_done(stack, team):
    with post_completion(
        stack,
        team,
        {"model": team.alias, "stream": True, "messages": [{"role": "user", "content": "x [fake tokens=4 chunks=4]"}]},
        stream=True,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["x-job-id"] and response.headers["x-call-id"]
        events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == team.alias for c in chunks)
    assert all("usage" not in c for c in chunks)  # only with stream_options.include_usage
    assert sum(1 for c in chunks if c["choices"][0]["delta"].get("content")) == 4


def test_every_parameter_reaches_the_provider_and_the_real_model_stays_hidden(stack, team):
    clear_provider_requests(stack)
    sent = {
        "model": team.alias,
        "messages": [{"role": "user", "content": "hi", "name": "ann"}],
        "temperature": 0.3,
        "max_completion_tokens": 40,
        "seed": 7,
        "stop": ["END"],
        "logit_bias": {"50256": -100},
        "response_format": {"type": "json_object"},
        "top_k": 5,  # not an OpenAI parameter: passed on as it is, like extra_body
    }
    response = post_completion(stack, team, sent)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == team.alias and "fake-gpt" not in response.text
    received = provider_requests(stack)[-1]["body"]
    assert received["model"] == "fake-gpt"
    for name in ("temperature", "max_completion_tokens", "seed", "stop", "logit_bias", "response_format", "top_k"):
        assert received[name] == sent[name], name
    assert received["messages"] == sent["messages"]


def test_tool_calls_come_back_in_openai_shape_plain_and_streamed(stack, team):
    client = sdk(stack, team)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    plain = client.chat.completions.create(
        model=team.alias, messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    )
    call = plain.choices[0].message.tool_calls[0]
    assert plain.choices[0].finish_reason == "tool_calls" and plain.choices[0].message.content is None
    assert call.type == "function" and call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == {"city", "days"}

    streamed = client.chat.completions.create(
        model=team.alias, messages=messages, tools=[WEATHER_TOOL], tool_choice="required", stream=True
    )
    fragments = [f for chunk in streamed if chunk.choices for f in chunk.choices[0].delta.tool_calls or ()]
    assert fragments[0].id and fragments[0].function.name == "get_weather"
    assert set(json.loads("".join(f.function.arguments or "" for f in fragments))) == {"city", "days"}
    with client.chat.completions.stream(
        model=team.alias, messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    ) as helper:  # the SDK's own accumulation: no content appears for a tool call
        assert not [event for event in helper if event.type == "content.delta"]
        assert helper.get_final_completion().choices[0].message.content is None


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        ({"n": 2}, {}, "n"),
        ({"temperature": "hot"}, {}, "temperature"),
        ({"max_tokens": 1.5}, {}, "max_tokens"),
        ({"stream": "yes"}, {}, "stream"),
        ({"fallbacks": ["gpt-4"]}, {}, "fallbacks"),
        ({"api_base": "http://evil"}, {}, "api_base"),
        ({"extra_body": {"max_tokens": 100000}}, {}, "extra_body"),  # LiteLLM would merge it over max_tokens
        ({"mock_response": "free"}, {}, "mock_response"),  # LiteLLM's own settings
        ({"input_cost_per_token": 0}, {}, "input_cost_per_token"),
        ({"messages": "hi"}, {}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, {}, "messages[0].role"),
        # LiteLLM answers 500 on these: read as the provider being down (503) before.
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, {}, "messages[0].content[0].image_url"),
        ({"messages": [{"role": "user", "content": [{"type": "bogus"}]}]}, {}, "messages[0].content[0].type"),
        ({"metadata": ["x"]}, {}, "metadata"),
        # The native API's own fields: the provider would receive them, with the team's data.
        ({"job_metadata": {"doc": "q3"}}, {}, "job_metadata"),
        ({"team_id": "someone"}, {}, "team_id"),
        ({}, {"X-Job-Id": "not-a-uuid"}, "x-job-id"),
        ({}, {"X-Job-Id": "3f2b1c9e-8a41-4d2b-9a7e-0c5d6e7f8a9b", "X-Job-Type": "t"}, "x-job-type"),
        # A key makes a new job once: a call in a given job would be made twice, not deduplicated.
        ({}, {"X-Job-Id": "3f2b1c9e-8a41-4d2b-9a7e-0c5d6e7f8a9b", "Idempotency-Key": "k-1"}, "idempotency-key"),
        ({}, {"X-Job-Type": "x" * 101}, "x-job-type"),
    ],
)
def test_bad_requests_name_the_field_and_change_nothing(stack, api, body, headers, field):
    team = rest_team(api)
    request = {"model": team.alias, "messages": [{"role": "user", "content": "hi"}], **body}
    clear_provider_requests(stack)
    response = post_completion(stack, team, request, headers)
    assert response.status_code == 400, response.text
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in response.json()["details"]}
    assert details["ErrorInfo"]["reason"] == "INVALID_REQUEST"
    assert details["BadRequest"]["field_violations"][0]["field"] == field
    assert provider_requests(stack) == [] and jobs_of(stack, team) == 0
    assert balance(api, team)["credits_remaining"] == 100


def test_a_body_that_is_not_json_is_refused(stack, api, team):
    response = requests.post(
        f"{stack.api_url}/v1/chat/completions",
        data=b"model=x",
        headers={**team.headers, "content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400 and response.json()["details"][0]["reason"] == "INVALID_REQUEST"
    assert jobs_of(stack, team) == 0


def test_a_failed_call_fails_its_job_and_costs_nothing(stack, api, team):
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(stack, team).chat.completions.create(
            model=team.alias, messages=[{"role": "user", "content": "x [fake status=400]"}]
        )
    info = raised.value.body["details"][0]
    assert info["reason"] == "UPSTREAM_REJECTED"
    assert job(api, team, info["metadata"]["job_id"])["status"] == "FAILED"
    assert balance(api, team)["credits_remaining"] == 100


def test_an_upstream_drop_mid_stream_is_an_error_event_without_done(stack, api, team):
    body = {
        "model": team.alias,
        "stream": True,
        "messages": [{"role": "user", "content": "story [fake tokens=20 chunks=10 drop_after=4 delay_ms=50]"}],
    }
    with post_completion(stack, team, body, stream=True) as response:
        assert response.status_code == 200
        job_id = response.headers["x-job-id"]
        events = sse_events(response)
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert error["code"] == "UPSTREAM_STREAM_INTERRUPTED" and error["message"]
    assert job(api, team, job_id)["status"] == "FAILED" and balance(api, team)["credits_remaining"] == 100

    # The OpenAI SDK raises it while iterating.
    with pytest.raises(openai.APIError, match="failed midway"):
        for _ in sdk(stack, team).chat.completions.create(
            **{k: v for k, v in body.items() if k != "stream"}, stream=True
        ):
            pass


def test_no_credits_is_refused_and_the_sdk_does_not_retry_it(stack, api):
    team = rest_team(api, credits=1)
    client = sdk(stack, team).with_options(max_retries=3)
    client.chat.completions.create(model=team.alias, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model=team.alias, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.body["details"][0]["reason"] == "INSUFFICIENT_CREDITS"
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert jobs_of(stack, team) == 1  # refused before a job was made, and asked once


def test_models_are_the_teams_aliases_only(stack, api, team):
    other = rest_team(api)
    client = sdk(stack, team)
    assert [m.id for m in client.models.list()] == [team.alias]
    model = client.models.retrieve(team.alias)
    assert (model.id, model.object, model.owned_by) == (team.alias, "model", "saaslitellm") and model.created > 0
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(other.alias)
    # A name no model could have is refused without being echoed back.
    refused = requests.get(f"{stack.api_url}/v1/models/%0d%0aSet-Cookie:x", headers=team.headers, timeout=10)
    assert refused.status_code == 400 and "Set-Cookie" not in refused.text, refused.text
    assert refused.json()["details"][0]["metadata"] == {"field": "model"}
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=other.alias, messages=[{"role": "user", "content": "hi"}])


def test_a_bad_key_is_refused(stack, team):
    client = openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key="sk-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=team.alias, messages=[{"role": "user", "content": "hi"}])


def test_an_agent_loop_stops_at_the_teams_calls_per_job(stack, api, team):
    patched = requests.patch(
        f"{api}/teams/{team.team_id}", json={"max_calls_per_job": 2}, headers=ADMIN_HEADERS, timeout=10
    )
    assert patched.json()["max_calls_per_job"] == 2
    created = requests.post(f"{api}/jobs/create", json={"job_type": "agent_run"}, headers=team.headers, timeout=10)
    agent = sdk(stack, team, **{"X-Job-Id": created.json()["job_id"]})
    for _ in range(2):
        agent.chat.completions.create(model=team.alias, messages=[{"role": "user", "content": "step"}])
    with pytest.raises(openai.BadRequestError) as raised:
        agent.chat.completions.create(model=team.alias, messages=[{"role": "user", "content": "step"}])
    assert raised.value.body["details"][0]["reason"] == "JOB_CALL_LIMIT_REACHED"
    assert job(api, team, created.json()["job_id"])["costs"]["total_calls"] == 2


def test_an_agent_loop_stops_before_the_teams_cost_per_job(stack, api, team):
    """Through Envoy and LiteLLM: each completion asks for 300 words with max_tokens 400 (at
    most $0.0008 of output at fake-gpt's $2 per million, plus its input); $0.0025 per job
    holds 3 such calls and refuses the 4th before the provider."""
    patched = requests.patch(
        f"{api}/teams/{team.team_id}", json={"max_cost_usd_per_job": "0.0025"}, headers=ADMIN_HEADERS, timeout=10
    )
    assert patched.json()["max_cost_usd_per_job"] == "0.0025"
    created = requests.post(f"{api}/jobs/create", json={"job_type": "agent_run"}, headers=team.headers, timeout=10)
    agent = sdk(stack, team, **{"X-Job-Id": created.json()["job_id"]})
    step = [{"role": "user", "content": "step [fake tokens=300]"}]
    with pytest.raises(openai.BadRequestError) as unbounded:
        agent.chat.completions.create(model=team.alias, messages=step)
    assert unbounded.value.body["details"][0]["metadata"]["field"] == "max_tokens"
    for _ in range(3):
        agent.chat.completions.create(model=team.alias, messages=step, max_tokens=400)
    with pytest.raises(openai.BadRequestError) as raised:
        agent.chat.completions.create(model=team.alias, messages=step, max_tokens=400)
    refusal = raised.value.body["details"][0]
    assert refusal["reason"] == "JOB_COST_LIMIT_REACHED" and refusal["metadata"]["max_cost_usd_per_job"] == "0.0025"
    costs = job(api, team, created.json()["job_id"])["costs"]
    assert costs["total_calls"] == 3
    assert float(refusal["metadata"]["spent_usd"]) == pytest.approx(costs["total_cost_usd"])


def test_an_unpaired_surrogate_is_a_400_before_any_job(stack, api):
    """JSON can escape half of a UTF-16 pair (JavaScript's JSON.stringify writes one for a
    cut emoji); no UTF-8 text holds it. Refused before a job is created or a credit held."""
    team = rest_team(api, credits=3)
    body = '{"model": "ALIAS", "messages": [{"role": "user", "content": "hi \\ud800 there"}]}'.replace(
        "ALIAS", team.alias
    )
    for stream in ("false", "true"):
        refused = requests.post(
            f"{stack.api_url}/v1/chat/completions",
            data=body[:-1] + f', "stream": {stream}}}',
            headers={**team.headers, "Content-Type": "application/json"},
            timeout=10,
        )
        assert refused.status_code == 400 and "surrogate" in refused.json()["message"], refused.text
    assert jobs_of(stack, team) == 0 and balance(api, team)["credits_available"] == 3
