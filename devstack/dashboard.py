"""The admin dashboard: build the single-page app in dashboard/ and serve it.

    python -m devstack.dashboard build                       # npm ci + vite build, only if stale
    python -m devstack.dashboard serve --port 3002 --api http://127.0.0.1:8003

`serve` sends the built bundle (dashboard/dist) and proxies `/api/*` to Envoy, so the
browser talks to one origin: no CORS, and the admin key goes nowhere else. Until the
bundle is built it answers 503 with the command that builds it. The same server runs in
`make dev` (Stack starts it on :3002) and in the browser tests; docker-compose uses nginx
with the same rules (dashboard/nginx.conf).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from aiohttp import ClientError, ClientSession, ClientTimeout, web

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "dashboard"
DIST = APP_DIR / "dist"

# Inputs of the bundle: a change to any of them means the bundle must be rebuilt.
_SOURCES = ("src", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json")

# Hop-by-hop headers (RFC 9110 7.6.1) and those aiohttp sets itself: never forwarded.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}

SECURITY_HEADERS = {
    # Everything comes from this origin: no CDN, no inline script, no framing.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

CLIENT = web.AppKey("client", ClientSession)

GATEWAY_DOWN = {"code": 14, "message": "the API gateway (Envoy) cannot be reached", "details": []}
OUTSIDE_API = {"code": 5, "message": "not a path of the API: this server proxies only /api/*", "details": []}

NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>Dashboard not built</title>
<p>The admin dashboard is not built yet. Build it with <code>make dashboard</code>
(needs Node.js 20.19+ and npm), then reload.</p>
"""


class BuildError(Exception):
    """The bundle could not be built; the message says what to do."""


# ---------------------------------------------------------------------- build


def _files(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        if path.is_dir():
            yield from (p for p in path.rglob("*") if p.is_file())
        elif path.exists():
            yield path


def is_stale(app_dir: Path = APP_DIR) -> bool:
    """True when the bundle is missing or older than one of its sources."""
    index = app_dir / "dist" / "index.html"
    if not index.exists():
        return True
    built = index.stat().st_mtime
    return any(p.stat().st_mtime > built for p in _files(app_dir / name for name in _SOURCES))


def build(log: Callable[[str], None] = print, app_dir: Path = APP_DIR, force: bool = False) -> bool:
    """Install the pinned npm packages (npm ci) when the lock changed, then build the
    bundle when a source changed. Returns whether it built. Output goes to the terminal:
    the first build downloads about 70 MB of packages."""
    if not force and not is_stale(app_dir):
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError(
            "building the admin dashboard needs Node.js 20.19+ and npm "
            "(Debian: apt-get install -y nodejs npm; or https://nodejs.org)"
        )
    stamp = app_dir / "node_modules" / ".package-lock.json"
    lock = app_dir / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        log("==> installing the dashboard's npm packages (npm ci, pinned by dashboard/package-lock.json)")
        _run([npm, "ci", "--no-audit", "--no-fund"], app_dir)
    log("==> building the dashboard (tsc type check + vite build into dashboard/dist)")
    _run([npm, "run", "build"], app_dir)
    return True


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd)
    if result.returncode != 0:
        raise BuildError(f"`{' '.join(command[1:])}` failed in {cwd} (exit {result.returncode}); see the output above")


# ---------------------------------------------------------------------- serve

_ENCODED_DOT = re.compile("%2e", re.IGNORECASE)
_SLASHES = re.compile(r"%2f|%5c|\\", re.IGNORECASE)


