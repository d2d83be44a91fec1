"""The dashboard's two servers follow the same rules: devstack/dashboard.py (aiohttp, in
`make dev` and these tests) and dashboard/nginx.conf (nginx, in docker-compose), each run
against the test stack's Envoy with the bundle in dashboard/dist. nginx is Debian's, when
installed (as kubectl in tests/deploy): the config as shipped but for its listen address,
its root and its upstream."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from devstack import dashboard
from devstack.processes import Child, free_port
from devstack.stack import Stack
from tests.conftest import ADMIN_KEY, ROOT

pytestmark = pytest.mark.e2e
NGINX = Path(shutil.which("nginx") or "/usr/sbin/nginx")


@contextmanager
def nginx(upstream: str, root: Path, workdir: Path) -> Iterator[str]:
    """nginx serving dashboard/nginx.conf on a free port, with `root` as its bundle and
    `upstream` in place of Envoy; yields its URL."""
    port = free_port()
    site = (ROOT / "dashboard" / "nginx.conf").read_text()
    for shipped, here in (
        ("listen 3002;", f"listen 127.0.0.1:{port};"),
        ("root /usr/share/nginx/html;", f"root {root};"),
        ("http://envoy:8003", upstream),
    ):
        assert shipped in site, f"dashboard/nginx.conf no longer says {shipped!r}"
        site = site.replace(shipped, here)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "site.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {workdir};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (workdir / "nginx.conf").write_text(
        f"daemon off; pid {workdir}/nginx.pid; worker_processes 1; error_log {workdir}/error.log;\n"
        "events {}\n"
        f"http {{ include /etc/nginx/mime.types; access_log off; {temp} include {workdir}/site.conf; }}\n"
    )
    command = [str(NGINX), "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(workdir / "nginx.conf")]
    child = Child("nginx", command, workdir / "nginx.log")
    child.start()
    url = f"http://127.0.0.1:{port}"
    try:
        child.wait_ready(lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200, timeout=15)
        yield url
    finally:
        child.stop()


@pytest.fixture(scope="module")
def nginx_url(stack: Stack, dashboard_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not NGINX.exists():
        pytest.skip("nginx is not installed (apt-get install -y nginx)")
    with nginx(stack.api_url, dashboard.DIST, tmp_path_factory.mktemp("nginx")) as url:
        yield url


@pytest.fixture(params=["aiohttp", "nginx"])
def server(request: pytest.FixtureRequest, dashboard_url: str) -> str:
    """The URL of one of the dashboard's servers, each test run against both."""
    return dashboard_url if request.param == "aiohttp" else request.getfixturevalue("nginx_url")


def fetch(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """GET `path` exactly as written (httpx would resolve its dot segments first): the
    status, the headers (names in lower case) and the body."""
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


# Paths under /api/ that Envoy (normalize_path) resolves to its other routes: the API's
# docs, its Prometheus metrics (with the admin key), the OpenAI-compatible /v1. nginx
# resolves the first ones itself (RFC 3986 dot segments), to a path not under /api/.
ESCAPES = [
    "/api/../docs",
    "/api/%2e%2e/redoc",
    "/api/.%2E/openapi.json",
    "/api/../metrics",
    "/api/../v1/models",
    "/api\\..\\docs",
]
# Envoy also reads `\` as `/` and a segment `..;x` as `..`; nginx does not.
ENVOY_ESCAPES = ["/api/..\\docs", "/api/..;/docs", "/api/x/..;x/..;/metrics", "/api/.;/..;/v1/models"]


def test_no_path_under_api_reaches_the_rest_of_envoy(server: str) -> None:
    keys = {"X-Admin-Key": ADMIN_KEY, "Authorization": f"Bearer {ADMIN_KEY}"}
    _, _, index = fetch(server, "/")
    for path in ESCAPES + ENVOY_ESCAPES:
        status, headers, body = fetch(server, path, keys)
        assert "x-request-id" not in headers, f"{path} reached Envoy: {status} {body[:100]!r}"
        assert status == 404 or (status, body) == (200, index), path  # or nginx's app route
    for path in ENVOY_ESCAPES:
        status, headers, body = fetch(server, path, keys)
        assert status == 404 and headers["content-type"].startswith("application/json"), path
        assert json.loads(body) == dashboard.OUTSIDE_API

    # A path that stays under /api/ is sent on as written: Envoy resolves it, and decodes ids.
    status, headers, body = fetch(server, "/api/x/../organizations?page_size=1", keys)
    assert status == 200 and "x-request-id" in headers and '"organizations"' in body, body
    status, _, body = fetch(server, "/api/organizations/%6E%6F-such%2Eorg", keys)
    assert status == 404 and "organization 'no-such.org' not found" in body, body


def test_only_an_asset_found_is_cached_for_good(server: str) -> None:
    asset = sorted(dashboard.DIST.glob("assets/*.js"))[0]
    found = httpx.get(f"{server}/assets/{asset.name}", timeout=5)
    assert found.status_code == 200 and found.headers["cache-control"] == "public, max-age=31536000, immutable"
    # A bundle newer than this server's (a deploy under way): asked again later, it is there.
    missing = httpx.get(f"{server}/assets/index-NOTYET.js", timeout=5)
    assert missing.status_code == 404
    assert "immutable" not in missing.headers.get("cache-control", "")
    assert "max-age" not in missing.headers.get("cache-control", "")


def test_a_missing_file_is_404_and_an_app_route_is_the_app(server: str) -> None:
    index = httpx.get(f"{server}/", timeout=5)
    assert index.status_code == 200 and index.headers["cache-control"] == "no-cache"
    for route in ("/teams/acme-corp", "/organizations", "/teams/acme-corp/usage/"):
        answer = httpx.get(f"{server}{route}", timeout=5)
        assert (answer.status_code, answer.text) == (200, index.text), route
        assert answer.headers["x-frame-options"] == "DENY"
    assert httpx.get(f"{server}/index.html", timeout=5).text == index.text
    # A name with a dot is a file's: not there, it is a 404, never the app in its place.
    for missing in ("/missing.js", "/favicon.ico", "/teams/acme.corp", "/robots.txt"):
        assert httpx.get(f"{server}{missing}", timeout=5).status_code == 404, missing
    # Under /api/ a dot is the API's to judge: an id may hold one.
    found = httpx.get(f"{server}/api/organizations/no-such.org", headers={"X-Admin-Key": ADMIN_KEY}, timeout=10)
    assert found.status_code == 404 and found.json()["message"] == "organization 'no-such.org' not found"


def test_nginx_too_says_the_gateway_is_down_when_envoy_closes_without_answering(tmp_path: Path) -> None:
    """As devstack/dashboard.py (tests/dashboard/test_server.py): nginx's 502 is the 503 of
    the API's error shape."""
    if not NGINX.exists():
        pytest.skip("nginx is not installed (apt-get install -y nginx)")
    envoy = socket.create_server(("127.0.0.1", 0))

    def close_unanswered() -> None:
        while True:
            try:
                connection, _ = envoy.accept()
            except OSError:  # closed: the test is over
                return
            with connection:
                connection.recv(65536)

    threading.Thread(target=close_unanswered, daemon=True).start()
    try:
        with nginx(f"http://127.0.0.1:{envoy.getsockname()[1]}", tmp_path / "dist", tmp_path / "nginx") as url:
            answer = httpx.get(f"{url}/api/organizations", timeout=10)
    finally:
        envoy.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        envoy.close()
    assert answer.status_code == 503 and answer.json() == dashboard.GATEWAY_DOWN
