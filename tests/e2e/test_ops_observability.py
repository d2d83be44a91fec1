"""Operations through the full stack (Envoy, LiteLLM, the server): Prometheus metrics at
GET /metrics, the request id from the response header to the server's log line, JSON logs,
and no secret in any log of the session's stack."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

import grpc
import requests
from prometheus_client.parser import text_string_to_metric_families

from saaslitellm.v1 import job_service_pb2, job_service_pb2_grpc
from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import ADMIN_HEADERS, rest_team

ISSUED_KEYS: list[str] = []


def scrape(stack) -> dict[tuple[str, frozenset], float]:
    """Every sample of GET /metrics through Envoy: (name, labels) -> value."""
    response = requests.get(f"{stack.api_url}/metrics", headers=ADMIN_HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def rpc(method: str, code: str | None = None, service: str = "saaslitellm.v1.JobService") -> dict[str, str]:
    labels = {"grpc_method": method, "grpc_service": service, "grpc_type": "unary"}
    if method.endswith("Stream"):
        labels["grpc_type"] = "server_stream"
    if code:
        labels["grpc_code"] = code
    return labels


def post(api: str, path: str, body: dict, headers: dict) -> requests.Response:
    return requests.post(f"{api}{path}", json=body, headers=headers, timeout=30)


def stream(api: str, job_id: str, headers: dict, content: str) -> list[dict]:
    with requests.post(
        f"{api}/jobs/{job_id}/llm-call-stream",
        json={"messages": [{"role": "user", "content": content}]},
        headers=headers,
        stream=True,
        timeout=30,
    ) as response:
        assert response.status_code == 200, response.text
        return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith(b"data: ")]


def access_lines(stack, *request_ids: str) -> dict[str, dict]:
    """The access log's lines by request id, once those of `request_ids` are written (the
    server writes a request's line just after its response)."""
    deadline = time.monotonic() + 10
    while True:
        lines = {}
        for path in stack.logs.glob("server*.log"):
            for line in path.read_text().splitlines():
                if '"saaslitellm.access"' in line:
                    entry = json.loads(line)
                    lines[entry["request_id"]] = entry
        missing = [request_id for request_id in request_ids if request_id not in lines]
        if not missing:
            return lines
        assert time.monotonic() < deadline, f"no access log line for {missing}"
        time.sleep(0.02)


def test_metrics_count_rpcs_upstream_calls_streams_pool_and_usage(stack, api):
    team = rest_team(api, models=("fake-gpt", "fake-gpt-backup"))
    ISSUED_KEYS.append(team.key)
    before = scrape(stack)

    job = post(api, "/jobs/create", {"job_type": "metrics"}, team.headers).json()
    reply = post(
        api, f"/jobs/{job['job_id']}/llm-call", {"messages": [{"role": "user", "content": "hi"}]}, team.headers
    ).json()
    # The primary fails, the fallback answers: one upstream error on fake-gpt.
    fallback = post(
        api,
        f"/jobs/{job['job_id']}/llm-call",
        {"messages": [{"role": "user", "content": "hi [fake fail=primary]"}]},
        team.headers,
    ).json()
    events = stream(api, job["job_id"], team.headers, "story [fake tokens=6 chunks=3]")
    assert events[-1]["done"] is True
    refused = post(api, "/jobs/create", {"job_type": "metrics"}, {"Authorization": "Bearer sk-wrong"})
    assert refused.status_code == 401
    done = post(api, f"/jobs/{job['job_id']}/complete", {"status": "completed"}, team.headers).json()
    assert done["status"] == "COMPLETED"
    refund = post(api, f"/credits/teams/{team.team_id}/jobs/{job['job_id']}/refund", {}, ADMIN_HEADERS)
    assert refund.status_code == 200, refund.text
    after = scrape(stack)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("grpc_server_started_total", **rpc("LLMCall")) == 2
    assert delta("grpc_server_handled_total", **rpc("LLMCall", "OK")) == 2
    assert delta("grpc_server_handled_total", **rpc("LLMCallStream", "OK")) == 1
    assert delta("grpc_server_handled_total", **rpc("CreateJob", "OK")) == 1
    assert delta("grpc_server_handled_total", **rpc("CreateJob", "UNAUTHENTICATED")) == 1
    assert delta("grpc_server_handled_total", **rpc("CompleteJob", "OK")) == 1
    assert delta("grpc_server_handling_seconds_count", **rpc("LLMCall")) == 2
    assert delta("grpc_server_handling_seconds_bucket", **rpc("LLMCall"), le="+Inf") == 2
    assert value(after, "saaslitellm_streams_open", grpc_method="LLMCallStream") == 0

    assert delta("saaslitellm_upstream_request_duration_seconds_count", model="fake-gpt", kind="complete") == 2
    assert delta("saaslitellm_upstream_request_duration_seconds_count", model="fake-gpt-backup", kind="complete") == 1
    assert delta("saaslitellm_upstream_request_duration_seconds_count", model="fake-gpt", kind="stream_start") == 1
    assert delta("saaslitellm_upstream_request_duration_seconds_count", model="fake-gpt", kind="stream") == 1
    assert delta("saaslitellm_upstream_errors_total", model="fake-gpt", reason="UPSTREAM_UNAVAILABLE") == 1

    assert value(after, "saaslitellm_db_pool_connections_max") > 0
    assert ("saaslitellm_db_pool_connections", frozenset({("state", "in_use")})) in after
    assert delta("saaslitellm_db_transaction_duration_seconds_count") >= 5

    # Fleet-wide usage from the database: exact, and at once (pending deltas included).
    assert value(after, "saaslitellm_usage_up") == 1
    assert delta("saaslitellm_jobs_created_total") == 1
    assert delta("saaslitellm_jobs", status="completed") == 1
    assert delta("saaslitellm_credits_charged_total") == 1
    assert delta("saaslitellm_credits_refunded_total") == 1
    assert delta("saaslitellm_llm_calls_recorded_total", outcome="succeeded") == 3
    costs = [Decimal(str(reply["metadata"]["cost_usd"])), Decimal(str(fallback["metadata"]["cost_usd"]))]
    costs.append(Decimal(str(events[-1]["cost_usd"])))
    assert abs(Decimal(str(delta("saaslitellm_provider_cost_usd_total"))) - sum(costs)) < Decimal("1e-9")
    assert delta("saaslitellm_llm_tokens_total", kind="completion") > 0