def within_api(raw_path: str) -> bool:
    """Whether a request's path stays under /api/ once resolved as Envoy resolves it:
    normalize_path reads `\\` as `/`, `%2e` as `.` and a segment `..;x` as `..` (%2F and %5C,
    which it keeps, are read as `/` here too, to be safe). The path is sent on as the client
    wrote it, so one that resolves elsewhere (/api/../docs, /api/..;/metrics) would reach
    the whole of Envoy: the docs, /metrics, the OpenAI-compatible /v1."""
    segments = _SLASHES.sub("/", _ENCODED_DOT.sub(".", raw_path)).split("/")[1:]
    resolved: list[str] = []
    for segment in segments:
        dots = segment.split(";", 1)[0]
        if dots == "..":
            resolved = resolved[:-1]
        elif dots != ".":
            resolved.append(segment)
    if segments and segments[-1].split(";", 1)[0] in (".", ".."):
        resolved.append("")  # /api/x/.. is /api/
    return len(resolved) >= 2 and resolved[0] == "api"


def create_app(api_url: str, dist: Path = DIST) -> web.Application:
    """The dashboard server: static bundle, SPA fallback, and /api/* proxied to `api_url`."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    dist = dist.resolve()

    async def open_session(app: web.Application):
        # No total timeout: a streamed answer may last long; connect must be quick.
        app[CLIENT] = ClientSession(timeout=ClientTimeout(total=None, connect=5), auto_decompress=False)
        yield
        await app[CLIENT].close()

    app.cleanup_ctx.append(open_session)

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def proxy(request: web.Request) -> web.StreamResponse:
        if not within_api(request.rel_url.raw_path):
            return web.json_response(OUTSIDE_API, status=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        # A client's own X-Forwarded-For is never passed on. Envoy, the API's edge, appends
        # the address it saw (this server's), which is the peer the audit log records: an
        # address a client wrote is not trusted, this one included.
        headers = {k: v for k, v in headers.items() if k.lower() not in ("x-forwarded-for", "x-real-ip")}
        headers["X-Forwarded-For"] = request.remote or ""
        body = await request.read()
        try:
            upstream = await app[CLIENT].request(
                request.method, api_url + request.rel_url.raw_path_qs, headers=headers, data=body or None
            )
        except (OSError, ClientError):
            # Refused, timed out, or closed without an answer (ServerDisconnectedError is no
            # OSError): the gateway is down, as nginx says for its 502 and 504.
            return web.json_response(GATEWAY_DOWN, status=503)
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    response.headers.add(name, value)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def static(request: web.Request) -> web.StreamResponse:
        index = dist / "index.html"
        if not index.exists():
            return web.Response(status=503, text=NOT_BUILT, content_type="text/html", headers=SECURITY_HEADERS)
        relative = request.match_info["path"]
        try:
            target = (dist / relative).resolve() if relative else index
            found = target.is_relative_to(dist) and target.is_file()
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte
            raise web.HTTPNotFound() from None
        if not target.is_relative_to(dist):
            raise web.HTTPNotFound()
        if found:
            immutable = target.parent == dist / "assets"  # content-hashed file names
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return web.FileResponse(target, headers={**SECURITY_HEADERS, "Cache-Control": cache})
        if "." in Path(relative).name:  # a missing file, not an app route
            raise web.HTTPNotFound()
        # An app route (#/teams/x is a hash route, but /teams/x typed by hand works too).
        return web.FileResponse(index, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

    app.router.add_get("/healthz", health)
    app.router.add_route("*", "/api/{tail:.*}", proxy)
    app.router.add_get("/{path:.*}", static)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build dashboard/dist if a source changed")
    build_cmd.add_argument("--force", action="store_true", help="build even if the bundle is current")
    serve = commands.add_parser("serve", help="serve dashboard/dist and proxy /api to Envoy")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3002)
    serve.add_argument("--api", default="http://127.0.0.1:8003", help="the Envoy REST gateway")
    serve.add_argument("--dist", type=Path, default=DIST)
    args = parser.parse_args(argv)
    if args.command == "build":
        try:
            built = build(force=args.force)
        except BuildError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        if not built:
            print("==> the dashboard bundle is current (dashboard/dist)")
        return 0
    web.run_app(create_app(args.api.rstrip("/"), args.dist), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
