# The gRPC server (and, with another command, the fake provider) as a container image.
#   docker build -t saaslitellm-server .
# Configuration comes from the environment; see README "Configuration".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first (cached layer), pinned by the same lock file as development.
COPY pyproject.toml README.md ./
COPY requirements/dev.lock requirements/dev.lock
COPY generated generated
COPY server server
COPY devstack devstack
COPY fakeprovider fakeprovider
COPY migrations migrations
RUN pip install --no-cache-dir -c requirements/dev.lock '.[dev]' \
    && useradd --system --uid 10001 saas
USER 10001

EXPOSE 50051
# Readiness is gRPC health (grpc.health.v1); the server applies migrations at start-up
# under an advisory lock, so several replicas may start together.
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s \
    CMD python -c "import grpc,sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; c=grpc.insecure_channel('127.0.0.1:50051'); sys.exit(0 if g.HealthStub(c).Check(h.HealthCheckRequest(), timeout=2).status == 1 else 1)"
CMD ["python", "-m", "server"]
