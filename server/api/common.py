"""Helpers shared by the servicers."""

from __future__ import annotations

import grpc

from server.domain.errors import invalid_argument

# Headers that name one thing (idempotency-key, and /v1's job headers): sent more than once,
# the request is refused naming the header; joined, "k, k" would be another key than "k".
_ONE_VALUE = frozenset({"idempotency-key", "x-job-id", "x-job-type", "x-call-purpose"})


def metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    """Request metadata (HTTP headers through Envoy) as a dict with lower-case keys. A
    header sent more than once has its values joined with ", ", as HTTP combines them
    (RFC 9110, 5.3): a credential sent twice is then no valid credential, rather than
    whichever came last; one of the headers that name one thing is refused (400)."""
    headers: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            if key in headers:
                if key in _ONE_VALUE:
                    raise invalid_argument(key, "was sent more than once: send it once")
                value = f"{headers[key]}, {value}"
            headers[key] = value
    return headers
