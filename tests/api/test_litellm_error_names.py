"""A request the provider rejects (a real LiteLLM proxy's own wording): the message a tenant
reads, and the call's record keeps, names the alias, never a real model identifier the
proxy knows (its model names, each deployment's model with or without its provider
prefix), and none of LiteLLM's advice on its own configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from google.protobuf import struct_pb2
from sqlalchemy import text

from saaslitellm.v1 import admin_service_pb2_grpc, job_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from tests.api.conftest import create_team, extra_app
from tests.api.litellm_proxy import LiteLLMProxy, deployment
from tests.api.test_job_flow import expect_error, user

MODELS = [
    deployment("hidden", "openai/gpt-4o-mini-2024-07-18", (0.000001, 0.000002)),
    # A model name within its deployment's model: replaced alone, it left "fake-secret-<alias>".
    deployment("pricey", "openai/fake-secret-pricey", (0.00001, 0.00002)),
]
REAL = ("gpt-4o", "2024-07-18", "openai/", "secret", "fake-", "pricey", "hidden")
ADVICE = ("drop_params", "litellm", "allowed_openai_params", "proxy")


@pytest.fixture(scope="module")
def proxy(fake_url, tmp_path_factory) -> Iterator[LiteLLMProxy]:
    with LiteLLMProxy(tmp_path_factory.mktemp("litellm-names"), fake_url, MODELS) as running:
        yield running


@pytest.fixture(scope="module")
async def server(database_url, proxy) -> AsyncIterator[tuple]:
    async with extra_app(database_url, proxy.litellm_url, litellm_api_key=proxy.master_key) as (app, channel):
        await app.prices.prices_now()  # as the server's first refresh does at start-up
        yield app, admin_service_pb2_grpc.AdminServiceStub(channel), job_service_pb2_grpc.JobServiceStub(channel)


def thinking() -> struct_pb2.Struct:
    extra = struct_pb2.Struct()
    extra.update({"thinking": {"type": "enabled"}})
    return extra


@pytest.mark.parametrize("model", ["hidden", "pricey"])
async def test_a_rejected_requests_message_names_no_real_model_and_no_litellm_setting(server, model):
    app, admin, jobs = server
    team = await create_team(admin, models=(model,))
    job = await jobs.CreateJob(pb.CreateJobRequest(job_type="t"), metadata=team.auth)
    messages = []
    for rpc, request in ((jobs.LLMCall, pb.LLMCallRequest), (jobs.LLMCallStream, pb.LLMCallStreamRequest)):
        call = rpc(request(job_id=job.job_id, messages=[user("x")], extra_body=thinking()), metadata=team.auth)
        if rpc is jobs.LLMCallStream:
            call = anext(aiter(call))
        messages.append((await expect_error(call, grpc.StatusCode.INVALID_ARGUMENT, "UPSTREAM_REJECTED")).details())
    async with app.db.transaction() as conn:
        rows = await conn.execute(text("SELECT error_message FROM llm_calls WHERE job_id = :j"), {"j": job.job_id})
        messages += [row.error_message for row in rows]
    assert len(messages) == 4
    for message in messages:
        assert message.startswith("the model provider rejected the request: "), message
        assert "['thinking']" in message and f"model={team.alias}" in message, message  # what the tenant needs
        said = message.replace(team.alias, "<alias>")
        assert not [word for word in REAL + ADVICE if word in said.lower()], message
