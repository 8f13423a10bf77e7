"""Template processes: import an exercise's file once, fork each of its tests from there.

A child forked from the grader imports the learner's file before its test runs, once per
test: for level 4 that import is most of a fast test's cost. A template is a child of the
grader, boxed like any other (`child.prepare_template`), that imports the file once and
then forks a test process on each request (one fork, as from the grader: a fork of this
size costs milliseconds here, so there is no middle process).

The test process is the template's child, so the grader sees its end through a pidfd and
reads its wait status from ``/proc/PID/stat`` while it is a zombie: the template reaps it
only when the grader, having judged it, says so. Everything else is as for a child of the
grader: its own process group and box (killed when it ends), its signed result, and death
with its parent (the template, which dies with the grader).

A template has run learner code, so nothing it says is trusted: the pid it reports must be
a new child of the template itself, and a template that stalls, dies, lies or reaps a test
early is dropped (its remaining tests fork from the grader; a test whose status was lost
fails). A test whose conditions differ from the import's (`grader.sandbox.conditions`)
imports the file again. A file that starts threads while being imported is not preloaded:
a fork keeps only the thread that forks.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from grader.sandbox import channel, child, conditions
from grader.sandbox.cgroups import CgroupBox
from grader.sandbox.limits import Limits
from grader.sandbox.spawn import Spawned, hand_over

logger = logging.getLogger(__name__)

REPLY_SECONDS = 5.0  # a template that takes longer to fork a test is dropped
DEATH_SECONDS = 5.0  # a killed test must be a zombie by then
LOADING, READY, DROPPED = "loading", "ready", "dropped"
LOST_STATUS = 9  # read as "killed by SIGKILL" where the template reaped a test early


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (None: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()


def _parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields and len(fields) > 1 else None


@dataclass
class TemplateChild(Spawned):
    """A test process forked by a template: its wait status comes from /proc while it is
    a zombie, and its template reaps it once it is judged."""

    template: Template | None = None

    def exited(self) -> int | None:
        """The wait status if the test has ended, else None."""
        fields = _stat(self.pid)
        if fields is None or fields[1] not in (str(self.template_pid), str(os.getpid())):
            self.lost = True
            return LOST_STATUS
        if fields[0] != "Z":
            return None
        return int(fields[49]) if len(fields) > 49 else LOST_STATUS

    @property
    def template_pid(self) -> int:
        """The pid of the template that forked it."""
        return self.template.pid if self.template is not None else -1

    def wait_killed(self) -> None:
        """After `kill`: wait (bounded) until it is a zombie."""
        deadline = time.monotonic() + DEATH_SECONDS
        while self.exited() is None and time.monotonic() < deadline:
            time.sleep(0.001)

    def close(self) -> None:
        """Release it, and have its template reap it."""
        super().close()
        if self.template is not None:
            self.template.reap(self.pid)


@dataclass
class Template:
    """The grader's side of one template process."""

    key: Hashable
    pid: int
    control: socket.socket
    works: dict[Hashable, int]  # the works it may fork, by key: their index there
    load_timeout: float
    started: float = field(default_factory=time.monotonic)
    box: CgroupBox | None = None  # the template's own box (its tests each get theirs)
    ready_at: float = 0.0
    state: str = LOADING
    why: str = ""  # why it was dropped
    closed: bool = False

    def fileno(self) -> int:
        """For select() while it loads."""
        return self.control.fileno()

    def poll(self) -> None:
        """Take its ready message if it came; drop it if it died or took too long."""
        if self.state != LOADING:
            return
        try:
            message = self.control.recv(4096, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            if time.monotonic() - self.started > self.load_timeout:
                self.drop(f"did not import the file within {self.load_timeout:g} s")
            return
        except OSError as error:
            self.drop(f"its channel failed ({error})")
            return
        try:
            ready = json.loads(message) if message else {}
        except ValueError:
            ready = {}
        if isinstance(ready, dict) and ready.get("ready") is True:
            self.state, self.ready_at = READY, time.monotonic()
        else:
            problem = ready.get("problem") if isinstance(ready, dict) else None
            self.drop(str(problem or "ended without importing the file")[:300])

    def spawn(
        self, key: Hashable, timeout: float, limits: Limits, output: Path, known: set[int]
    ) -> Spawned | None:
        """Have the template fork the test ``key``; None (and the template dropped) when it
        does not answer with a new child of its own in time."""
        box = CgroupBox.create(limits.memory, limits.processes)
        parent_end, child_end = channel.pair()
        request = {
            "work": self.works[key],
            "timeout": timeout,
            "output": str(output),
            "box": [box.version, [str(f) for f in box.folders]] if box else None,
        }
        started = time.monotonic()
        try:
            socket.send_fds(self.control, [json.dumps(request).encode()], [child_end.fileno()])
            pid = self._reply(known)
        except OSError as error:
            self.drop(f"could not be asked for a test ({error})")
            pid = None
        finally:
            child_end.close()
        if pid is None:
            parent_end.close()
            if box is not None:
                box.remove()
            return None
        secret, pidfd = hand_over(parent_end, pid)
        setup = child.ChildSetup(child_end, output, timeout, limits, box, None)
        inbox = channel.Inbox(parent_end)
        return TemplateChild(key, pid, pidfd, started, timeout, secret, setup, inbox, template=self)

    def reap(self, pid: int) -> None:
        """Tell the template to reap a judged test (once closed, its tests died with it and
        the grader reaps them as orphans)."""
        if self.closed:
            return
        try:
            self.control.send(json.dumps({"reap": pid}).encode())
        except OSError:
            self.drop("could not be told to reap a test")

    def _reply(self, known: set[int]) -> int | None:
        ready, _, _ = select.select([self.control], [], [], REPLY_SECONDS)
        try:
            reply = json.loads(self.control.recv(4096)) if ready else None
        except (OSError, ValueError):
            reply = None
        pid = reply.get("pid") if isinstance(reply, dict) else None
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
            self.drop("did not fork a test when asked")
            return None
        if pid in known or _parent_of(pid) != self.pid:
            self.drop(f"reported pid {pid}, which is not a new test process of its own")
            return None
        return pid

    def drop(self, why: str) -> None:
        """Stop using it. One that never loaded is ended now; one that forked tests lives
        on until they are judged (they die with it), then `close` ends it."""
        if self.state == DROPPED:
            return
        if why:
            logger.info("template for %s dropped: %s", self.key, why)
        loading = self.state == LOADING
        self.state, self.why = DROPPED, why
        if loading:
            self.close()

    def close(self) -> None:
        """End it (and with it any test of its still running: they die with it)."""
        self.state = DROPPED
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.control.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.box is not None:
            self.box.kill(unreaped=self.pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        if self.box is not None:
            self.box.remove()


def start(
    key: Hashable,
    load: Callable[[], str | None],
    works: Sequence[tuple[Hashable, Callable[[], object]]],
    limits: Limits,
    output: Path,
    timeout: float,
    load_timeout: float,
    watch: Callable[[], dict[str, str]] | None = None,
) -> Template:
    """Fork a template that runs ``load`` (the import; returns a problem or None), then
    forks ``works`` on request. ``timeout`` is the longest of their timeouts."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    box = CgroupBox.create(limits.memory, limits.processes)
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        ours.close()
        serving = _Serving(theirs, [work for _, work in works], limits, watch)
        _serve(serving, load, output, timeout, box)
    theirs.close()
    indexes = {work_key: number for number, (work_key, _) in enumerate(works)}
    return Template(key, pid, ours, indexes, load_timeout, box=box)


# -- the template's side ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Serving:
    """What a template needs to fork and run its tests."""

    control: socket.socket
    works: list[Callable[[], object]]
    limits: Limits
    watch: Callable[[], dict[str, str]] | None


def _serve(
    serving: _Serving,
    load: Callable[[], str | None],
    output: Path,
    timeout: float,
    box: CgroupBox | None,
) -> NoReturn:
    control = serving.control
    try:
        child.prepare_template(control.fileno(), output, serving.limits, timeout, box)
        conditions.watch_patches()
        problem = load()
        others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if problem is None and others:
            problem = f"the import started thread(s) {others[:3]}: tests import it themselves"
        # Its tests stay zombies until the grader has read their status, whatever the
        # import did to SIGCHLD.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.send(json.dumps({"ready": problem is None, "problem": problem}).encode())
        if problem is None:
            gc.freeze()
            while True:
                message, fds, _, _ = socket.recv_fds(control, 65536, 1)
                if not message:
                    break
                request = json.loads(message)
                if "reap" in request:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(int(request["reap"]), 0)
                    continue
                pid = _fork_test(request, fds[0], serving)
                control.send(json.dumps({"pid": pid}).encode())
    except BaseException:  # never return into the grader's code
        pass
    finally:
        os._exit(0)


def _fork_test(request: dict[str, object], channel_fd: int, serving: _Serving) -> int:
    """Fork the test of ``request``; returns its pid once it has its own process group
    and box (killing the template's must never reach it: both sides set them)."""
    test = os.fork()
    if test == 0:
        os.setpgid(0, 0)
        _run_test(request, channel_fd, serving)
    os.close(channel_fd)
    with contextlib.suppress(OSError):
        os.setpgid(test, test)
    box = _box_of(request)
    if box is not None:
        with contextlib.suppress(OSError):
            box.enter(test)
    return test


def _run_test(request: dict[str, object], channel_fd: int, serving: _Serving) -> NoReturn:
    setup = child.ChildSetup(
        channel=socket.socket(fileno=channel_fd),
        output_path=Path(str(request["output"])),
        timeout=float(str(request["timeout"])),
        limits=serving.limits,
        box=_box_of(request),
        watch=serving.watch,
        template_control=serving.control.fileno(),
    )
    child.run(setup, serving.works[int(str(request["work"]))])


def _box_of(request: dict[str, object]) -> CgroupBox | None:
    spec = request.get("box")
    if not isinstance(spec, list):
        return None
    return CgroupBox(int(spec[0]), tuple(Path(str(f)) for f in spec[1]))
