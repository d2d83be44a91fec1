"""Tenant isolation over every team-facing REST route: another team's key or ids get
NOT_FOUND or PERMISSION_DENIED, never data, and change nothing."""

from __future__ import annotations

import psycopg
import requests

from tests.e2e.conftest import rest_team

MESSAGES = {"messages": [{"role": "user", "content": "hi"}]}


def snapshot(url: str, team_id: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT t.credits_allocated, t.credits_used, t.credits_reserved,"
            " (SELECT count(*) FROM jobs WHERE team_id = t.team_id),"
            " (SELECT count(*) FROM llm_calls WHERE team_id = t.team_id),"
            " (SELECT count(*) FROM credit_ledger WHERE team_id = t.team_id)"
            " FROM teams t WHERE t.team_id = %s",
            (team_id,),
        ).fetchone()


def test_another_teams_key_never_reaches_a_teams_data(stack, api):
    victim, intruder = rest_team(api), rest_team(api)
    job = requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=victim.headers, timeout=10).json()
    requests.post(f"{api}/jobs/{job['job_id']}/llm-call", json=MESSAGES, headers=victim.headers, timeout=30)
    before = snapshot(stack.postgres.url, victim.team_id)
    job_id, team_id = job["job_id"], victim.team_id
    attempts = [
        ("GET", f"/jobs/{job_id}", None, {404}),
        ("GET", f"/jobs/{job_id}/costs", None, {404}),
        ("POST", f"/jobs/{job_id}/llm-call", MESSAGES, {404}),
        ("POST", f"/jobs/{job_id}/llm-call-stream", MESSAGES, {404}),
        ("POST", f"/jobs/{job_id}/complete", {"status": "completed"}, {404}),
        ("POST", "/jobs/create", {"team_id": team_id, "job_type": "t"}, {403}),
        ("POST", "/jobs/create-and-call", {"team_id": team_id, "job_type": "t", **MESSAGES}, {403}),
        ("POST", "/jobs/create-and-call-stream", {"team_id": team_id, "job_type": "t", **MESSAGES}, {403}),
        ("GET", f"/teams/{team_id}/models", None, {403}),
        ("GET", f"/credits/teams/{team_id}/balance", None, {403}),
        ("GET", f"/credits/teams/{team_id}/transactions", None, {403}),
        ("POST", f"/credits/teams/{team_id}/add", {"credits": 5}, {401}),
        ("GET", f"/teams/{team_id}", None, {401}),
        ("GET", f"/teams/{team_id}/keys", None, {401}),
        ("GET", f"/teams/{team_id}/jobs", None, {403}),
        ("PATCH", f"/jobs/{job_id}/metadata", {"metadata": {"x": 1}}, {404}),
    ]
    for method, path, body, statuses in attempts:
        response = requests.request(method, f"{api}{path}", json=body, headers=intruder.headers, timeout=30)
        assert response.status_code in statuses, (path, response.status_code, response.text)
        text = response.text
        assert set(response.json()) == {"code", "message", "details"}, path
        for secret in (victim.key, victim.alias) + ((job_id,) if response.status_code != 404 else ()):
            assert secret not in text, (path, secret)
    assert snapshot(stack.postgres.url, victim.team_id) == before


def test_one_teams_failing_calls_do_not_take_the_model_out_for_the_others(api):
    """LiteLLM's router cooled a model down after one failing request (a provider's 401, 429
    or 5xx): every team's next calls were refused as rate limited for seconds (a bug hunt).
    The proxy runs without cooldowns (gateway/litellm.yaml); our server reports each
    provider error as it is and tries the alias's fallbacks itself."""
    failing, other = rest_team(api), rest_team(api)

    def call(team, text: str) -> requests.Response:
        job = requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=team.headers, timeout=10).json()
        body = {"messages": [{"role": "user", "content": text}]}
        return requests.post(f"{api}/jobs/{job['job_id']}/llm-call", json=body, headers=team.headers, timeout=30)

    for status, code in ((401, 503), (500, 503), (429, 429)):
        for _ in range(3):
            refused = call(failing, f"[fake status={status}] x")
            assert refused.status_code == code, refused.text
            if status != 429:
                assert f"(HTTP {status})" in refused.json()["message"], refused.text
        served = call(other, "hello")
        assert served.status_code == 200, (status, served.text)
