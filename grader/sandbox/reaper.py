"""Nothing a graded child starts outlives the run.

- The grader becomes a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``): a process
  orphaned below it (a double-forked ``setsid`` daemon) is re-parented to the grader
  instead of init, so the grader can still find and kill it.
- `kill_orphans` kills and reaps every such re-parented process that appeared during a run.
- `interruptible` turns SIGTERM into a KeyboardInterrupt for the duration of a run, so
  Ctrl+C and SIGTERM alike reach the ``finally`` that kills the running children.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import FrameType

logger = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _prctl(option: int, value: int) -> bool:
    libc = _libc()
    return libc is not None and libc.prctl(option, value, 0, 0, 0) == 0


def become_subreaper() -> bool:
    """Make this process the reaper of orphans below it (Linux); False where unsupported."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """In a child: receive SIGKILL when the grader dies, whatever killed it."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def process_tree() -> dict[int, set[int]]:
    """Every process's children, from one pass over /proc (empty where there is none)."""
    tree: dict[int, set[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1:
            tree.setdefault(int(fields[1]), set()).add(int(entry.name))
    return tree


def children_of(pid: int) -> set[int]:
    """Processes whose parent is ``pid``."""
    return process_tree().get(pid, set())


def kill_tree(pid: int, tree: dict[int, set[int]] | None = None) -> None:
    """SIGKILL a process and every descendant in ``tree`` (default: /proc now)."""
    tree = process_tree() if tree is None else tree
    pending = [pid]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        pending.extend(tree.get(current, ()))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(current, signal.SIGKILL)


def kill_orphans(keep: set[int]) -> list[int]:
    """Kill and reap this process's children that are not in ``keep``; returns their pids.

    Called at the end of a run with the children the grader had before it: whatever else
    is a child now was re-parented here (or forked and forgotten) during the run. /proc is
    read once per round, not once per process (a fork bomb leaves a thousand).
    """
    killed = []
    for _ in range(20):
        tree = process_tree()
        extra = tree.get(os.getpid(), set()) - keep
        if not extra:
            break
        for pid in extra:
            kill_tree(pid, tree)
        for pid in extra:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            killed.append(pid)
    if killed:
        logger.info("killed %d process(es) left behind by graded code", len(killed))
    return killed


class Terminated(KeyboardInterrupt):
    """The grader received SIGTERM or SIGINT while children were running (handled like Ctrl+C)."""


_received: list[int] = []  # every signal seen inside `interruptible`, in this process


def signals_seen() -> int:
    """How many SIGTERM/SIGINT arrived inside `interruptible` so far (see `check_interrupted`)."""
    return len(_received)


def check_interrupted(since: int) -> None:
    """Raise `Terminated` if a signal arrived after ``since`` (a `signals_seen` count).

    Python runs a signal handler between any two bytecodes of the main thread; when that is
    inside a finaliser (``__del__``, a weakref callback), the exception it raises is printed
    as "Exception ignored" and lost. The run loop calls this after each step so a Ctrl+C or
    SIGTERM is never lost that way.
    """
    if len(_received) > since:
        raise Terminated(_received[-1])


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Raise `Terminated` on SIGTERM or SIGINT inside the block (main thread only; else no-op).

    The signal is also remembered, for `check_interrupted`.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        _received.append(signum)
        raise Terminated(signum)

    try:
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
