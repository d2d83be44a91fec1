"""A job's calls in the dashboard are all there to read: a job's view embeds its first
MAX_EMBEDDED_CALLS calls, so the job detail says when its list is cut and reads the rest
through ListJobCalls (GET /api/jobs/{job_id}/calls), a page at a time. The calls are
written into PostgreSQL directly, as the server records them (as tests/e2e/test_job_calls_rest.py
does), since making thousands through the API would take minutes."""

from __future__ import annotations

import json
import re

import psycopg
import pytest
import requests
from playwright.sync_api import Page, expect

from devstack.stack import Stack
from server.services.jobs import MAX_EMBEDDED_CALLS
from tests.dashboard.conftest import shot, sign_in
from tests.dashboard.test_dashboard import api_requests, make_team

pytestmark = pytest.mark.e2e
# More than two of ListJobCalls' largest pages (1,000): the view's list, then two loads.
CALLS = MAX_EMBEDDED_CALLS + 1_500


def job_with_calls(stack: Stack, job_type: str, count: int) -> tuple[str, list[int]]:
    """A completed job of a new team with `count` calls, two at each created_at (so pages
    end between calls of the same time), each taking a latency of its own (so a row says
    which call it is): the team, and the calls' latencies in the order the views show them."""
    api = f"{stack.api_url}/api"
    team, key = make_team(api)
    auth = {"Authorization": f"Bearer {key}"}
    job_id = requests.post(f"{api}/jobs/create", headers=auth, json={"job_type": job_type}).json()["job_id"]
    with psycopg.connect(stack.postgres.url) as conn:
        alias = conn.execute("SELECT default_model FROM teams WHERE team_id = %s", (team,)).fetchone()[0]
        conn.execute(
            """
            INSERT INTO llm_calls (call_id, job_id, team_id, status, model_alias, prompt_tokens,
                                   completion_tokens, latency_ms, billed_cost_usd, created_at)
            SELECT gen_random_uuid(), %(job)s, %(team)s, 'succeeded', %(alias)s, 2, 3, n, 0.000001,
                   now() - interval '1 hour' + (n / 2) * interval '1 millisecond'
              FROM generate_series(1, %(count)s) AS n
            """,
            {"job": job_id, "team": team, "alias": alias, "count": count},
        )
        conn.execute("UPDATE jobs SET status = 'in_progress', started_at = now() WHERE job_id = %s", (job_id,))
        rows = conn.execute(
            "SELECT latency_ms FROM llm_calls WHERE job_id = %s ORDER BY created_at, call_id", (job_id,)
        ).fetchall()
    done = requests.post(f"{api}/jobs/{job_id}/complete", headers=auth, json={"status": "completed"})
    assert done.status_code == 200, done.text
    assert (len(done.json()["calls"]), done.json()["costs"]["total_calls"]) == (min(count, MAX_EMBEDDED_CALLS), count)
    return team, [row[0] for row in rows]


def open_job(page: Page, team: str, job_type: str):
    page.goto(f"/#/teams/{team}/jobs")
    page.get_by_role("row", name=re.compile(job_type)).click()
    return page.get_by_test_id("job-detail")


def latencies(detail) -> list[int]:
    """The calls the detail lists, each as its latency in ms."""
    cells = detail.locator("tbody tr td:nth-child(6)").all_inner_texts()
    return [int(cell.removesuffix(" ms").replace(",", "")) for cell in cells]


def test_a_cut_list_of_calls_says_so_and_loads_the_rest_page_by_page(page: Page, stack: Stack) -> None:
    team, order = job_with_calls(stack, "agent_loop", CALLS)
    sign_in(page)
    calls_read = api_requests(page, "GET")
    detail = open_job(page, team, "agent_loop")
    shown = detail.get_by_test_id("job-calls-shown")
    more = detail.get_by_role("button", name="Load more calls")
    expect(shown).to_have_text(f"Showing 1,000 of {CALLS:,} calls, oldest first.")
    assert latencies(detail) == order[:MAX_EMBEDDED_CALLS]
    shot(page, "30-job-calls-cut")

    # A load that fails says why and keeps the button; nothing is appended.
    failure = {"code": 14, "message": "upstream connect error", "details": []}
    route = re.compile(r"/api/jobs/[^/]+/calls(\?.*)?$")
    page.route(route, lambda r: r.fulfill(status=503, content_type="application/json", body=json.dumps(failure)))
    more.click()
    expect(detail.get_by_role("alert")).to_contain_text("upstream connect error")
    assert latencies(detail) == order[:MAX_EMBEDDED_CALLS]
    page.unroute(route)

    # The first load reads past the calls already shown to the next thousand...
    calls_read.clear()
    more.click()
    expect(shown).to_have_text(f"Showing 2,000 of {CALLS:,} calls, oldest first.")
    expect(detail.get_by_role("alert")).to_have_count(0)
    assert latencies(detail) == order[:2_000]
    # ...and the next load goes on from its page token: the rest, each call once, in order.
    more.click()
    expect(shown).to_have_text(f"All {CALLS:,} calls shown.")
    expect(more).to_have_count(0)
    assert latencies(detail) == order
    shot(page, "31-job-calls-all")
    reads = [r.url for r in calls_read if "/calls" in r.url]
    assert len(reads) == 3 and all("page_size=1000" in url for url in reads), reads
    assert "page_token" not in reads[0] and all("page_token=" in url for url in reads[1:]), reads


def test_a_job_whose_view_lists_every_call_reads_no_more(page: Page, stack: Stack) -> None:
    team, order = job_with_calls(stack, "short_job", 3)
    sign_in(page)
    calls_read = api_requests(page, "GET")
    detail = open_job(page, team, "short_job")
    expect(detail.locator("tbody tr")).to_have_count(3)
    assert latencies(detail) == order
    expect(detail.get_by_test_id("job-calls-shown")).to_have_count(0)
    expect(detail.get_by_role("button", name="Load more calls")).to_have_count(0)
    assert [r.url for r in calls_read if "/calls" in r.url] == []
