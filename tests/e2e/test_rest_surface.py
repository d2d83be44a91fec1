"""The REST/SSE surface through real Envoy: shapes, errors, streaming, auth, tooling."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psycopg
import pytest
import requests

from saaslitellm.v1 import job_service_pb2, job_service_pb2_grpc
from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import ADMIN_HEADERS, rest_team

ERROR_KEYS = {"code", "message", "details"}


def reason(body: dict) -> str:
    infos = [d for d in body["details"] if d.get("@type", "").endswith("google.rpc.ErrorInfo")]
    return infos[0]["reason"] if infos else ""


def post(api: str, path: str, body=None, headers=None, **kwargs) -> requests.Response:
    return requests.post(f"{api}{path}", json=body, headers=headers or {}, timeout=30, **kwargs)


def sse_events(response: requests.Response) -> list[dict]:
    return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith(b"data: ")]


def test_job_shapes_match_the_documentation(api, team):
    created = post(api, "/jobs/create", {"team_id": team.team_id, "job_type": "t"}, team.headers)
    assert created.status_code == 200
    job = created.json()
    assert job["status"] == "PENDING" and job["created_at"].endswith("Z")
    call = post(api, f"/jobs/{job['job_id']}/llm-call", {"messages": [{"role": "user", "content": "hi"}]}, team.headers)
    body = call.json()
    assert set(body) >= {"call_id", "response", "metadata"}
    assert set(body["response"]) >= {"content", "finish_reason"}
    assert isinstance(body["metadata"]["tokens_used"], int) and isinstance(body["metadata"]["latency_ms"], int)
    assert body["metadata"]["model"] == team.alias
    done = post(api, f"/jobs/{job['job_id']}/complete", {"status": "completed"}, team.headers).json()
    costs = done["costs"]
    for key in (
        "total_calls",
        "successful_calls",
        "failed_calls",
        "total_tokens",
        "avg_latency_ms",
        "credits_remaining",
    ):
        assert isinstance(costs[key], int), key
    assert isinstance(costs["total_cost_usd"], float) and costs["credit_applied"] is True
    assert done["status"] == "COMPLETED" and done["calls"][0]["call_id"] == body["call_id"]
    fetched = requests.get(f"{api}/jobs/{job['job_id']}", headers=team.headers, timeout=10).json()
    assert fetched["status"] == "COMPLETED" and fetched["costs"]["total_calls"] == 1


def test_complete_accepts_status_in_any_case(api, team):
    job = post(api, "/jobs/create", {"job_type": "t"}, team.headers).json()
    assert post(api, f"/jobs/{job['job_id']}/complete", {"status": "Failed"}, team.headers).json()["status"] == "FAILED"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', "temperature"),
        ('{"messages": "hello"}', "messages"),
        ('{"messages": [', None),
        ("{}", "messages"),
        ('{"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', "max_tokens"),
        (
            '{"messages": [{"role": "user", "content": "x"}], "extra_body": {"extra_body": {"max_tokens": 9}}}',
            "extra_body.extra_body",
        ),
        (
            '{"messages": [{"role": "user", "content": "x"}], "extra_body": {"mock_response": "hi"}}',
            "extra_body.mock_response",
        ),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(api, team, body, field):
    job = post(api, "/jobs/create", {"job_type": "t"}, team.headers).json()
    response = requests.post(
        f"{api}/jobs/{job['job_id']}/llm-call",
        data=body,
        headers={**team.headers, "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    error = response.json()
    assert set(error) == ERROR_KEYS and error["code"] == 3
    if field:
        assert field in error["message"]


def test_malformed_job_id_is_400_not_500(api, team):
    response = requests.get(f"{api}/jobs/not-a-uuid", headers=team.headers, timeout=10)
    assert response.status_code == 400
    assert "job_id" in response.json()["message"]


def test_every_error_has_one_shape(api, team):
    cases = [
        (post(api, "/jobs/create", {"job_type": "t"}), 401, "MISSING_API_KEY"),
        (post(api, "/jobs/create", {"job_type": "t"}, {"Authorization": "Bearer sk-nope"}), 401, "INVALID_API_KEY"),
        (post(api, "/jobs/create", {"team_id": "other", "job_type": "t"}, team.headers), 403, "TEAM_MISMATCH"),
        (post(api, "/organizations/create", {"organization_id": "o", "name": "n"}), 401, "ADMIN_KEY_REQUIRED"),
        (
            requests.get(f"{api}/jobs/3f2b1c9e-8a41-4d2b-9a7e-0c5d6e7f8a9b", headers=team.headers, timeout=10),
            404,
            "NOT_FOUND",
        ),
        (post(api, "/no/such/route", {}), 404, "NOT_FOUND"),  # the gateway's own
    ]
    for response, status, expected_reason in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == ERROR_KEYS, body
        assert reason(body) == expected_reason


def test_out_of_credits_is_429_with_the_balance(api):
    team = rest_team(api, credits=1)
    assert post(api, "/jobs/create", {"job_type": "t"}, team.headers).status_code == 200
    refused = post(api, "/jobs/create", {"job_type": "t"}, team.headers)
    assert refused.status_code == 429
    body = refused.json()
    assert reason(body) == "INSUFFICIENT_CREDITS"
    info = next(d for d in body["details"] if d["@type"].endswith("ErrorInfo"))
    assert info["metadata"]["credits_available"] == "0"
    # SDKs that retry every 429 by themselves (OpenAI's, Anthropic's) are told not to.
    assert refused.headers["x-should-retry"] == "false" and "retry-after" not in refused.headers


def test_admin_key_is_accepted_as_bearer_and_never_echoed(api, team):
    response = requests.get(f"{api}/teams/{team.team_id}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["team_id"] == team.team_id and "virtual_key" not in body
    assert team.key not in response.text and ADMIN_KEY not in response.text
    assert requests.get(f"{api}/teams/{team.team_id}", headers=team.headers, timeout=10).status_code == 401


def test_streaming_is_sse_with_a_terminal_event(api, team):
    job = post(api, "/jobs/create", {"job_type": "chat"}, team.headers).json()
    response = post(
        api,
        f"/jobs/{job['job_id']}/llm-call-stream",
        {"messages": [{"role": "user", "content": "story [fake tokens=12 chunks=4]"}]},
        team.headers,
        stream=True,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    # Proxies and caches between the gateway and the client must not hold events back.
    assert (response.headers["cache-control"], response.headers["x-accel-buffering"]) == ("no-cache", "no")
    events = sse_events(response)
    assert events[0]["call_id"] and events[0]["job_id"] == job["job_id"]
    assert [e["done"] for e in events].count(True) == 1 and events[-1]["done"]
    text = "".join(e["content"] for e in events)
    assert len(text.split()) == 12
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"]) == text
    last = events[-1]
    assert last["usage"]["completion_tokens"] == 12 and last["cost_usd"] > 0 and last["finish_reason"] == "stop"


def test_stream_errors_before_the_first_event_are_http_errors(api, team):
    job = post(api, "/jobs/create", {"job_type": "chat"}, team.headers).json()
    response = post(
        api,
        f"/jobs/{job['job_id']}/llm-call-stream",
        {"messages": [{"role": "user", "content": "x [fake status=500]"}]},
        team.headers,
    )
    assert response.status_code == 503
    assert reason(response.json()) == "UPSTREAM_UNAVAILABLE"


def test_fallback_through_litellm_is_recorded(stack, api, team):
    job = post(api, "/jobs/create", {"job_type": "t"}, team.headers).json()
    reply = post(
        api,
        f"/jobs/{job['job_id']}/llm-call",
        {"messages": [{"role": "user", "content": "hi [fake fail=primary]"}]},
        team.headers,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["metadata"]["model"] == team.alias  # the tenant sees the alias only
    with psycopg.connect(stack.postgres.url) as conn:
        served, attempted = conn.execute(
            "SELECT served_model, attempted_models FROM llm_calls WHERE call_id = %s", (reply.json()["call_id"],)
        ).fetchone()
    assert (served, attempted) == ("fake-gpt-backup", ["fake-gpt", "fake-gpt-backup"])


@pytest.mark.parametrize(
    "setting",
    [
        {"router_settings_override": {"fallbacks": [{"*": ["fake-unpriced"]}]}},
        {"content_policy_fallbacks": [{"*": ["fake-free"]}]},
        {"context_window_fallbacks": [{"*": ["fake-free"]}]},
        {"user_config": {"model_list": []}},
        {"additional_drop_params": ["max_tokens"]},  # would unbound a call a cost limit reserved for
        {"organization": "org-OTHER"},  # the OpenAI organization the operator's key bills
        {"deployment_id": "gpt-4o-secret"},  # another Azure deployment, on the operator's key
        {"aws_session_token": "TENANTTOKEN"},  # credentials over the deployment's
    ],
)
def test_a_call_cannot_choose_its_own_fallbacks_or_routing(stack, api, team, setting):
    """LiteLLM would read these as its own and serve the call from any model it has,
    outside the alias's route and the team's access groups: refused before it is sent."""
    job = post(api, "/jobs/create", {"job_type": "t"}, team.headers).json()
    (name,) = setting
    for path, body in (
        (
            f"/jobs/{job['job_id']}/llm-call",
            {"messages": [{"role": "user", "content": "hi [fake fail=primary]"}], "extra_body": setting},
        ),
        ("/v1/chat/completions", {"model": team.alias, "messages": [{"role": "user", "content": "hi"}], **setting}),
    ):
        url = api.removesuffix("/api") + path if path.startswith("/v1") else api + path
        refused = requests.post(url, json=body, headers={**team.headers, "x-job-id": job["job_id"]}, timeout=30)
        assert refused.status_code == 400, refused.text
        assert name in refused.text
    with psycopg.connect(stack.postgres.url) as conn:
        (calls,) = conn.execute("SELECT count(*) FROM llm_calls WHERE job_id = %s", (job["job_id"],)).fetchone()
    assert calls == 0


def test_native_grpc_passes_through_envoy_too(stack, team):
    with grpc.insecure_channel(f"127.0.0.1:{stack.config.ports.envoy}") as channel:
        job = job_service_pb2_grpc.JobServiceStub(channel).CreateJob(
            job_service_pb2.CreateJobRequest(job_type="t"),
            metadata=(("authorization", f"Bearer {team.key}"),),
            timeout=10,
        )
    assert job.job_id


@pytest.mark.parametrize("through", ["server", "envoy"])
def test_grpcurl_lists_the_services(stack, through):
    # grpcurl keeps reflection's request stream open while it reads the answers: through
    # Envoy, a filter buffering the request until it ended held the first answer forever.
    target = stack.grpc_target if through == "server" else f"127.0.0.1:{stack.config.ports.envoy}"
    grpcurl = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    result = subprocess.run(
        [grpcurl, "-plaintext", "-max-time", "10", target, "list"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert {"saaslitellm.v1.JobService", "saaslitellm.v1.AdminService", "grpc.health.v1.Health"} <= services


def test_health_endpoints(stack):
    assert requests.get(f"{stack.api_url}/health", timeout=5).json()["status"] == "ok"
    start = time.monotonic()
    with grpc.insecure_channel(stack.grpc_target) as channel:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING and time.monotonic() - start < 5


def test_admin_quick_start_objects_are_readable(api):
    team = rest_team(api)
    group = requests.get(f"{api}/model-access-groups/{team.group}", headers=ADMIN_HEADERS, timeout=10).json()
    assert group["model_aliases"] == [team.alias]
    alias = requests.get(f"{api}/models/{team.alias}", headers=ADMIN_HEADERS, timeout=10).json()
    assert alias["actual_model"] == "fake-gpt" and alias["fallback_models"] == ["fake-gpt-backup"]


def test_streamed_fallback_through_litellm_is_recorded(stack, api, team):
    job = post(api, "/jobs/create", {"job_type": "t"}, team.headers).json()
    response = post(
        api,
        f"/jobs/{job['job_id']}/llm-call-stream",
        {"messages": [{"role": "user", "content": "story [fake fail=primary tokens=6]"}]},
        team.headers,
        stream=True,
    )
    events = sse_events(response)
    assert events[-1]["done"] and "error" not in events[-1]
    assert len("".join(e["content"] for e in events).split()) == 6
    with psycopg.connect(stack.postgres.url) as conn:
        served, attempted, streamed = conn.execute(
            "SELECT served_model, attempted_models, streamed FROM llm_calls WHERE call_id = %s", (events[0]["call_id"],)
        ).fetchone()
    assert (served, attempted, streamed) == ("fake-gpt-backup", ["fake-gpt", "fake-gpt-backup"], True)


def test_job_metadata_is_patched_and_the_team_lists_its_jobs(api, team):
    job = post(api, "/jobs/create", {"job_type": "t", "metadata": {"a": 1}}, team.headers).json()
    patched = requests.patch(
        f"{api}/jobs/{job['job_id']}/metadata", json={"metadata": {"b": 2}}, headers=team.headers, timeout=10
    )
    assert patched.status_code == 200 and patched.json()["metadata"] == {"a": 1, "b": 2}
    listed = requests.get(f"{api}/teams/{team.team_id}/jobs?job_type=t", headers=team.headers, timeout=10)
    assert listed.status_code == 200 and [j["job_id"] for j in listed.json()["jobs"]] == [job["job_id"]]
    usage = requests.get(f"{api}/usage?job_type=t", headers=team.headers, timeout=10)
    assert usage.status_code == 200 and usage.json()["totals"]["jobs"] == "1"  # int64: a JSON string
    assert "provider" not in usage.text and "margin" not in usage.text


def test_an_estimate_through_envoy_and_litellm_bounds_the_call_and_spends_nothing(api, team):
    """LiteLLM prices fake-gpt (and its fallback) at $1/$2 per million tokens: the estimate
    reads those prices from LiteLLM's model info, and the call made afterwards costs less."""
    body = {
        "model": team.alias,
        "messages": [{"role": "user", "content": "quote me [fake tokens=40]"}],
        "max_tokens": 50,
    }
    quote = post(api, "/jobs/estimate-call", body, team.headers)
    assert quote.status_code == 200, quote.text
    figures = quote.json()
    assert figures["model"] == team.alias and figures["output_tokens_bound"] == 50
    assert figures["max_credits"] == 1 and "job_cost_remaining_usd" not in figures
    assert 50 * 0.000002 < float(figures["max_cost_usd"]) < 50 * 0.000002 + 200 * 0.000001
    balance = requests.get(f"{api}/credits/teams/{team.team_id}/balance", headers=team.headers, timeout=10).json()
    assert balance["credits_remaining"] == 100  # nothing reserved, nothing charged

    made = post(api, "/jobs/create-and-call", {"job_type": "quoted", **body}, team.headers)
    assert made.status_code == 200, made.text
    assert 0 < made.json()["metadata"]["cost_usd"] <= float(figures["max_cost_usd"])
    missing = post(api, "/jobs/estimate-call", {**body, "max_tokens": None}, team.headers)
    assert missing.status_code == 400 and "max_tokens" in missing.json()["message"]


def test_a_team_limiting_the_cost_of_a_job_cannot_use_a_model_without_a_price(api):
    """fake-unpriced has no price in LiteLLM's model info: a cost limit could not bound its
    calls, so an alias that may fall back to it is refused, naming the alias only."""
    team = rest_team(api, models=("fake-gpt", "fake-unpriced"))
    patched = requests.patch(
        f"{api}/teams/{team.team_id}", json={"max_cost_usd_per_job": "1"}, headers=ADMIN_HEADERS, timeout=10
    )
    assert patched.status_code == 200, patched.text
    job = post(api, "/jobs/create", {"job_type": "t"}, team.headers).json()
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    refused = post(api, f"/jobs/{job['job_id']}/llm-call", body, team.headers)
    assert refused.status_code == 400 and reason(refused.json()) == "MODEL_UNPRICED"
    assert team.alias in refused.json()["message"] and "fake-unpriced" not in refused.text
    estimate = post(api, "/jobs/estimate-call", body, team.headers)
    assert estimate.status_code == 400 and reason(estimate.json()) == "MODEL_UNPRICED"
    costs = requests.get(f"{api}/jobs/{job['job_id']}", headers=team.headers, timeout=10).json()["costs"]
    assert costs["total_calls"] == 0
