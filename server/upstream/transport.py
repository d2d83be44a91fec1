"""The HTTP client to the LiteLLM proxy: httpx, over aiohttp's transport.

httpx's own transport (httpcore 1.0.9) re-examines every pooled connection for every
request it queues, probing each socket: at 16 requests in flight that cost 2.9 ms of CPU per
request here, against 0.7 ms with httpx-aiohttp's transport (measured against the fake
provider, see docs/benchmarks.md). The client API stays httpx.

httpx-aiohttp maps a refused connection and a connection closed without a response to
httpx.ConnectTimeout; they are not timeouts, so they are mapped again here, to ConnectError
and RemoteProtocolError, which the LiteLLM client reports as UNAVAILABLE.

One difference from httpcore: when the upstream resets a connection in the same instant as
its last bytes arrive, aiohttp raises without handing those bytes over. They never reached
the client either, so the call's record (what was forwarded) still matches what the client
got. LiteLLM ends a stream its provider cut with an error event, not a reset.
"""

from __future__ import annotations

import aiohttp
import httpx
import httpx_aiohttp


class AiohttpTransport(httpx_aiohttp.AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as error:
            cause = error.__cause__
            if isinstance(cause, aiohttp.ServerTimeoutError):
                raise
            if isinstance(cause, aiohttp.ClientConnectorError):
                raise httpx.ConnectError(str(cause), request=request) from cause
            if isinstance(cause, aiohttp.ServerDisconnectedError):
                raise httpx.RemoteProtocolError(str(cause), request=request) from cause
            raise


def http_client(*, timeout_seconds: float, max_connections: int = 512) -> httpx.AsyncClient:
    """The process's one HTTP client to the upstream, keeping connections alive."""
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=httpx.Limits(max_connections=max_connections, keepalive_expiry=30)),
        timeout=httpx.Timeout(timeout_seconds, connect=5.0),
        trust_env=False,
    )
