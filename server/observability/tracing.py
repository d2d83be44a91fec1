"""OpenTelemetry traces, exported by OTLP/HTTP, only when an endpoint is configured.

Off (the default), `enabled` is False and every helper returns at once: the SDK is not
even imported, no span objects are made. On, `configure()` builds a TracerProvider with
a batching OTLP exporter (export happens in the SDK's background thread), and:

- the interceptor starts one SERVER span per RPC, continuing the caller's trace from the
  W3C `traceparent` metadata (Envoy sends it when its tracing is on);
- the upstream wrapper adds a CLIENT span per attempt on a LiteLLM model;
- Database.transaction adds a CLIENT span per transaction.

Attributes: `saaslitellm.request_id`, `saaslitellm.team_id`, `saaslitellm.job_id`,
`saaslitellm.model` (the alias) and `saaslitellm.upstream_model` on the RPC span;
`rpc.*` as the semantic conventions name them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

enabled = False
_provider: Any = None
_tracer: Any = None
_propagator: Any = None


def configure(endpoint: str, service_name: str) -> None:
    """Export spans to `endpoint` (an OTLP/HTTP traces URL) from now on."""
    global enabled, _provider, _tracer, _propagator
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), schedule_delay_millis=500))
    _tracer = _provider.get_tracer("saaslitellm.server")
    _propagator = TraceContextTextMapPropagator()
    enabled = True


def configure_for_tests(provider: Any) -> None:
    """Use an SDK TracerProvider of the caller's (e.g. with an in-memory exporter)."""
    global enabled, _provider, _tracer, _propagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _provider = provider
    _tracer = provider.get_tracer("saaslitellm.server")
    _propagator = TraceContextTextMapPropagator()
    enabled = True


def shutdown() -> None:
    """Flush pending spans and stop exporting."""
    global enabled, _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    enabled, _provider, _tracer = False, None, None


def start_server_span(name: str, metadata: Mapping[str, str], attributes: dict[str, Any]) -> tuple[Any, Any]:
    """Start the RPC's span as the current span; returns (span, token) for `end_server_span`."""
    from opentelemetry import context, trace

    parent = _propagator.extract(carrier=metadata)
    span = _tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes)
    token = context.attach(trace.set_span_in_context(span, parent))
    return span, token


def end_server_span(span: Any, token: Any, attributes: dict[str, Any], error: bool) -> None:
    from opentelemetry import context, trace

    span.set_attributes(attributes)
    if error:
        span.set_status(trace.Status(trace.StatusCode.ERROR))
    span.end()
    context.detach(token)


@contextlib.contextmanager
def client_span(name: str, attributes: dict[str, Any]) -> Iterator[Any]:
    """A CLIENT span (upstream call, database transaction), current while the block runs;
    an exception marks it as an error. Call only when `enabled`."""
    from opentelemetry import trace

    with _tracer.start_as_current_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes) as span:
        yield span
