"""Run learner code where it cannot take the grader down: a forked child per test.

The parent has already imported the heavy libraries (the suite module imports them), so a
fork costs milliseconds. The child runs the test, sends its reports through a pipe and
leaves with ``os._exit``; whatever the learner's code does (``sys.exit()``, ``os._exit()``,
an endless loop, a leaked non-daemon thread, megabytes of output) ends as a failure of that
one test, within its timeout.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import os
import resource
import select
import signal
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

MAX_OUTPUT_CHARS = 4000
FILE_SIZE_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class ChildResult:
    """What a forked child produced: its payload, or why it has none."""

    payload: object | None
    problem: str | None
    seconds: float


def truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the head and the tail of a long text, saying how much was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n... [{cut} characters cut] ...\n{text[-half:]}"


def leaked_threads() -> list[threading.Thread]:
    """Non-daemon threads still alive besides the main thread: they would hang an exit."""
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and t.is_alive() and not t.daemon]


def _prepare_child() -> None:
    os.setpgid(0, 0)  # its own process group: a timeout kills what the test spawned too
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write raises instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return f"was killed by signal {signal.Signals(number).name}"
    code = os.WEXITSTATUS(status)
    return (
        f"ended abruptly with exit code {code} before reporting a result: "
        "does your code call os._exit() or kill its own process?"
    )


@dataclass
class _Child:
    key: Hashable
    pid: int
    fd: int
    started: float
    timeout: float
    chunks: list[bytes] = field(default_factory=list)


def _fork(key: Hashable, work: Callable[[], object], timeout: float) -> _Child:
    read_end, write_end = os.pipe()
    gc.freeze()  # the child's collector then skips the parent's objects: no copy-on-write storm
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        status = 0
        try:
            _prepare_child()
            data = json.dumps({"payload": work()}).encode()
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)
        except BaseException:  # the child must never return into the parent's code
            status = 70
        finally:
            os._exit(status)
    os.close(write_end)
    return _Child(key, pid, read_end, time.monotonic(), timeout)


def _finish(child: _Child, problem: str | None) -> ChildResult:
    if problem is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
    os.close(child.fd)
    _, status = os.waitpid(child.pid, 0)
    seconds = time.monotonic() - child.started
    if problem is None and not child.chunks:
        problem = _describe_exit(status)
    if problem is not None:
        return ChildResult(None, problem, seconds)
    try:
        payload = json.loads(b"".join(child.chunks))["payload"]
    except (ValueError, KeyError):
        return ChildResult(
            None, "sent a garbled result (it wrote into the grader's pipe?)", seconds
        )
    return ChildResult(payload, None, seconds)


def _timeout_problem(timeout: float) -> str:
    return (
        f"did not finish within {timeout:g} s and was stopped: an endless loop, a blocking "
        "call (BlockingScheduler.start(), time.sleep, input()) or a job that never returns?"
    )


def run_many(
    works: Iterable[tuple[Hashable, Callable[[], object], float]], parallel: int = 1
) -> dict[Hashable, ChildResult]:
    """Run each ``(key, work, timeout)`` in its own forked child, ``parallel`` at a time.

    A work's result must be JSON-serialisable; it travels back through a pipe. A child that
    dies, exits early or outlives its timeout yields ``problem`` instead (and is killed with
    its process group).
    """
    pending = list(works)
    pending.reverse()
    running: dict[int, _Child] = {}
    results: dict[Hashable, ChildResult] = {}
    while pending or running:
        while pending and len(running) < max(1, parallel):
            key, work, timeout = pending.pop()
            child = _fork(key, work, timeout)
            running[child.fd] = child
        now = time.monotonic()
        for fd, child in list(running.items()):
            if now - child.started > child.timeout:
                del running[fd]
                results[child.key] = _finish(child, _timeout_problem(child.timeout))
        if not running:
            continue
        wait = min(c.started + c.timeout for c in running.values()) - time.monotonic()
        ready, _, _ = select.select(list(running), [], [], max(0.0, min(wait, 0.5)))
        for fd in ready:
            child = running[fd]
            chunk = os.read(fd, 1 << 16)
            if chunk:
                child.chunks.append(chunk)
            else:
                del running[fd]
                results[child.key] = _finish(child, None)
    return results


def run_in_child(work: Callable[[], object], timeout: float) -> ChildResult:
    """Run ``work`` in one forked child (see `run_many`)."""
    return run_many([(0, work, timeout)])[0]


def _library_roots() -> tuple[str, ...]:
    names = {"stdlib", "platstdlib", "purelib", "platlib"}
    return tuple(sorted({sysconfig.get_paths()[n] for n in names if n in sysconfig.get_paths()}))


def library_modules_since(before: set[str]) -> list[str]:
    """Modules imported since ``before`` that belong to installed libraries, not learner files."""
    roots = _library_roots()
    found = []
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None)
        if origin and origin.startswith(roots) and not name.startswith("cronkata_target_"):
            found.append(name)
    return sorted(found)


def warm_up(names: list[str]) -> None:
    """Import library modules in this (parent) process so later forks find them loaded."""
    for name in names:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # a module that only imports in some context is simply skipped
            logger.debug("warm-up import of %s failed", name, exc_info=True)
