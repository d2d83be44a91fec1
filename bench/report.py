"""Turn the measurements into one table, the derived ratios and the targets of issue 8."""

from __future__ import annotations

import math
from typing import Any

from bench.stats import ratio

# Targets of issue 8 ("Prove the layer is thin").
ADDED_P50_MS = 2.0
ADDED_P99_MS = 5.0
LAYER_VS_LITELLM = 5.0
STREAM_FIRST_EVENT_MS = 2.0

PATHS = [
    # process whose CPU per call is shown, label, latency key, calls key, flow key, stream key
    ("fake", "fake provider, direct", "fake", "fake", None, "fake"),
    ("litellm", "LiteLLM proxy, direct (1 worker)", "litellm", "litellm", None, "litellm"),
    ("server", "full stack: REST > Envoy > server > LiteLLM", "full_rest", "full_rest_calls", "full_rest_flow", "full_rest"),
    ("server", "native gRPC > server > LiteLLM", "full_grpc", None, None, "full_grpc"),
    ("server", "our layer: REST > Envoy > server > fake", "direct_rest", "direct_rest_calls", "direct_rest_flow", "direct_rest"),
    ("server", "our layer: native gRPC > server > fake", "direct_grpc", "direct_grpc_calls", "direct_grpc_flow", "direct_grpc"),
    ("server", "our layer, 2 server processes (REST)", None, "direct2_rest_calls", "direct2_rest_flow", None),
    ("floor", "floor: native gRPC > bare grpc.aio > fake", "floor_grpc", None, None, "floor_grpc"),
]  # fmt: skip

CPU_COMPONENTS = ("client", "envoy", "server", "litellm", "fake", "postgres", "other")
STACK_COMPONENTS = ("envoy", "server", "litellm", "fake", "postgres")
SINGLE_THREADED = ("server", "litellm", "fake")  # one event loop per process


def capacity(key: str, window: dict, cores: int) -> float | None:
    """Operations/s the stack could sustain if the machine were its own, from CPU per operation:
    all cores shared by the stack's processes, each single-threaded process bounded by one core
    (the server by as many cores as it has processes). The load generator and processes outside
    the benchmark are left out. A shared machine's measured rates depend on its other load;
    this estimate depends mostly on the work per request."""
    per_op = window.get("cpu_ms_per_op") or {}
    total = sum(per_op.get(c) or 0 for c in STACK_COMPONENTS)
    if not total or not cores:
        return None
    bounds = [cores * 1000 / total]
    for component in SINGLE_THREADED:
        ms = per_op.get(component) or 0
        processes = 2 if component == "server" and key.startswith("direct2") else 1
        if ms > 0.05:  # idle bystanders (e.g. the server while LiteLLM is measured) bound nothing
            bounds.append(processes * 1000 / ms)
    return min(bounds)


