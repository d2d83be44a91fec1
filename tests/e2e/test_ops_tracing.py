"""Traces: a REST request through Envoy is one trace, from Envoy's span through the
server's RPC span to the upstream call and the database transactions, exported by OTLP
to a receiver this test runs; and tracing costs nothing when it is off."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from devstack.postgres import Postgres
from devstack.stack import Stack
from tests.conftest import ROOT, own_stack
from tests.e2e.conftest import rest_team


class OtlpReceiver:
    """An OTLP/HTTP traces endpoint on 127.0.0.1 keeping every span it receives."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, object]] = []  # (service.name, Span)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def body(self) -> bytes:
                if self.headers.get("content-length") is not None:
                    return self.rfile.read(int(self.headers["content-length"]))
                chunks = []  # Envoy sends chunked transfer encoding
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)

            def do_POST(self) -> None:
                body = self.body()
                request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                with receiver._lock:
                    for resource_spans in request.resource_spans:
                        attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                        for scope in resource_spans.scope_spans:
                            receiver.spans += [(attributes.get("service.name", ""), s) for s in scope.spans]
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def trace(self, trace_id: bytes) -> list[tuple[str, object]]:
        with self._lock:
            return [(service, span) for service, span in self.spans if span.trace_id == trace_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def traced(pg: Postgres, receiver: OtlpReceiver, tmp_path_factory) -> Iterator[Stack]:
    # with_litellm=False: the server calls the fake provider directly
    with own_stack(pg, tmp_path_factory, "trace", with_litellm=False, otlp_traces_endpoint=receiver.url) as stack:
        yield stack


def attributes(span) -> dict[str, object]:
    out = {}
    for a in span.attributes:
        kind = a.value.WhichOneof("value")
        out[a.key] = getattr(a.value, kind) if kind else None
    return out


def test_a_rest_call_is_one_trace_from_envoy_to_upstream_and_database(traced, receiver):
    api = f"{traced.api_url}/api"
    team = rest_team(api, models=("fake-gpt",))
    job = requests.post(f"{api}/jobs/create", json={"job_type": "traced"}, headers=team.headers, timeout=10).json()
    # The client starts the trace; Envoy continues it and forwards traceparent.
    trace_id = uuid.uuid4().bytes
    traceparent = f"00-{trace_id.hex()}-{uuid.uuid4().hex[:16]}-01"
    reply = requests.post(
        f"{api}/jobs/{job['job_id']}/llm-call",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={**team.headers, "traceparent": traceparent},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text

    def complete() -> bool:
        names = {span.name for _, span in receiver.trace(trace_id)}
        return {"saaslitellm.v1.JobService/LLMCall", "chat.completions", "db.transaction"} <= names and any(
            service == "envoy" for service, _ in receiver.trace(trace_id)
        )

    deadline = time.monotonic() + 20  # both exporters batch: Envoy every second, the server every 0.5 s
    while not complete() and time.monotonic() < deadline:
        time.sleep(0.1)
    spans = receiver.trace(trace_id)
    assert complete(), sorted((service, span.name) for service, span in spans)

    envoy = [span for service, span in spans if service == "envoy"]
    rpc = [span for service, span in spans if span.name == "saaslitellm.v1.JobService/LLMCall"]
    assert len(envoy) == 1 and len(rpc) == 1
    envoy, rpc = envoy[0], rpc[0]
    assert rpc.parent_span_id == envoy.span_id  # the server continued Envoy's span
    assert {service for service, span in spans if span is rpc} == {"saaslitellm-server"}
    found = attributes(rpc)
    assert found["saaslitellm.team_id"] == team.team_id
    assert found["saaslitellm.job_id"] == job["job_id"]
    assert found["saaslitellm.model"] == team.alias
    assert found["saaslitellm.upstream_model"] == "fake-gpt"
    assert found["saaslitellm.request_id"] == reply.headers["x-request-id"]
    assert found["rpc.grpc.status_code"] == "OK"

    upstream = [span for _, span in spans if span.name == "chat.completions"]
    assert len(upstream) == 1 and upstream[0].parent_span_id == rpc.span_id
    assert attributes(upstream[0])["gen_ai.request.model"] == "fake-gpt"
    database = [span for _, span in spans if span.name == "db.transaction"]
    # Check the job, then record the call (in its own task, still in the request's trace).
    assert len(database) >= 2
    server_span_ids = {rpc.span_id, upstream[0].span_id}
    assert all(span.parent_span_id in server_span_ids for span in database)
    assert all(attributes(span)["db.system"] == "postgresql" for span in database)


def test_without_an_endpoint_the_tracing_sdk_is_never_loaded():
    """Off by default, at no cost: importing and wiring the server loads no SDK."""
    code = (
        "import sys; import server.__main__, server.app;"
        "from server.observability import tracing;"
        "from server.settings import Settings;"
        "s = Settings.from_env({'DATABASE_URL': 'postgresql://x@127.0.0.1/x', 'SAAS_ADMIN_KEY': 'k' * 16});"
        "assert not s.otlp_traces_endpoint and not tracing.enabled;"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
