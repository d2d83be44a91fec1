"""A/B probe: the server of this checkout against another commit (or other settings), our
layer alone, measured in one run so the machine's noise hits both alike.

    python -m bench.ab --baseline HEAD~1                # this tree (B) against HEAD~1 (A)
    python -m bench.ab --env-b SAAS_EVENT_LOOP=asyncio  # same code, other settings
    python -m bench.ab --baseline HEAD~1 --gateway      # A's Envoy config from HEAD~1 too

Two `direct` stacks (Envoy -> 1 server process -> fake provider, no LiteLLM) in one
PostgreSQL; stack A's server runs from a git worktree of `--baseline` (when given), in this
tree's virtualenv: a commit that needs packages this one dropped stops at start-up, and its
log says which.
Measured: latency at concurrency 1 (REST and gRPC, the two stacks in turn) and throughput
of LLM calls (or with `--flow` of whole jobs: create, call, complete; with `--stream` of
streamed calls, with their time to first content) at `--concurrency`
(windows alternated A, B, A, B...), with the server's and PostgreSQL's CPU per operation
read from /proc. Both sides run this tree's Envoy config, unless `--gateway`: A's is
rendered by the baseline's devstack/envoy.py from its gateway/, and throughput goes through
Envoy (REST), with Envoy's CPU per operation. It prints each figure for A and B and the ratio B/A. Much quicker than `make bench` (about a minute) and meant for deciding whether a
change to the server's hot path helps; `make bench` remains the report of record.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.load import Samples, Summary, Window, interleaved, throughput
from bench.procs import Monitor, own_pid
from bench.targets import Grpc, Rest, create_tenant, stream_prompt
from devstack import postgres
from devstack.stack import ROOT, Ports, Stack, StackConfig

STREAM_CHUNKS = 8
STREAM_PROMPT = stream_prompt(STREAM_CHUNKS, 0)


class TreeStack(Stack):
    """A devstack Stack whose server processes run the `server` package of another tree, and
    whose Envoy config, with `gateway`, is that tree's too."""

    def __init__(self, config: StackConfig, tree: Path | None, gateway: bool = False) -> None:
        super().__init__(config)
        self.gateway_tree = tree if gateway else None
        if tree is not None:
            self.server_tree = tree

    def envoy_yaml(self) -> str:
        if self.gateway_tree is None:
            return super().envoy_yaml()
        config = self.envoy_config()
        script = (
            "import sys\n"
            "from devstack.envoy import EnvoyConfig, render\n"
            f"sys.stdout.write(render(EnvoyConfig(listen_port={config.listen_port}, "
            f"admin_port={config.admin_port}, grpc_backends={config.grpc_backends!r}, "
            f"health_interval={config.health_interval!r}, metrics_backends={config.metrics_backends!r})))\n"
        )
        return subprocess.run(
            [sys.executable, "-c", script],
            cwd=self.gateway_tree,
            env={"PYTHONPATH": str(self.gateway_tree), "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
            text=True,
        ).stdout


@dataclass
class Side:
    name: str
    stack: TreeStack
    database: str
    monitor: Monitor | None = None
    rest: Rest | None = None
    grpc: Grpc | None = None


def _env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--env-a/--env-b take KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def _worktree(ref: str, into: Path) -> Path:
    path = into / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), ref], check=True, capture_output=True
    )
    return path


