"""`python -m bench.profiled_server PROFILE_PATH`: the server, with a profiler switched by signals.

SIGUSR1 starts cProfile, SIGUSR2 stops it and writes PROFILE_PATH, so the profile covers
exactly the benchmark's measurement window (not start-up, imports or migrations).
Everything else is `python -m server` unchanged.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys

from server.__main__ import main as server_main


def main() -> int:
    path = sys.argv.pop(1)
    profiler = cProfile.Profile()

    def start(_signum: int, _frame: object) -> None:
        profiler.enable()

    def stop(_signum: int, _frame: object) -> None:
        profiler.disable()
        profiler.dump_stats(path + ".partial")
        os.replace(path + ".partial", path)  # complete when it appears

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    return server_main()


if __name__ == "__main__":
    sys.exit(main())
