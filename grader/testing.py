"""Helpers shared by the hidden suites: machine time zone, environment, real processes."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader.feedback import GradingFailure

ENV_PREFIXES = ("SCHEDULER_", "CELERY_", "CLEANUP_", "REDIS_", "DATABASE_")


@contextmanager
def machine_zone(name: str) -> Iterator[None]:
    """Pretend the machine's local zone is ``name`` (so naive datetimes show up as bugs)."""
    import tzlocal

    previous = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    tzlocal.reload_localzone()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()
        tzlocal.reload_localzone()


@contextmanager
def environment(values: Mapping[str, str] | None = None) -> Iterator[None]:
    """Run with the course's variables (SCHEDULER_* ...) cleared, then set to ``values``."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(ENV_PREFIXES):
            del os.environ[key]
    os.environ.update(values or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class ProcessOutcome:
    """How a real process ended after being signalled."""

    returncode: int | None
    output: str
    seconds_to_exit: float | None


def signal_script(
    script: Path,
    sig: signal.Signals,
    *,
    ready_marker: str = "started",
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 10.0,
    exit_timeout: float = 5.0,
) -> ProcessOutcome:
    """Start ``python script`` in its folder, wait for ``ready_marker`` in its output, send ``sig``.

    Raises GradingFailure when the process exits or stays silent before it is ready.
    """
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, script.name],
        cwd=script.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=child_env,
    )
    assert process.stdout is not None
    reader = _OutputReader(process.stdout.fileno())
    try:
        deadline = time.monotonic() + ready_timeout
        while ready_marker.lower() not in reader.text.lower():
            if not reader.read_until(deadline):
                process.wait()
                raise GradingFailure(
                    f"{script.name} exited with code {process.returncode} before logging a line "
                    f"containing {ready_marker!r}. Its output:\n{reader.tail() or '(nothing)'}"
                )
            if time.monotonic() >= deadline and ready_marker.lower() not in reader.text.lower():
                raise GradingFailure(
                    f"{script.name} did not log a line containing {ready_marker!r} within "
                    f"{ready_timeout:g} s. Its output so far:\n{reader.tail() or '(nothing)'}"
                )
        sent = time.monotonic()
        process.send_signal(sig)
        exit_deadline = sent + exit_timeout
        while reader.read_until(exit_deadline) and time.monotonic() < exit_deadline:
            pass
        try:
            process.wait(timeout=max(0.0, exit_deadline - time.monotonic()))
            elapsed: float | None = time.monotonic() - sent
        except subprocess.TimeoutExpired:
            elapsed = None
        return ProcessOutcome(
            process.returncode if elapsed is not None else None, reader.text, elapsed
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


class _OutputReader:
    """Collects a child's output from a pipe without blocking past a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.text = ""
        self.closed = False

    def read_until(self, deadline: float) -> bool:
        """Read what arrives before ``deadline``; False once the pipe is closed (process gone)."""
        if self.closed:
            return False
        remaining = max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([self.fd], [], [], min(remaining, 0.2))
        if ready:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                self.closed = True
                return False
            self.text += chunk.decode(errors="replace")
        return True

    def tail(self, limit: int = 2000) -> str:
        """The last part of the output, for messages."""
        return self.text[-limit:]