async def _run(args: argparse.Namespace, data_dir: Path, tree: Path | None) -> int:
    pg = await asyncio.to_thread(postgres.start, ROOT / ".data" / "bench-postgres", args.database_url, "postgres")
    sides: list[Side] = []
    try:
        for name, env, side_tree in (("A", _env(args.env_a), tree), ("B", _env(args.env_b), None)):
            database = f"ab_{uuid.uuid4().hex[:12]}"
            config = StackConfig(
                data_dir=data_dir / name,
                ports=Ports.free(),
                database_url=pg.create_database(database),
                server_env=env,
                with_litellm=False,
                with_dashboard=False,
                log=lambda message, name=name: print(f"  {name}: {message}"),
            )
            sides.append(Side(name, TreeStack(config, side_tree, args.gateway), database))
        gateway = " (server and Envoy config)" if args.gateway else ""
        print(f"A: {'commit ' + args.baseline + gateway if args.baseline else 'this tree'} {_env(args.env_a) or ''}")
        print(f"B: this tree {_env(args.env_b) or ''}")
        await asyncio.gather(*(asyncio.to_thread(side.stack.start) for side in sides))
        for side in sides:
            print(f"{side.name}: server {_served_by(side.stack)}")
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=512)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as client:
            return await _measure(args, client, pg, sides)
    finally:
        for side in sides:
            if side.grpc is not None:
                await side.grpc.close()
        await asyncio.gather(*(asyncio.to_thread(side.stack.stop) for side in sides))
        for side in sides:
            pg.drop_database(side.database)


