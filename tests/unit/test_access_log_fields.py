"""The access log line and the RPC span carry a request's team, job and model as the
caller sent them only when they have the shape the API accepts, and never a key.

They are read from the request before it is authenticated or validated: a caller without
a key could otherwise write megabytes into the log, or a key sent in the wrong field
(a model, a job id in a path) would be logged whole.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from saaslitellm.v1 import job_pb2, job_service_pb2_grpc, openai_service_pb2, openai_service_pb2_grpc
from saaslitellm.v1 import job_service_pb2 as pb
from server.api.errors import ErrorInterceptor
from server.api.handlers import HandlerTable
from server.api.job_servicer import JobServicer
from server.api.openai_servicer import OpenAIServicer
from server.domain import keys
from server.observability import interceptor, tracing
from server.observability.interceptor import ObservabilityInterceptor
from server.services.auth import Authenticator

KEY = keys.new_key().secret  # a virtual key, as a team would paste it
ADMIN_KEY = "Operator.Admin.Key.0123456789"  # an admin key: any text, of no key shape
WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HUGE = 3_000_000
INVALID = "(invalid)"
JOB = str(uuid.uuid4())


@pytest.mark.parametrize(
    "value",
    ["", "acme-corp", "t", "Team_1.eu-west", "a" * 64, "sk-abcdefgh", "task-classifier", "risk-assessment-team-europe"],
)
def test_a_team_id_the_api_accepts_is_logged_as_sent(value):
    assert interceptor.logged_team_id(value) == value


@pytest.mark.parametrize(
    "value", ["A" * HUGE, "a" * 65, "-team", "team id", "t/x", "t\n", "équipe", KEY, "x." + KEY, WEBHOOK_SECRET]
)
def test_a_team_id_the_api_refuses_or_a_key_is_not_logged(value):
    assert interceptor.logged_team_id(value) == INVALID


@pytest.mark.parametrize(
    "value",
    [
        "",
        "gpt-4o",
        "fake-gpt",
        "openai/gpt-4o-mini",
        "ns:model.v1_2",
        "m" * 128,
        "sk-abcdefgh",
        "ask-the-expert-assistant",
    ],
)
def test_a_model_the_api_accepts_is_logged_as_sent(value):
    assert interceptor.logged_model(value) == value


@pytest.mark.parametrize(
    "value", ["B" * HUGE, "m" * 129, "/gpt", "gpt 4o", "gpt\t4o", KEY, "openai/" + KEY, WEBHOOK_SECRET]
)
def test_a_model_the_api_refuses_or_a_key_is_not_logged(value):
    assert interceptor.logged_model(value) == INVALID


def test_a_job_id_is_logged_when_it_is_a_uuid_as_the_server_writes_it():
    assert interceptor.logged_job_id("") == ""
    assert interceptor.logged_job_id(JOB) == JOB
    for accepted in (JOB.upper(), JOB.replace("-", ""), "{" + JOB + "}", "urn:uuid:" + JOB):
        assert interceptor.logged_job_id(accepted) == JOB


@pytest.mark.parametrize("value", ["j" * HUGE, "job-1", JOB + "0", JOB[:-1], KEY, WEBHOOK_SECRET, " " + JOB + "\n"])
def test_a_job_id_that_is_no_uuid_is_not_logged(value):
    assert interceptor.logged_job_id(value) == INVALID


def test_key_shaped_is_what_the_log_checks_look_for():
    """tests/e2e/test_ops_observability.py fails on `(sk-|whsec_)` and 20 key characters."""
    assert interceptor.key_shaped(KEY) and interceptor.key_shaped(WEBHOOK_SECRET)
    assert interceptor.key_shaped("models/" + KEY + "/x")
    assert interceptor.key_shaped("abc" + KEY)  # glued to a word, but a whole key
    assert not interceptor.key_shaped(KEY[:22])  # the prefix lists show, and a bit more
    assert not interceptor.key_shaped("gpt-4o") and not interceptor.key_shaped("")


# The server's own interceptors, servicers and authenticator, over a real gRPC transport:
# every request below has no key, so it is refused before anything needs a database.


@pytest.fixture
async def served() -> AsyncIterator[tuple[grpc.aio.Channel, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.configure_for_tests(provider)
    auth = Authenticator(None, ADMIN_KEY)  # type: ignore[arg-type]
    table = HandlerTable()
    job_service_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(auth, None, None, None, None, None), table)
    openai_service_pb2_grpc.add_OpenAIServiceServicer_to_server(OpenAIServicer(auth, None, None, None), table)
    server = grpc.aio.server(interceptors=[ErrorInterceptor(), ObservabilityInterceptor(secrets=(ADMIN_KEY,))])
    table.install(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel, exporter
    finally:
        await server.stop(None)
        tracing.shutdown()


async def _refused(call, request, metadata=()) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(request, metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _access_lines(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "saaslitellm.access"]


async def test_unauthenticated_requests_log_no_huge_field_and_no_key(served, caplog):
    channel, spans = served
    caplog.set_level(logging.INFO, logger="saaslitellm.access")
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    openai = openai_service_pb2_grpc.OpenAIServiceStub(channel)

    await _refused(jobs.CreateJob, pb.CreateJobRequest(job_type="x", team_id="A" * HUGE))
    await _refused(jobs.LLMCall, pb.LLMCallRequest(job_id=JOB, model="B" * HUGE))
    await _refused(jobs.LLMCall, pb.LLMCallRequest(job_id=JOB, model=KEY))
    await _refused(jobs.GetJob, pb.GetJobRequest(job_id=KEY))
    await _refused(openai.GetOpenAIModel, openai_service_pb2.GetOpenAIModelRequest(model=KEY))
    await _refused(jobs.CreateJob, pb.CreateJobRequest(job_type="x", team_id=KEY), (("x-request-id", KEY),))
    # The admin key has no shape of its own: a name that holds it is still not logged.
    await _refused(jobs.LLMCall, pb.LLMCallRequest(job_id=JOB, model=ADMIN_KEY), (("x-request-id", ADMIN_KEY),))

    lines = _access_lines(caplog)
    assert [(r.rpc, r.team_id, r.job_id, r.model) for r in lines] == [
        ("JobService/CreateJob", INVALID, "", ""),
        ("JobService/LLMCall", "", JOB, INVALID),
        ("JobService/LLMCall", "", JOB, INVALID),
        ("JobService/GetJob", "", INVALID, ""),
        ("OpenAIService/GetOpenAIModel", "", "", INVALID),
        ("JobService/CreateJob", INVALID, "", ""),
        ("JobService/LLMCall", "", JOB, INVALID),
    ]
    assert all(r.code == "UNAUTHENTICATED" for r in lines)
    assert uuid.UUID(lines[-1].request_id), "a key-shaped request id is replaced by one of the server's"
    finished = spans.get_finished_spans()
    assert len(finished) == len(lines)
    for record in [*lines, *(span.attributes for span in finished)]:
        written = str(vars(record) if isinstance(record, logging.LogRecord) else dict(record))
        assert len(written) < 2000 and KEY not in written and KEY[:22] not in written and ADMIN_KEY not in written


async def test_fields_of_the_shape_the_api_accepts_are_logged_as_sent(served, caplog):
    channel, spans = served
    caplog.set_level(logging.INFO, logger="saaslitellm.access")
    jobs = job_service_pb2_grpc.JobServiceStub(channel)

    await _refused(jobs.CreateJob, pb.CreateJobRequest(job_type="x", team_id="acme-corp"), (("x-request-id", "r-1"),))
    await _refused(jobs.LLMCall, pb.LLMCallRequest(job_id=JOB, model="openai/gpt-4o"))

    created, called = _access_lines(caplog)
    assert (created.request_id, created.team_id, created.job_id, created.model) == ("r-1", "acme-corp", "", "")
    assert (called.team_id, called.job_id, called.model) == ("", JOB, "openai/gpt-4o")
    attributes = [span.attributes for span in spans.get_finished_spans()]
    assert attributes[0]["saaslitellm.team_id"] == "acme-corp" and attributes[0]["saaslitellm.request_id"] == "r-1"
    assert attributes[1]["saaslitellm.job_id"] == JOB and attributes[1]["saaslitellm.model"] == "openai/gpt-4o"


class _Context:
    """What the interceptor asks of a grpc.aio context on a successful unary call."""

    def invocation_metadata(self):
        return (("x-request-id", "r-after"),)


async def test_the_access_line_is_written_after_the_response_is_returned(caplog):
    """Its formatting is not on the call's path: the handler returns, gRPC sends the
    response, and the line is written on the loop's next turn, with the request's id."""
    caplog.set_level(logging.INFO, logger="saaslitellm.access")
    method = interceptor._Method("/saaslitellm.v1.JobService/GetJob", "unary")

    async def get_job(request, rpc_context):
        return job_pb2.Job(job_id=request.job_id)

    response = await interceptor._unary(get_job, method)(pb.GetJobRequest(job_id=JOB), _Context())
    assert response.job_id == JOB and _access_lines(caplog) == []
    await asyncio.sleep(0)
    (line,) = _access_lines(caplog)
    assert (line.rpc, line.code, line.job_id, line.request_id) == ("JobService/GetJob", "OK", JOB, "r-after")
