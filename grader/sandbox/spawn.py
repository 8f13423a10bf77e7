"""Starting one graded child: its box, its files, its key, then ``fork()``."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox import channel, child
from grader.sandbox.cgroups import CgroupBox
from grader.sandbox.limits import Limits


@dataclass
class Spawned:
    """A running child as the parent tracks it."""

    key: Hashable
    pid: int
    pidfd: int | None
    started: float
    timeout: float
    secret: bytes
    setup: child.ChildSetup
    inbox: channel.Inbox
    lost: bool = False  # its wait status could not be read (see grader.sandbox.template)

    def exited(self) -> int | None:
        """The wait status if the child has ended (it is reaped then), else None."""
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        return status if pid == self.pid else None

    def kill(self) -> None:
        """SIGKILL the child, its process group and its cgroup box (whatever is alive)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.setup.box is not None:
            self.setup.box.kill(unreaped=self.pid)

    def wait_killed(self) -> None:
        """After `kill`: reap it."""
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def close(self) -> None:
        """Release the parent's resources of this child (after it was reaped)."""
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        if self.setup.box is not None:
            self.setup.box.remove()
        self.inbox.close()
        with contextlib.suppress(FileNotFoundError):
            self.setup.output_path.unlink()


def spawn(
    key: Hashable,
    work: Callable[[], object],
    timeout: float,
    limits: Limits,
    folder: Path,
    index: int,
    watch: Callable[[], dict[str, str]] | None = None,
) -> Spawned:
    """Fork a child that runs ``work`` under ``limits``; returns at once."""
    box = CgroupBox.create(limits.memory, limits.processes)
    parent_end, child_end = channel.pair()
    setup = child.ChildSetup(
        channel=child_end,
        output_path=folder / f"{index}.out",
        timeout=timeout,
        limits=limits,
        box=box,
        watch=watch,
    )
    gc.freeze()  # the child's collector then skips the parent's objects: no copy-on-write storm
    pid = os.fork()
    if pid == 0:
        child.run(setup, work)
    started = time.monotonic()
    child_end.close()
    secret, pidfd = hand_over(parent_end, pid)
    return Spawned(key, pid, pidfd, started, timeout, secret, setup, channel.Inbox(parent_end))


def hand_over(parent_end: socket.socket, pid: int) -> tuple[bytes, int | None]:
    """Once the child ``pid`` exists: send it its signing key (drawn now, so it is in no
    memory image forked before) and open its pidfd (None where there are none)."""
    secret = channel.new_key()
    parent_end.sendall(secret)
    parent_end.setblocking(False)
    try:
        return secret, os.pidfd_open(pid)
    except (AttributeError, OSError):
        return secret, None
