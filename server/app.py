"""Composition root: builds every component once and wires them together.

Tests build the same `Application` with their own settings (port 0, a test database, the
fake provider as upstream), so what they exercise is what production runs.
"""

from __future__ import annotations

import asyncio
import gc
import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from saaslitellm.v1 import (
    admin_job_service_pb2,
    admin_job_service_pb2_grpc,
    admin_service_pb2,
    admin_service_pb2_grpc,
    credit_service_pb2,
    credit_service_pb2_grpc,
    job_service_pb2,
    job_service_pb2_grpc,
    openai_service_pb2,
    openai_service_pb2_grpc,
    webhook_service_pb2,
    webhook_service_pb2_grpc,
)
from server.api import reflection
from server.api.admin_job_servicer import AdminJobServicer
from server.api.admin_servicer import AdminServicer
from server.api.credit_servicer import CreditServicer
from server.api.errors import ErrorInterceptor
from server.api.handlers import HandlerTable
from server.api.job_servicer import JobServicer
from server.api.openai_servicer import OpenAIServicer
from server.api.webhook_servicer import WebhookServicer
from server.domain.webhooks import SecretBox
from server.observability import metrics
from server.observability.interceptor import ObservabilityInterceptor
from server.observability.wrappers import ObservedAuthenticator, ObservedPriceCatalog, ObservedUpstream
from server.services.admin import AdminUseCases
from server.services.admin_jobs import AdminJobUseCases
from server.services.analytics import AnalyticsUseCases, RollupCompactor
from server.services.auth import KeyCache, KeyChanges
from server.services.background import Background, Periodic
from server.services.calls import CallUseCases, UpstreamPolicy
from server.services.credits import CreditUseCases
from server.services.jobs import JobUseCases
from server.services.prices import RETRY_SECONDS
from server.services.retention import Retention
from server.services.single_call import SingleCallUseCases
from server.services.team_models import TeamModels
from server.services.tokens import TokenCounter
from server.services.webhooks import WebhookSender, WebhookUseCases
from server.settings import Settings
from server.storage import operations
from server.storage.database import Database
from server.storage.keys import KEY_ACKS_CHANNEL, KEY_CHANGES_CHANNEL
from server.storage.notify import Listener
from server.upstream.transport import http_client

log = logging.getLogger(__name__)

# At shutdown, how long the handlers of calls cancelled after the grace get to record
# them and settle their jobs (normally milliseconds: a statement or two each).
HANDLER_CLEANUP_SECONDS = 5.0
# How long before the grace runs out the calls still running are ended (at most half the
# grace): time to record each call, settle a single-call job and answer.
STREAM_CUT_MARGIN_SECONDS = 1.0


class CannotServe(RuntimeError):
    """Start-up could not listen where the settings say; the message says where and why."""


SERVICE_NAMES = (
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    credit_service_pb2.DESCRIPTOR.services_by_name["CreditService"].full_name,
    admin_job_service_pb2.DESCRIPTOR.services_by_name["AdminJobService"].full_name,
    openai_service_pb2.DESCRIPTOR.services_by_name["OpenAIService"].full_name,
    webhook_service_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name,
)


class Application:
    """The gRPC server and everything it owns (one of each per process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(
            settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
        self.http = http_client()
        self.background = Background()
        upstream = ObservedUpstream(self.http, base_url=settings.litellm_base_url, api_key=settings.litellm_api_key)
        self.key_cache = KeyCache(ttl_seconds=settings.key_cache_ttl_seconds)
        self.key_changes = KeyChanges(self.db, self.key_cache, self.background.spawn)
        self.key_listener = Listener(
            settings.database_url,
            {KEY_CHANGES_CHANNEL: self.key_changes.on_change, KEY_ACKS_CHANNEL: self.key_changes.on_ack},
            self.key_cache.set_live,
        )
        self._auth = auth = ObservedAuthenticator(
            self.db,
            settings.admin_key,
            self.key_cache,
            trusted_proxies=settings.trusted_proxies,
            admin_key_previous=settings.admin_key_previous,
        )
        # Shared: a fresh read for the admin serves calls too. Read from start-up on, so a
        # call cut by LiteLLM's death is still priced (PriceCatalog.keep_fresh).
        self.prices = prices = ObservedPriceCatalog(upstream)
        self.price_refresh = Periodic("reading model prices", prices.keep_fresh, RETRY_SECONDS, jitter=0.2)
        self.jobs = JobUseCases(self.db)
        self.calls = CallUseCases(
            self.db,
            upstream,
            self.background,
            TokenCounter(),
            prices,
            policy=UpstreamPolicy(
                timeout_seconds=settings.upstream_timeout_seconds,
                stream_idle_timeout_seconds=settings.stream_idle_timeout_seconds,
                stream_keepalive_seconds=settings.stream_keepalive_seconds,
                retries=settings.upstream_retries,
            ),
            content_policy=settings.record_content,
            job_ttl_seconds=settings.job_ttl_seconds,
            async_records=settings.async_call_records,
        )
        self.admin = AdminUseCases(self.db, upstream, prices, self.key_changes)
        self.analytics = AnalyticsUseCases(self.db)
        self.rollup = RollupCompactor(self.db, settings.usage_rollup_interval_seconds)
        self.credits = CreditUseCases(self.db)
        self.retention = Retention(
            self.db,
            call_days=settings.call_retention_days,
            ledger_days=settings.ledger_retention_days,
            webhook_delivery_days=settings.webhook_delivery_retention_days,
            interval_seconds=settings.retention_interval_seconds,
        )
        self.metrics: metrics.MetricsEndpoint | None = None
        self.health = health.aio.HealthServicer()
        self._errors = ErrorInterceptor()  # outermost: it also counts the handlers running
        self.server = grpc.aio.server(
            interceptors=[
                self._errors,
                ObservabilityInterceptor(
                    secrets=(
                        settings.admin_key,
                        settings.admin_key_previous,
                        settings.secrets_key,
                        settings.litellm_api_key,
                    )
                ),
            ],
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
                # Headers arrive as metadata. gRPC's default limits (8 KiB soft, refused at
                # random above it; 16 KiB hard) are below what Envoy takes (60 KiB, 431
                # above): a 10 KiB cookie got 429 RESOURCE_EXHAUSTED, by chance. Above Envoy's.
                ("grpc.max_metadata_size", 96 * 1024),
                ("grpc.absolute_max_metadata_size", 128 * 1024),
                ("grpc.so_reuseport", 0),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ],
        )
        self.single_call = single = SingleCallUseCases(self.jobs, self.calls, self.background)
        team_models = TeamModels(self.db)
        services = HandlerTable()  # one lookup per RPC (server/api/handlers.py)
        job_service_pb2_grpc.add_JobServiceServicer_to_server(
            JobServicer(auth, self.jobs, self.calls, single, team_models, self.analytics), services
        )
        openai_service_pb2_grpc.add_OpenAIServiceServicer_to_server(
            OpenAIServicer(auth, self.calls, single, team_models), services
        )
        admin_service_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminServicer(auth, self.admin, self.analytics), services
        )
        credit_service_pb2_grpc.add_CreditServiceServicer_to_server(CreditServicer(auth, self.credits), services)
        box = SecretBox(settings.secrets_key) if settings.secrets_key else None
        webhook_service_pb2_grpc.add_WebhookServiceServicer_to_server(
            WebhookServicer(
                auth,
                WebhookUseCases(self.db, box, allow_private_targets=settings.webhook_allow_private_targets),
            ),
            services,
        )
        self.webhooks = WebhookSender(
            self.db,
            box,
            settings.webhook_interval_seconds,
            allow_private_targets=settings.webhook_allow_private_targets,
            key_warning_seconds=settings.key_expiry_warning_days * 86_400,
            key_check_interval_seconds=settings.key_expiry_check_interval_seconds,
        )
        admin_job_service_pb2_grpc.add_AdminJobServiceServicer_to_server(
            AdminJobServicer(auth, AdminJobUseCases(self.db)), services
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, services)
        reflection.enable((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), services)
        services.install(self.server)
        self.port = 0
        # Every process expires jobs left open longer than SAAS_JOB_TTL_SECONDS, releasing
        # their credits; row locks with SKIP LOCKED keep two from expiring a job twice, and
        # the ledger's unique (job_id, kind) would refuse it anyway.
        self.expiry = Periodic(
            "expiring abandoned jobs", self._expire_abandoned_jobs, settings.expiry_interval_seconds, jitter=0.2
        )
        # A job with a call running in this process is kept from expiring under it.
        self.keep_open = Periodic(
            "keeping jobs with running calls open",
            self.calls.keep_running_jobs_open,
            self.calls.activity_resolution,
            wait_first=True,
        )

    async def start(self) -> int:
        """Bind, check the database, start serving; returns the bound port. Raises
        CannotServe when an address cannot be bound."""
        address = f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        try:
            # grpc raises RuntimeError("Failed to bind to address ...") for a port in use
            # or a host that is not this machine's; older versions returned 0.
            self.port = self.server.add_insecure_port(address)
        except RuntimeError:
            self.port = 0
        if self.port == 0:
            raise CannotServe(
                f"could not bind {address} (SAAS_GRPC_HOST / SAAS_GRPC_PORT); is it in use, "
                "or the host not an address of this machine?"
            )
        await self.db.ping()
        await self.key_listener.start()
        self.rollup.start()
        self.retention.start()
        self.webhooks.start()
        if self.settings.metrics_port is not None:
            usage = metrics.UsageCollector(self._usage_totals, asyncio.get_running_loop())
            self.metrics = metrics.MetricsEndpoint(
                self.settings.metrics_host,
                self.settings.metrics_port,
                self.settings.metrics_multiprocess_dir,
                usage,
                is_admin=self._auth.is_admin,
            )
            try:
                self.metrics.start()
            except OSError as error:
                where = f"{self.settings.metrics_host}:{self.settings.metrics_port}"
                raise CannotServe(
                    f"could not serve metrics on {where} (SAAS_METRICS_HOST / SAAS_METRICS_PORT, `off`: no "
                    f"metrics): {error.strerror or error}"
                ) from None
        await self.server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.expiry.start()
        self.keep_open.start()
        self.price_refresh.start()
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]  # "uvloop" or "asyncio"
        log.info("serving gRPC on %s:%d (event loop: %s)", self.settings.grpc_host, self.port, loop)
        return self.port

    async def _usage_totals(self) -> metrics.UsageTotals:
        async with self.db.transaction() as conn:
            return await operations.usage_totals(conn)

    async def stop(self, grace: float | None = None, drain: float = 0.0) -> None:
        """Turn health NOT_SERVING and keep serving for `drain` seconds, so that load
        balancers stop sending calls here; then stop taking new calls, let in-flight
        calls and streams finish (up to `grace` seconds), and close."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        await self.expiry.stop()
        await self.health.enter_graceful_shutdown()
        if drain > 0:
            log.info("health is NOT_SERVING; draining for %.1f s before refusing new calls", drain)
            await asyncio.sleep(drain)
        # Calls still running just before the grace runs out are ended with
        # SERVER_SHUTTING_DOWN, a stream's in its last event: cancelled by grpc.aio after
        # it, a stream's client would learn nothing through the REST gateway (Envoy drops
        # the trailing status of a response it has begun), a plain call's no reason.
        cut = asyncio.get_running_loop().call_later(grace - min(STREAM_CUT_MARGIN_SECONDS, grace / 2), self._cut)
        try:
            await self.server.stop(grace)
        finally:
            cut.cancel()
        # The calls still running were cancelled: their handlers record them and settle
        # their single-call jobs (in tasks of their own that `drain` waits for) before the
        # database and the HTTP client close.
        left = await self._errors.handlers.wait_idle(HANDLER_CLEANUP_SECONDS)
        if left:
            log.warning(
                "%d cancelled call(s) still cleaning up after %.0f s; stopping anyway", left, HANDLER_CLEANUP_SECONDS
            )
        await self.background.drain(timeout=max(grace, 1.0))
        await self.keep_open.stop()
        await self.price_refresh.stop()
        await self.retention.stop()
        await self.webhooks.stop(grace=min(grace, WebhookSender.TIMEOUT_SECONDS))
        if self.metrics is not None:
            self.metrics.stop()
        await self.rollup.stop()
        await self.key_listener.stop()
        await self.http.close()
        await self.db.close()

    def _cut(self) -> None:
        # From here on a call that ends is ended by the server, not left by its client (a
        # client leaving during the drain or the grace pays for what it received).
        self.single_call.server_stopping = True
        if cut := self.calls.cut_calls():
            log.info("ending %d call(s) still running: the shutdown's grace is running out", cut)

    async def _expire_abandoned_jobs(self) -> bool:
        """One round of expiry; True when it expired some (there may be more)."""
        expired = await self.jobs.expire_abandoned(self.settings.job_ttl_seconds)
        if expired:
            log.info("expired %d abandoned job(s)", expired)
        return expired > 0

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def run(settings: Settings, stop_event: asyncio.Event) -> None:
    """Serve until `stop_event` is set, then shut down gracefully."""
    app = Application(settings)
    try:
        await app.start()
    except CannotServe:
        await app.stop(grace=0)  # close what start-up opened (the HTTP client, the pool, tasks)
        raise
    # What start-up made (modules, protobuf descriptors, the tokenizer's tables) lives as
    # long as the process: move it out of the garbage collector's scans, so a full
    # collection looks only at what requests create. Over the start-up objects one took
    # 85 ms here, a stall for every call in flight at that moment.
    gc.collect()
    gc.freeze()
    log.info("start-up objects left out of garbage collection: %d", gc.get_freeze_count())
    await stop_event.wait()
    log.info(
        "shutting down (drain %.1f s, grace %.0f s)", settings.shutdown_drain_seconds, settings.shutdown_grace_seconds
    )
    await app.stop(drain=settings.shutdown_drain_seconds)
    log.info("stopped")
