"""Helpers of the end-to-end tests; the `stack` and `api` fixtures are in tests/conftest.py,
shared with the client tests so that a session starts one stack."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests

from tests.conftest import ADMIN_KEY, unique

ADMIN_HEADERS = {"X-Admin-Key": ADMIN_KEY}


@dataclass
class RestTeam:
    team_id: str
    alias: str
    group: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def admin_post(api: str, path: str, body: dict) -> dict:
    response = requests.post(f"{api}{path}", json=body, headers=ADMIN_HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def rest_team(
    api: str, *, credits: int = 100, models: tuple[str, ...] = ("fake-gpt", "fake-gpt-backup"), **team_fields
) -> RestTeam:
    """A new organization, access group, alias on `models` and team; `team_fields` go to
    the team's creation (budget_mode, limits...)."""
    org, group, alias, team = unique("org"), unique("grp"), unique("Agent"), unique("team")
    admin_post(api, "/organizations/create", {"organization_id": org, "name": "Org"})
    admin_post(api, "/model-access-groups/create", {"group_name": group})
    admin_post(
        api,
        "/models/create",
        {
            "model_alias": alias,
            "actual_model": models[0],
            "fallback_models": list(models[1:]),
            "access_groups": [group],
        },
    )
    created = admin_post(
        api,
        "/teams/create",
        {
            "organization_id": org,
            "team_id": team,
            "access_groups": [group],
            "credits_allocated": credits,
            **team_fields,
        },
    )
    return RestTeam(team_id=team, alias=alias, group=group, key=created["virtual_key"])


@pytest.fixture
def team(api: str) -> RestTeam:
    return rest_team(api)