def _get(data: dict, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for index, row in enumerate([header, *rows]):
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def derived(data: dict) -> dict[str, Any]:
    """The comparisons the issue asks for, each figure next to its same-run baseline."""
    lat = data.get("latency", {})
    tput = data.get("throughput", {})
    streams = _get(data, "streaming", "paths") or {}

    def lat_diff(path: str, base: str, q: str) -> float | None:
        a, b = _get(lat, path, q), _get(lat, base, q)
        return None if a is None or b is None else a - b

    def rate(key: str) -> float | None:
        return _get(tput, key, "rate_per_s")

    cores = _get(data, "machine", "cores") or 0

    def cap(key: str) -> float | None:
        return capacity(key, tput[key], cores) if key in tput else None

    def cpu(key: str, component: str) -> float | None:
        return _get(tput, key, "cpu_ms_per_op", component)

    def stream_diff(path: str, base: str, metric: str, q: str = "p50_ms") -> float | None:
        a, b = _get(streams, path, metric, q), _get(streams, base, metric, q)
        return None if a is None or b is None else a - b

    def safe_ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else ratio(a, b)

    upstream = _get(data, "latency_upstream_as_served", "mean_ms")  # LiteLLM, as our server timed it

    def minus_upstream(path: str) -> float | None:
        mean = _get(lat, path, "mean_ms")
        return None if mean is None or upstream is None else mean - upstream

    floor = lat_diff("floor_grpc", "fake", "p50_ms")  # a bare grpc.aio pass-through
    envoy = lat_diff("direct_rest", "direct_grpc", "p50_ms")  # Envoy and REST transcoding
    out = {
        "added_latency_full_vs_litellm_p50_ms": lat_diff("full_rest", "litellm", "p50_ms"),
        "added_latency_full_vs_litellm_p99_ms": lat_diff("full_rest", "litellm", "p99_ms"),
        "added_latency_grpc_vs_litellm_p50_ms": lat_diff("full_grpc", "litellm", "p50_ms"),
        "added_latency_grpc_vs_litellm_p99_ms": lat_diff("full_grpc", "litellm", "p99_ms"),
        "our_layer_rest_vs_fake_p50_ms": lat_diff("direct_rest", "fake", "p50_ms"),
        "our_layer_rest_vs_fake_p99_ms": lat_diff("direct_rest", "fake", "p99_ms"),
        "our_layer_grpc_vs_fake_p50_ms": lat_diff("direct_grpc", "fake", "p50_ms"),
        "our_layer_grpc_vs_fake_p99_ms": lat_diff("direct_grpc", "fake", "p99_ms"),
        "floor_grpc_vs_fake_p50_ms": floor,
        "floor_grpc_vs_fake_p99_ms": lat_diff("floor_grpc", "fake", "p99_ms"),
        "our_server_over_floor_p50_ms": lat_diff("direct_grpc", "floor_grpc", "p50_ms"),
        "envoy_rest_over_grpc_p50_ms": envoy,
        # What a REST call through Envoy to a server that does nothing but forward it adds.
        "architecture_floor_p50_ms": None if floor is None or envoy is None else floor + envoy,
        # The full stack's added latency split at its upstream request (means): LiteLLM as our
        # server timed it against LiteLLM called directly, and the rest of a full REST call
        # against our layer in front of the fake provider.
        "upstream_as_served_mean_ms": upstream,
        "litellm_direct_mean_ms": _get(lat, "litellm", "mean_ms"),
        "full_rest_outside_upstream_mean_ms": minus_upstream("full_rest"),
        "our_layer_rest_vs_fake_mean_ms": lat_diff("direct_rest", "fake", "mean_ms"),
        "layer_rest_calls_over_litellm": safe_ratio(rate("direct_rest_calls"), rate("litellm")),
        "layer_grpc_calls_over_litellm": safe_ratio(rate("direct_grpc_calls"), rate("litellm")),
        "layer_rest_flows_over_litellm_calls": safe_ratio(rate("direct_rest_flow"), rate("litellm")),
        "layer_2proc_rest_calls_over_litellm": safe_ratio(rate("direct2_rest_calls"), rate("litellm")),
        "client_cpu_percent_max": max(
            (w.get("cpu_percent", {}).get("client") or 0 for k, w in tput.items() if k != "fake"), default=None
        ),
        "other_processes_percent_mean": (
            sum(w.get("cpu_percent", {}).get("other") or 0 for w in tput.values()) / len(tput) if tput else None
        ),
        "steal_percent_mean": (
            sum(w.get("machine_steal_percent") or 0 for w in tput.values()) / len(tput) if tput else None
        ),
        "fake_direct_over_fastest_stack_path": safe_ratio(
            rate("fake"),
            max((w.get("rate_per_s") or 0 for k, w in tput.items() if k not in ("fake", "litellm")), default=None),
        ),
        "full_calls_over_litellm": safe_ratio(rate("full_rest_calls"), rate("litellm")),
        "litellm_cpu_over_server_cpu_per_call": safe_ratio(
            cpu("litellm", "litellm"), cpu("direct_rest_calls", "server")
        ),
        "capacity_layer_rest_over_litellm": safe_ratio(cap("direct_rest_calls"), cap("litellm")),
        "capacity_layer_grpc_over_litellm": safe_ratio(cap("direct_grpc_calls"), cap("litellm")),
        "capacity_layer_2proc_rest_over_litellm": safe_ratio(cap("direct2_rest_calls"), cap("litellm")),
        "capacity_scaling_2_over_1_calls": safe_ratio(cap("direct2_rest_calls"), cap("direct_rest_calls")),
        "scaling_2_over_1_calls": safe_ratio(rate("direct2_rest_calls"), rate("direct_rest_calls")),
        "scaling_2_over_1_flows": safe_ratio(rate("direct2_rest_flow"), rate("direct_rest_flow")),
        "stream_first_event_added_ms": stream_diff("direct_rest", "fake", "first_event_ms"),
        "stream_first_content_added_ms": stream_diff("direct_rest", "fake", "first_content_ms"),
        "stream_first_content_added_p99_ms": stream_diff("direct_rest", "fake", "first_content_ms", "p99_ms"),
        "stream_first_content_added_grpc_ms": stream_diff("direct_grpc", "fake", "first_content_ms"),
        "stream_first_content_floor_ms": stream_diff("floor_grpc", "fake", "first_content_ms"),
        "stream_first_content_full_vs_litellm_ms": stream_diff("full_rest", "litellm", "first_content_ms"),
        "stream_chunk_overhead_ms": stream_diff("direct_rest", "fake", "gap_ms", "mean_ms"),
        "stream_chunk_overhead_full_vs_litellm_ms": stream_diff("full_rest", "litellm", "gap_ms", "mean_ms"),
        "stream_batched_paths": [name for name, s in streams.items() if s.get("batched")],
    }
    return out


def _db_line(per_op: dict, kinds: tuple[str, ...]) -> tuple[float, float, float, float]:
    totals = [0.0, 0.0, 0.0, 0.0]
    for kind in kinds:
        op = per_op.get(kind) or {}
        for i, metric in enumerate(("round_trips", "statements", "transactions", "writing_transactions")):
            totals[i] += _get(op, metric, "median") or 0
    return tuple(totals)  # type: ignore[return-value]


def render(data: dict) -> str:
    lat = data.get("latency", {})
    tput = data.get("throughput", {})
    streams = _get(data, "streaming", "paths") or {}
    d = derived(data)
    n = data.get("concurrency")
    chunks, delay = _get(data, "streaming", "chunks"), _get(data, "streaming", "delay_ms")
    out: list[str] = []

    rows = []
    for process, label, lat_key, calls_key, flow_key, stream_key in PATHS:
        rows.append(
            [
                label,
                _fmt(_get(lat, lat_key, "p50_ms"), 2) if lat_key else "-",
                _fmt(_get(lat, lat_key, "p99_ms"), 2) if lat_key else "-",
                _fmt(_get(tput, calls_key, "rate_per_s"), 0) if calls_key else "-",
                _fmt(_get(tput, flow_key, "rate_per_s"), 0) if flow_key else "-",
                f"{_fmt(_get(tput, calls_key, 'cpu_ms_per_op', process), 2)} {process}" if calls_key else "-",
                _fmt(_get(streams, stream_key, "first_content_ms", "p50_ms"), 1) if stream_key else "-",
                _fmt(_get(streams, stream_key, "gap_ms", "mean_ms"), 2) if stream_key else "-",
                (
                    f"{_get(streams, stream_key, 'content_events_min')}/{chunks}"
                    if stream_key and stream_key in streams
                    else "-"
                ),
            ]
        )
    out.append(
        table(
            rows,
            [
                "path",
                "c=1 p50 ms",
                "c=1 p99 ms",
                f"calls/s c={n}",
                f"jobs/s c={n}",
                "CPU ms/call (process)",
                "stream 1st chunk ms",
                "chunk gap ms",
                "chunks",
            ],
        )
    )
    out.append(
        f"\n(calls/s: LLM calls in open jobs; jobs/s: create -> call -> complete; stream: "
        f"{chunks} chunks {delay} ms apart from the provider; fake provider latency is the floor of every path)"
    )

    # CPU per operation: where the time goes.
    cpu_rows = []
    cores = _get(data, "machine", "cores") or 0
    for key, window in tput.items():
        per_op = window.get("cpu_ms_per_op", {})
        cpu_rows.append(
            [
                key,
                _fmt(window.get("rate_per_s"), 0),
                _fmt(capacity(key, window, cores), 0),
                *[_fmt(per_op.get(c), 2) for c in CPU_COMPONENTS],
                _fmt(_get(window, "cpu_percent", "client"), 0),
                _fmt(window.get("machine_busy_percent"), 0),
                _fmt(window.get("machine_steal_percent"), 0),
            ]
        )
    out.append("\nCPU milliseconds per operation under load (from /proc; 'other' = processes outside the benchmark)")
    out.append(
        table(
            cpu_rows,
            [
                "throughput run",
                "ops/s",
                "CPU-bound est./s",
                *CPU_COMPONENTS,
                "client CPU %",
                "machine busy %",
                "steal %",
            ],
        )
    )

    at_one = data.get("latency_cpu_ms_per_call")
    if at_one:
        out.append(
            "\nCPU ms per call at concurrency 1 (latency phase): "
            + "; ".join(f"{name} {_fmt(value, 2)}" for name, value in at_one.items())
        )

    # Profile of one server process.
    profile = data.get("profile")
    if profile:
        out.append(
            f"\nWhere a server process spends its CPU: cProfile during {profile['what']}, "
            f"{profile['concurrency']} in flight (shares of its busy time; the profiler slows it, so shares only)"
        )
        shares = [[name, f"{100 * share:.1f}%"] for name, share in profile["breakdown"].items() if share >= 0.005]
        out.append(table(shares, ["package", "share"]))
        out.append("top functions by own time: " + "; ".join(f"{n} {t:.2f}s" for n, t in profile["top_functions"][:8]))

    # Database work.
    per_op = _get(data, "database", "per_operation") or {}
    if per_op:
        db_rows = []
        for kind, op in per_op.items():
            db_rows.append(
                [
                    kind,
                    str(op.get("samples")),
                    _spread(op, "round_trips"),
                    _spread(op, "statements"),
                    _spread(op, "transactions"),
                    _spread(op, "writing_transactions"),
                    ", ".join(f"{k} x{v}" if v > 1 else k for k, v in op.get("statement_shapes", {}).items()),
                ]
            )
        out.append("\nPostgreSQL work per request, counted on the wire (median, and the range when samples differ)")
        header = [
            "request",
            "samples",
            "round trips",
            "statements",
            "transactions",
            "writing",
            "statements (last sample)",
        ]
        out.append(table(db_rows, header))
        load = _get(data, "database", "under_load") or {}
        if load:
            out.append(
                f"under load ({load['concurrency']} in flight, {load['calls']} calls): "
                f"{_fmt(load['round_trips_per_call'], 2)} round trips, "
                f"{_fmt(load['transactions_per_call'], 2)} transactions and "
                f"{_fmt(load['connections_opened_per_100_calls'], 1)} new PostgreSQL connections per 100 calls"
            )
        check = _get(data, "database", "cross_check") or {}
        extra = (check.get("pg_xact_commit") or 0) - (check.get("proxy_commits_plus_connections") or 0)
        out.append(
            f"cross-check with pg_stat_database: sessions {check.get('pg_sessions')} vs proxy connections "
            f"{check.get('proxy_connections')}; xact_commit {check.get('pg_xact_commit')} vs proxy commits + "
            f"connection starts {check.get('proxy_commits_plus_connections')}; xact_rollback "
            f"{check.get('pg_xact_rollback')} vs {check.get('proxy_rollbacks')}: "
            + (
                "agree"
                if check.get("agree")
                else f"differ: +{extra} commits in PostgreSQL only (likely autovacuum, whose workers visit each database about once a minute; the proxy cannot see them)"
                if extra > 0 and check.get("pg_sessions") == check.get("proxy_connections")
                else "DISAGREE"
            )
        )

    # Targets.
    call_db = _db_line(per_op, ("llm_call",))
    job_db = _db_line(per_op, ("create_job", "complete_job"))
    idle = data.get("memory_idle_mib", {})
    peak = data.get("memory_peak_mib", {})
    accounting = data.get("accounting", {})
    accounting_ok = bool(accounting) and all(r.get("ok") for r in accounting.values())
    checks = sum(len(r.get("checks", [])) for r in accounting.values())

    def verdict(ok: bool | None) -> str:
        return "n/a " if ok is None else ("PASS" if ok else "MISS")

    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    def at_least(value: float | None, limit: float) -> bool | None:
        return None if value is None else value >= limit

    lines = [
        (
            at_most(d["added_latency_full_vs_litellm_p50_ms"], ADDED_P50_MS),
            f"added latency p50, full stack REST - LiteLLM direct: {_fmt(d['added_latency_full_vs_litellm_p50_ms'], 2)} ms"
            f" (target <= {ADDED_P50_MS:g}); our layer alone, REST - fake direct: "
            f"{_fmt(d['our_layer_rest_vs_fake_p50_ms'], 2)} ms; gRPC - fake: {_fmt(d['our_layer_grpc_vs_fake_p50_ms'], 2)} ms",
        ),
        (
            at_most(d["added_latency_full_vs_litellm_p99_ms"], ADDED_P99_MS),
            f"added latency p99, full stack REST - LiteLLM direct: {_fmt(d['added_latency_full_vs_litellm_p99_ms'], 2)} ms"
            f" (target <= {ADDED_P99_MS:g}); our layer alone, REST - fake direct: "
            f"{_fmt(d['our_layer_rest_vs_fake_p99_ms'], 2)} ms",
        ),
        (
            None,
            "where our layer's added latency goes (p50): a bare grpc.aio server that only forwards the call "
            f"(the floor of a Python gRPC server, floor - fake) {_fmt(d['floor_grpc_vs_fake_p50_ms'], 2)} ms; "
            f"our server's own work above that floor (keys, the job's context, the record, metrics, logs; "
            f"our gRPC - floor) {_fmt(d['our_server_over_floor_p50_ms'], 2)} ms; Envoy and REST transcoding "
            f"(our REST - our gRPC) {_fmt(d['envoy_rest_over_grpc_p50_ms'], 2)} ms; the floor and Envoy alone: "
            f"{_fmt(d['architecture_floor_p50_ms'], 2)} ms against the {ADDED_P50_MS:g} ms target",
        ),
        (
            None,
            "where the full stack's added latency goes (means): LiteLLM as our server timed it "
            f"{_fmt(d['upstream_as_served_mean_ms'], 2)} ms, called directly {_fmt(d['litellm_direct_mean_ms'], 2)} ms; "
            f"the rest of a full REST call {_fmt(d['full_rest_outside_upstream_mean_ms'], 2)} ms, against "
            f"{_fmt(d['our_layer_rest_vs_fake_mean_ms'], 2)} ms for our layer in front of the fake provider: the "
            "difference is our layer waiting beside LiteLLM on the same cores (LiteLLM keeps working after it answers)",
        ),
        (
            at_least(d["layer_rest_calls_over_litellm"], LAYER_VS_LITELLM),
            f"our layer alone / LiteLLM 1 worker, calls/s: REST {_fmt(d['layer_rest_calls_over_litellm'], 2)}x, "
            f"gRPC {_fmt(d['layer_grpc_calls_over_litellm'], 2)}x, REST with 2 server processes "
            f"{_fmt(d['layer_2proc_rest_calls_over_litellm'], 2)}x (target >= {LAYER_VS_LITELLM:g}x); "
            f"CPU-bound estimates: REST {_fmt(d['capacity_layer_rest_over_litellm'], 2)}x, gRPC "
            f"{_fmt(d['capacity_layer_grpc_over_litellm'], 2)}x, 2 processes "
            f"{_fmt(d['capacity_layer_2proc_rest_over_litellm'], 2)}x; CPU per call LiteLLM / our server: "
            f"{_fmt(d['litellm_cpu_over_server_cpu_per_call'], 2)}x",
        ),
        (
            at_most(d["stream_first_content_added_ms"], STREAM_FIRST_EVENT_MS)
            if not d["stream_batched_paths"]
            else False,
            f"streaming, added to the first chunk (our layer REST - fake, p50): "
            f"{_fmt(d['stream_first_content_added_ms'], 2)} ms (target <= {STREAM_FIRST_EVENT_MS:g}); first event "
            f"{_fmt(d['stream_first_event_added_ms'], 2)} ms; per-chunk gap overhead "
            f"{_fmt(d['stream_chunk_overhead_ms'], 3)} ms; batched: {', '.join(d['stream_batched_paths']) or 'none'}; "
            f"native gRPC to our server {_fmt(d['stream_first_content_added_grpc_ms'], 2)} ms, to the bare "
            f"grpc.aio floor {_fmt(d['stream_first_content_floor_ms'], 2)} ms",
        ),
        (
            (call_db[3] <= 1 and call_db[2] - call_db[3] <= 1 and job_db[3] <= 2) if per_op else None,
            f"database per LLM call: {call_db[0]:g} round trips, {call_db[1]:g} statements, {call_db[2]:g} transactions"
            f" of which {call_db[3]:g} writing; per completed job (create + complete): {job_db[0]:g} round trips,"
            f" {job_db[2]:g} transactions of which {job_db[3]:g} writing (target: 1 writing transaction per call"
            " record, 1 per completion; a call may read its context once before it goes upstream)",
        ),
        (
            None,
            f"scaling 1 -> 2 server processes: calls {_fmt(d['scaling_2_over_1_calls'], 2)}x, "
            f"jobs {_fmt(d['scaling_2_over_1_flows'], 2)}x, CPU-bound estimate (calls) "
            f"{_fmt(d['capacity_scaling_2_over_1_calls'], 2)}x (on {data.get('machine', {}).get('cores')} cores, "
            "shared with Envoy, PostgreSQL, the fake provider and the load generator)",
        ),
        (
            None,
            "server memory (RSS MiB) idle -> peak under load: "
            + "; ".join(
                f"{key.split('/')[0]} {', '.join(_fmt(v, 0) for v in idle.get(key, []))} -> {_fmt(peak.get(key), 0)}"
                for key in sorted(peak)
                if key.endswith("/server")
            ),
        ),
        (
            accounting_ok if accounting else None,
            f"accounting after the load: {checks} checks over {len(accounting)} stacks "
            + ("all pass" if accounting_ok else "FAILED: " + "; ".join(_failures(accounting))),
        ),
    ]
    lines.append(
        (
            None,
            f"load generator: at most {_fmt(d['client_cpu_percent_max'], 0)}% of one core in any run through the "
            "stack or LiteLLM; "
            f"it drove the fake provider directly {_fmt(d['fake_direct_over_fastest_stack_path'], 1)}x faster than "
            "the fastest path through the stack, so the stack, not the client, set the rates",
        )
    )
    lines.append(
        (
            None,
            f"noise: processes outside the benchmark used {_fmt(d['other_processes_percent_mean'], 0)}% of a core on "
            f"average during the throughput runs, and the hypervisor stole {_fmt(d['steal_percent_mean'], 1)}% of "
            "the machine; compare figures within this run, not across runs",
        )
    )
    errors = data.get("errors") or []
    if errors:
        reasons = {k: v for r in accounting.values() for k, v in (r.get("failed_call_reasons") or {}).items()}
        lines.append(
            (
                False,
                "ERRORS: "
                + "; ".join(f"{e['count']} in {e['phase']} {e['path']} (first: {e['first'][:160]})" for e in errors)
                + (f". Recorded failed calls: {reasons}" if reasons else ""),
            )
        )
    out.append("\nTargets (issue 8)")
    out += [f"  {verdict(ok)}  {text}" for ok, text in lines]
    return "\n".join(out)


def _spread(op: dict, metric: str) -> str:
    low, mid, high = (_get(op, metric, k) for k in ("min", "median", "max"))
    return _fmt(mid, 0) if low == high else f"{_fmt(mid, 1)} ({low}-{high})"


def _failures(accounting: dict) -> list[str]:
    return [
        f"{stack}: {c['name']} expected {c['expected']} found {c['found']}"
        for stack, report in accounting.items()
        for c in report.get("checks", [])
        if not c.get("ok")
    ]