async def _measure(
    args: argparse.Namespace, client: aiohttp.ClientSession, pg: postgres.Postgres, sides: list[Side]
) -> int:
    postmaster = _postmaster_pid(pg)
    for side in sides:
        stack = side.stack
        tenant = await create_tenant(client, stack.api_url, stack.config.admin_key, 1_000_000_000)
        side.rest = Rest(stack.api_url, tenant)
        side.grpc = await Grpc(stack.grpc_target, tenant).open()
        side.monitor = Monitor()
        side.monitor.add("server", [c.pid for c in stack.servers])
        side.monitor.add("envoy", [next(c.pid for c in stack.children if c.name == "envoy")])
        side.monitor.add("postgres", [postmaster], with_children=True)
        side.monitor.add("client", [own_pid()])

    paths = {}
    for side in sides:
        rest_job = await side.rest.create_job(client)
        grpc_job = await side.grpc.create_job()
        if args.stream:
            paths[f"{side.name} REST"] = lambda s=side, j=rest_job: s.rest.stream(client, j, STREAM_PROMPT)
            paths[f"{side.name} gRPC"] = lambda s=side, j=grpc_job: s.grpc.stream(j, STREAM_PROMPT)
        else:
            paths[f"{side.name} REST"] = lambda s=side, j=rest_job: s.rest.call(client, j)
            paths[f"{side.name} gRPC"] = lambda s=side, j=grpc_job: s.grpc.call(j)
    print(f"latency at concurrency 1: {args.rounds} rounds of {len(paths)} paths in turn")
    samples = await interleaved(paths, rounds=args.rounds, warmup_rounds=max(5, args.rounds // 10))
    failed = sum(s.errors for s in samples.values())

    unit = "jobs" if args.flow else "streams" if args.stream else "calls"
    windows: dict[str, Window] = {side.name: Window(side.name, args.concurrency) for side in sides}
    for repeat in range(args.repeats):
        for side in sides:
            if args.flow:  # whole jobs: create, call, complete
                operation = lambda _i, s=side: s.grpc.flow()  # noqa: E731
            elif args.stream:  # streamed calls in open jobs, one per worker
                jobs = [await side.grpc.create_job() for _ in range(args.concurrency)]
                operation = lambda i, s=side, jobs=jobs: s.grpc.stream(jobs[i], STREAM_PROMPT)  # noqa: E731
            elif args.gateway:  # calls in open jobs, one per worker, through Envoy
                jobs = [await side.rest.create_job(client) for _ in range(args.concurrency)]
                operation = lambda i, s=side, jobs=jobs: s.rest.call(client, jobs[i])  # noqa: E731
            else:  # calls in open jobs, one per worker
                jobs = [await side.grpc.create_job() for _ in range(args.concurrency)]
                operation = lambda i, s=side, jobs=jobs: s.grpc.call(jobs[i])  # noqa: E731
            window = await throughput(
                side.name,
                operation,
                concurrency=args.concurrency,
                seconds=args.window,
                warmup=0.5,
                monitor=side.monitor,
            )
            print(f"  throughput {repeat + 1}/{args.repeats} {side.name}: {window.rate:.0f} {unit}/s")
            windows[side.name].add(window)
            failed += window.errors

    rows = []
    for kind in ("REST", "gRPC"):
        if args.stream:  # when the first content arrived (the whole stream is below)
            a, b = (_first_content(samples[f"{side} {kind}"]) for side in "AB")
            rows.append((f"c=1 {kind} 1st content p50 ms", a.p50_ms, b.p50_ms))
            rows.append((f"c=1 {kind} 1st content p99 ms", a.p99_ms, b.p99_ms))
        a, b = samples[f"A {kind}"].summary, samples[f"B {kind}"].summary
        rows.append((f"c=1 {kind} p50 ms", a.p50_ms, b.p50_ms))
        rows.append((f"c=1 {kind} p99 ms", a.p99_ms, b.p99_ms))
    a, b = windows["A"], windows["B"]
    rows.append((f"{'REST' if args.gateway else 'gRPC'} {unit}/s at {args.concurrency} in flight", a.rate, b.rate))
    for component in ("server", "postgres", *(("envoy",) if args.gateway else ()), "client"):
        rows.append((f"CPU ms/{unit[:-1]}: {component}", a.cpu_ms_per_op(component), b.cpu_ms_per_op(component)))
    print(f"\n{'':34}  {'A':>9}  {'B':>9}  {'B/A':>6}")
    for label, x, y in rows:
        print(f"{label:34}  {x:9.2f}  {y:9.2f}  {y / x if x else float('nan'):6.2f}")
    if failed:
        print(
            f"\n{failed} requests failed; first errors: "
            + "; ".join(s.first_error for s in [*samples.values(), *windows.values()] if s.first_error)
        )
        return 2
    return 0


def _first_content(samples: Samples) -> Summary:
    return Summary.of([timing.content[0] for timing in samples.results if timing.content])


def _served_by(stack: Stack) -> str:
    """What the server says it runs on, from its start-up line."""
    found = re.search(r"serving gRPC on \S+ \(event loop: (\w+)\)", stack.servers[0].log_path.read_text())
    return f"on the {found.group(1)} event loop" if found else "(no start-up line with its event loop: an older server)"


def _postmaster_pid(pg: postgres.Postgres) -> int | None:
    import psutil
    import psycopg

    with psycopg.connect(pg.admin_url) as conn:
        return psutil.Process(conn.execute("SELECT pg_backend_pid()").fetchone()[0]).ppid()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="git ref whose server runs as A (default: this tree, like B)")
    parser.add_argument("--env-a", action="append", default=[], metavar="KEY=VALUE", help="server setting for A")
    parser.add_argument("--env-b", action="append", default=[], metavar="KEY=VALUE", help="server setting for B")
    parser.add_argument("--rounds", type=int, default=200, help="latency rounds (default 200)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight for throughput (default 32)")
    parser.add_argument(
        "--flow", action="store_true", help="throughput of whole jobs (create, call, complete) instead of calls"
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help=f"streamed calls instead of plain ones ({STREAM_CHUNKS} chunks, no delay): also time to first content",
    )
    parser.add_argument(
        "--gateway",
        action="store_true",
        help="A's Envoy config from --baseline too, and calls' throughput through Envoy (REST) with its CPU",
    )
    parser.add_argument("--window", type=float, default=3.0, help="seconds per throughput window (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="throughput windows per side (default 3)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL to use instead of the embedded one")
    args = parser.parse_args()
    if args.gateway and (not args.baseline or args.flow or args.stream):
        parser.error(
            "--gateway compares a --baseline's Envoy config on plain calls: give --baseline, not --flow/--stream"
        )
    data_dir = Path(tempfile.mkdtemp(prefix="saaslitellm-ab-"))
    tree = _worktree(args.baseline, data_dir) if args.baseline else None
    try:
        return asyncio.run(_run(args, data_dir, tree))
    finally:
        if tree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
