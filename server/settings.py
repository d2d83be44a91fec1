"""Configuration: read from the environment once, at start-up, into a frozen object.

This is the only module that reads the environment. Every setting is listed in the
README with its default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and what to do."""


@dataclass(frozen=True)
class Settings:
    database_url: str = field(repr=False)
    admin_key: str = field(repr=False)
    litellm_base_url: str = "http://127.0.0.1:8002"
    litellm_api_key: str = field(default="", repr=False)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    upstream_timeout_seconds: float = 120.0
    upstream_retries: int = 0
    stream_idle_timeout_seconds: float = 60.0
    record_content: str = "partial"
    db_pool_size: int = 30
    db_max_overflow: int = 10
    max_message_bytes: int = 8 * 1024 * 1024
    migrate_on_start: bool = True
    shutdown_grace_seconds: float = 30.0
    job_ttl_seconds: float = 86_400.0
    expiry_interval_seconds: float = 60.0
    log_level: str = "INFO"
    # Team keys are cached per process for at most this long (0: no cache); revocation
    # reaches every process at once through LISTEN/NOTIFY, this is the safety net.
    key_cache_ttl_seconds: float = 30.0
    # How often the usage rollup folds pending deltas (0: never; reports stay exact).
    usage_rollup_interval_seconds: float = 5.0
    # Operations (server/observability, README "Operations").
    # Prometheus metrics over HTTP on this port (None: no metrics endpoint). With
    # PROMETHEUS_MULTIPROC_DIR set, every process on the host writes there and any one
    # serves the sum over all of them.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    metrics_multiprocess_dir: str = ""
    # OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); empty: tracing off.
    otlp_traces_endpoint: str = ""
    service_name: str = "saaslitellm-server"
    log_format: str = "json"
    # Start-up waits this long for PostgreSQL before giving up.
    db_startup_timeout_seconds: float = 60.0
    # After SIGTERM: keep serving (health NOT_SERVING) this long so that load balancers
    # stop routing here, then stop taking calls and give in-flight ones the grace.
    shutdown_drain_seconds: float = 2.0
    # Call records and job-flow ledger entries older than this move to the archive tables
    # (0: never); checked every retention_interval_seconds.
    call_retention_days: float = 0.0
    ledger_retention_days: float = 0.0
    retention_interval_seconds: float = 3600.0
    # The asyncio event loop: uvloop (libuv) or the standard library's.
    event_loop: str = "uvloop"
    # Seals webhook signing secrets at rest (empty: webhooks are off); the same on every
    # process. How often each process looks for webhook deliveries due (0: never).
    secrets_key: str = field(default="", repr=False)
    webhook_interval_seconds: float = 1.0
    # Webhooks to loopback, link-local (cloud metadata), private and other non-public
    # addresses are refused unless this is set (make dev and the tests set it: their
    # receivers are on this machine).
    webhook_allow_private_targets: bool = False
    # Webhook team_key.expiring this long before a key expires (0: never), looked for
    # every key_expiry_check_interval_seconds.
    key_expiry_warning_days: float = 7.0
    key_expiry_check_interval_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str, hint: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"{name} is not set: {hint}")
            return value

        def number(name: str, default: float, kind: type = int) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a number, got {raw!r}") from None
            if value < 0:
                raise SettingsError(f"{name} must not be negative")
            return value

        secrets_key = env.get("SAAS_SECRETS_KEY", "").strip()
        if secrets_key and len(secrets_key) < 32:
            raise SettingsError("SAAS_SECRETS_KEY must be at least 32 characters: use `openssl rand -base64 32`")
        admin_key = required("SAAS_ADMIN_KEY", "set the operator's admin key (at least 16 characters)")
        if len(admin_key) < 16:
            raise SettingsError("SAAS_ADMIN_KEY must be at least 16 characters")
        record_content = env.get("SAAS_RECORD_CONTENT", "partial").strip() or "partial"
        if record_content not in ("none", "partial", "all"):
            raise SettingsError("SAAS_RECORD_CONTENT must be none, partial or all")
        log_format = env.get("SAAS_LOG_FORMAT", "json").strip().lower() or "json"
        if log_format not in ("json", "text"):
            raise SettingsError("SAAS_LOG_FORMAT must be json or text")
        event_loop = env.get("SAAS_EVENT_LOOP", cls.event_loop).strip().lower() or cls.event_loop
        if event_loop not in ("uvloop", "asyncio"):
            raise SettingsError("SAAS_EVENT_LOOP must be uvloop or asyncio")
        raw_private_targets = env.get("SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS", "").strip().lower()
        if raw_private_targets not in ("", "true", "false", "1", "0", "yes", "no"):
            raise SettingsError("SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS must be true or false")
        metrics_port: int | None = None
        raw_metrics_port = env.get("SAAS_METRICS_PORT", "9464").strip().lower()
        if raw_metrics_port not in ("", "off"):
            metrics_port = int(number("SAAS_METRICS_PORT", 9464))
        traces_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        if not traces_endpoint and env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
            traces_endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"].strip().rstrip("/") + "/v1/traces"
        return cls(
            database_url=required("DATABASE_URL", "point it at PostgreSQL, e.g. postgresql://user@127.0.0.1:5432/saas"),
            admin_key=admin_key,
            secrets_key=secrets_key,
            webhook_interval_seconds=number("SAAS_WEBHOOK_INTERVAL_SECONDS", cls.webhook_interval_seconds, float),
            webhook_allow_private_targets=raw_private_targets in ("true", "1", "yes"),
            key_expiry_warning_days=number("SAAS_KEY_EXPIRY_WARNING_DAYS", cls.key_expiry_warning_days, float),
            key_expiry_check_interval_seconds=number(
                "SAAS_KEY_EXPIRY_CHECK_INTERVAL_SECONDS", cls.key_expiry_check_interval_seconds, float
            ),
            litellm_base_url=env.get("LITELLM_BASE_URL", cls.litellm_base_url).strip(),
            litellm_api_key=env.get("LITELLM_MASTER_KEY", "").strip(),
            grpc_host=env.get("SAAS_GRPC_HOST", cls.grpc_host).strip(),
            grpc_port=int(number("SAAS_GRPC_PORT", cls.grpc_port)),
            upstream_timeout_seconds=number("SAAS_UPSTREAM_TIMEOUT_SECONDS", cls.upstream_timeout_seconds, float),
            upstream_retries=int(number("SAAS_UPSTREAM_RETRIES", cls.upstream_retries)),
            stream_idle_timeout_seconds=number(
                "SAAS_STREAM_IDLE_TIMEOUT_SECONDS", cls.stream_idle_timeout_seconds, float
            ),
            record_content=record_content,
            db_pool_size=int(number("SAAS_DB_POOL_SIZE", cls.db_pool_size)),
            db_max_overflow=int(number("SAAS_DB_MAX_OVERFLOW", cls.db_max_overflow)),
            max_message_bytes=int(number("SAAS_MAX_MESSAGE_BYTES", cls.max_message_bytes)),
            migrate_on_start=env.get("SAAS_MIGRATE_ON_START", "true").strip().lower() not in ("0", "false", "no"),
            shutdown_grace_seconds=number("SAAS_SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds, float),
            job_ttl_seconds=number("SAAS_JOB_TTL_SECONDS", cls.job_ttl_seconds, float),
            expiry_interval_seconds=number("SAAS_EXPIRY_INTERVAL_SECONDS", cls.expiry_interval_seconds, float),
            log_level=env.get("SAAS_LOG_LEVEL", cls.log_level).strip().upper() or "INFO",
            key_cache_ttl_seconds=number("SAAS_KEY_CACHE_TTL_SECONDS", cls.key_cache_ttl_seconds, float),
            usage_rollup_interval_seconds=number(
                "SAAS_USAGE_ROLLUP_INTERVAL_SECONDS", cls.usage_rollup_interval_seconds, float
            ),
            metrics_host=env.get("SAAS_METRICS_HOST", cls.metrics_host).strip(),
            metrics_port=metrics_port,
            metrics_multiprocess_dir=env.get("PROMETHEUS_MULTIPROC_DIR", "").strip(),
            otlp_traces_endpoint=traces_endpoint,
            service_name=env.get("OTEL_SERVICE_NAME", cls.service_name).strip() or cls.service_name,
            log_format=log_format,
            db_startup_timeout_seconds=number("SAAS_DB_STARTUP_TIMEOUT_SECONDS", cls.db_startup_timeout_seconds, float),
            shutdown_drain_seconds=number("SAAS_SHUTDOWN_DRAIN_SECONDS", cls.shutdown_drain_seconds, float),
            call_retention_days=number("SAAS_CALL_RETENTION_DAYS", cls.call_retention_days, float),
            ledger_retention_days=number("SAAS_LEDGER_RETENTION_DAYS", cls.ledger_retention_days, float),
            retention_interval_seconds=number("SAAS_RETENTION_INTERVAL_SECONDS", cls.retention_interval_seconds, float),
            event_loop=event_loop,
        )
