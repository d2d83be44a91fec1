"""A price raised in LiteLLM (a real proxy, restarted with its new config, as an operator
does): a server that knew the old one learns the new one as soon as a call's cost, as
LiteLLM reports it, shows it; so a job under a cost limit is bounded at the new price from
its next call on, not for minutes at the old one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import grpc
import pytest
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2_grpc, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from server.domain.completion import Usage
from server.services.prices import REFRESH_SECONDS, PriceCatalog
from server.upstream.litellm import LiteLLMClient
from server.upstream.transport import http_client
from tests.api.conftest import create_team, extra_app
from tests.api.litellm_proxy import LiteLLMProxy, deployment
from tests.api.test_job_flow import error_info, expect_error, user
from tests.api.test_upstream import recorded

OLD = (0.00001, 0.00002)
RAISED = (0.00003, 0.00006)  # three times the old price
TEXT = "hi [fake tokens=40]"


@pytest.fixture(scope="module")
def proxy(fake_url, tmp_path_factory) -> Iterator[LiteLLMProxy]:
    models = [deployment("repriced", "openai/fake-repriced", OLD), deployment("steady", "openai/fake-steady", OLD)]
    with LiteLLMProxy(tmp_path_factory.mktemp("litellm-prices"), fake_url, models) as running:
        yield running


@pytest.fixture(scope="module")
async def server(database_url, proxy) -> AsyncIterator[tuple]:
    async with extra_app(database_url, proxy.litellm_url, litellm_api_key=proxy.master_key) as (app, channel):
        yield app, admin_service_pb2_grpc.AdminServiceStub(channel), job_service_pb2_grpc.JobServiceStub(channel)


def call_request(job_id: str = "", **request) -> dict:
    return {"job_id": job_id, "messages": [user(TEXT)], "max_tokens": 40, **request}


async def test_a_job_under_a_cost_limit_is_bounded_at_a_raised_price_from_the_call_that_showed_it(server, proxy):
    app, admin, jobs = server
    probe = await create_team(admin, models=("repriced",))
    old_worst = Decimal(
        (await jobs.EstimateCall(pb.EstimateCallRequest(**call_request()), metadata=probe.auth)).max_cost_usd
    )
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=probe.auth)
    reply = await jobs.LLMCall(pb.LLMCallRequest(**call_request(job.job_id)), metadata=probe.auth)
    old_cost = (await recorded(app, reply.call_id)).provider_cost_usd

    await app.prices.prices_now()  # just read: the next regular read is a refresh period away
    raised = [deployment("repriced", "openai/fake-repriced", RAISED), deployment("steady", "openai/fake-steady", OLD)]
    await asyncio.to_thread(proxy.restart, raised)

    # Room for one call at the new price and then one worst case at the old price, not at the new.
    limit = 3 * old_cost + old_worst
    team = await create_team(admin, models=("repriced",), max_cost_usd_per_job=str(limit))
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    first = await jobs.LLMCall(
        pb.LLMCallRequest(**call_request(job.job_id)), metadata=team.auth
    )  # reserved at the old price
    row = await recorded(app, first.call_id)
    assert (row.cost_source, row.provider_cost_usd) == ("litellm", 3 * old_cost)  # LiteLLM's, at the new price

    estimate = await jobs.EstimateCall(pb.EstimateCallRequest(**call_request(job.job_id)), metadata=team.auth)
    assert Decimal(estimate.max_cost_usd) == 3 * old_worst and not estimate.fits_job_cost_limit
    refused = await expect_error(
        jobs.LLMCall(pb.LLMCallRequest(**call_request(job.job_id)), metadata=team.auth),
        grpc.StatusCode.FAILED_PRECONDITION,
        "JOB_COST_LIMIT_REACHED",
    )
    assert Decimal(error_info(refused).metadata["call_worst_case_usd"]) == 3 * old_worst
    async with app.db.transaction() as conn:
        spent = await conn.execute(
            text("SELECT sum(billed_cost_usd) FROM llm_calls WHERE job_id = :j"), {"j": job.job_id}
        )
        assert spent.scalar_one() <= limit


async def test_calls_that_show_a_price_change_together_read_the_prices_once(proxy):
    """And a model whose costs disagree with its price however often it is read (a
    provider's discount for cached tokens, say) has it read again only once a refresh."""
    reads = []

    class Counting(LiteLLMClient):
        async def model_prices(self):
            reads.append(1)
            return await super().model_prices()

    now = [0.0]
    async with http_client() as http:
        client = Counting(http, base_url=proxy.litellm_url, api_key=proxy.master_key)
        catalog = PriceCatalog(client, clock=lambda: now[0])
        price = await catalog.price("steady")
        assert len(reads) == 1
        usage = Usage(10, 10)
        agreeing = price[0] * 10 + price[1] * 10
        await catalog.check_reported("steady", "", usage, agreeing)
        assert len(reads) == 1  # the price known gives it: nothing to read

        disagreeing = 2 * agreeing
        await asyncio.gather(*(catalog.check_reported("steady", "", usage, disagreeing) for _ in range(5)))
        assert len(reads) == 2
        await catalog.check_reported("steady", "", usage, disagreeing)
        assert len(reads) == 2  # it still disagrees: not read for again until a refresh is due
        now[0] += REFRESH_SECONDS
        await catalog.check_reported("steady", "", usage, disagreeing)
        assert len(reads) == 3
