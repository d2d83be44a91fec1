"""The HTTP client to the LiteLLM proxy: one aiohttp session per process.

aiohttp because it is the cheapest well-kept async HTTP client on these machines: httpx
over its own pool (httpcore 1.0.9) cost 2.9 ms of CPU per request at 16 in flight (its
pool re-examines every connection per request), httpx over aiohttp's transport 0.7 ms
plus httpx's own request and response objects; aiohttp alone removes that layer too
(measured with `python -m bench.ab`, see docs/benchmarks.md).

No cookie jar: the upstream is shared by every tenant, and a cookie one tenant's call
received must never ride along on another's. No proxy settings from the environment
(`trust_env=False`): the upstream URL is the only one configured.

aiohttp drops bytes that arrive in the same instant as a connection reset (its reader
raises the error before handing over what it had buffered). They never reached our client
either, so the call's record (what was forwarded) still matches what the client got.
LiteLLM ends a stream its provider cut with an error event, not a reset, but its own
client to the provider (aiohttp too) has the same race: a chunk the provider sent just
before cutting the connection may never reach us. Tests that cut streams space the chunks.
"""

from __future__ import annotations

import aiohttp


def http_client(*, max_connections: int = 512) -> aiohttp.ClientSession:
    """The process's one HTTP session to the upstream, keeping connections alive. Every
    request sets its own timeouts (server/upstream/litellm.py)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=30),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None),
    )
