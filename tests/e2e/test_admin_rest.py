"""The admin API over REST through real Envoy, with the real LiteLLM proxy behind the
server: every route refuses requests without the admin key and leaks nothing; CRUD with
partial updates; keys across two server processes; usage with real costs; and no secret
in any log."""

from __future__ import annotations

import ipaddress
from decimal import Decimal

import grpc
import pytest
import requests
from google.api import annotations_pb2

from devstack.processes import free_port
from saaslitellm.v1 import admin_service_pb2, job_service_pb2, job_service_pb2_grpc
from tests.conftest import ADMIN_KEY, unique
from tests.e2e.conftest import ADMIN_HEADERS, admin_post
from tests.e2e.conftest import rest_team as tenant

ISSUED: list[str] = []  # every virtual key this module saw, for the log check


def admin_routes() -> list[tuple[str, str]]:
    """(HTTP method, path with placeholders filled) of every AdminService binding."""
    routes = []
    service = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
    for method in service.methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        for binding in (rule, *rule.additional_bindings):
            verb = binding.WhichOneof("pattern")
            path = getattr(binding, verb)
            for name in ("organization_id", "team_id", "group_name", "model_alias", "key_id"):
                path = path.replace("{" + name + "}", "x")
            routes.append((verb.upper(), path))
    return routes


def call(api: str, verb: str, path: str, body=None, headers=None, **params) -> requests.Response:
    url = f"{api.removesuffix('/api')}{path}" if path.startswith("/api") else f"{api}{path}"
    return requests.request(verb, url, json=body, headers=headers or {}, params=params or None, timeout=30)


def reason(response: requests.Response) -> str:
    infos = [d for d in response.json().get("details", []) if d.get("@type", "").endswith("ErrorInfo")]
    return infos[0]["reason"] if infos else ""


def test_every_admin_route_needs_the_admin_key_and_leaks_nothing(api):
    routes = admin_routes()
    assert len(routes) >= 40
    for headers in ({}, {"X-Admin-Key": ADMIN_KEY + "-wrong"}, {"Authorization": "Bearer sk-not-the-admin-key"}):
        for verb, path in routes:
            body = None if verb in ("GET", "DELETE") else {}
            response = call(api, verb, path, body, headers)
            assert response.status_code == 401, (verb, path, response.text)
            assert set(response.json()) == {"code", "message", "details"} and reason(response) == "ADMIN_KEY_REQUIRED"
            assert ADMIN_KEY not in response.text


