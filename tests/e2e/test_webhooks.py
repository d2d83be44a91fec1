"""Webhooks through the whole stack: events written with the change they report, sent
signed (Standard Webhooks) to a real HTTP receiver, retried with the same id, never
stored or shown with their secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import requests

from tests.conftest import unique
from tests.e2e.conftest import ADMIN_HEADERS, RestTeam, admin_post, rest_team


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server that records what it is sent and answers the statuses it is told."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in order, then 204
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout), self.received
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            with state.arrived:
                state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                status = state.statuses.pop(0) if state.statuses else 204
                state.arrived.notify_all()
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def verify(secret: str, received: Received) -> None:
    """What a receiver does, per the Standard Webhooks specification."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}.".encode() + received.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{expected}" in received.headers["webhook-signature"].split(" ")
    assert abs(time.time() - int(received.headers["webhook-timestamp"])) < 60


def organization_of(api: str, team: RestTeam) -> str:
    return requests.get(f"{api}/teams/{team.team_id}", headers=ADMIN_HEADERS, timeout=10).json()["organization_id"]


def endpoint_for(api: str, team: RestTeam, url: str, *events: str) -> dict:
    return admin_post(
        api,
        "/webhooks/create",
        {"url": url, "event_types": list(events), "organization_id": organization_of(api, team)},
    )


def run_job(api: str, team: RestTeam, status: str = "completed", error: str = "") -> str:
    job = requests.post(f"{api}/jobs/create", json={"job_type": "hooked"}, headers=team.headers, timeout=10).json()
    done = requests.post(
        f"{api}/jobs/{job['job_id']}/complete",
        json={"status": status, "error_message": error},
        headers=team.headers,
        timeout=10,
    )
    assert done.status_code == 200, done.text
    return job["job_id"]


