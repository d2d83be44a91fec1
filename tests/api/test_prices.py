"""Model prices read from the upstream's /model/info (the fake provider answers it as the
LiteLLM proxy does): a refresh that fails keeps the prices known, and is retried soon."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import grpc
from sqlalchemy import text

from fakeprovider.server import base_url, serve
from saaslitellm.v1 import admin_service_pb2_grpc, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from server.app import Application
from server.services.prices import REFRESH_SECONDS, RETRY_SECONDS, PriceCatalog
from server.upstream.litellm import LiteLLMClient
from server.upstream.transport import http_client
from tests.api.conftest import create_team, past_first_content, server_settings
from tests.api.test_job_flow import user

FAKE_GPT = (Decimal("0.000001"), Decimal("0.000002"))


def failed_reads(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "could not read model prices" in r.getMessage()]


async def test_prices_outlive_an_upstream_that_went_away_and_are_read_again_when_it_is_back(caplog):
    runner = await serve("127.0.0.1", 0)
    port = runner.addresses[0][1]
    now = [0.0]
    async with http_client() as http:
        catalog = PriceCatalog(LiteLLMClient(http, base_url=base_url(runner), api_key=""), clock=lambda: now[0])
        assert await catalog.price("fake-gpt") == FAKE_GPT
        assert await catalog.price("no-such-model") is None

        await runner.cleanup()  # the proxy restarts, say
        now[0] += REFRESH_SECONDS
        caplog.set_level(logging.WARNING, logger="server.services.prices")
        assert await catalog.price("fake-gpt") == FAKE_GPT  # the failed refresh kept them
        failures = failed_reads(caplog)
        assert len(failures) == 1 and "keeping the 2 known" in failures[0]
        now[0] += RETRY_SECONDS - 1
        assert await catalog.price("fake-gpt") == FAKE_GPT  # not asked again yet
        assert len(failed_reads(caplog)) == 1
        now[0] += 1
        assert await catalog.price("fake-gpt") == FAKE_GPT  # asked again: still away
        assert len(failed_reads(caplog)) == 2

        runner = await serve("127.0.0.1", port)
        try:
            assert await catalog.prices_now() == {"fake-gpt": FAKE_GPT, "fake-gpt-backup": FAKE_GPT}
        finally:
            await runner.cleanup()


async def test_an_upstream_without_model_info_prices_nothing(fake_url):
    """A provider called directly (no LiteLLM) has no /model/info: no prices, not a failure."""
    async with http_client() as http:
        client = LiteLLMClient(http, base_url=fake_url + "/nowhere", api_key="")
        assert await client.model_prices() == {}
        assert await PriceCatalog(client).prices_now() == {}


async def test_a_model_missing_from_the_prices_has_them_read_again_at_most_every_retry_period(fake_url):
    reads = []

    class Counting(LiteLLMClient):
        async def model_prices(self):
            reads.append(1)
            return await super().model_prices()

    now = [0.0]
    async with http_client() as http:
        catalog = PriceCatalog(Counting(http, base_url=fake_url, api_key=""), clock=lambda: now[0])
        assert await catalog.price("fake-gpt") == FAKE_GPT and len(reads) == 1
        assert await catalog.price("added-later") is None and len(reads) == 1  # just read: not again yet
        now[0] += RETRY_SECONDS
        assert await catalog.price("fake-gpt") == FAKE_GPT and len(reads) == 1  # known ones never ask
        assert await catalog.price("added-later") is None and len(reads) == 2  # missing: read again
        assert await catalog.price("added-later") is None and len(reads) == 2  # at most every period
        now[0] += RETRY_SECONDS
        assert await catalog.price("added-later") is None and len(reads) == 3


async def test_a_stream_cut_by_the_proxys_death_is_priced_from_prices_read_at_start_up(database_url):
    """A process reads the prices from start-up on, not only when a call first needs one:
    a stream cut because LiteLLM died is costed from its model's price, which LiteLLM,
    gone, could no longer be asked for."""
    proxy = await serve("127.0.0.1", 0, shutdown_timeout=0.05)
    app = Application(server_settings(database_url, base_url(proxy)))
    await app.start()
    try:
        for _ in range(500):  # the first round of the refresh runs at start-up
            if app.prices.loaded:
                break
            await asyncio.sleep(0.01)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            team = await create_team(admin_service_pb2_grpc.AdminServiceStub(channel), models=("fake-gpt",))
            jobs = job_service_pb2_grpc.JobServiceStub(channel)
            job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
            stream = jobs.LLMCallStream(
                pb.LLMCallStreamRequest(
                    job_id=job.job_id, messages=[user("x [fake tokens=40 chunks=40 delay_ms=200 usage=none]")]
                ),
                metadata=team.auth,
            )
            events, _ = await past_first_content(stream)
            await proxy.cleanup()  # LiteLLM dies mid-stream
            last = [event async for event in events][-1]
            assert last.done and last.error.code == grpc.StatusCode.UNAVAILABLE.value[0], last.error
        async with app.db.transaction() as conn:
            row = (
                await conn.execute(
                    text("SELECT tokens_estimated, provider_cost_usd, cost_source FROM llm_calls WHERE job_id = :j"),
                    {"j": job.job_id},
                )
            ).one()
        assert row.tokens_estimated and row.provider_cost_usd > 0 and row.cost_source == "price_table"
    finally:
        await app.stop(grace=1)
