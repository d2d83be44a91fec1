"""Through Envoy: metadata as deep as the limit allows is stored and read back by every
route that carries it (a job alone, the team's job list, a completion, a single-call job, the audit log), and one level deeper is
refused as invalid input. The limits themselves: tests/api/test_metadata_limits.py."""

from __future__ import annotations

import requests

from server.domain.validation import MAX_JSON_DEPTH
from tests.conftest import unique
from tests.e2e.conftest import ADMIN_HEADERS


def nested(levels: int) -> dict:
    document: dict = {"leaf": 1}
    for _ in range(levels - 1):
        document = {"k": document}
    return document


def test_the_deepest_metadata_allowed_reads_back_through_every_route(api, team):
    created = requests.post(
        f"{api}/jobs/create",
        json={"job_type": "deep", "metadata": nested(MAX_JSON_DEPTH)},
        headers=team.headers,
        timeout=10,
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["job_id"]
    alone = requests.get(f"{api}/jobs/{job_id}", headers=team.headers, timeout=10)
    assert alone.status_code == 200 and alone.json()["metadata"] == nested(MAX_JSON_DEPTH)
    for headers in (team.headers, ADMIN_HEADERS):
        listed = requests.get(f"{api}/teams/{team.team_id}/jobs", headers=headers, timeout=10)
        assert listed.status_code == 200, listed.text
        assert listed.json()["jobs"][0]["metadata"] == nested(MAX_JSON_DEPTH)

    completed = requests.post(
        f"{api}/jobs/{job_id}/complete", json={"status": "completed"}, headers=team.headers, timeout=10
    )
    assert completed.status_code == 200, completed.text
    single = requests.post(
        f"{api}/jobs/create-and-call",
        json={
            "job_type": "deep",
            "job_metadata": nested(MAX_JSON_DEPTH),
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers=team.headers,
        timeout=10,
    )
    assert single.status_code == 200, single.text

    # An organization's metadata also shows in the audit log, one level deeper.
    organization = unique("org")
    created_org = requests.post(
        f"{api}/organizations/create",
        json={"organization_id": organization, "name": "Deep", "metadata": nested(MAX_JSON_DEPTH)},
        headers=ADMIN_HEADERS,
        timeout=10,
    )
    assert created_org.status_code == 200, created_org.text
    audit = requests.get(f"{api}/audit-log?page_size=5", headers=ADMIN_HEADERS, timeout=10)
    assert audit.status_code == 200, audit.text

    deeper = requests.post(
        f"{api}/jobs/create",
        json={"job_type": "deep", "metadata": nested(MAX_JSON_DEPTH + 1)},
        headers=team.headers,
        timeout=10,
    )
    assert deeper.status_code == 400 and deeper.json()["details"][0]["reason"] == "INVALID_REQUEST"
