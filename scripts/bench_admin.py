"""Figures for the admin API: what the key cache saves, what a revocation costs, and how
fast usage reports are over a large rollup.

    .venv/bin/python scripts/bench_admin.py postgresql://postgres@127.0.0.1:5432/postgres

Creates a scratch database on that server (dropped at the end), starts two in-process
servers on it, and prints:
- the median authenticated round trip (GetJob of an unknown job: authentication plus one
  indexed lookup) with the key cache on and off;
- the median RevokeTeamKey latency with two listening processes (it waits for both);
- the median team and organization usage report over 200k calls.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import grpc
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import admin_service_pb2_grpc, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as job_pb
from server.app import Application
from server.settings import Settings
from server.storage import migrate
from server.storage.database import sqlalchemy_url
from tests.integration.test_usage_rollup_admin import SEED

ADMIN_KEY = "bench-admin-key-0123456789"
ADMIN = (("x-admin-key", ADMIN_KEY),)
ROUNDS = 500
# What the organization report would cost without the rollup: calls by day and job type.
RAW_ORGANIZATION_REPORT = """
    SELECT (c.created_at AT TIME ZONE 'UTC')::date, j.job_type, count(*), sum(c.prompt_tokens),
           sum(c.completion_tokens), sum(c.provider_cost_usd), sum(c.billed_cost_usd)
    FROM llm_calls c JOIN jobs j ON j.job_id = c.job_id JOIN teams t ON t.team_id = c.team_id
    WHERE t.organization_id = 'org-seed'
    GROUP BY GROUPING SETS ((), (1), (2), (1, 2))
"""


async def median_ms(action, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def bench(url: str) -> None:
    apps = []
    for ttl in (30.0, 0.0):
        settings = Settings(
            database_url=url,
            admin_key=ADMIN_KEY,
            grpc_port=0,
            migrate_on_start=False,
            key_cache_ttl_seconds=ttl,
            usage_rollup_interval_seconds=0,
        )
        app = Application(settings)
        await app.start()
        apps.append(app)
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") for app in apps]
    admin = admin_service_pb2_grpc.AdminServiceStub(channels[0])
    await admin.CreateOrganization(
        admin_pb.CreateOrganizationRequest(organization_id="bench", name="B"), metadata=ADMIN
    )
    team = await admin.CreateTeam(
        admin_pb.CreateTeamRequest(organization_id="bench", team_id="bench-team"), metadata=ADMIN
    )
    auth = (("authorization", f"Bearer {team.virtual_key}"),)
    unknown = job_pb.GetJobRequest(job_id=str(uuid.uuid4()))
    for label, channel in (("cache on ", channels[0]), ("cache off", channels[1])):
        jobs = job_service_pb2_grpc.JobServiceStub(channel)

        async def get_job(jobs=jobs) -> None:
            try:
                await jobs.GetJob(unknown, metadata=auth)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND

        await get_job()
        print(f"authenticated round trip, {label}: median {await median_ms(get_job, ROUNDS):.2f} ms")

    async def revoke() -> None:
        key = await admin.CreateTeamKey(
            admin_pb.CreateTeamKeyRequest(team_id="bench-team", name=uuid.uuid4().hex), metadata=ADMIN
        )
        started = time.perf_counter()
        await admin.RevokeTeamKey(
            admin_pb.RevokeTeamKeyRequest(team_id="bench-team", key_id=key.key.key_id), metadata=ADMIN
        )
        samples.append((time.perf_counter() - started) * 1000)

    samples: list[float] = []
    for _ in range(50):
        await revoke()
    print(f"RevokeTeamKey with 2 listening processes: median {statistics.median(samples):.2f} ms")

    async with apps[0].db.transaction() as conn:
        for statement in SEED:
            await conn.execute(text(statement))
    await apps[0].rollup.compact()
    reports = apps[0].analytics
    team_ms = await median_ms(lambda: reports.team_usage("team-7", "", "", "", 10), 50)
    org_ms = await median_ms(lambda: reports.organization_usage("org-seed", "", "", "", 10), 50)
    print(f"usage report over 200k calls: team median {team_ms:.2f} ms, organization (40 teams) {org_ms:.2f} ms")

    async def raw_report() -> None:
        async with apps[0].db.transaction() as conn:
            await conn.execute(text(RAW_ORGANIZATION_REPORT))

    raw_ms = await median_ms(raw_report, 5)
    print(f"the same organization figures from llm_calls and jobs directly: median {raw_ms:.2f} ms")
    for channel in channels:
        await channel.close()
    for app in apps:
        await app.stop(grace=0)


def main() -> None:
    server_url = sys.argv[1]
    name = f"saas_bench_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server_url.rsplit("/", 1)[0] + "/" + name
    try:
        migrate.upgrade(url)
        asyncio.run(bench(url))
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin_engine.dispose()


if __name__ == "__main__":
    main()
