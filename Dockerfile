# The gRPC server as a container image, in two stages: dependencies are installed in a
# build stage, and the runtime image gets only the virtualenv (the project's runtime
# dependencies, none of the [dev] extra: no compilers, test tools, Envoy or PostgreSQL).
#   docker build -t saaslitellm-server .                                  # the server
#   docker build --target fakeprovider -t saaslitellm-fakeprovider .     # the offline fake provider
# Configuration comes from the environment; see README "Configuration".

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/dev.lock requirements/dev.lock
COPY generated generated
COPY server server
COPY devstack devstack
COPY fakeprovider fakeprovider
# Pinned by the same lock file as development (used as constraints).
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install -c requirements/dev.lock . \
    && /opt/venv/bin/pip install -c requirements/dev.lock --target /opt/fakeprovider-deps aiohttp

# The fake OpenAI-compatible provider, for docker-compose's offline models only.
FROM python:3.11-slim AS fakeprovider
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/opt/fakeprovider-deps
COPY --from=build /opt/fakeprovider-deps /opt/fakeprovider-deps
WORKDIR /app
COPY fakeprovider fakeprovider
RUN useradd --system --uid 10001 saas
USER 10001
EXPOSE 8010
CMD ["python", "-m", "fakeprovider", "--host", "0.0.0.0", "--port", "8010"]

# The server (the default target: last stage).
FROM python:3.11-slim AS server
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The source tree next to the migrations it applies at start-up (server/storage/migrate.py
# finds them relative to the package), and the tiktoken file it ships (server/assets).
COPY server server
COPY migrations migrations
RUN useradd --system --uid 10001 saas
USER 10001

EXPOSE 50051
# Readiness is gRPC health (grpc.health.v1); the server applies migrations at start-up
# under an advisory lock, so several replicas may start together.
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s \
    CMD python -c "import grpc,sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; c=grpc.insecure_channel('127.0.0.1:50051'); sys.exit(0 if g.HealthStub(c).Check(h.HealthCheckRequest(), timeout=2).status == 1 else 1)"
CMD ["python", "-m", "server"]
