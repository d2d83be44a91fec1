"""Prometheus metrics and their HTTP endpoint.

Per process, counted where things happen (the hot path only increments counters and
observes histograms, through label children looked up once per RPC method):

- `grpc_server_started_total`, `grpc_server_handled_total{grpc_code}` and
  `grpc_server_handling_seconds` per RPC (the names go-grpc-prometheus made common, so
  existing gRPC dashboards work);
- `saaslitellm_streams_open`: server streams in flight;
- `saaslitellm_upstream_request_duration_seconds{model, kind}` and
  `saaslitellm_upstream_errors_total{model, reason}`: each attempt on a LiteLLM model;
- `saaslitellm_llm_calls_unpriced_total{model}`: calls recorded at $0 because their model
  has no known price (server/services/prices.py);
- `saaslitellm_db_pool_connections{state}`, `saaslitellm_db_pool_connections_max`,
  `saaslitellm_db_transaction_duration_seconds`, `saaslitellm_db_unavailable_total`;
- `saaslitellm_webhook_attempts_dropped_total`: webhook attempts that ended after their
  lease, their outcome dropped (server/services/webhooks.py).

Fleet-wide, read from PostgreSQL when scraped (UsageCollector; one row, see migration
0004): jobs by status, jobs created, credits charged and refunded, calls, tokens, provider and billed
cost. Every process reports the same figures: aggregate them with max(), not sum().

Several processes on one host (make dev, the tests) share PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode): each writes its values there and any process's
endpoint serves the sum over all, so Envoy's /metrics can route to any of them. With one
process per container (Kubernetes), leave it unset and scrape each pod's endpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from decimal import Decimal
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer

log = logging.getLogger(__name__)

_RPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
_RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
_DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)

RPC_STARTED = Counter("grpc_server_started", "RPCs started on the server.", _RPC_LABELS)
RPC_HANDLED = Counter(
    "grpc_server_handled", "RPCs completed on the server, by gRPC status code.", (*_RPC_LABELS, "grpc_code")
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its end (a stream: its last message).",
    _RPC_LABELS,
    buckets=_RPC_BUCKETS,
)
STREAMS_OPEN = Gauge(
    "saaslitellm_streams_open", "Server-streaming RPCs in flight.", ("grpc_method",), multiprocess_mode="livesum"
)
UPSTREAM_SECONDS = Histogram(
    "saaslitellm_upstream_request_duration_seconds",
    "One attempt on a LiteLLM model: kind=complete (whole call), stream_start (until the "
    "stream opened) or stream (until it ended).",
    ("model", "kind"),
    buckets=_UPSTREAM_BUCKETS,
)
UPSTREAM_ERRORS = Counter(
    "saaslitellm_upstream_errors", "Failed attempts on a LiteLLM model, by our error reason.", ("model", "reason")
)
UNPRICED_CALLS = Counter(
    "saaslitellm_llm_calls_unpriced",
    "Calls that used tokens on a model with no known price (LiteLLM reported no cost and its "
    "model info has none), recorded at $0: alert on any increase, margins are overstated.",
    ("model",),
)
DB_POOL_CONNECTIONS = Gauge(
    "saaslitellm_db_pool_connections",
    "Database connections of the process's pool: state=in_use (checked out) or idle.",
    ("state",),
    multiprocess_mode="livesum",
)
DB_POOL_MAX = Gauge(
    "saaslitellm_db_pool_connections_max",
    "Most connections the pool may open (pool size plus overflow).",
    multiprocess_mode="livesum",
)
DB_TRANSACTION_SECONDS = Histogram(
    "saaslitellm_db_transaction_duration_seconds",
    "One database transaction, from asking the pool for a connection to COMMIT or ROLLBACK.",
    buckets=_DB_BUCKETS,
)
DB_UNAVAILABLE = Counter(
    "saaslitellm_db_unavailable",
    "Transactions refused with DATABASE_UNAVAILABLE: cause=connection (database unreachable) or pool (exhausted).",
    ("cause",),
)
DB_CONFLICTS = Counter(
    "saaslitellm_db_conflicts",
    "Transactions PostgreSQL rolled back for colliding with another (CONFLICTING_CHANGE): "
    "sqlstate=40P01 (deadlock) or 40001 (serialization failure).",
    ("sqlstate",),
)

WEBHOOK_ATTEMPTS_DROPPED = Counter(
    "saaslitellm_webhook_attempts_dropped",
    "Webhook delivery attempts that ended after their lease (their process stalled) when the delivery was "
    "claimed again or done: their outcome is dropped, the later claim's stands. Any increase: a process "
    "stalls for a minute or more.",
)


class RpcMetrics:
    """The label children of one RPC method, looked up once."""

    __slots__ = ("_handled", "_labels", "seconds", "started", "streams_open")

    def __init__(self, grpc_type: str, service: str, method: str) -> None:
        self._labels = (grpc_type, service, method)
        self.started = RPC_STARTED.labels(*self._labels)
        self.seconds = RPC_SECONDS.labels(*self._labels)
        self.streams_open = STREAMS_OPEN.labels(method) if grpc_type == "server_stream" else None
        self._handled: dict[str, Counter] = {}

    def handled(self, code: str) -> Counter:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = RPC_HANDLED.labels(*self._labels, code)
        return child


_POOL_IN_USE = DB_POOL_CONNECTIONS.labels("in_use")
_POOL_IDLE = DB_POOL_CONNECTIONS.labels("idle")
_pool_shown = [-1, -1]  # what the gauges hold: each pool event sets only what changed


def pool_state(in_use: int, idle: int) -> None:
    """Called on every pool event (four per statement), so it writes only changes: with
    several processes each write goes to a shared memory-mapped file under a lock."""
    if in_use != _pool_shown[0]:
        _POOL_IN_USE.set(in_use)
        _pool_shown[0] = in_use
    if idle != _pool_shown[1]:
        _POOL_IDLE.set(idle)
        _pool_shown[1] = idle


# ---------------------------------------------------------------------------- usage

_JOB_STATUSES = ("pending", "in_progress", "completed", "failed", "expired")
UsageTotals = Mapping[str, int | Decimal]


class UsageCollector:
    """Fleet-wide usage figures, read from the database at scrape time.

    Scrapes run in the metrics server's thread; the query runs on the server's event
    loop (its pool), bounded by `timeout`. If it fails, `saaslitellm_usage_up` is 0 and
    the usage metrics are left out of that scrape.
    """

    def __init__(
        self, fetch: Callable[[], Awaitable[UsageTotals]], loop: asyncio.AbstractEventLoop, timeout: float = 5.0
    ) -> None:
        self._fetch = fetch
        self._loop = loop
        self._timeout = timeout

    def describe(self) -> list[Metric]:
        return []  # no query at registration

    def collect(self) -> Iterator[Metric]:
        try:
            totals = asyncio.run_coroutine_threadsafe(self._fetch(), self._loop).result(self._timeout)
        except Exception as error:
            log.warning("reading usage totals for /metrics failed: %s", type(error).__name__)
            yield GaugeMetricFamily("saaslitellm_usage_up", "1 if the usage totals could be read.", value=0)
            return
        yield GaugeMetricFamily("saaslitellm_usage_up", "1 if the usage totals could be read.", value=1)
        jobs = GaugeMetricFamily(
            "saaslitellm_jobs", "Jobs by their current status (fleet-wide, from the database).", labels=["status"]
        )
        for status in _JOB_STATUSES:
            jobs.add_metric([status], int(totals[f"jobs_{status}"]))
        yield jobs
        yield CounterMetricFamily("saaslitellm_jobs_created", "Jobs created (fleet-wide).", value=int(totals["jobs"]))
        yield CounterMetricFamily(
            "saaslitellm_credits_charged",
            "Credits charged for jobs (fleet-wide), refunded or not.",
            value=int(totals["credits_charged"]),
        )
        yield CounterMetricFamily(
            "saaslitellm_credits_refunded",
            "Credits of charged jobs refunded to teams (fleet-wide).",
            value=int(totals["credits_refunded"]),
        )
        calls = CounterMetricFamily(
            "saaslitellm_llm_calls_recorded",
            "LLM calls recorded (fleet-wide): outcome=succeeded or failed (failed or cancelled).",
            labels=["outcome"],
        )
        calls.add_metric(["succeeded"], int(totals["calls"]) - int(totals["calls_failed"]))
        calls.add_metric(["failed"], int(totals["calls_failed"]))
        yield calls
        tokens = CounterMetricFamily(
            "saaslitellm_llm_tokens", "Tokens of recorded calls (fleet-wide).", labels=["kind"]
        )
        tokens.add_metric(["prompt"], int(totals["prompt_tokens"]))
        tokens.add_metric(["completion"], int(totals["completion_tokens"]))
        yield tokens
        yield CounterMetricFamily(
            "saaslitellm_provider_cost_usd",
            "What the model providers charged for recorded calls, in US dollars (fleet-wide).",
            value=float(totals["provider_cost_usd"]),
        )
        yield CounterMetricFamily(
            "saaslitellm_billed_cost_usd",
            "What recorded calls were billed to teams, in US dollars (fleet-wide).",
            value=float(totals["billed_cost_usd"]),
        )


# ------------------------------------------------------------------------- endpoint


class _Forward:
    """The process-wide registry (ours plus the process and GC collectors), served from
    a registry of the endpoint's own so that each Application adds its usage collector
    without touching global state."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


