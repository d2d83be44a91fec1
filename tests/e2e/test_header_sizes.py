"""Headers a REST client may send reach the server: Envoy takes up to 60 KiB of them and
answers 431 above, and the server's gRPC limits on metadata (the headers, after
transcoding) must be above that. With gRPC's defaults (8 KiB soft, refused at random
above it; 16 KiB hard) a 10 KiB cookie got 429 RESOURCE_EXHAUSTED, a status the clients
retry, by chance."""

from __future__ import annotations

import secrets

import pytest
import requests

from tests.e2e.conftest import rest_team


@pytest.mark.parametrize("kib", [9, 16, 40])
def test_headers_envoy_takes_are_served(api, kib):
    team = rest_team(api)
    cookie = {"Cookie": "session=" + secrets.token_hex(kib * 512)}  # kib KiB of text
    for _ in range(5):  # the soft limit refused some at random
        reply = requests.get(
            f"{api}/credits/teams/{team.team_id}/balance", headers={**team.headers, **cookie}, timeout=10
        )
        assert reply.status_code == 200, reply.text


def test_headers_over_envoys_limit_are_431_in_the_error_shape(api):
    team = rest_team(api)
    cookie = {"Cookie": "session=" + secrets.token_hex(70 * 512)}
    reply = requests.get(f"{api}/credits/teams/{team.team_id}/balance", headers={**team.headers, **cookie}, timeout=10)
    assert reply.status_code == 431, reply.text
    assert reply.json()["details"][0]["reason"] == "INVALID_REQUEST"
