"""The whole stack on one machine: PostgreSQL, fake provider, LiteLLM proxy, gRPC
server(s), Envoy. Used by `make dev`, the end-to-end tests and the benchmark, so that
all three run exactly the same thing.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
import httpx
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack import dashboard, envoy, postgres
from devstack.processes import Child, StartupError, free_port, port_in_use

ROOT = Path(__file__).resolve().parent.parent
LITELLM_BIN = ROOT / ".venv-litellm" / "bin" / "litellm"
ENVOY_BIN = Path(sys.executable).parent / "envoy"


@dataclass(frozen=True)
class Ports:
    envoy: int = 8003
    envoy_admin: int = 9901
    litellm: int = 8002
    grpc: int = 50051
    fake: int = 8010
    dashboard: int = 3002

    @classmethod
    def free(cls) -> Ports:
        return cls(
            envoy=free_port(),
            envoy_admin=free_port(),
            litellm=free_port(),
            grpc=free_port(),
            fake=free_port(),
            dashboard=free_port(),
        )


@dataclass
class StackConfig:
    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    admin_key: str = field(default_factory=lambda: "sk-admin-" + secrets.token_urlsafe(24), repr=False)
    litellm_master_key: str = field(default_factory=lambda: "sk-litellm-" + secrets.token_urlsafe(24), repr=False)
    database_url: str | None = None
    database_name: str = "saaslitellm"
    server_processes: int = 1
    server_env: dict[str, str] = field(default_factory=dict)
    with_litellm: bool = True
    with_dashboard: bool = True
    health_interval: str = "1s"
    # Seals webhook secrets (SAAS_SECRETS_KEY); None: the one kept in data_dir/secrets.key,
    # made on first use, so that secrets sealed before a restart still open.
    secrets_key: str | None = field(default=None, repr=False)
    # OTLP/HTTP traces URL: Envoy and the server processes export traces there.
    otlp_traces_endpoint: str | None = None
    log: Callable[[str], None] = print


class Stack:
    """Start with `start()` (or `with Stack(config) as stack:`); `stop()` stops all."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.postgres: postgres.Postgres | None = None
        self.children: list[Child] = []
        self.servers: list[Child] = []
        self.grpc_ports: list[int] = []
        self.metrics_ports: list[int] = []
        self._lock: IO[str] | None = None

    # ------------------------------------------------------------------ addresses
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports.envoy}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_ports[0]}"

    @property
    def litellm_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports.litellm}"

    @property
    def fake_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports.fake}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports.dashboard}"

    @property
    def logs(self) -> Path:
        return self.config.data_dir / "logs"

    @property
    def metrics_dir(self) -> Path:
        """Shared by the server processes (prometheus_client multiprocess mode)."""
        return self.config.data_dir / "metrics"

    @property
    def drain_seconds(self) -> float:
        """How long a stopping server keeps serving: Envoy must see NOT_SERVING first
        (one health interval, plus the check's own time)."""
        return 2 * float(self.config.health_interval.rstrip("s")) + 0.5

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        ports = self.config.ports
        self._check_ports_free()
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.config.data_dir)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)  # counters of an earlier run
        self.metrics_dir.mkdir()
        try:
            self._step("PostgreSQL", self._start_postgres)
            self._step(f"fake provider on :{ports.fake}", self._start_fake)
            if self.config.with_litellm:
                self._step(f"LiteLLM proxy on :{ports.litellm} (takes about 10 s)", self._start_litellm)
            self._step(f"gRPC server on :{ports.grpc}", self._start_servers)
            self._step(f"Envoy REST/SSE gateway on :{ports.envoy}", self._start_envoy)
            if self.config.with_dashboard:
                self._step(f"admin dashboard on :{ports.dashboard}", self._start_dashboard)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        self.servers.clear()
        self.postgres = None  # the embedded server stops when this process exits
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None

    def _step(self, what: str, action: Callable[[], str | None]) -> None:
        self.config.log(f"  starting {what} ...")
        started = time.monotonic()
        detail = action()
        suffix = f" ({detail})" if detail else ""
        self.config.log(f"  ready: {what} in {time.monotonic() - started:.1f} s{suffix}")

    def _check_ports_free(self) -> None:
        ports = self.config.ports
        wanted = {"Envoy": ports.envoy, "Envoy admin": ports.envoy_admin, "fake provider": ports.fake}
        wanted["gRPC server"] = ports.grpc
        if self.config.with_litellm:
            wanted["LiteLLM proxy"] = ports.litellm
        if self.config.with_dashboard:
            wanted["admin dashboard"] = ports.dashboard
        busy = [f"{name} port {port}" for name, port in wanted.items() if port_in_use(port)]
        if busy:
            raise StartupError(
                "ports already in use: "
                + ", ".join(busy)
                + ". Is another `make dev` running? Stop it, or free the ports."
            )

    # ------------------------------------------------------------------ components
    def _start_postgres(self) -> str:
        self.postgres = postgres.start(
            self.config.data_dir / "postgres", self.config.database_url, self.config.database_name
        )
        return "DATABASE_URL" if self.config.database_url else f"embedded, data in {self.config.data_dir / 'postgres'}"

    def start_child(self, name: str, command: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Child:
        """Start a process that belongs to the stack: it logs to `logs/NAME.log` and stops
        with the stack (the benchmark adds its own this way)."""
        child = Child(name, command, self.logs / f"{name}.log", env=env or {}, cwd=cwd)
        child.start()
        self.children.append(child)
        return child

    def _start_fake(self) -> None:
        child = self.start_child(
            "fakeprovider",
            [sys.executable, "-m", "fakeprovider", "--host", "127.0.0.1", "--port", str(self.config.ports.fake)],
        )
        child.wait_ready(lambda: httpx.get(f"{self.fake_url}/health", timeout=1).status_code == 200, timeout=30)

    def litellm_config_path(self) -> Path:
        """The LiteLLM config: gateway/litellm.yaml plus the real providers whose key is set."""
        config = yaml.safe_load((ROOT / "gateway" / "litellm.yaml").read_text())
        for entry in yaml.safe_load((ROOT / "gateway" / "litellm_providers.yaml").read_text()):
            if os.environ.get(entry.pop("requires")):
                config["model_list"].append(entry)
        path = self.config.data_dir / "litellm.yaml"
        path.write_text(json.dumps(config, indent=2))
        return path

    def _start_litellm(self) -> str:
        if not LITELLM_BIN.exists():
            raise StartupError(f"{LITELLM_BIN} is missing: run `make install` first")
        config_path = self.litellm_config_path()
        child = self.start_child(
            "litellm",
            [
                str(LITELLM_BIN),
                "--config",
                str(config_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.config.ports.litellm),
            ],
            env={
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_MASTER_KEY": self.config.litellm_master_key,
                "FAKE_PROVIDER_BASE_URL": f"{self.fake_url}/v1",
                "LITELLM_LOG": "ERROR",
                "DISABLE_SCHEMA_UPDATE": "True",
                # Import every feature at start-up instead of on some later request, whose
                # response would then stall for seconds (see _warm_up_litellm).
                "LITELLM_DISABLE_LAZY_ROUTES": "true",
            },
        )
        child.wait_ready(
            lambda: httpx.get(f"{self.litellm_url}/health/liveliness", timeout=1).status_code == 200, timeout=120
        )
        models = httpx.get(
            f"{self.litellm_url}/v1/models",
            headers={"Authorization": f"Bearer {self.config.litellm_master_key}"},
            timeout=5,
        ).json()
        return "models: " + ", ".join(m["id"] for m in models.get("data", []))

    @property
    def secrets_key(self) -> str:
        if self.config.secrets_key is not None:
            return self.config.secrets_key
        path = self.config.data_dir / "secrets.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def server_env(self, grpc_port: int, metrics_port: int | None = None) -> dict[str, str]:
        assert self.postgres is not None
        upstream = self.litellm_url if self.config.with_litellm else self.fake_url
        env = {
            "DATABASE_URL": self.postgres.url,
            "SAAS_ADMIN_KEY": self.config.admin_key,
            "SAAS_SECRETS_KEY": self.secrets_key,
            "LITELLM_BASE_URL": upstream,
            "LITELLM_MASTER_KEY": self.config.litellm_master_key,
            "SAAS_GRPC_HOST": "127.0.0.1",
            "SAAS_GRPC_PORT": str(grpc_port),
            "SAAS_METRICS_HOST": "127.0.0.1",
            "SAAS_METRICS_PORT": "off" if metrics_port is None else str(metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            "SAAS_SHUTDOWN_DRAIN_SECONDS": str(self.drain_seconds),
            # Envoy reaches the servers over loopback (envoy_config): its X-Forwarded-For,
            # the address it saw, is the peer the audit log records (README "Configuration").
            "SAAS_TRUSTED_PROXIES": "127.0.0.1, ::1",
            # make dev's and the tests' webhook receivers are on this machine, which a
            # deployment refuses (README "Webhooks"); `server_env` may set it back to false.
            "SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "PYTHONUNBUFFERED": "1",
        }
        if self.config.otlp_traces_endpoint:
            env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = self.config.otlp_traces_endpoint
        return {**env, **self.config.server_env}

    def _start_servers(self) -> str:
        ports = [self.config.ports.grpc] + [free_port() for _ in range(self.config.server_processes - 1)]
        for index, port in enumerate(ports):
            self.start_server(port, name=f"server-{index}" if len(ports) > 1 else "server")
        return f"{len(ports)} process(es)" if len(ports) > 1 else None

    # The source tree whose `server` package runs (the benchmark's A/B probe runs another
    # commit's), and the command that starts it (the profiler wraps it).
    server_tree: Path = ROOT

    def server_command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "server"]

    def start_server(self, port: int, name: str = "server") -> Child:
        metrics_port = free_port()
        env = self.server_env(port, metrics_port)
        if self.server_tree != ROOT:
            env["PYTHONPATH"] = str(self.server_tree)
        child = self.start_child(name, self.server_command(port), env=env, cwd=self.server_tree)
        child.wait_ready(lambda: grpc_serving(f"127.0.0.1:{port}"), timeout=60)
        self.servers.append(child)
        self.grpc_ports.append(port)
        self.metrics_ports.append(metrics_port)
        return child

    def envoy_config(self) -> envoy.EnvoyConfig:
        return envoy.EnvoyConfig(
            listen_port=self.config.ports.envoy,
            admin_port=self.config.ports.envoy_admin,
            grpc_backends=tuple(("127.0.0.1", port) for port in self.grpc_ports),
            health_interval=self.config.health_interval,
            metrics_backends=tuple(("127.0.0.1", port) for port in self.metrics_ports),
            otlp_traces_endpoint=self.config.otlp_traces_endpoint,
        )

    def envoy_yaml(self) -> str:
        return envoy.render(self.envoy_config())

    def _start_envoy(self) -> None:
        path = self.config.data_dir / "envoy.yaml"
        path.write_text(self.envoy_yaml())
        child = self.start_child(
            "envoy", [str(ENVOY_BIN), "-c", str(path), "--disable-hot-restart", "--log-level", "warn"]
        )
        # Ready when a request goes all the way through: unauthenticated -> 401 from the server.
        child.wait_ready(
            lambda: httpx.post(f"{self.api_url}/api/jobs/create", json={}, timeout=1).status_code == 401, timeout=30
        )

    def _start_dashboard(self) -> str | None:
        command = [sys.executable, "-m", "devstack.dashboard", "serve", "--port", str(self.config.ports.dashboard)]
        child = self.start_child("dashboard", [*command, "--api", self.api_url])
        child.wait_ready(lambda: httpx.get(f"{self.dashboard_url}/healthz", timeout=1).status_code == 200, timeout=30)
        return None if (dashboard.DIST / "index.html").exists() else "not built yet: run `make dashboard`"


def grpc_serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
        return response.status == health_pb2.HealthCheckResponse.SERVING


def _lock(data_dir: Path) -> IO[str]:
    """Hold data_dir for this stack: a second stack on it would share its embedded PostgreSQL
    and wipe its metrics directory under its running servers. Released when the file closes
    (also when this process dies)."""
    handle = (data_dir / "stack.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StartupError(
            f"{data_dir} is in use by another stack ({holder}): stop it, or give this one another data "
            "directory (python -m devstack --data-dir DIR)."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle
