"""The child's side of a graded run (what happens between ``fork()`` and ``os._exit``).

In order: its own process group, death with the grader, the cgroup box, fds 0-2 onto
/dev/null and a capped output file, every inherited descriptor released, RLIMITs; then the
work; then the signed result. The child never returns into the grader's code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from grader.sandbox import channel, reaper
from grader.sandbox.cgroups import CgroupBox
from grader.sandbox.limits import Limits, apply_rlimits

EXIT_OK = 0
EXIT_HARNESS = 70


@dataclass(frozen=True)
class ChildSetup:
    """What the parent prepared for one child before forking."""

    channel: socket.socket  # the child's end of its socket pair
    output_path: Path
    timeout: float
    limits: Limits
    box: CgroupBox | None
    watch: Callable[[], dict[str, str]] | None  # the integrity fingerprint to take afterwards
    # Forked from a template (grader.sandbox.template): its control socket, to close. What
    # else is open there was opened by the preloaded import, and stays, as it would have
    # in a child that imported the file itself; so do the signal handlers it installed.
    template_control: int | None = None


def leaked_threads(grace: float = 0.5) -> list[threading.Thread]:
    """Non-daemon threads besides the main thread still alive after ``grace`` seconds:
    they would hang an exit.

    Threads told to stop may need a moment to end (AnyIO's worker threads end just after
    TestClient closes its portal): Python waits for them at exit too, so one that ends
    within the grace is not a leak.
    """
    main = threading.main_thread()
    deadline = time.monotonic() + grace
    alive = [t for t in threading.enumerate() if t is not main and t.is_alive() and not t.daemon]
    for thread in alive:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in alive if t.is_alive()]


def _redirect_output(path: Path) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)


def _close_inherited(keep: int) -> None:
    """Release every inherited descriptor but 0-2 and ``keep`` (siblings' sockets and
    pidfds, pytest's saved fds), keeping its number taken by /dev/null.

    Python objects of the parent (pytest's log-file handler on /dev/null, its saved capture
    fds) still hold those numbers and may write to them. Closing the numbers would let the
    code under test reuse them (an SQLite file opened as fd 7), and those writes would land
    inside it. Pointing them at /dev/null releases what they referred to and keeps them safe.
    """
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > 2 and fd not in (keep, null):
                with contextlib.suppress(OSError):  # the listing's own descriptor is gone
                    os.dup2(null, fd, inheritable=False)
    except FileNotFoundError:  # no /proc: close them instead
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 16)
    finally:
        os.close(null)


def reset_signals() -> None:
    """The default Ctrl+C and SIGTERM of a program; oversized writes raise instead of killing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def prepare(setup: ChildSetup) -> None:
    """Isolate this freshly forked child (see the module docstring)."""
    os.setpgid(0, 0)
    reaper.die_with_parent()
    if setup.template_control is None:
        reset_signals()
    if setup.box is not None:
        setup.box.enter()
    _redirect_output(setup.output_path)
    if setup.template_control is None:
        _close_inherited(setup.channel.fileno())
    else:
        os.close(setup.template_control)
    apply_rlimits(setup.limits, setup.timeout)


def prepare_template(
    control: int, output_path: Path, limits: Limits, timeout: float, box: CgroupBox | None
) -> None:
    """Isolate a template process as `prepare` does a child, keeping its ``control``
    socket; ``timeout`` is the longest its tests may take (its CPU cap, inherited)."""
    os.setpgid(0, 0)
    reaper.die_with_parent()
    reset_signals()
    if box is not None:
        box.enter()
    _redirect_output(output_path)
    _close_inherited(control)
    apply_rlimits(limits, timeout)


def run(setup: ChildSetup, work: Callable[[], object]) -> NoReturn:
    """Prepare, run ``work``, send its signed result, leave with ``os._exit``."""
    status = EXIT_OK
    key: bytes | None = None
    try:
        prepare(setup)
        value = work()
        payload: dict[str, object] = {"value": value}
        if setup.watch is not None:
            payload["fingerprint"] = setup.watch()
        key = channel.read_key(setup.channel)
        channel.send(setup.channel, key, payload)
    except BaseException as error:  # never return into the parent's code
        try:
            if key is None:
                key = channel.read_key(setup.channel)
            crash = {"crash": f"{type(error).__name__}: {error}"[:2000]}
            channel.send(setup.channel, key, crash)
        except BaseException:
            status = EXIT_HARNESS
    finally:
        os._exit(status)
