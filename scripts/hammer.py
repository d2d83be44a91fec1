"""Hammer the credit system and check it stays exact.

    .venv/bin/python scripts/hammer.py [--seconds 60] [--servers 2] [--clients 4] [--teams 5]

Starts its own stack (embedded PostgreSQL, fake provider, N gRPC server processes; no
LiteLLM, which is not what this exercises), then runs several client *processes*, each with
many concurrent tasks doing a random mix against random server processes: create jobs
(some with repeated idempotency keys), make calls, complete them completed or failed (often
several times, concurrently), top up credits. At the end it checks, for every team:

- the balance equals the sum of its ledger (amounts and reservations);
- no balance went below its overdraft limit (the database also forbids it);
- credits charged equal the charge entries, one per completed job, none for failed ones;
- no open job holds credits it did not reserve.

Exit status 0 when every invariant holds; it prints the operation counts either way.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc
import psycopg
from google.protobuf import struct_pb2

from devstack.stack import Ports, Stack, StackConfig
from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import (
    admin_service_pb2_grpc,
    chat_pb2,
    credit_service_pb2,
    credit_service_pb2_grpc,
    job_pb2,
    job_service_pb2_grpc,
)
from saaslitellm.v1 import job_service_pb2 as pb

ADMIN_KEY = "hammer-admin-key-0123456789"
ADMIN = (("x-admin-key", ADMIN_KEY),)


async def setup_teams(target: str, count: int, credits: int) -> list[tuple[str, str]]:
    async with grpc.aio.insecure_channel(target) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        await admin.CreateOrganization(
            admin_pb.CreateOrganizationRequest(organization_id="org", name="o"), metadata=ADMIN
        )
        await admin.CreateModelAccessGroup(admin_pb.CreateModelAccessGroupRequest(group_name="g"), metadata=ADMIN)
        await admin.CreateModel(
            admin_pb.CreateModelRequest(model_alias="A", actual_model="fake-gpt", access_groups=["g"]), metadata=ADMIN
        )
        teams = []
        for index in range(count):
            created = await admin.CreateTeam(
                admin_pb.CreateTeamRequest(
                    organization_id="org", team_id=f"team-{index}", access_groups=["g"], credits_allocated=credits
                ),
                metadata=ADMIN,
            )
            teams.append((created.team_id, created.virtual_key))
        return teams


def client_process(
    targets: list[str], teams: list[tuple[str, str]], seconds: float, tasks: int, seed: int, out
) -> None:
    out.put(asyncio.run(run_client(targets, teams, seconds, tasks, seed)))


async def run_client(targets, teams, seconds, tasks, seed) -> Counter:
    random.seed(seed)
    channels = [grpc.aio.insecure_channel(t) for t in targets]
    jobs = [job_service_pb2_grpc.JobServiceStub(c) for c in channels]
    credits = [credit_service_pb2_grpc.CreditServiceStub(c) for c in channels]
    counts: Counter = Counter()
    deadline = time.monotonic() + seconds
    message = chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value="hi [fake tokens=5]"))

    async def worker(worker_id: int) -> None:
        while time.monotonic() < deadline:
            team_id, key = random.choice(teams)
            auth = (("authorization", f"Bearer {key}"),)
            stub = random.choice(jobs)
            try:
                idem = f"k-{seed}-{worker_id}-{random.randrange(50)}" if random.random() < 0.2 else ""
                job = await stub.CreateJob(pb.CreateJobRequest(job_type="h", idempotency_key=idem), metadata=auth)
                counts["create"] += 1
                for _ in range(random.randrange(3)):
                    await random.choice(jobs).LLMCall(
                        pb.LLMCallRequest(job_id=job.job_id, messages=[message]), metadata=auth
                    )
                    counts["call"] += 1
                status = job_pb2.Job.COMPLETED if random.random() < 0.7 else job_pb2.Job.FAILED
                request = pb.CompleteJobRequest(job_id=job.job_id, status=status)
                repeats = random.choice((1, 1, 2, 5))
                results = await asyncio.gather(
                    *(random.choice(jobs).CompleteJob(request, metadata=auth) for _ in range(repeats)),
                    return_exceptions=True,
                )
                counts["complete"] += repeats
                counts["complete_error"] += sum(isinstance(r, Exception) for r in results)
                if random.random() < 0.02:
                    await random.choice(credits).AddCredits(
                        credit_service_pb2.AddCreditsRequest(team_id=team_id, credits=random.randint(1, 20)),
                        metadata=ADMIN,
                    )
                    counts["top_up"] += 1
            except grpc.aio.AioRpcError as error:
                counts[f"error:{error.code().name}"] += 1

    await asyncio.gather(*(worker(i) for i in range(tasks)))
    for channel in channels:
        await channel.close()
    return counts


def check(url: str) -> list[str]:
    problems = []
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT t.team_id, t.credits_allocated - t.credits_used, t.credits_reserved, t.credits_used,
                   t.credits_overdraft_limit,
                   coalesce(sum(l.amount), 0), coalesce(sum(l.reserved_delta), 0),
                   coalesce(-sum(l.amount) FILTER (WHERE l.kind = 'charge'), 0)
            FROM teams t LEFT JOIN credit_ledger l USING (team_id) GROUP BY t.team_id ORDER BY t.team_id
            """
        ).fetchall()
        for team, remaining, reserved, used, overdraft, amount, reserved_sum, charged in rows:
            if remaining != amount or reserved != reserved_sum:
                problems.append(f"{team}: balance {remaining}/{reserved} but ledger {amount}/{reserved_sum}")
            if remaining - reserved < -overdraft:
                problems.append(f"{team}: available {remaining - reserved} below overdraft -{overdraft}")
            if used != charged:
                problems.append(f"{team}: used {used} but charges sum to {charged}")
        bad_jobs = conn.execute(
            """
            SELECT count(*) FROM jobs j
            WHERE (j.status = 'completed') <> EXISTS (
                SELECT 1 FROM credit_ledger l WHERE l.job_id = j.job_id AND l.kind = 'charge')
               OR (j.status IN ('pending', 'in_progress')) <> (NOT EXISTS (
                SELECT 1 FROM credit_ledger l WHERE l.job_id = j.job_id AND l.kind IN ('charge', 'release')))
            """
        ).fetchone()[0]
        if bad_jobs:
            problems.append(f"{bad_jobs} jobs whose status disagrees with their ledger entries")
        reserved_open = conn.execute(
            "SELECT (SELECT coalesce(sum(credits_reserved), 0) FROM teams), "
            "(SELECT coalesce(sum(credits_reserved), 0) FROM jobs WHERE status IN ('pending', 'in_progress'))"
        ).fetchone()
        if reserved_open[0] != reserved_open[1]:
            problems.append(f"teams hold {reserved_open[0]} reserved credits but open jobs {reserved_open[1]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--tasks", type=int, default=16, help="concurrent tasks per client process")
    parser.add_argument("--teams", type=int, default=5)
    parser.add_argument("--credits", type=int, default=40, help="initial credits per team (low: exercises refusals)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = StackConfig(
            data_dir=Path(tmp),
            ports=Ports.free(),
            admin_key=ADMIN_KEY,
            with_litellm=False,
            server_processes=args.servers,
            server_env={"SAAS_LOG_LEVEL": "WARNING"},
        )
        print(f"starting {args.servers} server process(es) ...")
        with Stack(config) as stack:
            targets = [f"127.0.0.1:{port}" for port in stack.grpc_ports]
            teams = asyncio.run(setup_teams(targets[0], args.teams, args.credits))
            print(f"hammering for {args.seconds:.0f} s with {args.clients} processes x {args.tasks} tasks ...")
            queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
            ctx = multiprocessing.get_context("spawn")
            procs = [
                ctx.Process(target=client_process, args=(targets, teams, args.seconds, args.tasks, seed, queue))
                for seed in range(args.clients)
            ]
            for proc in procs:
                proc.start()
            totals: Counter = Counter()
            for _ in procs:
                totals.update(queue.get())
            for proc in procs:
                proc.join()
            problems = check(stack.postgres.url)
    print("operations:", ", ".join(f"{k}={v}" for k, v in sorted(totals.items())))
    if problems:
        print("INVARIANTS BROKEN:", *problems, sep="\n  ")
        return 1
    print("all invariants hold: balances equal ledgers, no overshoot, one charge per completed job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
