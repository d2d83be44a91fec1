"""Keyword arguments of the call methods: a provider parameter (`top_k`, `n`, ...) goes to
the provider in `extra_body`, but a keyword that names a field of the API's own requests
(`job_metadata`, `team_id`, `status`, ...) is a mistake, refused with a TypeError that says
what to use instead: sent on, it would reach a third-party provider and never the job."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from pydantic import BaseModel

import saaslitellm.v1
from saas_litellm_client import SyncSaasLiteLLMClient
from saas_litellm_client.params import API_REQUEST_FIELDS, KNOWN_OPTIONS, call_body
from tests.client.conftest import FAST_RETRIES, marker

HI = [{"role": "user", "content": "hi"}]


def request_fields_of_the_protos() -> set[str]:
    """Every field of the request message of every RPC of the API, from the generated descriptors."""
    fields: set[str] = set()
    for module in pkgutil.iter_modules(saaslitellm.v1.__path__):
        if not module.name.endswith("_pb2"):
            continue
        descriptor = importlib.import_module(f"saaslitellm.v1.{module.name}").DESCRIPTOR
        for service in descriptor.services_by_name.values():
            for method in service.methods:
                if method.input_type.full_name != "google.api.HttpBody":  # the OpenAI surface's raw body
                    fields |= {field.name for field in method.input_type.fields}
    return fields


def test_the_refused_names_are_the_api_request_fields_that_are_not_call_parameters():
    fields = request_fields_of_the_protos()
    assert {"job_metadata", "team_id", "status", "metadata", "job_id", "idempotency_key"} <= fields
    assert API_REQUEST_FIELDS == fields - KNOWN_OPTIONS - {"messages"}
    assert not API_REQUEST_FIELDS & KNOWN_OPTIONS


@pytest.mark.parametrize(
    ("name", "creates_job", "hint"),
    [
        ("job_metadata", True, "job_metadata: use metadata="),
        ("job_metadata", False, "job_metadata: use call_metadata="),
        ("metadata", False, "metadata: use call_metadata="),
        ("team_id", True, "team_id: "),
        ("status", True, "status: "),
        ("status", False, "status: use complete_job("),
        ("model_group", False, "model_group: use model="),
        ("organization_id", False, "organization_id: "),
        ("url", False, "url: not a provider parameter the API passes on, in extra_body either"),
    ],
)
def test_a_keyword_naming_an_api_field_is_refused_with_what_to_use(name, creates_job, hint):
    with pytest.raises(TypeError) as refused:
        call_body(HI, {name: {"doc": "q3"}, "top_k": 40}, creates_job=creates_job)
    message = str(refused.value)
    assert message.startswith(hint) and message.endswith("refused, never sent to the provider.")


def test_a_name_without_a_better_place_may_still_go_to_the_provider_in_extra_body():
    with pytest.raises(TypeError) as refused:
        call_body(HI, {"provider": {"order": ["a"]}, "job_metadata": {}})
    message = str(refused.value)
    assert message.startswith("provider: not a parameter of this call")
    assert "extra_body={'provider': ...}" in message and "; job_metadata: use call_metadata=" in message
    body = call_body(HI, {"extra_body": {"provider": {"order": ["a"]}}})
    assert body["extra_body"] == {"provider": {"order": ["a"]}}


def test_provider_parameters_and_extra_body_still_pass():
    body = call_body(HI, {"top_k": 40, "seed": 7, "extra_body": {"metadata": {"for": "the provider"}}})
    assert body["seed"] == 7 and body["extra_body"] == {"metadata": {"for": "the provider"}, "top_k": 40}
    assert call_body(HI, {"status": None}) == {"messages": HI}  # None is "not given", as for every option


class Answer(BaseModel):
    text: str


async def test_no_call_method_sends_an_api_field_to_the_provider(client, fake):
    word = marker()
    ask = [{"role": "user", "content": word}]
    job = await client.create_job("refusals")
    attempts = [
        ("job_metadata", lambda: client.create_and_call("t", ask, job_metadata={"doc": "q3"})),
        ("team_id", lambda: client.create_and_call("t", ask, team_id="acme-corp")),
        ("status", lambda: client.create_and_call("t", ask, status="completed")),
        ("job_id", lambda: client.create_and_call("t", ask, job_id=job.job_id)),
        ("job_metadata", lambda: anext(aiter(client.create_and_call_stream("t", ask, job_metadata={"doc": "q3"})))),
        ("metadata", lambda: client.llm_call(job.job_id, ask, metadata={"doc": "q3"})),
        ("user_id", lambda: client.llm_call(job.job_id, ask, user_id="u-1")),
        ("job_type", lambda: anext(aiter(client.llm_call_stream(job.job_id, ask, job_type="x")))),
        ("idempotency_key", lambda: client.structured_call(job.job_id, ask, Answer, idempotency_key="k")),
        ("team_id", lambda: client.estimate_call(ask, max_tokens=10, team_id="acme-corp")),
    ]
    for name, attempt in attempts:
        with pytest.raises(TypeError, match=f"^{name}: "):
            await attempt()
    async with client.job("refusals") as session:
        with pytest.raises(TypeError, match=r"^status: use complete_job"):
            await session.llm_call(ask, status="failed")
        # A session's calls are in its own job: not Python's "multiple values for job_id".
        for attempt in (
            lambda: session.llm_call(ask, job_id=job.job_id),
            lambda: anext(aiter(session.llm_call_stream(ask, job_id=job.job_id))),
            lambda: session.structured_call(ask, Answer, job_id=job.job_id),
        ):
            with pytest.raises(TypeError, match=r"^job_id: a job session's calls are made in its own job"):
                await attempt()
    assert fake.bodies(word) == []  # nothing reached the provider
    assert {j.job_type for j in (await client.list_jobs()).jobs} == {"refusals"}  # and no job was created
    assert (await client.get_job(job.job_id)).metadata == {}


async def test_create_and_call_sends_provider_parameters_and_the_jobs_metadata(client, fake):
    word = marker()
    reply = await client.create_and_call(
        "t", [{"role": "user", "content": word}], metadata={"doc": "q3"}, top_k=40, extra_body={"provider": "p"}
    )
    [body] = fake.bodies(word)
    assert body["top_k"] == 40 and body["provider"] == "p"  # a provider's parameter, sent as asked
    assert "metadata" not in body and "job_metadata" not in body
    assert (await client.get_job(reply.job_id)).metadata == {"doc": "q3"}


def test_the_sync_client_refuses_them_too(stack, team, fake):
    word = marker()
    with SyncSaasLiteLLMClient(
        base_url=stack.api_url, team_id=team.team_id, virtual_key=team.key, retry=FAST_RETRIES
    ) as client:
        with pytest.raises(TypeError, match=r"^job_metadata: use metadata="):
            client.create_and_call("t", [{"role": "user", "content": word}], job_metadata={"doc": "q3"})
        with client.job("sync") as job, pytest.raises(TypeError, match=r"^job_metadata: use call_metadata="):
            job.llm_call([{"role": "user", "content": word}], job_metadata={"doc": "q3"})
    assert fake.bodies(word) == []


@pytest.mark.parametrize(
    ("name", "hint"),
    [("stream", "llm_call_stream()"), ("stream_options", "llm_call_stream()"), ("timeout", "timeout=")],
)
def test_a_keyword_meant_for_the_client_is_refused_with_what_to_use(name, hint):
    # Sent on, it would come back as a 400 naming extra_body, which the caller never wrote.
    for creates_job in (False, True):
        with pytest.raises(TypeError, match=hint):
            call_body(HI, {name: True if name == "stream" else 30}, creates_job=creates_job)
    assert "extra_body" not in call_body(HI, {"stream": None})  # None is not given