def test_the_gateways_metrics_need_the_admin_key_and_a_process_port_does_not(stack, api):
    """The gateway is public; the metrics hold the fleet's costs and credits. A scrape of a
    process's own port, inside the deployment, needs no key."""
    team = rest_team(api)
    for headers in ({}, team.headers, {"X-Admin-Key": "sk-admin-wrong"}, {"X-Saaslitellm-Gateway": ""}):
        refused = requests.get(f"{stack.api_url}/metrics", headers=headers, timeout=10)
        assert refused.status_code == 401, (headers, refused.text)
        assert "admin key" in refused.json()["message"] and "saaslitellm_" not in refused.text
        assert refused.json()["details"][0]["reason"] == "ADMIN_KEY_REQUIRED"  # as every refusal of the API
    bearer = requests.get(f"{stack.api_url}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert bearer.status_code == 200 and "saaslitellm_credits_charged_total" in bearer.text
    direct = requests.get(f"http://127.0.0.1:{stack.metrics_ports[0]}/metrics", timeout=10)
    assert direct.status_code == 200 and "saaslitellm_credits_charged_total" in direct.text


def test_calls_on_a_model_without_a_price_are_recorded_at_zero_and_reported(stack, api):
    """LiteLLM reports no cost for a model it has no price for. Such calls are recorded at
    $0, counted per model and named in the log with what to do; a model priced at 0 in
    LiteLLM's model info is free, not unpriced."""
    unpriced = rest_team(api, models=("fake-unpriced",))
    free = rest_team(api, models=("fake-free",))
    ISSUED_KEYS.extend([unpriced.key, free.key])
    before = scrape(stack)

    job = post(api, "/jobs/create", {"job_type": "unpriced"}, unpriced.headers).json()
    reply = post(
        api, f"/jobs/{job['job_id']}/llm-call", {"messages": [{"role": "user", "content": "hi"}]}, unpriced.headers
    ).json()
    events = stream(api, job["job_id"], unpriced.headers, "story [fake tokens=6 chunks=3]")
    free_job = post(api, "/jobs/create", {"job_type": "free"}, free.headers).json()
    free_reply = post(
        api, f"/jobs/{free_job['job_id']}/llm-call", {"messages": [{"role": "user", "content": "hi"}]}, free.headers
    ).json()
    after = scrape(stack)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert reply["metadata"]["tokens_used"] > 0 and reply["metadata"].get("cost_usd", 0) == 0
    assert events[-1]["done"] is True and events[-1].get("cost_usd", 0) == 0
    assert free_reply["metadata"]["tokens_used"] > 0 and free_reply["metadata"].get("cost_usd", 0) == 0
    assert delta("saaslitellm_llm_calls_unpriced_total", model="fake-unpriced") == 2
    assert delta("saaslitellm_llm_calls_unpriced_total", model="fake-free") == 0
    assert delta("saaslitellm_llm_calls_unpriced_total", model="fake-gpt") == 0
    warnings = [
        line
        for path in stack.logs.glob("server*.log")
        for line in path.read_text().splitlines()
        if "fake-unpriced" in line and "input_cost_per_token" in line
    ]
    assert 1 <= len(warnings) <= len(stack.servers)  # once per process that saw such a call
    assert all(json.loads(line)["level"] == "WARNING" for line in warnings)
    assert not any(
        "fake-free" in line and "input_cost_per_token" in line
        for path in stack.logs.glob("server*.log")
        for line in path.read_text().splitlines()
    )


def test_the_request_id_reaches_the_client_and_the_log_line(stack, api):
    team = rest_team(api)
    ISSUED_KEYS.append(team.key)
    job = post(api, "/jobs/create", {"job_type": "logs"}, team.headers)
    call = post(
        api, f"/jobs/{job.json()['job_id']}/llm-call", {"messages": [{"role": "user", "content": "hi"}]}, team.headers
    )
    assert call.status_code == 200
    request_id = call.headers["x-request-id"]
    assert call.raw.headers.getlist("x-request-id") == [request_id]  # Envoy's id, once

    # Native gRPC, straight to the server: the server makes the id and sends it back.
    with grpc.insecure_channel(stack.grpc_target) as channel:
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        _, native = stub.GetJob.with_call(
            job_service_pb2.GetJobRequest(job_id=job.json()["job_id"]),
            metadata=(("authorization", team.headers["Authorization"]),),
        )
    native_id = dict(native.initial_metadata())["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", native_id)

    lines = access_lines(stack, request_id, native_id)
    line = lines[request_id]
    assert line["rpc"] == "JobService/LLMCall"
    assert line["code"] == "OK" and line["reason"] == ""
    assert line["team_id"] == team.team_id
    assert line["job_id"] == job.json()["job_id"]
    assert line["model"] == team.alias and line["upstream_model"] == "fake-gpt"
    assert 0 < line["latency_ms"] < 30_000
    assert line["level"] == "INFO" and line["timestamp"]
    native_line = lines[native_id]
    assert native_line["rpc"] == "JobService/GetJob" and native_line["team_id"] == team.team_id

    refused = post(api, f"/jobs/{job.json()['job_id']}/llm-call", {"messages": []}, team.headers)
    assert refused.status_code == 400
    failed = access_lines(stack, refused.headers["x-request-id"])[refused.headers["x-request-id"]]
    assert failed["code"] == "INVALID_ARGUMENT" and failed["reason"] == "INVALID_REQUEST"


def test_server_logs_are_json_lines_without_per_request_library_noise(stack):
    for path in stack.logs.glob("server*.log"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            assert {"level", "logger", "message", "timestamp"} <= record.keys()
            assert record["level"] != "INFO" or not record["logger"].startswith(("aiohttp", "httpx", "httpcore")), (
                record
            )


def test_no_secret_in_any_log_of_the_run(stack, api):
    """Runs late in the session (e2e files after the client tests): every log the stack
    wrote so far, after a round of requests with good, bad and revoked keys."""
    team = rest_team(api)
    ISSUED_KEYS.append(team.key)
    post(api, "/jobs/create", {"job_type": "secrets"}, team.headers)
    post(api, "/jobs/create", {"job_type": "secrets"}, {"Authorization": f"Bearer {team.key}x"})
    post(api, "/organizations/create", {"organization_id": "x"}, {"X-Admin-Key": ADMIN_KEY + "x"})
    keys = requests.get(f"{api}/teams/{team.team_id}/keys", headers=ADMIN_HEADERS, timeout=10).json()["keys"]
    post(api, f"/teams/{team.team_id}/keys/{keys[0]['key_id']}/revoke", {}, ADMIN_HEADERS)
    post(api, "/jobs/create", {"job_type": "secrets"}, team.headers)
    hook = post(api, "/webhooks/create", {"url": "http://127.0.0.1:9/h", "event_types": ["job.failed"]}, ADMIN_HEADERS)
    ISSUED_KEYS.append(hook.json()["secret"])
    requests.delete(f"{api}/webhooks/{hook.json()['endpoint']['endpoint_id']}", headers=ADMIN_HEADERS, timeout=10)

    secrets = [ADMIN_KEY, stack.config.litellm_master_key, stack.secrets_key, *ISSUED_KEYS]
    key_shaped = re.compile(r"(sk-|whsec_)[A-Za-z0-9_\-+/]{20,}")
    logs = sorted(stack.logs.glob("*.log"))
    assert {p.name for p in logs} >= {"server.log", "envoy.log", "litellm.log", "fakeprovider.log"}
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret[:-4] not in text, f"a secret is in {path.name}"
        assert not key_shaped.search(text), (
            f"something key-shaped is in {path.name}: {key_shaped.search(text)[0][:8]}..."
        )


def test_server_processes_leave_their_start_up_objects_out_of_garbage_collection(stack):
    # A full collection over the start-up objects takes tens of milliseconds, a stall for
    # every call in flight; the server freezes them once it serves (server/app.py, run).
    frozen = []
    for path in stack.logs.glob("server*.log"):
        for line in path.read_text().splitlines():
            found = re.fullmatch(r"start-up objects left out of garbage collection: (\d+)", json.loads(line)["message"])
            if found:
                frozen.append(int(found.group(1)))
    assert frozen and min(frozen) > 10_000
