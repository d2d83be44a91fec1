"""A model name LiteLLM balances over several deployments at different prices (a real
proxy): what bounds a call (a job's cost limit, EstimateCall) is priced at the priciest
deployment, whichever is listed last; a call costed from the prices is costed at the
deployment that served it when LiteLLM says which (`x-litellm-model-id`), else at the
priciest; a model with a deployment without a price is unpriced."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import ROUND_CEILING, Decimal

import grpc
import pytest

from saaslitellm.v1 import admin_service_pb2 as admin_pb
from saaslitellm.v1 import admin_service_pb2_grpc, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from tests.api.conftest import ADMIN, create_team, extra_app, fake_requests
from tests.api.litellm_proxy import LiteLLMProxy, deployment
from tests.api.test_job_flow import expect_error, user
from tests.api.test_upstream import only_call, recorded

PRICEY = (Decimal("0.00002"), Decimal("0.00004"))
CHEAP = (Decimal("0.000001"), Decimal("0.000002"))
MODELS = [
    # The priciest listed first: a price per model name taken from the last listed is the cheap one.
    deployment("lb", "openai/fake-lb-pricey", (0.00002, 0.00004)),
    deployment("lb", "openai/fake-lb-cheap", (0.000001, 0.000002)),
    deployment("lb-partly", "openai/fake-lb-priced", (0.000001, 0.000002)),
    deployment("lb-partly", "openai/fake-lb-unpriced"),
]
SERVED_BY = {"fake-lb-pricey": PRICEY, "fake-lb-cheap": CHEAP}


@pytest.fixture(scope="module")
def proxy(fake_url, tmp_path_factory) -> Iterator[LiteLLMProxy]:
    with LiteLLMProxy(tmp_path_factory.mktemp("litellm-lb"), fake_url, MODELS) as running:
        yield running


@pytest.fixture(scope="module")
async def server(database_url, proxy) -> AsyncIterator[tuple]:
    settings = {"litellm_api_key": proxy.master_key, "upstream_timeout_seconds": 3}
    async with extra_app(database_url, proxy.litellm_url, **settings) as (app, channel):
        yield app, admin_service_pb2_grpc.AdminServiceStub(channel), job_service_pb2_grpc.JobServiceStub(channel)


def cost(usage: tuple[int, int], price: tuple[Decimal, Decimal]) -> Decimal:
    return usage[0] * price[0] + usage[1] * price[1]


async def test_a_calls_bounds_are_at_the_priciest_deployment_of_its_model(server):
    _, admin, jobs = server
    team = await create_team(admin, models=("lb",), max_cost_usd_per_job="1")
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    estimate = await jobs.EstimateCall(
        pb.EstimateCallRequest(job_id=job.job_id, messages=[user("bound me")], max_tokens=100), metadata=team.auth
    )
    bounds = (estimate.input_tokens_bound, estimate.output_tokens_bound)
    assert Decimal(estimate.max_cost_usd) == cost(bounds, PRICEY).quantize(Decimal("1e-10"), ROUND_CEILING)


async def test_a_model_with_a_deployment_without_a_price_is_unpriced(server):
    _, admin, jobs = server
    team = await create_team(admin, models=("lb-partly",), max_cost_usd_per_job="1")
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    request = pb.LLMCallRequest(job_id=job.job_id, messages=[user("x")], max_tokens=10)
    await expect_error(jobs.LLMCall(request, metadata=team.auth), grpc.StatusCode.FAILED_PRECONDITION, "MODEL_UNPRICED")
    catalog = await admin.ListCatalogModels(admin_pb.ListCatalogModelsRequest(), metadata=ADMIN)
    assert "lb-partly" in catalog.unpriced_models and "lb" not in catalog.unpriced_models


async def test_a_call_costed_from_the_prices_is_at_the_price_of_the_deployment_that_served_it(server, fake_url):
    """Calls whose usage nobody reported are counted and costed from the prices: plain
    ones with no usage, streams broken off (whose usage LiteLLM never counted); until
    LiteLLM has sent both deployments some."""
    app, admin, jobs = server
    team = await create_team(admin, models=("lb",))
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    served: dict[str, str] = {}  # call id: the deployment's model, as the provider saw it
    for n in range(40):
        marker = f"lb-{job.job_id}-{n}"
        if n % 2:
            text = f"{marker} one two three [fake tokens=20 chunks=10 drop_after=4]"
            events = jobs.LLMCallStream(
                pb.LLMCallStreamRequest(job_id=job.job_id, messages=[user(text)]), metadata=team.auth
            )
            ids = [event.call_id async for event in events]  # to its end: the call is then recorded
            call_id = ids[0]
        else:
            text = f"{marker} one two three [fake usage=none]"
            call_id = (
                await jobs.LLMCall(pb.LLMCallRequest(job_id=job.job_id, messages=[user(text)]), metadata=team.auth)
            ).call_id
        request = next(r for r in await fake_requests(fake_url) if marker in str(r["body"]["messages"]))
        served[call_id] = request["model"]
        if n >= 3 and set(served.values()) == set(SERVED_BY):
            break
    assert set(served.values()) == set(SERVED_BY)
    for call_id, model in served.items():
        row = await recorded(app, call_id)
        assert row.cost_source == "price_table" and row.tokens_estimated
        assert row.provider_cost_usd == cost((row.prompt_tokens, row.completion_tokens), SERVED_BY[model]), model


async def test_a_call_whose_deployment_is_not_known_is_costed_at_the_priciest(server):
    """A call that timed out waiting for its answer: LiteLLM never said which deployment
    had it, and the provider bills the prompt it read."""
    app, admin, jobs = server
    team = await create_team(admin, models=("lb",))
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    request = pb.LLMCallRequest(job_id=job.job_id, messages=[user("slow one two [fake delay_ms=6000]")])
    await expect_error(jobs.LLMCall(request, metadata=team.auth), grpc.StatusCode.DEADLINE_EXCEEDED, "UPSTREAM_TIMEOUT")
    row = await only_call(app, job.job_id)
    assert row.cost_source == "price_table" and row.prompt_tokens and not row.completion_tokens
    assert row.provider_cost_usd == cost((row.prompt_tokens, 0), PRICEY)
