"""Helpers shared by the hidden suites: machine time zone, environment, real processes."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO, NoReturn

ENV_PREFIXES = ("SCHEDULER_", "CELERY_", "CLEANUP_", "REDIS_", "DATABASE_", "MONITOR_")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port of ``host`` that nothing listens on now (the OS picked it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


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


_POOL_MODULE = os.path.join("concurrent", "futures", "thread.py")


def waited_for_in_a_pool_shutdown() -> bool:
    """Whether another thread is blocked joining a thread pool's workers in the pool's
    ``shutdown``: what APScheduler's ``scheduler.shutdown()`` (wait=True) does. A
    ``shutdown(wait=False)`` joins nothing, so it never counts, however slow it is."""
    me = threading.get_ident()
    for ident, frame in sys._current_frames().items():
        if ident == me or not frame.f_code.co_filename.endswith("threading.py"):
            continue  # its innermost frame is not inside Thread.join
        outer: FrameType | None = frame
        while outer is not None:
            code = outer.f_code
            if code.co_name == "shutdown" and code.co_filename.endswith(_POOL_MODULE):
                return True
            outer = outer.f_back
    return False


SLOW_JOB_CAP = 1.5  # seconds a held job runs at most when nothing waits for it


def run_until_waited_for(stop: threading.Event | None = None, cap: float = SLOW_JOB_CAP) -> bool:
    """The body of a job that is still running when the code under test stops: it runs
    until a thread waits for it in a pool's shutdown (True), or ``stop`` is set or ``cap``
    seconds pass (False: nobody waited for it).

    A job that sleeps a fixed time tells the same, but costs that time in every run and
    passes a ``shutdown(wait=False)`` that comes later than the sleep.
    """
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        if waited_for_in_a_pool_shutdown():
            return True
        time.sleep(0.005)
    return False


class ForkedPython:
    """``python -c CODE`` as a real process, forked from this warm one instead of started fresh.

    The process is real: it has its own pid, receives real signals, exits with a real
    code, and its stdout and stderr are pipes. It starts in milliseconds because the
    libraries are already imported here (a fresh interpreter spends most of a second
    importing APScheduler). What a fresh interpreter would differ in is reset first: the
    working directory, ``sys.argv`` and ``sys.path[0]``, the environment, the signal
    dispositions, an unconfigured root logger, and Python's own rules for the exit code.

    The interface is `subprocess.Popen`'s: ``pid``, ``stdout``, ``stderr``, ``poll``,
    ``wait``, ``send_signal``, ``kill``, ``returncode``.
    """

    def __init__(self, code: str, *, cwd: Path, env: Mapping[str, str]) -> None:
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        self.returncode: int | None = None
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - runs in the forked process
            os.close(out_read)
            os.close(err_read)
            _become_python(code, cwd, env, out_write, err_write)
        os.close(out_write)
        os.close(err_write)
        self.stdout: IO[bytes] = os.fdopen(out_read, "rb")
        self.stderr: IO[bytes] = os.fdopen(err_read, "rb")
        self._pidfd = os.pidfd_open(self.pid)

    def poll(self) -> int | None:
        """The exit code if the process has ended (negative: killed by that signal)."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                os.close(self._pidfd)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end; `subprocess.TimeoutExpired` after ``timeout`` seconds."""
        if self.poll() is None:
            ready, _, _ = select.select([self._pidfd], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired(["python", "-c", "..."], timeout or 0.0)
        code = self.poll()
        assert code is not None  # the pidfd is readable: the process has ended
        return code

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process (nothing if it has ended)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process."""
        self.send_signal(signal.SIGKILL)


def _become_python(code: str, cwd: Path, env: Mapping[str, str], out: int, err: int) -> NoReturn:
    """In the forked process: look like a fresh ``python -c code``, run it, exit as it would."""
    status = 1
    try:
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["-c"]
        sys.path.insert(0, "")
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        root = logging.getLogger()
        root.handlers[:] = []
        root.setLevel(logging.WARNING)
        logging.setLogRecordFactory(logging.LogRecord)
        status = _run_as_main(code)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)


def _run_as_main(code: str) -> int:
    """Run ``code`` as ``__main__`` and return the exit code Python would give it."""
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(code, "<string>", "exec"), namespace)
        for thread in threading.enumerate():  # Python waits for non-daemon threads at exit
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
    except SystemExit as exit_:
        if exit_.code is None:
            return 0
        if isinstance(exit_.code, int):
            return exit_.code & 0xFF
        print(exit_.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Python exits "killed by SIGINT" here
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException:
        traceback.print_exc()
        return 1
    return 0
