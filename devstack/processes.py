"""Child processes of the dev stack: start, wait until ready, stop cleanly.

Each child runs in its own process group with its output in a log file, so Ctrl-C reaches
only the orchestrator, which then stops the children in reverse order (SIGTERM, then
SIGKILL after a timeout). Readiness is always a real check (an HTTP or gRPC request),
never a sleep.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class StartupError(RuntimeError):
    """A component did not become ready; the message says which and where its log is."""


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, for a child to listen on later.

    Taken below the kernel's ephemeral range, never from it: a port the OS picks (bind to
    0) is an ephemeral one, which any outgoing connection made meanwhile may take before
    the child binds it (a test stack's Envoy failed so, "Address already in use", while
    other stacks of the session were busy). A port is handed out once per process."""
    low, high = _listen_range()
    for _ in range(200):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free TCP port found in {low}-{high} on 127.0.0.1")


def _listen_range() -> tuple[int, int]:
    """Ports for our listeners: from 20000 up to the start of the ephemeral range (Linux
    reads it from /proc; elsewhere IANA's 49152)."""
    try:
        first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 49152
    return 20000, max(20000 + 1000, first_ephemeral - 1)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


@dataclass
class Child:
    """One supervised child process."""

    name: str
    command: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab", buffering=0)
        self.process = subprocess.Popen(
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float, interval: float = 0.05) -> float:
        """Poll `check` until it returns True; returns the seconds it took."""
        started = time.monotonic()
        while True:
            if not self.alive():
                code = None if self.process is None else self.process.returncode
                raise StartupError(
                    f"{self.name} exited during start-up (exit code {code}). Last lines of {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            try:
                if check():
                    return time.monotonic() - started
            except Exception:
                pass
            if time.monotonic() - started > timeout:
                raise StartupError(
                    f"{self.name} was not ready after {timeout:.0f} s. Last lines of {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            time.sleep(interval)

    def signal(self, sig: int) -> None:
        if self.alive():
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(5)


def python_executable() -> str:
    return sys.executable
