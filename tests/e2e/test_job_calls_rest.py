"""GET /api/jobs/{job_id}/calls through Envoy: every call of a job, a page at a time, where
the job views (GET /api/jobs/{job_id}, .../costs, .../complete) show only the first
MAX_EMBEDDED_CALLS. The calls are written into PostgreSQL directly, as the server records
them."""

from __future__ import annotations

import psycopg
import requests

from server.services.jobs import MAX_EMBEDDED_CALLS
from tests.e2e.conftest import ADMIN_HEADERS, RestTeam, rest_team

CALLS = MAX_EMBEDDED_CALLS + 700


def seed_calls(url: str, job_id: str, team: RestTeam, count: int) -> list[str]:
    """`count` calls in the open job, two at each created_at; their ids as the views order them."""
    with psycopg.connect(url) as conn:
        conn.execute(
            """
            INSERT INTO llm_calls (call_id, job_id, team_id, status, purpose, model_alias, prompt_tokens,
                                   completion_tokens, billed_cost_usd, created_at)
            SELECT gen_random_uuid(), %(job)s, %(team)s, 'succeeded', 'step ' || n, %(alias)s, 2, 3, 0.000001,
                   now() - interval '1 hour' + (n / 2) * interval '1 millisecond'
              FROM generate_series(1, %(count)s) AS n
            """,
            {"job": job_id, "team": team.team_id, "alias": team.alias, "count": count},
        )
        conn.execute("UPDATE jobs SET status = 'in_progress', started_at = now() WHERE job_id = %s", (job_id,))
        rows = conn.execute(
            "SELECT call_id FROM llm_calls WHERE job_id = %s ORDER BY created_at, call_id", (job_id,)
        ).fetchall()
    return [str(row[0]) for row in rows]


def every_call(api: str, job_id: str, headers: dict[str, str], page_size: int) -> list[str]:
    seen: list[str] = []
    params = {"page_size": page_size}
    while True:
        response = requests.get(f"{api}/jobs/{job_id}/calls", params=params, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["calls"]) <= page_size
        seen += [call["call_id"] for call in body["calls"]]
        if not body["next_page_token"]:
            return seen
        params = {"page_size": page_size, "page_token": body["next_page_token"]}


def test_a_jobs_calls_page_through_rest_and_its_views_show_the_first(stack, api):
    team = rest_team(api)
    job = requests.post(f"{api}/jobs/create", json={"job_type": "loop"}, headers=team.headers, timeout=10).json()
    job_id = job["job_id"]
    ids = seed_calls(stack.postgres.url, job_id, team, CALLS)

    shown = requests.get(f"{api}/jobs/{job_id}", headers=team.headers, timeout=30).json()
    assert [c["call_id"] for c in shown["calls"]] == ids[:MAX_EMBEDDED_CALLS]
    assert shown["costs"]["total_calls"] == CALLS and shown["costs"]["total_tokens"] == 5 * CALLS

    assert every_call(api, job_id, team.headers, 300) == ids
    assert every_call(api, job_id, ADMIN_HEADERS, MAX_EMBEDDED_CALLS) == ids  # the operator's key reads it too
    first = requests.get(f"{api}/jobs/{job_id}/calls", headers=team.headers, timeout=30).json()
    assert first["calls"] == shown["calls"][:50]  # 50 by default, each as GetJob shows it

    done = requests.post(
        f"{api}/jobs/{job_id}/complete", json={"status": "completed"}, headers=team.headers, timeout=30
    )
    assert done.status_code == 200, done.text
    assert len(done.json()["calls"]) == MAX_EMBEDDED_CALLS and done.json()["costs"]["total_calls"] == CALLS
    assert every_call(api, job_id, team.headers, MAX_EMBEDDED_CALLS) == ids


def test_another_teams_key_and_bad_requests(api):
    team, intruder = rest_team(api), rest_team(api)
    job_id = requests.post(f"{api}/jobs/create", json={"job_type": "t"}, headers=team.headers, timeout=10).json()[
        "job_id"
    ]
    refused = requests.get(f"{api}/jobs/{job_id}/calls", headers=intruder.headers, timeout=10)
    assert refused.status_code == 404 and refused.json()["code"] == 5
    for params, field in (({"page_token": "nope"}, "page_token"), ({"page_size": -1}, "page_size")):
        bad = requests.get(f"{api}/jobs/{job_id}/calls", params=params, headers=team.headers, timeout=10)
        assert bad.status_code == 400 and field in bad.json()["message"], bad.text
    malformed = requests.get(f"{api}/jobs/not-a-uuid/calls", headers=team.headers, timeout=10)
    assert malformed.status_code == 400 and "job_id" in malformed.json()["message"]
    unauthenticated = requests.get(f"{api}/jobs/{job_id}/calls", timeout=10)
    assert unauthenticated.status_code == 401
    assert requests.post(f"{api}/jobs/{job_id}/calls", headers=team.headers, timeout=10).status_code == 405
