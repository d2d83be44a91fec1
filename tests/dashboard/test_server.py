"""The dashboard's server (devstack/dashboard.py): the bundle with strict headers, app
routes, no path escapes, /api proxied to Envoy with the API's own errors, and the build's
staleness rule."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from devstack import dashboard
from devstack.processes import free_port
from tests.conftest import ADMIN_KEY, unique

pytestmark = pytest.mark.e2e


def test_serves_the_bundle_with_strict_headers_and_app_routes(dashboard_url: str) -> None:
    index = httpx.get(f"{dashboard_url}/", timeout=5)
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in index.headers["content-security-policy"]
    assert index.headers["x-frame-options"] == "DENY"
    assert index.headers["referrer-policy"] == "no-referrer"
    assert index.headers["cache-control"] == "no-cache"
    assert "http://" not in index.text and "https://" not in index.text  # nothing from a CDN

    asset = next(name for name in os.listdir(dashboard.DIST / "assets") if name.endswith(".js"))
    script = httpx.get(f"{dashboard_url}/assets/{asset}", timeout=5)
    assert script.status_code == 200 and "immutable" in script.headers["cache-control"]

    route = httpx.get(f"{dashboard_url}/teams/acme-corp", timeout=5)
    assert route.status_code == 200 and route.text == index.text
    assert httpx.get(f"{dashboard_url}/assets/missing.js", timeout=5).status_code == 404
    for escape in ("/..%2f..%2fdevstack/dashboard.py", "/%2e%2e/%2e%2e/pyproject.toml"):
        response = httpx.get(f"{dashboard_url}{escape}", timeout=5)
        assert "import" not in response.text and "[project]" not in response.text


def test_proxies_the_api_with_its_errors_and_an_address_envoy_saw(dashboard_url: str) -> None:
    refused = httpx.get(f"{dashboard_url}/api/organizations", timeout=10)
    assert refused.status_code == 401
    assert refused.json()["details"][0]["reason"] == "ADMIN_KEY_REQUIRED"

    org = unique("org")
    created = httpx.post(
        f"{dashboard_url}/api/organizations/create",
        headers={"X-Admin-Key": ADMIN_KEY},
        json={"organization_id": org, "name": "Via the dashboard"},
        timeout=10,
    )
    assert created.status_code == 200, created.text
    audit = httpx.get(
        f"{dashboard_url}/api/audit-log",
        params={"resource_type": "organization", "resource_id": org},
        headers={"X-Admin-Key": ADMIN_KEY},
        timeout=10,
    ).json()
    assert [entry["action"] for entry in audit["entries"]] == ["create"]
    # The peer is the address Envoy saw: the dashboard's server, never an address a client
    # wrote in X-Forwarded-For (Envoy records a loopback client as its host's address).
    assert audit["entries"][0]["peer"] in ("127.0.0.1", socket.gethostbyname(socket.gethostname()), "192.0.2.2")


async def test_says_how_to_build_when_the_bundle_is_missing_and_when_the_api_is_down(tmp_path: Path) -> None:
    app = dashboard.create_app(f"http://127.0.0.1:{free_port()}", tmp_path / "dist")
    async with TestClient(TestServer(app)) as client:
        page = await client.get("/")
        assert page.status == 503 and "make dashboard" in await page.text()
        api = await client.get("/api/organizations")
        assert api.status == 503
        assert (await api.json())["message"] == "the API gateway (Envoy) cannot be reached"


async def test_an_envoy_that_closes_without_answering_is_a_gateway_down(tmp_path: Path) -> None:
    async def close_unanswered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.close()

    envoy = await asyncio.start_server(close_unanswered, "127.0.0.1", 0)
    port = envoy.sockets[0].getsockname()[1]
    async with envoy, TestClient(TestServer(dashboard.create_app(f"http://127.0.0.1:{port}", tmp_path))) as client:
        for answer in (
            await client.get("/api/organizations"),
            await client.post("/api/organizations/create", json={"organization_id": "x", "name": "X"}),
        ):
            assert answer.status == 503 and await answer.json() == dashboard.GATEWAY_DOWN


async def test_a_name_no_file_can_have_is_a_404(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "index.html").write_text("<!doctype html>")
    app = dashboard.create_app(f"http://127.0.0.1:{free_port()}", tmp_path / "dist")
    async with TestClient(TestServer(app)) as client:
        for path in ("/%00", "/" + "a" * 300, "/assets/" + "a" * 300 + ".js", "/a%00b"):
            answer = await client.get(path)
            assert answer.status == 404, (path, answer.status)
        assert (await client.get("/teams/acme-corp")).status == 200  # an app route still is one


def test_rebuilds_only_when_a_source_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "src" / "main.tsx").write_text("export {};")
    (app / "package.json").write_text("{}")
    assert dashboard.is_stale(app)  # never built

    (app / "dist").mkdir()
    (app / "dist" / "index.html").write_text("<!doctype html>")
    assert not dashboard.is_stale(app)

    later = time.time() + 5
    os.utime(app / "src" / "main.tsx", (later, later))
    assert dashboard.is_stale(app)

    monkeypatch.setenv("PATH", str(tmp_path / "no-node-here"))
    with pytest.raises(dashboard.BuildError, match=r"Node\.js 20\.19\+ and npm"):
        dashboard.build(log=lambda line: None, app_dir=app)