def test_crud_over_rest_with_partial_updates(api):
    org = unique("org")
    admin_post(api, "/organizations/create", {"organization_id": org, "name": "ACME", "metadata": {"tier": "gold"}})
    patched = call(api, "PATCH", f"/organizations/{org}", {"name": "ACME Corp"}, ADMIN_HEADERS)
    assert patched.status_code == 200 and patched.json()["metadata"] == {"tier": "gold"}
    put = call(api, "PUT", f"/organizations/{org}", {"metadata": {}}, ADMIN_HEADERS).json()
    assert put["name"] == "ACME Corp" and put["metadata"] == {}

    catalog = call(api, "GET", "/catalog/models", headers=ADMIN_HEADERS).json()
    assert {"fake-gpt", "fake-gpt-backup", "fake-free", "fake-unpriced"} <= set(catalog["models"])
    # LiteLLM's model info prices fake-free at 0 (free) and fake-unpriced not at all.
    assert catalog["unpriced_models"] == ["fake-unpriced"]
    unknown = call(api, "POST", "/models/create", {"model_alias": unique("A"), "actual_model": "gpt-9"}, ADMIN_HEADERS)
    assert unknown.status_code == 400 and "actual_model" in unknown.json()["message"]
    assert any(
        v["field"] == "actual_model"
        for d in unknown.json()["details"]
        for v in d.get("fieldViolations", d.get("field_violations", []))
    )

    group, alias = unique("grp"), unique("Agent")
    admin_post(api, "/model-access-groups/create", {"group_name": group})
    admin_post(api, "/models/create", {"model_alias": alias, "actual_model": "fake-gpt"})
    linked = call(api, "POST", f"/models/{alias}/access-groups/add", {"access_groups": [group]}, ADMIN_HEADERS).json()
    assert linked["access_groups"] == [group]
    members = call(api, "GET", f"/model-access-groups/{group}", headers=ADMIN_HEADERS).json()
    assert members["model_aliases"] == [alias]

    team_id = unique("team")
    created = admin_post(
        api,
        "/teams/create",
        {
            "organization_id": org,
            "team_id": team_id,
            "access_groups": [group],
            "credits_allocated": 5,
            "default_model": alias,
        },
    )
    ISSUED.append(created["virtual_key"])
    team = call(api, "PATCH", f"/teams/{team_id}", {"markup_percent": "25", "status": "paused"}, ADMIN_HEADERS).json()
    assert team["markup_percent"] == "25" and team["status"] == "PAUSED"
    assert team["default_model"] == alias and team["credits_allocated"] == 5 and "virtual_key" not in team
    cleared = call(api, "PATCH", f"/teams/{team_id}", {"default_model": "", "status": "ACTIVE"}, ADMIN_HEADERS).json()
    assert cleared["default_model"] == "" and cleared["markup_percent"] == "25" and cleared["status"] == "ACTIVE"
    bad = call(api, "PATCH", f"/teams/{team_id}", {"credits_per_dollar": "lots"}, ADMIN_HEADERS)
    assert bad.status_code == 400 and reason(bad) == "INVALID_REQUEST" and "credits_per_dollar" in bad.json()["message"]

    listed = call(api, "GET", f"/organizations/{org}/teams", headers=ADMIN_HEADERS).json()
    assert [t["team_id"] for t in listed["teams"]] == [team_id] and listed["next_page_token"] == ""
    paused = call(api, "GET", "/teams", headers=ADMIN_HEADERS, organization_id=org, status="PAUSED").json()
    assert paused["teams"] == []
    admin_post(api, "/organizations/create", {"organization_id": unique("org"), "name": "Another"})
    page = call(api, "GET", "/organizations", headers=ADMIN_HEADERS, page_size=1).json()
    assert len(page["organizations"]) == 1 and page["next_page_token"]
    rest = call(api, "GET", "/organizations", headers=ADMIN_HEADERS, page_size=1, page_token=page["next_page_token"])
    assert rest.json()["organizations"][0]["organization_id"] > page["organizations"][0]["organization_id"]

    trail = call(api, "GET", "/audit-log", headers=ADMIN_HEADERS, resource_type="team", resource_id=team_id).json()
    actions = [e["action"] for e in trail["entries"]]
    assert actions == ["update", "update", "create"]
    assert trail["entries"][0]["request_id"] and trail["entries"][0]["actor"] == "admin"

    archived = call(api, "DELETE", f"/teams/{team_id}", headers=ADMIN_HEADERS).json()
    assert archived["outcome"] == "ARCHIVED" and archived["keys_revoked"] == 1  # the ledger has its allocation
    assert call(api, "DELETE", f"/organizations/{org}", headers=ADMIN_HEADERS).json()["outcome"] == "ARCHIVED"
    deleted = call(api, "DELETE", f"/models/{alias}", headers=ADMIN_HEADERS, force="true").json()
    assert deleted["model_alias"] == alias


def rest_team(api: str, credits: int = 10, **team_fields) -> tuple[str, str, str]:
    org, group, alias, team_id = unique("org"), unique("grp"), unique("Agent"), unique("team")
    admin_post(api, "/organizations/create", {"organization_id": org, "name": "O"})
    admin_post(api, "/model-access-groups/create", {"group_name": group})
    admin_post(api, "/models/create", {"model_alias": alias, "actual_model": "fake-gpt", "access_groups": [group]})
    created = admin_post(
        api,
        "/teams/create",
        {
            "organization_id": org,
            "team_id": team_id,
            "access_groups": [group],
            "credits_allocated": credits,
            **team_fields,
        },
    )
    ISSUED.append(created["virtual_key"])
    return team_id, created["key_id"], created["virtual_key"]


