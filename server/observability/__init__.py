"""Operations: what an operator sees of a running server.

- `context`: the request being served (id, RPC, team, job, model), in a context variable;
- `logs`: JSON log lines, one access line per request, noisy libraries quieted;
- `metrics`: Prometheus metrics (RPCs, upstream calls, streams, pool, usage) and their
  HTTP endpoint;
- `tracing`: OpenTelemetry spans exported by OTLP, only when an endpoint is configured;
- `interceptor`: the gRPC interceptor tying the above to every RPC, and the request id;
- `wrappers`: the upstream client and the authenticator, observed from the outside.

Nothing here decides anything about jobs, credits or keys; it only watches.
"""
