"""The key cache across server processes: two Applications (each with its own pool,
cache and LISTEN connection) over one PostgreSQL. A key revoked through one is refused
by both as soon as the revocation returns, although both had it cached; a process whose
LISTEN connection drops stops trusting its cache until it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import admin_service_pb2_grpc, job_pb2, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as job_pb
from server.app import Application
from server.settings import Settings
from tests.conftest import ADMIN_KEY, unique

ADMIN = (("x-admin-key", ADMIN_KEY),)


class Server:
    def __init__(self, app: Application, channel: grpc.aio.Channel) -> None:
        self.app = app
        self.admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        self.jobs = job_service_pb2_grpc.JobServiceStub(channel)

    async def accepts(self, key: str) -> bool:
        try:
            await self.jobs.GetJob(
                job_pb.GetJobRequest(job_id="00000000-0000-4000-8000-000000000000"),
                metadata=(("authorization", f"Bearer {key}"),),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return True  # authenticated; the job simply does not exist
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.details()
            return False
        raise AssertionError("a random job id was found")


@pytest.fixture(scope="module")
async def servers(database_url: str) -> AsyncIterator[tuple[Server, Server]]:
    settings = Settings(
        database_url=database_url,
        admin_key=ADMIN_KEY,
        litellm_base_url="http://127.0.0.1:9",  # not needed: no LLM calls here
        grpc_port=0,
        migrate_on_start=False,
        usage_rollup_interval_seconds=0,
        key_cache_ttl_seconds=300,  # long: only notifications can make these tests pass
    )
    apps = [Application(settings), Application(settings)]
    channels = []
    for app in apps:
        await app.start()
        channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{app.port}"))
    yield Server(apps[0], channels[0]), Server(apps[1], channels[1])
    for channel in channels:
        await channel.close()
    for app in apps:
        await app.stop(grace=0)


async def new_team(server: Server) -> admin_pb.CreateTeamResponse:
    org = unique("org")
    await server.admin.CreateOrganization(
        admin_pb.CreateOrganizationRequest(organization_id=org, name="O"), metadata=ADMIN
    )
    return await server.admin.CreateTeam(
        admin_pb.CreateTeamRequest(organization_id=org, team_id=unique("team"), credits_allocated=1), metadata=ADMIN
    )


async def cached_on(server: Server, key: str) -> bool:
    """True if a request with the key is served from the cache (no database lookup)."""
    misses = server.app.key_cache.misses
    assert await server.accepts(key)
    return server.app.key_cache.misses == misses


async def test_a_revoked_key_is_refused_by_every_process_at_once(servers):
    a, b = servers
    team = await new_team(a)
    for server in (a, b):
        assert await server.accepts(team.virtual_key)
        assert await cached_on(server, team.virtual_key)

    await a.admin.RevokeTeamKey(admin_pb.RevokeTeamKeyRequest(team_id=team.team_id, key_id=team.key_id), metadata=ADMIN)
    assert not await b.accepts(team.virtual_key)
    assert not await a.accepts(team.virtual_key)


async def test_rotation_through_one_process_ends_the_grace_on_the_other(servers):
    a, b = servers
    team = await new_team(b)
    assert await a.accepts(team.virtual_key) and await cached_on(a, team.virtual_key)
    rotated = await b.admin.RotateTeamKey(
        admin_pb.RotateTeamKeyRequest(team_id=team.team_id, key_id=team.key_id, grace_period_seconds=0), metadata=ADMIN
    )
    assert not await a.accepts(team.virtual_key)
    assert await a.accepts(rotated.virtual_key) and await b.accepts(rotated.virtual_key)


async def test_archiving_a_team_revokes_its_keys_everywhere(servers):
    a, b = servers
    team = await new_team(a)
    auth = (("authorization", f"Bearer {team.virtual_key}"),)
    job = await a.jobs.CreateJob(job_pb.CreateJobRequest(job_type="history"), metadata=auth)
    await a.jobs.CompleteJob(job_pb.CompleteJobRequest(job_id=job.job_id, status=job_pb2.Job.FAILED), metadata=auth)
    assert await b.accepts(team.virtual_key) and await cached_on(b, team.virtual_key)
    result = await a.admin.DeleteTeam(admin_pb.DeleteTeamRequest(team_id=team.team_id), metadata=ADMIN)
    assert result.outcome == admin_pb.DeleteTeamResponse.ARCHIVED
    assert not await b.accepts(team.virtual_key) and not await a.accepts(team.virtual_key)


async def test_without_its_listen_connection_a_process_does_not_trust_its_cache(servers):
    a, b = servers
    team = await new_team(a)
    assert await b.accepts(team.virtual_key) and await cached_on(b, team.virtual_key)

    # Kill b's LISTEN connection on the server side, as a network failure or a
    # PostgreSQL restart would: b notices, empties its cache and reconnects.
    listener = b.app.key_listener
    connections = listener.connections
    async with a.app.db.transaction() as conn:
        killed = (await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": listener.backend_pid})).scalar()
    assert killed
    await listener.wait_connected(after=connections, timeout=15)
    assert len(b.app.key_cache) == 0

    # While the connection is down (stopped here), b asks PostgreSQL on every request,
    # so a revocation whose notification it cannot receive still takes effect at once.
    await listener.stop()
    assert not b.app.key_cache.live
    assert await b.accepts(team.virtual_key) and not await cached_on(b, team.virtual_key)
    await a.admin.RevokeTeamKey(admin_pb.RevokeTeamKeyRequest(team_id=team.team_id, key_id=team.key_id), metadata=ADMIN)
    assert not await b.accepts(team.virtual_key)
    await listener.start()
    assert b.app.key_cache.live