def deliveries(api: str, endpoint_id: str) -> list[dict]:
    reply = requests.get(f"{api}/webhooks/{endpoint_id}/deliveries", headers=ADMIN_HEADERS, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()["deliveries"]


def test_low_credits_alert_once_per_crossing_signed(api, receiver):
    team = rest_team(api, credits=5)
    patched = requests.patch(
        f"{api}/teams/{team.team_id}", json={"low_credit_threshold": 3}, headers=ADMIN_HEADERS, timeout=10
    )
    assert patched.json()["low_credit_threshold"] == 3
    created = endpoint_for(api, team, receiver.url, "team.credits_low")
    endpoint_id, secret = created["endpoint"]["endpoint_id"], created["secret"]
    assert secret.startswith("whsec_") and created["endpoint"]["secret_prefix"] == secret[:10]

    run_job(api, team)  # 5 -> 4: above the threshold
    assert deliveries(api, endpoint_id) == []  # written with the charge, so known at once
    run_job(api, team)  # 4 -> 3: crossed
    run_job(api, team)  # 3 -> 2: still below, no second alert
    assert len(deliveries(api, endpoint_id)) == 1

    (first,) = receiver.wait_for(1)
    verify(secret, first)
    assert first.event["type"] == "team.credits_low"
    assert first.event["data"] == {
        "team_id": team.team_id,
        "organization_id": organization_of(api, team),
        "credits_allocated": 5,
        "credits_remaining": 3,
        "low_credit_threshold": 3,
    }
    (delivered,) = deliveries(api, endpoint_id)
    assert delivered["event_id"] == first.headers["webhook-id"]
    assert (delivered["status"], delivered["attempts"], delivered["last_status_code"]) == ("delivered", 1, 204)

    # A top-up lifts the team above the threshold; the next crossing alerts again.
    admin_post(api, f"/credits/teams/{team.team_id}/add", {"credits": 2})  # 2 -> 4
    run_job(api, team)  # 4 -> 3
    second = receiver.wait_for(2)[1]
    assert second.event["data"]["credits_remaining"] == 3 and second.event["data"]["credits_allocated"] == 7
    assert second.headers["webhook-id"] != first.headers["webhook-id"]


def test_a_failed_job_is_reported(api, receiver):
    team = rest_team(api)
    created = endpoint_for(api, team, receiver.url, "job.failed", "job.expired")
    run_job(api, team)  # completed: not an event
    job_id = run_job(api, team, "failed", "the document was unreadable")
    (received,) = receiver.wait_for(1)
    verify(created["secret"], received)
    assert received.event["type"] == "job.failed"
    assert received.event["data"] == {
        "job_id": job_id,
        "team_id": team.team_id,
        "organization_id": organization_of(api, team),
        "job_type": "hooked",
        "status": "FAILED",
        "error_message": "the document was unreadable",
        "credits_charged": 0,
        "credits_shortfall": 0,
    }


def test_a_completed_job_is_reported_with_its_charge(api, receiver):
    team = rest_team(api)
    created = endpoint_for(api, team, receiver.url, "job.completed")
    run_job(api, team, "failed")  # not subscribed
    job_id = run_job(api, team)
    (received,) = receiver.wait_for(1)
    verify(created["secret"], received)
    assert received.event["type"] == "job.completed"
    data = received.event["data"]
    assert (data["job_id"], data["status"], data["credits_charged"], data["credits_shortfall"]) == (
        job_id,
        "COMPLETED",
        1,
        0,
    )


def test_a_refunded_job_is_reported_once_with_its_ledger_entry(api, receiver):
    """A receiver billing from job.completed learns of the refund, signed like any event;
    a refund asked for again returns the first and sends nothing more."""
    team = rest_team(api, credits=10)
    created = endpoint_for(api, team, receiver.url, "job.completed", "job.refunded")
    endpoint_id = created["endpoint"]["endpoint_id"]
    job_id = run_job(api, team)
    path = f"/credits/teams/{team.team_id}/jobs/{job_id}/refund"
    refund = admin_post(api, path, {"reason": "customer complaint"})
    completed, refunded = (received for received in receiver.wait_for(2))
    verify(created["secret"], refunded)
    assert completed.event["type"] == "job.completed" and refunded.event["type"] == "job.refunded"
    assert refunded.event["data"] == {
        "job_id": job_id,
        "team_id": team.team_id,
        "organization_id": organization_of(api, team),
        "job_type": "hooked",
        "status": "COMPLETED",
        "credits_charged": 1,
        "credits_refunded": 1,
        "credits_remaining": 10,
        "transaction_id": refund["transaction"]["transaction_id"],
        "reason": "customer complaint",
    }
    again = admin_post(api, path, {"reason": "customer complaint"})
    assert (
        again["already_refunded"] and again["transaction"]["transaction_id"] == refund["transaction"]["transaction_id"]
    )
    assert sorted(d["event_type"] for d in deliveries(api, endpoint_id)) == ["job.completed", "job.refunded"]


def test_a_refused_delivery_is_retried_with_the_same_id(stack, api, receiver):
    team = rest_team(api)
    endpoint_id = endpoint_for(api, team, receiver.url, "job.failed")["endpoint"]["endpoint_id"]
    receiver.statuses = [503]
    run_job(api, team, "failed")
    (first,) = receiver.wait_for(1)

    def pending() -> dict:
        (delivery,) = deliveries(api, endpoint_id)
        return delivery

    deadline = time.monotonic() + 10
    while pending()["attempts"] < 1:  # the attempt is recorded just after the answer
        assert time.monotonic() < deadline
        time.sleep(0.05)
    refused = pending()
    assert (refused["status"], refused["attempts"], refused["last_status_code"]) == ("pending", 1, 503)
    assert "503" in refused["last_error"]
    listed = requests.get(f"{api}/webhooks?page_size=1000", headers=ADMIN_HEADERS, timeout=10).json()["endpoints"]
    (counted,) = [e for e in listed if e["endpoint_id"] == endpoint_id]
    assert (counted["pending_deliveries"], counted["failed_deliveries"]) == (1, 0)
    # The next attempt is 5 s away; move it to now instead of waiting.
    with psycopg.connect(stack.postgres.url, autocommit=True) as conn:
        conn.execute("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE endpoint_id = %s", (endpoint_id,))
    second = receiver.wait_for(2)[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"] and second.body == first.body
    deadline = time.monotonic() + 10
    while pending()["status"] != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert pending()["attempts"] == 2


def test_endpoints_are_checked_listed_without_secrets_and_deleted(stack, api, receiver):
    team = rest_team(api)
    for body, field_name in [
        ({"url": "ftp://example.com", "event_types": ["job.failed"]}, "url"),
        ({"url": "http://user:pw@example.com/", "event_types": ["job.failed"]}, "url"),
        # hosts the resolver cannot encode (IDNA) and ports that are no port: never deliverable
        ({"url": "http://" + "a" * 70 + ".com/", "event_types": ["job.failed"]}, "url"),
        ({"url": "http://a..com/", "event_types": ["job.failed"]}, "url"),
        ({"url": "http://example.com:99999/", "event_types": ["job.failed"]}, "url"),
        ({"url": "http://example.com:abc/", "event_types": ["job.failed"]}, "url"),
        ({"url": "https://example.com/", "event_types": []}, "event_types"),
        ({"url": "https://example.com/", "event_types": ["job.done"]}, "event_types[0]"),
    ]:
        refused = requests.post(f"{api}/webhooks/create", json=body, headers=ADMIN_HEADERS, timeout=10)
        assert refused.status_code == 400 and refused.json()["message"].startswith(f"{field_name}:"), refused.text
    unknown_org = requests.post(
        f"{api}/webhooks/create",
        json={"url": receiver.url, "event_types": ["job.failed"], "organization_id": "no-such-org"},
        headers=ADMIN_HEADERS,
        timeout=10,
    )
    assert unknown_org.status_code == 404
    no_admin = requests.post(f"{api}/webhooks/create", json={}, headers=team.headers, timeout=10)
    assert no_admin.status_code == 401

    created = endpoint_for(api, team, receiver.url, "job.failed")
    endpoint_id, secret = created["endpoint"]["endpoint_id"], created["secret"]
    listed = requests.get(f"{api}/webhooks?page_size=1000", headers=ADMIN_HEADERS, timeout=10)
    assert endpoint_id in listed.text and secret not in listed.text
    with psycopg.connect(stack.postgres.url) as conn:
        sealed = conn.execute(
            "SELECT secret_ciphertext FROM webhook_endpoints WHERE endpoint_id = %s", (endpoint_id,)
        ).fetchone()[0]
        audit = conn.execute("SELECT after FROM admin_audit_log WHERE resource_id = %s", (endpoint_id,)).fetchone()[0]
    assert secret.encode() not in bytes(sealed) and base64.b64decode(secret[6:]) not in bytes(sealed)
    assert secret not in json.dumps(audit) and audit["url"] == receiver.url
    trail = requests.get(
        f"{api}/audit-log",
        params={"resource_type": "webhook_endpoint", "resource_id": endpoint_id},
        headers=ADMIN_HEADERS,
        timeout=10,
    )
    assert [e["action"] for e in trail.json()["entries"]] == ["create"] and secret not in trail.text

    run_job(api, team, "failed")
    assert len(deliveries(api, endpoint_id)) == 1
    gone = requests.delete(f"{api}/webhooks/{endpoint_id}", headers=ADMIN_HEADERS, timeout=10)
    assert gone.status_code == 200
    missing = requests.get(f"{api}/webhooks/{endpoint_id}/deliveries", headers=ADMIN_HEADERS, timeout=10)
    assert missing.status_code == 404


def test_an_endpoint_is_changed_paused_resumed_and_its_failed_deliveries_retried(stack, api, receiver):
    team = rest_team(api)
    created = endpoint_for(api, team, receiver.url, "job.failed")
    endpoint_id, secret = created["endpoint"]["endpoint_id"], created["secret"]

    def patch(body: dict, headers: dict = ADMIN_HEADERS) -> requests.Response:
        return requests.patch(f"{api}/webhooks/{endpoint_id}", json=body, headers=headers, timeout=10)

    for body, field_name in [
        ({"url": "ftp://example.com"}, "url"),
        ({"event_types": ["job.done"]}, "event_types[0]"),
        ({"description": "x" * 5000}, "description"),
    ]:
        refused = patch(body)
        assert refused.status_code == 400 and refused.json()["message"].startswith(f"{field_name}:"), refused.text
    assert patch({"paused": True}, team.headers).status_code == 401
    unknown = requests.patch(f"{api}/webhooks/{uuid.uuid4()}", json={"paused": True}, headers=ADMIN_HEADERS, timeout=10)
    assert unknown.status_code == 404

    paused = patch({"paused": True, "description": "billing"})
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert (body["paused"], body["paused_reason"], body["description"]) == (True, "paused by the operator", "billing")
    assert body["url"] == receiver.url and body["event_types"] == ["job.failed"] and body["paused_at"]

    run_job(api, team, "failed")  # held while paused: sent once resumed
    resumed = patch({"paused": False, "event_types": ["job.failed", "job.completed"]})
    assert resumed.json()["paused"] is False and "paused_at" not in resumed.json()
    (held,) = receiver.wait_for(1)
    verify(secret, held)  # the same secret as before the changes
    assert held.event["type"] == "job.failed"

    # A delivery that fails for good (held, made its 11th, then its 12th refused) goes
    # again when asked.
    assert patch({"paused": True}).status_code == 200
    run_job(api, team, "completed")
    with psycopg.connect(stack.postgres.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE webhook_deliveries SET attempts = 11 WHERE endpoint_id = %s AND status = 'pending'", (endpoint_id,)
        )
    receiver.statuses = [500]
    assert patch({"paused": False}).status_code == 200
    receiver.wait_for(2)
    deadline = time.monotonic() + 10
    while "failed" not in [d["status"] for d in deliveries(api, endpoint_id)]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    retried = requests.post(f"{api}/webhooks/{endpoint_id}/retry", json={}, headers=ADMIN_HEADERS, timeout=10)
    assert retried.status_code == 200 and retried.json() == {"retried": 1}, retried.text
    again = receiver.wait_for(3)[2]
    assert again.event["type"] == "job.completed"
    trail = requests.get(
        f"{api}/audit-log",
        params={"resource_type": "webhook_endpoint", "resource_id": endpoint_id},
        headers=ADMIN_HEADERS,
        timeout=10,
    )
    actions = [e["action"] for e in trail.json()["entries"]]
    assert actions == ["retry_failed", "update", "update", "update", "update", "create"]
    # It delivered a minute ago: the delivery failing for good did not pause it.
    listed = requests.get(f"{api}/webhooks?page_size=1000", headers=ADMIN_HEADERS, timeout=10).json()["endpoints"]
    assert [e["paused"] for e in listed if e["endpoint_id"] == endpoint_id] == [False]


def test_a_call_recorded_after_its_job_completed_is_reported_as_a_late_charge(api, receiver):
    """Under a token budget, a stream outlives its job's completion: job.completed carries
    the charge without it, and job.late_charge what it added, so an operator billing
    from the events bills the whole job."""
    team = rest_team(api, budget_mode="CONSUMPTION_TOKENS", tokens_per_credit=1)
    endpoint_for(api, team, receiver.url, "job.completed", "job.late_charge")
    job_id = requests.post(f"{api}/jobs/create", json={"job_type": "late"}, headers=team.headers, timeout=10).json()[
        "job_id"
    ]
    with requests.post(
        f"{api}/jobs/{job_id}/llm-call-stream",
        json={"messages": [{"role": "user", "content": "x [fake tokens=10 chunks=2 first_delay_ms=0 delay_ms=600]"}]},
        headers=team.headers,
        stream=True,
        timeout=30,
    ) as stream:
        lines = stream.iter_lines()
        while b'"content":""' in (line := next(lines)) or not line.startswith(b"data: "):
            pass  # until the first content: the call is running
        done = requests.post(
            f"{api}/jobs/{job_id}/complete", json={"status": "completed"}, headers=team.headers, timeout=10
        ).json()
        assert done["costs"]["total_calls"] == 0 and done["costs"]["credits_charged"] == 1
        rest = [json.loads(line[6:]) for line in lines if line.startswith(b"data: ")]
    assert rest[-1]["done"] and not rest[-1].get("error")
    completed, late = (received.event for received in receiver.wait_for(2))
    assert completed["type"] == "job.completed" and completed["data"]["credits_charged"] == 1
    job = requests.get(f"{api}/jobs/{job_id}", headers=team.headers, timeout=10).json()
    tokens = job["costs"]["prompt_tokens"] + job["costs"]["completion_tokens"]
    assert late["type"] == "job.late_charge" and late["data"]["job_id"] == job_id
    assert (late["data"]["late_credits_charged"], late["data"]["credits_charged"]) == (tokens - 1, tokens)
    assert job["costs"]["credits_charged"] == tokens


def test_a_key_expiring_soon_is_warned_of_once(stack, api, receiver):
    team = rest_team(api)
    created = endpoint_for(api, team, receiver.url, "team_key.expiring")
    endpoint_id = created["endpoint"]["endpoint_id"]

    def new_key(name: str, days: float) -> dict:
        expires = datetime.now(UTC) + timedelta(days=days)
        body = {"name": name, "expires_at": expires.isoformat().replace("+00:00", "Z")}
        return admin_post(api, f"/teams/{team.team_id}/keys/create", body)

    new_key("later", 30)  # outside the 7-day warning
    soon = new_key("ci", 2)
    (first,) = receiver.wait_for(1)
    verify(created["secret"], first)
    data = first.event["data"]
    assert first.event["type"] == "team_key.expiring"
    assert (data["key_id"], data["team_id"], data["name"]) == (soon["key"]["key_id"], team.team_id, "ci")
    assert data["key_prefix"] == soon["key"]["key_prefix"] and data["expires_at"].endswith("Z")
    assert soon["virtual_key"] not in first.body.decode()

    # Another key expiring soon is warned of by a later sweep; the first is not warned of again.
    other = new_key("batch", 3)
    second = receiver.wait_for(2)[1]
    assert second.event["data"]["key_id"] == other["key"]["key_id"]
    assert sorted(d["event_type"] for d in deliveries(api, endpoint_id)) == ["team_key.expiring"] * 2


def test_a_test_event_checks_a_receiver(api, receiver):
    team = rest_team(api)
    created = endpoint_for(api, team, receiver.url, "job.failed")
    endpoint_id = created["endpoint"]["endpoint_id"]
    sent = requests.post(f"{api}/webhooks/{endpoint_id}/test", json={}, headers=ADMIN_HEADERS, timeout=10)
    assert sent.status_code == 200, sent.text
    assert (sent.json()["event_type"], sent.json()["status"]) == ("webhook.test", "pending")
    (received,) = receiver.wait_for(1)
    verify(created["secret"], received)
    assert received.event["type"] == "webhook.test" and received.event["data"] == {"endpoint_id": endpoint_id}
    assert received.headers["webhook-id"] == sent.json()["event_id"]
    unknown = requests.post(
        f"{api}/webhooks/3f2b1c9e-8a41-4d2b-9a7e-0c5d6e7f8a9b/test", json={}, headers=ADMIN_HEADERS, timeout=10
    )
    assert unknown.status_code == 404


def test_an_organization_with_webhook_endpoints_is_not_deleted_under_them(api, receiver):
    org = unique("org")
    admin_post(api, "/organizations/create", {"organization_id": org, "name": "Hooked"})
    created = requests.post(
        f"{api}/webhooks/create",
        json={"url": receiver.url, "event_types": ["job.failed"], "organization_id": org},
        headers=ADMIN_HEADERS,
        timeout=10,
    )
    assert created.status_code == 200, created.text
    endpoint_id = created.json()["endpoint"]["endpoint_id"]
    refused = requests.delete(f"{api}/organizations/{org}", headers=ADMIN_HEADERS, timeout=10)
    assert refused.status_code == 400 and "webhook endpoint" in refused.json()["message"], refused.text
    assert (
        requests.get(f"{api}/webhooks/{endpoint_id}/deliveries", headers=ADMIN_HEADERS, timeout=10).status_code == 200
    )
    requests.delete(f"{api}/webhooks/{endpoint_id}", headers=ADMIN_HEADERS, timeout=10)
    deleted = requests.delete(f"{api}/organizations/{org}", headers=ADMIN_HEADERS, timeout=10)
    assert deleted.status_code == 200 and deleted.json()["outcome"] == "DELETED"
