"""Where and when the figures were measured: CPU, cores, memory, versions, commit, date."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _proc_value(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return "unknown"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def describe() -> dict[str, str | int | float]:
    mem_kb = _proc_value("/proc/meminfo", "MemTotal").split()[0]
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": _proc_value("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count() or 0,
        "memory_gib": round(int(mem_kb) / 1024 / 1024, 1) if mem_kb.isdigit() else 0,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": (_git("rev-parse", "--short", "HEAD") or "unknown") + (" (with local changes)" if dirty else ""),
        "load_average_at_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
