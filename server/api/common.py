"""Helpers shared by the servicers."""

from __future__ import annotations

import grpc


def metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    """Request metadata (HTTP headers through Envoy) as a dict with lower-case keys. A
    header sent more than once has its values joined with ", ", as HTTP combines them
    (RFC 9110, 5.3): a credential sent twice is then no valid credential, rather than
    whichever came last."""
    headers: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers
