"""The stack the hostile-input tests attack: real Envoy, LiteLLM proxy, fake provider and gRPC
server over a database of their own, so "nothing changed" can be checked on the whole database.

It is a second stack next to the end-to-end one (about 15 s to start): the fuzz run creates
hundreds of odd objects, and the checks that a refused request changed nothing must see only
the requests of these tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
import requests

from devstack.postgres import Postgres
from devstack.stack import Stack
from tests.conftest import own_stack
from tests.e2e.conftest import RestTeam, rest_team

ERROR_KEYS = {"code", "message", "details"}
# HTTP status -> the gRPC code its error body must carry (README, "Errors").
GRPC_CODES = {400: {3, 9, 11}, 401: {16}, 403: {7}, 404: {5}, 405: {12}, 409: {6, 10}, 413: {3}, 429: {8}, 431: {3}}


@pytest.fixture(scope="session")
def hostile_stack(pg: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with own_stack(pg, tmp_path_factory, "fuzz") as running:
        yield running


@pytest.fixture(scope="session")
def api(hostile_stack: Stack) -> str:
    return f"{hostile_stack.api_url}/api"


@pytest.fixture(scope="session")
def tenant(api: str) -> RestTeam:
    """A team with plenty of credits: the fuzz run opens many jobs."""
    return rest_team(api, credits=1_000_000)


@pytest.fixture
def open_job(api: str, tenant: RestTeam) -> str:
    response = requests.post(f"{api}/jobs/create", json={"job_type": "fuzz"}, headers=tenant.headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


@pytest.fixture
def database_digest(hostile_stack: Stack) -> Callable[[], dict[str, str]]:
    """A digest of every row of every table: equal digests mean nothing changed.

    The usage rollup (usage_deltas folded into usage_daily and usage_totals by the server)
    is left out: it only restates jobs and llm_calls, which are in the digest, and its
    rows move between the two tables on the server's own schedule. So is a key's
    `last_used_at`: authenticating a request records it (at most once per cache period),
    whatever the request then does."""
    assert hostile_stack.postgres is not None
    url = hostile_stack.postgres.url

    def digest() -> dict[str, str]:
        with psycopg.connect(url) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                    "AND table_type = 'BASE TABLE' AND table_name NOT IN ('usage_deltas', 'usage_daily', 'usage_totals') "
                    "ORDER BY table_name"
                )
            ]
            return {
                table: conn.execute(
                    "SELECT count(*) || ':' || md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) "
                    f"FROM (SELECT to_jsonb(t) - 'last_used_at' AS r FROM \"{table}\" t) AS rows"
                ).fetchone()[0]
                for table in tables
            }

    return digest


def assert_clear_error(response: requests.Response, *, statuses: range | set[int] = range(400, 500)) -> dict:
    """A refusal in the one error shape: JSON {"code", "message", "details"}, the gRPC code
    matching the HTTP status, a message that says something. Returns the body."""
    assert response.status_code in statuses, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["details"], list)
    assert body["message"].strip(), body
    if response.status_code in GRPC_CODES:
        assert body["code"] in GRPC_CODES[response.status_code], body
    return body


def reasons(body: dict) -> list[str]:
    return [d["reason"] for d in body["details"] if d.get("@type", "").endswith("google.rpc.ErrorInfo")]


def bad_field(body: dict) -> str | None:
    """The field a google.rpc.BadRequest names, if any."""
    for detail in body["details"]:
        if detail.get("@type", "").endswith("google.rpc.BadRequest"):
            return detail["field_violations"][0]["field"]
    return None
