"""Server CPU per RPC: grpc.aio's registered methods against one handler table.

    python -m bench.registered_methods [--rounds 4] [--rpcs 20000]

Starts a grpc.aio server (uvloop) with every service of ours and health, either as the
generated code registers them or through server/api/handlers.py's table, and sends it
health checks at 16 in flight from this process; prints the server's CPU per RPC read
from /proc, the two variants in turn, `--rounds` times. The RPC does nothing, so the
difference is grpc.aio's own work per RPC (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

import grpc
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from devstack.stack import free_port
from saaslitellm.v1 import (
    admin_job_service_pb2_grpc,
    admin_service_pb2_grpc,
    credit_service_pb2_grpc,
    job_service_pb2_grpc,
    openai_service_pb2_grpc,
    webhook_service_pb2_grpc,
)
from server.api.handlers import HandlerTable

_SERVICES = (
    (job_service_pb2_grpc, "JobService"),
    (openai_service_pb2_grpc, "OpenAIService"),
    (admin_service_pb2_grpc, "AdminService"),
    (admin_job_service_pb2_grpc, "AdminJobService"),
    (credit_service_pb2_grpc, "CreditService"),
    (webhook_service_pb2_grpc, "WebhookService"),
)
_IN_FLIGHT = 16


async def _serve(variant: str, port: int) -> None:
    server = grpc.aio.server()
    table = HandlerTable() if variant == "table" else None
    target = table or server
    for module, name in _SERVICES:
        getattr(module, f"add_{name}Servicer_to_server")(getattr(module, f"{name}Servicer")(), target)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), target)
    if table is not None:
        table.install(server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def _drive(port: int, rpcs: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await channel.channel_ready()
        stub = health_pb2_grpc.HealthStub(channel)

        async def worker(count: int) -> None:
            for _ in range(count):
                await stub.Check(health_pb2.HealthCheckRequest())

        await asyncio.gather(*(worker(rpcs // _IN_FLIGHT) for _ in range(_IN_FLIGHT)))


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(variant: str, rpcs: int) -> float:
    """The server's CPU milliseconds per RPC, warm-up excluded."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.registered_methods", "--serve", variant, str(port)])
    try:
        uvloop.run(_drive(port, 500))  # waits for the server, then warms it up
        before = _cpu_seconds(server.pid)
        uvloop.run(_drive(port, rpcs))
        return 1000 * (_cpu_seconds(server.pid) - before) / rpcs
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.registered_methods", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rpcs", type=int, default=20_000)
    parser.add_argument("--serve", nargs=2, metavar=("VARIANT", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        uvloop.run(_serve(args.serve[0], int(args.serve[1])))
        return
    per_rpc: dict[str, list[float]] = {"registered": [], "table": []}
    for round_index in range(args.rounds):
        for variant, samples in per_rpc.items():
            started = time.monotonic()
            samples.append(_measure(variant, args.rpcs))
            print(
                f"round {round_index + 1}/{args.rounds} {variant}: {samples[-1]:.4f} ms of server CPU per RPC "
                f"({time.monotonic() - started:.1f} s)",
                flush=True,
            )
    registered, table = (statistics.median(per_rpc[v]) for v in ("registered", "table"))
    ratio = f"{table / registered:.2f}" if registered else "n/a"
    print(f"median: registered {registered:.4f} ms, table {table:.4f} ms, table/registered {ratio}")


if __name__ == "__main__":
    main()
