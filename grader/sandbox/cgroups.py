"""One cgroup per graded child: a memory cap and a process cap that bind root too.

RLIMITs cannot stop a fork bomb run as root (RLIMIT_NPROC does not apply to root) nor
the sum of many processes' memory. Where the machine lets us, each child is put in its
own cgroup, below the grader's own one (so any limit the grader lives under still holds):

- cgroup v2 (a writable unified hierarchy whose parent enables ``memory`` and ``pids``):
  ``memory.max``, ``pids.max``, ``cgroup.kill``;
- cgroup v1 (hybrid machines): ``memory/…/memory.limit_in_bytes`` and
  ``pids/…/pids.max``, killed process by process.

Where neither is writable, `CgroupBox.create` returns None and RLIMITs stay the only caps.
Membership is exact: every descendant of the child, setsid daemons included, stays in the
box, so killing the box kills everything the learner's code started.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
_counter = itertools.count()


def _own_path(controller: str | None) -> str | None:
    """The grader's cgroup path for a v1 controller (None: the v2 unified entry)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        number, _, rest = line.partition(":")
        names, _, path = rest.partition(":")
        if controller is None and number == "0" and names == "":
            return path
        if controller is not None and controller in names.split(","):
            return path
    return None


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


@dataclass(frozen=True)
class _Layout:
    """Where the boxes of this grader process are made."""

    version: int
    parents: tuple[Path, ...]  # v2: one parent; v1: the memory parent, the pids parent


def _try_v2() -> _Layout | None:
    if not (ROOT / "cgroup.controllers").is_file():
        return None
    own = _own_path(None)
    if own is None:
        return None
    base = ROOT / own.lstrip("/")
    # A cgroup with processes cannot hand controllers to children ("no internal
    # processes"), so the boxes live in a sibling folder of the grader's own cgroup.
    holder = base.parent if base != ROOT else ROOT
    try:
        enabled = (holder / "cgroup.subtree_control").read_text().split()
        if not {"memory", "pids"} <= set(enabled):
            (holder / "cgroup.subtree_control").write_text("+memory +pids")
        parent = holder / f"cronkata-{os.getpid()}"
        parent.mkdir(exist_ok=True)
        (parent / "cgroup.subtree_control").write_text("+memory +pids")
    except OSError:
        logger.debug("cgroup v2 is not writable here", exc_info=True)
        return None
    return _Layout(2, (parent,))


def _try_v1() -> _Layout | None:
    parents = []
    for controller in ("memory", "pids"):
        own = _own_path(controller)
        mount = ROOT / controller
        if own is None or not _writable_dir(mount / own.lstrip("/")):
            return None
        parent = mount / own.lstrip("/") / f"cronkata-{os.getpid()}"
        try:
            parent.mkdir(exist_ok=True)
        except OSError:
            logger.debug("cgroup v1 %s is not writable here", controller, exc_info=True)
            return None
        parents.append(parent)
    return _Layout(1, tuple(parents))


@cache
def _layout() -> _Layout | None:
    if os.environ.get("CRONKATA_NO_CGROUPS"):
        return None
    return _try_v2() or _try_v1()


def available() -> str | None:
    """``"v2"``, ``"v1"`` or None: which cgroup caps graded children get on this machine."""
    layout = _layout()
    return f"v{layout.version}" if layout else None


@dataclass
class CgroupBox:
    """The cgroup(s) of one child."""

    version: int
    folders: tuple[Path, ...]

    @classmethod
    def create(cls, memory: int, processes: int) -> CgroupBox | None:
        """A new box with the given caps, or None where cgroups are not writable here."""
        layout = _layout()
        if layout is None:
            return None
        name = f"child-{next(_counter)}"
        folders = tuple(parent / name for parent in layout.parents)
        try:
            for folder in folders:
                folder.mkdir()
            if layout.version == 2:
                (folders[0] / "memory.max").write_text(str(memory))
                (folders[0] / "memory.swap.max").write_text("0")
                (folders[0] / "pids.max").write_text(str(processes))
            else:
                (folders[0] / "memory.limit_in_bytes").write_text(str(memory))
                with contextlib.suppress(OSError):  # absent without swap accounting
                    (folders[0] / "memory.memsw.limit_in_bytes").write_text(str(memory))
                (folders[1] / "pids.max").write_text(str(processes))
        except OSError:
            logger.debug("could not create a cgroup box", exc_info=True)
            box = cls(layout.version, folders)
            box.remove()
            return None
        return cls(layout.version, folders)

    def enter(self, pid: int = 0) -> None:
        """Move a process (this one by default) into the box."""
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(pid or os.getpid()))

    def pids(self) -> set[int]:
        """Processes in the box now."""
        found: set[int] = set()
        for folder in self.folders:
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
        return found

    def kill(self, unreaped: int | None = None) -> None:
        """SIGKILL everything in the box (repeated until nothing is left to fork).

        ``unreaped``: a pid that is left for its caller to reap (the graded child, whose
        exit status the caller reads).
        """
        if self.version == 2:
            with contextlib.suppress(OSError):
                (self.folders[0] / "cgroup.kill").write_text("1")
        for attempt in range(100):
            alive = self.pids()
            if not alive:
                return
            for pid in alive:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            # A killed process stays in the box until it is reaped. Those whose parent died
            # were re-parented to this grader (a subreaper): reap them here, or the box
            # never empties (a fork bomb's 64 zombies kept every retry busy for seconds).
            for pid in alive - {unreaped}:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            if attempt:
                time.sleep(0.001)  # the rest are exiting; their parents reap them
            if alive == {unreaped}:
                return  # only the caller's own child is left, and the caller reaps it

    def hit_memory_limit(self) -> bool:
        """Whether the kernel refused memory to, or OOM-killed, something in the box."""
        folder = self.folders[0]
        try:
            if self.version == 2:
                events = (folder / "memory.events").read_text().split()
                counts = dict(zip(events[::2], map(int, events[1::2]), strict=False))
                return counts.get("oom_kill", 0) > 0 or counts.get("max", 0) > 0
            control = (folder / "memory.oom_control").read_text().split()
            kills = dict(zip(control[::2], map(int, control[1::2]), strict=False))
            peak = int((folder / "memory.max_usage_in_bytes").read_text())
            limit = int((folder / "memory.limit_in_bytes").read_text())
            return kills.get("oom_kill", 0) > 0 or peak >= limit
        except (OSError, ValueError):
            return False

    def hit_process_limit(self) -> bool:
        """Whether a fork in the box was refused because of ``pids.max``."""
        folder = self.folders[0] if self.version == 2 else self.folders[1]
        try:
            events = (folder / "pids.events").read_text().split()
            counts = dict(zip(events[::2], map(int, events[1::2]), strict=False))
            return counts.get("max", 0) > 0
        except (OSError, ValueError):
            return False

    def remove(self) -> None:
        """Kill what is left and delete the box's folders."""
        self.kill()
        for folder in self.folders:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # processes still exiting
                    self.kill()


def remove_parents() -> None:
    """Delete this grader's (empty) parent folders, at the end of a run."""
    layout = _layout()
    if layout is None:
        return
    for parent in layout.parents:
        for leftover in parent.glob("child-*"):
            CgroupBox(layout.version, (leftover,)).remove()
        with contextlib.suppress(OSError):
            parent.rmdir()
    _layout.cache_clear()
