"""What the observability interceptor costs per RPC: sequential unary calls against an
in-process server, with and without it (same process, same port, loopback).

    python scripts/bench_observability.py postgresql://postgres@127.0.0.1:5432/postgres [N]

Two RPCs: grpc.health.v1.Health/Check (counted, not logged) and JobService/CreateJob
without a key (fails at authentication: no database, one access log line), with and
without an x-request-id. Logging goes to /dev/null as JSON, as in production.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

import server.app
from saaslitellm.v1 import job_service_pb2, job_service_pb2_grpc
from server.observability import logs
from server.settings import Settings


class _Passthrough(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        return await continuation(handler_call_details)


async def measure(url: str, n: int, observed: bool) -> tuple[float, ...]:
    original = server.app.ObservabilityInterceptor
    if not observed:
        server.app.ObservabilityInterceptor = _Passthrough
    try:
        settings = Settings(
            database_url=url, admin_key="bench-admin-key-0123456789", grpc_port=0, migrate_on_start=False
        )
        app = server.app.Application(settings)
    finally:
        server.app.ObservabilityInterceptor = original
    await app.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            jobs = job_service_pb2_grpc.JobServiceStub(channel)

            async def unauthenticated(metadata=()) -> None:
                try:
                    await jobs.CreateJob(job_service_pb2.CreateJobRequest(job_type="x"), metadata=metadata)
                except grpc.aio.AioRpcError:
                    pass

            via_envoy = (("x-request-id", "0d5f7c1e-1b7a-4a53-9d1e-1f0c2b3a4d5e"),)
            results = []
            for call in (
                lambda: health.Check(health_pb2.HealthCheckRequest()),
                lambda: unauthenticated(via_envoy),
                unauthenticated,
            ):
                for _ in range(200):  # warm up
                    await call()
                samples = []
                for _ in range(n):
                    started = time.perf_counter()
                    await call()
                    samples.append(time.perf_counter() - started)
                results.append(statistics.median(samples) * 1e6)
            return tuple(results)
    finally:
        await app.stop(grace=0)


async def main(url: str, n: int, sink) -> None:
    logging.getLogger().handlers.clear()
    logs.configure("INFO", "json")
    logging.getLogger().handlers[0].stream = sink
    for observed in (False, True, False, True):
        check, envoy_like, direct = await measure(url, n, observed)
        label = "with observability   " if observed else "without (passthrough)"
        print(
            f"{label}: Health/Check p50 {check:.0f} us; unauthenticated CreateJob p50 {envoy_like:.0f} us "
            f"with an x-request-id (as from Envoy), {direct:.0f} us without (the server makes and echoes one)"
        )


if __name__ == "__main__":
    with open("/dev/null", "w") as devnull:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3000, devnull))
