"""Configuration: read from the environment once, at start-up, into a frozen object.

This is the only module that reads the environment. Every setting is listed in the
README with its default.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# The longest duration a setting takes: a hundred years (longer ones overflow the clocks
# and intervals they are added to: datetime, PostgreSQL's interval, the event loop's timers).
MAX_SECONDS = 100 * 365 * 86_400.0
MAX_DAYS = 100 * 365.0
TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")
DATABASE_URL_SCHEMES = ("postgresql", "postgresql+psycopg", "postgres")
DATABASE_URL_EXAMPLE = "postgresql://user:pass@127.0.0.1:5432/saas"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
TRUSTED_PROXIES_EXAMPLE = "127.0.0.1,10.0.0.0/8,fd00::/8"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and what to do."""


@dataclass(frozen=True)
class Settings:
    database_url: str = field(repr=False)
    admin_key: str = field(repr=False)
    # The admin key being rotated out (empty: none): accepted as well as admin_key while
    # every process of a rolling restart is moved to the new one (README, "Admin API").
    admin_key_previous: str = field(default="", repr=False)
    litellm_base_url: str = "http://127.0.0.1:8002"
    litellm_api_key: str = field(default="", repr=False)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    upstream_timeout_seconds: float = 120.0
    upstream_retries: int = 0
    stream_idle_timeout_seconds: float = 60.0
    stream_keepalive_seconds: float = 15.0
    record_content: str = "partial"
    # Records of calls that move no money (job-based teams without per-job limits) commit
    # without waiting for PostgreSQL's flush to disk (domain/credits.py, record_is_money).
    async_call_records: bool = True
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
    # Webhook deliveries delivered or failed longer ago than this are deleted (0: never;
    # pending ones always stay).
    webhook_delivery_retention_days: float = 30.0
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
    # The audit log's peer is the address a proxy in these networks (Envoy) put last in
    # X-Forwarded-For; a connection from anywhere else is recorded as itself, whatever
    # X-Forwarded-For it sent. Default loopback: make dev's Envoy; deployments set theirs.
    trusted_proxies: tuple[IPNetwork, ...] = LOOPBACK

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and check every setting. An empty (or blank) value means the default, as
        if the variable were unset; anything malformed raises SettingsError naming the
        variable."""
        env = os.environ if env is None else env

        def text(name: str, default: str = "") -> str:
            return env.get(name, "").strip() or default

        def required(name: str, hint: str) -> str:
            value = text(name)
            if not value:
                raise SettingsError(f"{name} is not set: {hint}")
            return value

        def number(name: str, default: float, kind: type = int, *, least: float = 0, most: float = math.inf):
            """A finite number from `least` to `most`; empty: the default."""
            raw = text(name)
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                what = "a whole number" if kind is int else "a number"
                raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
            if kind is float and not math.isfinite(value):
                raise SettingsError(f"{name} must be a finite number, got {raw!r}")
            if value < 0:
                raise SettingsError(f"{name} must not be negative, got {raw!r}")
            if value < least:
                raise SettingsError(f"{name} must be at least {least:.0f}, got {raw!r}")
            if value > most:
                raise SettingsError(f"{name} must be at most {most:.0f}, got {raw!r}")
            return value

        def seconds(name: str, default: float) -> float:
            """A duration where 0 means what the README says (never, off, no wait)."""
            return number(name, default, float, most=MAX_SECONDS)

        def days(name: str, default: float) -> float:
            """A duration in days where 0 means never (the README's "0: keep", "0: never")."""
            return number(name, default, float, most=MAX_DAYS)

        def positive_seconds(name: str, default: float, hint: str) -> float:
            """A duration that has no "0: off": 0 is refused, saying what to do instead."""
            value = seconds(name, default)
            if value == 0:
                raise SettingsError(f"{name} must be greater than 0: {hint}")
            return value

        def port(name: str, default: int) -> int:
            value = int(number(name, default))
            if not 1 <= value <= 65535:
                raise SettingsError(f"{name} must be a port number from 1 to 65535, got {value}")
            return value

        def choice(name: str, default: str, options: tuple[str, ...]) -> str:
            """One of `options`, in any case; empty: the default."""
            value = text(name, default).lower()
            if value not in options:
                listed = ", ".join(options[:-1]) + " or " + options[-1]
                raise SettingsError(f"{name} must be {listed}, got {value!r}")
            return value

        def flag(name: str, default: bool) -> bool:
            raw = text(name).lower()
            if not raw:
                return default
            if raw not in TRUE + FALSE:
                raise SettingsError(f"{name} must be true or false (or 1/0, yes/no, on/off), got {raw!r}")
            return raw in TRUE

        def admin_key_rules(name: str, value: str) -> str:
            """SAAS_ADMIN_KEY's rules, which SAAS_ADMIN_KEY_PREVIOUS follows too."""
            if len(value) < 16:
                raise SettingsError(f"{name} must be at least 16 characters")
            # It travels in an HTTP header (gRPC metadata), which carries only these.
            if not (value.isascii() and value.isprintable()):
                raise SettingsError(
                    f"{name} must be printable ASCII (letters, digits, punctuation; no accents or control "
                    "characters), as it is sent in an HTTP header: use e.g. `openssl rand -hex 32`"
                )
            return value

        def otlp_endpoint(name: str) -> str:
            """OTLP/HTTP's URL: without a scheme, every export would fail, silently."""
            value = text(name)
            if value and not value.lower().startswith(("http://", "https://")):
                raise SettingsError(
                    f"{name} must start with http:// or https:// (e.g. http://collector:4318), got {value!r}"
                )
            return value

        raw_secrets_key = env.get("SAAS_SECRETS_KEY", "")
        secrets_key = raw_secrets_key.strip()
        if raw_secrets_key and not secrets_key:
            raise SettingsError(
                "SAAS_SECRETS_KEY is blank: set 32+ random characters (`openssl rand -base64 32`), "
                "or leave it empty to turn webhooks off"
            )
        if secrets_key and len(secrets_key) < 32:
            raise SettingsError("SAAS_SECRETS_KEY must be at least 32 characters: use `openssl rand -base64 32`")
        admin_key = admin_key_rules(
            "SAAS_ADMIN_KEY", required("SAAS_ADMIN_KEY", "set the operator's admin key (at least 16 characters)")
        )
        admin_key_previous = text("SAAS_ADMIN_KEY_PREVIOUS")
        if admin_key_previous:
            admin_key_rules("SAAS_ADMIN_KEY_PREVIOUS", admin_key_previous)
            if admin_key_previous == admin_key:
                raise SettingsError(
                    "SAAS_ADMIN_KEY_PREVIOUS is the same as SAAS_ADMIN_KEY: set it to the key being rotated out, "
                    "or leave it empty"
                )
        database_url = required("DATABASE_URL", f"point it at PostgreSQL, e.g. {DATABASE_URL_EXAMPLE}")
        check_database_url(database_url)
        litellm_base_url = text("LITELLM_BASE_URL", cls.litellm_base_url)
        if not litellm_base_url.startswith(("http://", "https://")):
            raise SettingsError(f"LITELLM_BASE_URL must start with http:// or https://, got {litellm_base_url!r}")
        record_content = choice("SAAS_RECORD_CONTENT", "partial", ("none", "partial", "all"))
        log_format = choice("SAAS_LOG_FORMAT", "json", ("json", "text"))
        log_level = text("SAAS_LOG_LEVEL", cls.log_level).upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise SettingsError(f"SAAS_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}")
        event_loop = choice("SAAS_EVENT_LOOP", cls.event_loop, ("uvloop", "asyncio"))
        metrics_port: int | None = None
        if text("SAAS_METRICS_PORT").lower() != "off":
            try:
                metrics_port = port("SAAS_METRICS_PORT", 9464)
            except SettingsError as error:
                raise SettingsError(f"{error}; or off, for no metrics endpoint") from None
        multiprocess_dir = text("PROMETHEUS_MULTIPROC_DIR")
        if multiprocess_dir and not (
            os.path.isdir(multiprocess_dir) and os.access(multiprocess_dir, os.W_OK | os.X_OK)
        ):
            raise SettingsError(
                f"PROMETHEUS_MULTIPROC_DIR must be an existing directory this process can write to, got "
                f"{multiprocess_dir!r}: create it (empty, shared by the processes of this host) or unset it"
            )
        trusted_proxies = text("SAAS_TRUSTED_PROXIES")
        traces_endpoint = otlp_endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        endpoint = otlp_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not traces_endpoint and endpoint:
            traces_endpoint = endpoint.rstrip("/") + "/v1/traces"
        return cls(
            database_url=database_url,
            admin_key=admin_key,
            admin_key_previous=admin_key_previous,
            secrets_key=secrets_key,
            webhook_interval_seconds=seconds("SAAS_WEBHOOK_INTERVAL_SECONDS", cls.webhook_interval_seconds),
            webhook_allow_private_targets=flag("SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS", cls.webhook_allow_private_targets),
            key_expiry_warning_days=days("SAAS_KEY_EXPIRY_WARNING_DAYS", cls.key_expiry_warning_days),
            key_expiry_check_interval_seconds=positive_seconds(
                "SAAS_KEY_EXPIRY_CHECK_INTERVAL_SECONDS",
                cls.key_expiry_check_interval_seconds,
                "it is how often expiring keys are looked for (no warnings: SAAS_KEY_EXPIRY_WARNING_DAYS=0)",
            ),
            litellm_base_url=litellm_base_url,
            litellm_api_key=text("LITELLM_MASTER_KEY"),
            grpc_host=text("SAAS_GRPC_HOST", cls.grpc_host),
            grpc_port=port("SAAS_GRPC_PORT", cls.grpc_port),
            upstream_timeout_seconds=positive_seconds(
                "SAAS_UPSTREAM_TIMEOUT_SECONDS",
                cls.upstream_timeout_seconds,
                "it bounds each upstream call, there is no unlimited (the caller's gRPC deadline still wins)",
            ),
            upstream_retries=int(number("SAAS_UPSTREAM_RETRIES", cls.upstream_retries)),
            stream_idle_timeout_seconds=positive_seconds(
                "SAAS_STREAM_IDLE_TIMEOUT_SECONDS",
                cls.stream_idle_timeout_seconds,
                "it is the longest silence allowed between two chunks of a stream",
            ),
            stream_keepalive_seconds=seconds("SAAS_STREAM_KEEPALIVE_SECONDS", cls.stream_keepalive_seconds),
            record_content=record_content,
            async_call_records=flag("SAAS_ASYNC_CALL_RECORDS", cls.async_call_records),
            db_pool_size=int(number("SAAS_DB_POOL_SIZE", cls.db_pool_size, least=1)),
            db_max_overflow=int(number("SAAS_DB_MAX_OVERFLOW", cls.db_max_overflow)),
            max_message_bytes=int(number("SAAS_MAX_MESSAGE_BYTES", cls.max_message_bytes, least=1, most=2**31 - 1)),
            migrate_on_start=flag("SAAS_MIGRATE_ON_START", cls.migrate_on_start),
            shutdown_grace_seconds=seconds("SAAS_SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds),
            job_ttl_seconds=positive_seconds(
                "SAAS_JOB_TTL_SECONDS",
                cls.job_ttl_seconds,
                "it is how long an idle job stays open, there is no never (for a year, set 31536000)",
            ),
            expiry_interval_seconds=seconds("SAAS_EXPIRY_INTERVAL_SECONDS", cls.expiry_interval_seconds),
            log_level=log_level,
            key_cache_ttl_seconds=seconds("SAAS_KEY_CACHE_TTL_SECONDS", cls.key_cache_ttl_seconds),
            usage_rollup_interval_seconds=seconds(
                "SAAS_USAGE_ROLLUP_INTERVAL_SECONDS", cls.usage_rollup_interval_seconds
            ),
            metrics_host=text("SAAS_METRICS_HOST", cls.metrics_host),
            metrics_port=metrics_port,
            metrics_multiprocess_dir=multiprocess_dir,
            otlp_traces_endpoint=traces_endpoint,
            service_name=text("OTEL_SERVICE_NAME", cls.service_name),
            log_format=log_format,
            db_startup_timeout_seconds=seconds("SAAS_DB_STARTUP_TIMEOUT_SECONDS", cls.db_startup_timeout_seconds),
            shutdown_drain_seconds=seconds("SAAS_SHUTDOWN_DRAIN_SECONDS", cls.shutdown_drain_seconds),
            call_retention_days=days("SAAS_CALL_RETENTION_DAYS", cls.call_retention_days),
            ledger_retention_days=days("SAAS_LEDGER_RETENTION_DAYS", cls.ledger_retention_days),
            webhook_delivery_retention_days=days(
                "SAAS_WEBHOOK_DELIVERY_RETENTION_DAYS", cls.webhook_delivery_retention_days
            ),
            retention_interval_seconds=positive_seconds(
                "SAAS_RETENTION_INTERVAL_SECONDS",
                cls.retention_interval_seconds,
                "it is how often retention runs (to keep everything: SAAS_CALL_RETENTION_DAYS=0, "
                "SAAS_LEDGER_RETENTION_DAYS=0 and SAAS_WEBHOOK_DELIVERY_RETENTION_DAYS=0)",
            ),
            event_loop=event_loop,
            trusted_proxies=parse_trusted_proxies(trusted_proxies) if trusted_proxies else cls.trusted_proxies,
        )


def check_database_url(url: str) -> None:
    """Refuse a DATABASE_URL the server could not use, without echoing it (it may hold a
    password): PostgreSQL's scheme, parseable as SQLAlchemy parses it, a numeric port."""
    scheme, separator, _ = url.partition("://")
    if not separator or scheme not in DATABASE_URL_SCHEMES:
        raise SettingsError(
            f"DATABASE_URL must be a PostgreSQL URL starting with postgresql:// (or postgresql+psycopg://), "
            f"e.g. {DATABASE_URL_EXAMPLE}; got one starting with {scheme[:20]!r}"
        )
    try:
        port = make_url("postgresql+psycopg://" + url.partition("://")[2]).port
    except (ValueError, ArgumentError):
        port = -1
    # An @ left in a password parses as the end of the credentials: the rest of the
    # password would be taken for the host, and logged as such.
    if (port is not None and not 1 <= port <= 65535) or url_authority(url).count("@") > 1:
        raise SettingsError(
            f"DATABASE_URL is malformed: it must look like {DATABASE_URL_EXAMPLE} with a port from 1 to 65535, "
            "and @ : / ? # in the user name or password percent-encoded (e.g. %40 for @)"
        )


def url_authority(url: str) -> str:
    """The credentials and host part of a URL: after `://`, up to its path, query or fragment."""
    rest = url.partition("://")[2]
    for separator in "/?#":
        rest = rest.partition(separator)[0]
    return rest


def parse_trusted_proxies(raw: str) -> tuple[IPNetwork, ...]:
    """SAAS_TRUSTED_PROXIES: IP addresses and CIDR ranges, comma-separated, or `none`
    (trust no X-Forwarded-For). An address with host bits under its prefix (10.1.2.3/8)
    is refused rather than guessed at."""
    name = "SAAS_TRUSTED_PROXIES"
    if raw.strip().lower() == "none":
        return ()
    networks = []
    for entry in (item.strip() for item in raw.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as error:
            if "host bits set" in str(error):
                network = ipaddress.ip_network(entry, strict=False)
                raise SettingsError(
                    f"{name} must give a range by its first address: {entry!r} has host bits set "
                    f"(did you mean {network}?)"
                ) from None
            raise SettingsError(
                f"{name} must be IP addresses or CIDR ranges separated by commas (e.g. {TRUSTED_PROXIES_EXAMPLE}), "
                f"or none; got {entry!r}"
            ) from None
    if not networks:
        raise SettingsError(f"{name} lists no address: set e.g. {TRUSTED_PROXIES_EXAMPLE}, or none")
    return tuple(networks)