# Envoy sets it (replacing any a client sent) on the requests it routes to /metrics.
GATEWAY_HEADER = "x-saaslitellm-gateway"
_GATEWAY_REFUSAL = json.dumps(
    {
        "code": 16,
        "message": "GET /metrics through the gateway needs the admin key: send it as 'X-Admin-Key: ...' or "
        "'Authorization: Bearer ...' (a Prometheus scrape config sets it with `authorization`)",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ADMIN_KEY_REQUIRED",
                "domain": "saaslitellm",
                "metadata": {},
            }
        ],
    }
).encode()


class MetricsEndpoint:
    """`GET /metrics` (any path, in fact) on host:port, in a daemon thread.

    With `is_admin`, a request that came through the gateway (GATEWAY_HEADER) must carry
    the admin key: the gateway is public, and the metrics hold the fleet's business
    figures (costs, credits, jobs). A scrape of the port itself, inside the deployment,
    needs none."""

    def __init__(
        self,
        host: str,
        port: int,
        multiprocess_dir: str = "",
        usage: UsageCollector | None = None,
        is_admin: Callable[[Mapping[str, str]], bool] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._multiprocess_dir = multiprocess_dir
        self._usage = usage
        self._is_admin = is_admin
        self._server = None
        self.port = 0

    def start(self) -> int:
        registry = CollectorRegistry(auto_describe=False)
        if self._multiprocess_dir:
            registry.register(_DeadProcessesForgotten(self._multiprocess_dir))  # first: before the sum is read
            multiprocess.MultiProcessCollector(registry, path=self._multiprocess_dir)
        else:
            registry.register(_Forward())
        if self._usage is not None:
            registry.register(self._usage)
        app = make_wsgi_app(registry)
        if self._is_admin is not None:
            app = _admin_through_the_gateway(app, self._is_admin)

        class Server(ThreadingWSGIServer):  # prometheus_client's, for this host's address family
            address_family = socket.AF_INET6 if ":" in self._host else socket.AF_INET

        self._server = make_server(self._host, self._port, app, Server, handler_class=_Quiet)
        threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True).start()
        self.port = self._server.server_port
        log.info("serving Prometheus metrics on http://%s:%d/metrics", self._host, self.port)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._multiprocess_dir:
            # Drops this process's live gauges (streams, pool) from the shared view.
            multiprocess.mark_process_dead(os.getpid(), self._multiprocess_dir)


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