def authenticated(api: str, key: str) -> bool:
    response = call(
        api, "GET", "/jobs/00000000-0000-4000-8000-000000000000", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code in (401, 404), response.text
    return response.status_code == 404


def test_key_lifecycle_over_rest_and_across_two_server_processes(api, stack):
    team_id, key_id, key = rest_team(api)
    staging = call(api, "POST", f"/teams/{team_id}/keys/create", {"name": "staging"}, ADMIN_HEADERS).json()
    ISSUED.append(staging["virtual_key"])
    keys = call(api, "GET", f"/teams/{team_id}/keys", headers=ADMIN_HEADERS).json()["keys"]
    assert [k["name"] for k in keys] == ["staging", "default"] and all(k["state"] == "ACTIVE" for k in keys)
    assert key not in str(keys) and staging["virtual_key"] not in str(keys)

    # A second server process on the same database, reached over native gRPC.
    port = free_port()
    extra = stack.start_server(port, name="server-admin-extra")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            other = job_service_pb2_grpc.JobServiceStub(channel)

            def accepted_by_other(secret: str) -> bool:
                try:
                    other.GetJob(
                        job_service_pb2.GetJobRequest(job_id="00000000-0000-4000-8000-000000000000"),
                        metadata=(("authorization", f"Bearer {secret}"),),
                        timeout=10,
                    )
                except grpc.RpcError as error:
                    assert error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAUTHENTICATED)
                    return error.code() == grpc.StatusCode.NOT_FOUND
                raise AssertionError("a random job id was found")

            for _ in range(2):  # the second round is served from both caches
                assert authenticated(api, key) and accepted_by_other(key)
            revoked = call(api, "POST", f"/teams/{team_id}/keys/{key_id}/revoke", {}, ADMIN_HEADERS).json()
            assert revoked["state"] == "REVOKED"
            assert not accepted_by_other(key) and not authenticated(api, key)
            assert authenticated(api, staging["virtual_key"]) and accepted_by_other(staging["virtual_key"])

            rotated = call(
                api,
                "POST",
                f"/teams/{team_id}/keys/{staging['key']['key_id']}/rotate",
                {"grace_period_seconds": 600},
                ADMIN_HEADERS,
            ).json()
            ISSUED.append(rotated["virtual_key"])
            assert rotated["previous_key"]["replaced_by_key_id"] == rotated["key"]["key_id"]
            for secret in (staging["virtual_key"], rotated["virtual_key"]):
                assert authenticated(api, secret) and accepted_by_other(secret)
    finally:
        extra.stop()
        stack.children.remove(extra)
        stack.servers.remove(extra)
        stack.grpc_ports.remove(port)


def test_usage_reports_real_costs_and_margin(api):
    team_id, _, key = rest_team(api, markup_percent="50")
    headers = {"Authorization": f"Bearer {key}"}
    job = call(api, "POST", "/jobs/create", {"job_type": "report"}, headers).json()
    for _ in range(2):
        reply = call(
            api, "POST", f"/jobs/{job['job_id']}/llm-call", {"messages": [{"role": "user", "content": "hi"}]}, headers
        )
        assert reply.status_code == 200, reply.text
    assert call(api, "POST", f"/jobs/{job['job_id']}/complete", {"status": "completed"}, headers).status_code == 200

    report = call(api, "GET", f"/teams/{team_id}/usage", headers=ADMIN_HEADERS).json()
    totals = report["totals"]
    assert totals["jobs"] == "1" and totals["jobs_completed"] == "1" and totals["calls"] == "2"
    assert totals["credits_charged"] == "1" and int(totals["total_tokens"]) > 0
    provider, billed = Decimal(totals["provider_cost_usd"]), Decimal(totals["billed_cost_usd"])
    assert provider > 0 and billed == provider * Decimal("1.5")
    assert Decimal(totals["margin_usd"]) == billed - provider
    assert Decimal(totals["provider_cost_usd_per_credit"]) == provider
    assert [t["job_type"] for t in report["job_types"]] == ["report"]
    bad = call(api, "GET", f"/teams/{team_id}/usage", headers=ADMIN_HEADERS, start_date="31/12/2026")
    assert bad.status_code == 400 and "start_date" in bad.json()["message"]
    unknown_param = call(api, "GET", f"/teams/{team_id}/usage", headers=ADMIN_HEADERS, secret="x")
    assert unknown_param.status_code == 400


