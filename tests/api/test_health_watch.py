"""The standard gRPC health service as polyglot clients use it: client-side health checking
(Go's, Java's, grpcio's `healthCheckConfig`) opens Health/Watch and waits for SERVING."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def test_watch_streams_serving_and_ends_cleanly_when_the_client_leaves(channel, caplog):
    """Watch is a handler that writes its own responses (context.write): the interceptors
    iterated every stream, so it failed at once with INTERNAL and logged an error."""
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
    first = await asyncio.wait_for(watch.read(), timeout=10)
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    assert await asyncio.wait_for(watch.code(), timeout=10) == grpc.StatusCode.CANCELLED
    assert not [r for r in caplog.records if r.levelname == "ERROR" and "Watch" in r.getMessage()]
