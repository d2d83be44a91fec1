"""The real server (Application, in-process, on port 0) over a real PostgreSQL, with the
fake provider as its upstream: the server speaks OpenAI's API, which the fake serves
directly. LiteLLM is exercised by the e2e tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import httpx
import pytest

from fakeprovider.server import base_url, serve
from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import admin_service_pb2_grpc, job_service_pb2_grpc
from server.app import Application
from server.settings import Settings
from server.storage import migrate
from tests.conftest import ADMIN_KEY, unique

ADMIN = (("x-admin-key", ADMIN_KEY),)


@pytest.fixture(scope="session")
async def fake_url() -> AsyncIterator[str]:
    runner = await serve("127.0.0.1", 0)
    yield base_url(runner)
    await runner.cleanup()


def server_settings(database_url: str, upstream_url: str, **overrides) -> Settings:
    """A server of the tests: on a free port, with the tests' admin key, over a migrated
    database, `upstream_url` as its LiteLLM (the fake provider, mostly)."""
    values = dict(
        database_url=database_url,
        admin_key=ADMIN_KEY,
        litellm_base_url=upstream_url,
        grpc_port=0,
        upstream_timeout_seconds=10,
        migrate_on_start=False,
    )
    return Settings(**{**values, **overrides})


@pytest.fixture(scope="session")
async def app(database_url: str, fake_url: str) -> AsyncIterator[Application]:
    application = Application(server_settings(database_url, fake_url))
    await application.start()
    yield application
    await application.stop(grace=1)


@pytest.fixture(scope="session")
async def channel(app: Application) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield channel


@pytest.fixture(scope="session")
def admin(channel: grpc.aio.Channel) -> admin_service_pb2_grpc.AdminServiceStub:
    return admin_service_pb2_grpc.AdminServiceStub(channel)


@pytest.fixture(scope="session")
def jobs(channel: grpc.aio.Channel) -> job_service_pb2_grpc.JobServiceStub:
    return job_service_pb2_grpc.JobServiceStub(channel)


@dataclass
class TeamFixture:
    team_id: str
    organization_id: str
    alias: str
    group: str
    key: str

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)


async def create_team(
    admin: admin_service_pb2_grpc.AdminServiceStub,
    *,
    credits: int = 100,
    models: tuple[str, ...] = ("fake-gpt", "fake-gpt-backup"),
    **team_fields,
) -> TeamFixture:
    org, group, alias, team = unique("org"), unique("grp"), unique("Agent"), unique("team")
    await admin.CreateOrganization(admin_pb.CreateOrganizationRequest(organization_id=org, name="Org"), metadata=ADMIN)
    await admin.CreateModelAccessGroup(admin_pb.CreateModelAccessGroupRequest(group_name=group), metadata=ADMIN)
    await admin.CreateModel(
        admin_pb.CreateModelRequest(
            model_alias=alias, actual_model=models[0], fallback_models=list(models[1:]), access_groups=[group]
        ),
        metadata=ADMIN,
    )
    created = await admin.CreateTeam(
        admin_pb.CreateTeamRequest(
            organization_id=org, team_id=team, access_groups=[group], credits_allocated=credits, **team_fields
        ),
        metadata=ADMIN,
    )
    return TeamFixture(team_id=team, organization_id=org, alias=alias, group=group, key=created.virtual_key)


@pytest.fixture
async def team(admin) -> TeamFixture:
    return await create_team(admin)


def random_job_id() -> str:
    return str(uuid.uuid4())


async def ledger_mismatches(app: Application) -> list[tuple]:
    """Teams whose balance differs from the sum of their ledger (should be none)."""
    from sqlalchemy import text

    async with app.db.transaction() as conn:
        rows = await conn.execute(
            text(
                """
                SELECT t.team_id, t.credits_allocated - t.credits_used, coalesce(sum(l.amount), 0),
                       t.credits_reserved, coalesce(sum(l.reserved_delta), 0)
                FROM teams t LEFT JOIN credit_ledger l USING (team_id)
                GROUP BY t.team_id
                HAVING t.credits_allocated - t.credits_used <> coalesce(sum(l.amount), 0)
                    OR t.credits_reserved <> coalesce(sum(l.reserved_delta), 0)
                    OR t.credits_allocated - t.credits_used - t.credits_reserved < -t.credits_overdraft_limit
                """
            )
        )
        return [tuple(row) for row in rows]


@pytest.fixture(scope="session", autouse=True)
async def ledger_invariant(request, app: Application) -> AsyncIterator[None]:
    """After the whole session: every team's balance equals the sum of its ledger."""
    yield
    assert await ledger_mismatches(app) == []


@contextlib.asynccontextmanager
async def extra_app(
    database_url: str, fake_url: str, **settings
) -> AsyncIterator[tuple[Application, grpc.aio.Channel]]:
    """Another server on the same database with different settings (retries, timeouts...)."""
    application = Application(server_settings(database_url, fake_url, **settings))
    await application.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{application.port}") as channel:
            yield application, channel
    finally:
        await application.stop(grace=1)


@contextlib.asynccontextmanager
async def private_app(pg, fake_url: str, name: str, **settings) -> AsyncIterator[tuple[Application, grpc.aio.Channel]]:
    """A server over a fresh database of its own, dropped afterwards: for settings whose
    effects would reach other tests' data in the shared one (a short job TTL expires
    everyone's jobs)."""
    database = f"saas_{name}_{uuid.uuid4().hex[:8]}"
    url = pg.create_database(database)
    try:
        migrate.upgrade(url)
        async with extra_app(url, fake_url, **settings) as running:
            yield running
    finally:
        pg.drop_database(database)


async def past_first_content(stream) -> tuple[AsyncIterator, str]:
    """Read a streamed call up to its first event with content (the call is then running,
    the provider's answer under way); the rest of its events, and its job's id."""
    events, job_id = stream.__aiter__(), ""
    while True:
        event = await events.__anext__()
        job_id = job_id or event.job_id
        if event.content:
            return events, job_id


async def fake_requests(fake_url: str) -> list[dict]:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{fake_url}/_fake/requests")).json()["requests"]


async def clear_fake_requests(fake_url: str) -> None:
    async with httpx.AsyncClient() as client:
        await client.delete(f"{fake_url}/_fake/requests")