@pytest.mark.parametrize("component", ["server", "envoy", "litellm", "fakeprovider"])
def test_no_secret_reaches_any_log(api, stack, component):
    team_id, key_id, key = rest_team(api)  # plus every key the tests above issued
    assert call(api, "POST", "/jobs/create", {"job_type": "log"}, {"Authorization": f"Bearer {key}"}).status_code == 200
    call(api, "POST", f"/teams/{team_id}/keys/{key_id}/revoke", {}, ADMIN_HEADERS)
    assert call(api, "POST", "/jobs/create", {"job_type": "log"}, {"Authorization": f"Bearer {key}"}).status_code == 401
    logs = sorted(stack.logs.glob(f"{component}*.log"))
    assert logs, f"no {component} log in {stack.logs}"
    text = "\n".join(path.read_text(errors="replace") for path in logs)
    for secret in (*ISSUED, ADMIN_KEY):
        assert secret not in text and secret[3:] not in text
    if component in ("server", "envoy"):
        assert stack.config.litellm_master_key not in text


def test_a_teams_call_limit_over_rest_is_a_429_with_its_reason_and_delay(api):
    team = tenant(api)
    patched = call(api, "PATCH", f"/teams/{team.team_id}", {"calls_per_minute": 2}, ADMIN_HEADERS)
    assert patched.status_code == 200 and patched.json()["calls_per_minute"] == 2
    job = call(api, "POST", "/jobs/create", {"job_type": "limited"}, team.headers).json()
    body = {"messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        assert call(api, "POST", f"/jobs/{job['job_id']}/llm-call", body, team.headers).status_code == 200
    refused = call(api, "POST", f"/jobs/{job['job_id']}/llm-call", body, team.headers)
    assert refused.status_code == 429, refused.text
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in refused.json()["details"]}
    assert details["ErrorInfo"]["reason"] == "TEAM_RATE_LIMITED"
    assert details["ErrorInfo"]["metadata"] == {"team_id": team.team_id, "calls_per_minute": "2"}
    assert 25 <= float(details["RetryInfo"]["retry_delay"].rstrip("s")) <= 30
    assert 25 <= int(refused.headers["retry-after"]) <= 30  # whole seconds, for any HTTP client
    assert refused.headers["x-should-retry"] == "true"
    costs = call(api, "GET", f"/jobs/{job['job_id']}/costs", headers=team.headers).json()
    assert costs["costs"]["total_calls"] == 2  # the refused call left nothing
    bad = call(api, "PATCH", f"/teams/{team.team_id}", {"calls_per_minute": -1}, ADMIN_HEADERS)
    assert bad.status_code == 400 and "calls_per_minute" in bad.json()["message"]


def test_the_audit_peer_is_the_address_the_gateway_saw_not_one_the_client_wrote(api):
    org = unique("org")
    created = requests.post(
        f"{api}/organizations/create",
        json={"organization_id": org, "name": "Forged"},
        headers={**ADMIN_HEADERS, "X-Forwarded-For": "6.6.6.6"},
        timeout=10,
    )
    assert created.status_code == 200, created.text
    entry = call(api, "GET", "/audit-log", headers=ADMIN_HEADERS, resource_type="organization", resource_id=org)
    peer = entry.json()["entries"][0]["peer"]
    # Envoy records a loopback client as its host's own address (192.0.2.2 on these machines).
    assert peer and "6.6.6.6" not in peer, peer
    # ... and the server believes it (Envoy is a trusted proxy): an address, not its own
    # connection's `ipv4:127.0.0.1:port`.
    assert ipaddress.ip_address(peer), peer
