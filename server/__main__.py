"""Start the gRPC server: `python -m server`.

Reads settings once, sets up logging (JSON lines) and tracing (when an OTLP endpoint is
configured), waits for PostgreSQL (SAAS_DB_STARTUP_TIMEOUT_SECONDS, with backoff),
applies migrations (under an advisory lock, so several processes starting together
apply them once; with SAAS_MIGRATE_ON_START=false, checks that none is missing), serves
until SIGTERM or SIGINT, then shuts down gracefully: health
turns NOT_SERVING, the server keeps serving for SAAS_SHUTDOWN_DRAIN_SECONDS while load
balancers notice, then in-flight calls and streams get SAAS_SHUTDOWN_GRACE_SECONDS to
finish, and pending call records are written.

Start-up failures say why on stderr or in the log and exit with 2 (a setting),
3 (the database) or 4 (an address to listen on: in use, or not this machine's).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import uvloop
from sqlalchemy.exc import DBAPIError

from server.observability import logs, tracing
from server.settings import Settings, SettingsError

log = logging.getLogger("server")


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"server: configuration error: {error}", file=sys.stderr)
        return 2
    # Only now: importing the metrics opens files in PROMETHEUS_MULTIPROC_DIR, checked above.
    from server.app import CannotServe, run
    from server.storage import database, migrate

    logs.configure(settings.log_level, settings.log_format)
    if settings.otlp_traces_endpoint:
        tracing.configure(settings.otlp_traces_endpoint, settings.service_name)
        log.info("exporting traces to %s", settings.otlp_traces_endpoint)
    try:
        database.wait_until_reachable(settings.database_url, settings.db_startup_timeout_seconds)
    except DBAPIError:
        return 3  # wait_until_reachable logged where and why
    except Exception as error:  # e.g. a URL the driver refuses: say so, never exit silently
        log.error("cannot use the database (DATABASE_URL): %s", error, exc_info=True)
        return 3
    if settings.migrate_on_start:
        try:
            migrate.upgrade(settings.database_url)
        except migrate.MigrationBlocked:
            return 3  # upgrade logged which table, who holds it and what to do
    else:
        try:
            migrate.check_schema(settings.database_url)
        except migrate.SchemaBehind as error:
            log.error("%s", error)
            return 3

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    try:
        if settings.event_loop == "uvloop":
            uvloop.run(serve())
        else:
            asyncio.run(serve())
    except CannotServe as error:
        log.error("%s", error)
        return 4
    finally:
        tracing.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