class _DeadProcessesForgotten:
    """Before each scrape of the shared directory: the live gauges (streams open, the pool)
    of a process that died without stopping (SIGKILL, a crash) are dropped, as a stopping
    one drops its own; else its last values would stay in the sum for good. Counters and
    histograms stay: what a dead process did still happened."""

    def __init__(self, path: str) -> None:
        self._path = path

    def collect(self) -> list:
        for name in os.listdir(self._path):
            found = _LIVE_GAUGE_FILE.fullmatch(name)
            if found and not _alive(int(found.group(1))):
                multiprocess.mark_process_dead(int(found.group(1)), self._path)
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # scrapes are not logged
        pass


def _admin_through_the_gateway(app, is_admin: Callable[[Mapping[str, str]], bool]):
    def gated(environ, start_response):
        if environ.get("HTTP_X_SAASLITELLM_GATEWAY"):
            headers = {
                "x-admin-key": environ.get("HTTP_X_ADMIN_KEY", ""),
                "authorization": environ.get("HTTP_AUTHORIZATION", ""),
            }
            if not is_admin({name: value for name, value in headers.items() if value}):
                start_response("401 Unauthorized", [("Content-Type", "application/json")])
                return [_GATEWAY_REFUSAL]
        return app(environ, start_response)

    return gated
