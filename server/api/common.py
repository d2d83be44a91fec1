"""Helpers shared by the servicers."""

from __future__ import annotations

import grpc


def metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    """Request metadata (HTTP headers through Envoy) as a dict with lower-case keys."""
    return {key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)}
