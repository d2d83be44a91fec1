"""Start the gRPC server: `python -m server`.

Reads settings once, applies migrations (under an advisory lock), serves until SIGTERM or
SIGINT, then shuts down gracefully: health turns NOT_SERVING, in-flight calls and streams
get SAAS_SHUTDOWN_GRACE_SECONDS to finish, pending call records are written.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from server.app import run
from server.settings import Settings, SettingsError
from server.storage import migrate


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"server: configuration error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.migrate_on_start:
        migrate.upgrade(settings.database_url)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
