"""Run the fake provider in the foreground.

    python -m fakeprovider --host 127.0.0.1 --port 8010

Prints ``fakeprovider listening on http://HOST:PORT`` (the real port, also
for ``--port 0``) once it accepts connections, and exits with status 0 on
SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .server import base_url, serve


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m fakeprovider",
        description="Steerable fake OpenAI-compatible LLM provider.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8010, help="port to bind; 0 picks a free one (default 8010)")
    parser.add_argument("--access-log", action="store_true", help="log every request (off by default for speed)")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully."""
    if args.access_log:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(message)s")
    runner = await serve(args.host, args.port, access_log=args.access_log)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        print(f"fakeprovider listening on {base_url(runner)}", flush=True)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parse_args(argv)
    try:
        asyncio.run(_run(args))
    except OSError as exc:  # e.g. address already in use
        print(f"fakeprovider: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
