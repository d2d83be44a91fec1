"""Log lines as JSON objects, one per line, with the request id when there is one.

Every record gets `timestamp`, `level`, `logger` and `message`; records emitted while a
request is served also get its `request_id`. The access log (`saaslitellm.access`)
writes one line per RPC with its outcome and latency. Libraries' loggers that could log
every request or connection are raised to WARNING.

Never log a secret: no metadata, headers or request bodies are logged anywhere, and the
access line holds only identifiers (team, job, request), codes and timings.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from server.observability import context

ACCESS = logging.getLogger("saaslitellm.access")
# Libraries that log each HTTP request or connection at INFO.
NOISY = ("aiohttp", "httpx", "httpcore", "hpack", "urllib3")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            ctx = context.current.get()
            if ctx is not None:
                record.request_id = ctx.request_id
        return True


# What every LogRecord has: anything else was given in `extra` (the access line's fields).
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class _TextFormatter(logging.Formatter):
    """For people: the line, then the record's own fields (`extra`) as key=value, so the
    text format says what the JSON one says."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{key}={value}" for key, value in vars(record).items() if key not in _RECORD_FIELDS)
        if not fields:
            return line
        head, newline, trace = line.partition("\n")  # the fields stay on the line, before a traceback
        return f"{head} {fields}{newline}{trace}"


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Send every log record to stderr, as JSON (default) or as plain text."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp=True,
            )
        )
    else:
        handler.setFormatter(_TextFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def access(ctx: context.RequestContext, code: str, reason: str, seconds: float, streamed: bool) -> None:
    """The one line per request: who, what, how it ended, how long it took."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    ACCESS.info(
        "request",
        extra={
            "request_id": ctx.request_id,
            "rpc": ctx.rpc,
            "code": code,
            "reason": reason,
            "latency_ms": round(seconds * 1000, 2),
            "team_id": ctx.team_id,
            "job_id": ctx.job_id,
            "model": ctx.model,
            "upstream_model": ctx.upstream_model,
            "streamed": streamed,
        },
    )
