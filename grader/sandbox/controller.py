"""The controller loop: run many works in forked children, a few at a time, and judge each.

A child's end is seen through its pidfd (or ``waitpid``), never through a pipe's EOF, so
a grandchild holding a descriptor cannot turn a fast test into a false timeout. Whatever
ends a child, its process group and cgroup box are killed before the next one starts,
and every process re-parented to the grader during the run is killed at its end, also
on Ctrl+C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox import cgroups, channel, integrity, reaper, template
from grader.sandbox.limits import Limits, describe_limit_signal
from grader.sandbox.spawn import Spawned, spawn
from grader.sandbox.text import read_capped

logger = logging.getLogger(__name__)

Work = tuple[Hashable, Callable[[], object], float]


@dataclass(frozen=True)
class TemplateSpec:
    """A template to start: its ``load`` (returns a problem or None) and how long it may
    take. ``replaces``: the key of a work (a load probe) it stands for: once the template
    is ready, that work is not run and its result is ``ready_payload``; if the template
    cannot load, the work runs as usual."""

    load: Callable[[], str | None]
    load_timeout: float
    replaces: Hashable | None = None
    ready_payload: object = None


@dataclass(frozen=True)
class ChildResult:
    """What a forked child produced: its payload, or why it has none.

    ``output`` is what the child wrote to fds 1 and 2 outside pytest's capture (capped,
    without control codes).
    """

    payload: object | None
    problem: str | None
    seconds: float
    output: str = ""


def _timeout_problem(timeout: float) -> str:
    return (
        f"did not finish within {timeout:g} s and was stopped: an endless loop, a blocking "
        "call (BlockingScheduler.start(), time.sleep, input()) or a job that never returns?"
    )


def _exit_problem(status: int, running: Spawned) -> str:
    limits, box = running.setup.limits, running.setup.box
    if running.lost:
        return (
            "ended, and its exit status was lost: the process it was forked from reaped "
            "it (does the file's import handle SIGCHLD or wait for child processes?)"
        )
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        if box is not None and name == "SIGKILL" and box.hit_memory_limit():
            return f"ran out of memory (the limit is {limits.memory // 2**20} MiB) and was stopped"
        return describe_limit_signal(name, limits, running.timeout) or f"was killed by {name}"
    code = os.WEXITSTATUS(status)
    return (
        f"ended abruptly with exit code {code} before reporting a result: "
        "does your code call os._exit(), sys.exit() or kill its own process?"
    )


def _judge(running: Spawned, status: int | None, expected: dict[str, str] | None) -> ChildResult:
    seconds = time.monotonic() - running.started
    output = read_capped(str(running.setup.output_path))
    if status is None:
        return ChildResult(None, _timeout_problem(running.timeout), seconds, output)
    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        return ChildResult(None, _exit_problem(status, running), seconds, output)
    try:
        received = channel.receive(running.inbox, running.secret)
    except channel.ForgedResult as error:
        return ChildResult(
            None,
            f"sent a result its reporting code did not write ({error}): a forged result "
            "is a failure",
            seconds,
            output,
        )
    if received is None:
        return ChildResult(
            None,
            "ended with exit code 0 before reporting a result: does your code call "
            "os._exit() or kill its own process?",
            seconds,
            output,
        )
    payload = received.payload
    if not isinstance(payload, dict) or "crash" in payload:
        crash = payload.get("crash") if isinstance(payload, dict) else payload
        return ChildResult(None, f"failed inside the grader's child code: {crash}", seconds, output)
    if expected is not None:
        changed = integrity.changed(expected, payload.get("fingerprint"))
        if changed:
            return ChildResult(
                None,
                "changed the grader's reporting code while the test ran "
                f"({', '.join(changed[:5])}): the result of a tampered process is a failure",
                seconds,
                output,
            )
    return ChildResult(payload.get("value"), None, seconds, output)


def _reap(running: Spawned, status: int | None, expected: dict[str, str] | None) -> ChildResult:
    """Kill what the child left, reap it, judge it, release its resources.

    ``status`` None: the child outlived its timeout; it is reaped here and judged as such.
    """
    running.kill()
    if status is None:
        running.wait_killed()
    try:
        return _judge(running, status, expected)
    finally:
        running.close()


def _wait(
    running: dict[int, Spawned], seconds: float, loading: Iterable[template.Template] = ()
) -> None:
    """Sleep until a child ends, sends data, a template is ready, or ``seconds`` pass
    (reading what arrived)."""
    pidfds = [c.pidfd for c in running.values() if c.pidfd is not None]
    if len(pidfds) < len(running):  # no pidfds here: poll the children's state often
        seconds = min(seconds, 0.005)
    inboxes = {c.inbox.fileno(): c.inbox for c in running.values()}
    templates = [t.fileno() for t in loading]
    ready, _, _ = select.select([*pidfds, *inboxes, *templates], [], [], seconds)
    for fd in ready:
        if fd in inboxes:
            inboxes[fd].pull()


def _next_startable(
    pending: list[tuple[Hashable, Callable[[], object], float]],
    waits: Callable[[Hashable], bool] | None,
    held: Callable[[Hashable], bool] | None = None,
) -> tuple[int | None, int | None]:
    """Indexes in ``pending`` (reversed: the next is last) of the next work free to start,
    and of the next one that only waits (None: there is none)."""
    waiting = None
    for position in range(len(pending) - 1, -1, -1):
        key = pending[position][0]
        if held is not None and held(key):
            continue
        if waits is None or not waits(key):
            return position, waiting
        if waiting is None:
            waiting = position
    return None, waiting


def run_many(
    works: Iterable[Work],
    parallel: int = 1,
    limits: Limits | None = None,
    watch: Callable[[], dict[str, str]] | None = None,
    wanted: Callable[[Hashable], bool] | None = None,
    on_result: Callable[[Hashable, ChildResult], None] | None = None,
    waits: Callable[[Hashable], bool] | None = None,
    held: Callable[[Hashable], bool] | None = None,
    templates: dict[Hashable, TemplateSpec] | None = None,
    template_of: Callable[[Hashable], Hashable | None] | None = None,
) -> dict[Hashable, ChildResult]:
    """Run each ``(key, work, timeout)`` in its own forked child, ``parallel`` at a time.

    ``wanted(key)`` is asked just before a work would start (False: it is left out of the
    results); ``on_result(key, result)`` is called as each child is judged. A work for
    which ``waits(key)`` is True now is passed over until it is not (the works after it
    start first), unless half the slots would stay idle: then it starts anyway. A work for
    which ``held(key)`` is True never starts while it is (it must turn False once some
    running work is judged: a work nothing running can release is a caller's bug).

    ``templates`` (key: `TemplateSpec`) start at once, each a process that runs its
    ``load`` and then forks the works for which ``template_of(work key)`` names it (see
    `grader.sandbox.template`); such a work waits while its template loads, and forks from
    the grader if the template cannot serve it.

    A work's result must be JSON-serialisable; it comes back signed, down a socket. A child
    that dies, exits early, forges its result, outlives its timeout or (with ``watch``,
    an integrity fingerprint taken before and after) tampers with the reporting code
    yields ``problem`` instead.
    """
    limits = limits or Limits.from_env()
    expected = watch() if watch is not None else None
    pending = list(works)
    pending.reverse()
    running: dict[int, Spawned] = {}
    results: dict[Hashable, ChildResult] = {}
    reaper.become_subreaper()
    before = reaper.children_of(os.getpid())
    folder = Path(tempfile.mkdtemp(prefix="cronkata-children-"))
    index = 0
    signals = reaper.signals_seen()
    pool = _Templates()
    try:
        with reaper.interruptible():
            pool.start(templates or {}, template_of, pending, limits, folder, watch)
            blocked = pool.loading if held is None else (lambda k: held(k) or pool.loading(k))
            while pending or running:
                pool.poll()
                while pending and len(running) < max(1, parallel):
                    position, waiting = _next_startable(pending, waits, blocked)
                    if position is None and len(running) >= max(1, parallel // 2):
                        break  # every pending work waits for a running one
                    if position is None:  # half the slots idle: waiting costs more than it saves
                        position = waiting
                    if position is None:
                        if not running and not pool.any_loading():
                            raise RuntimeError("every pending work is held and none runs")
                        break  # every pending work is held until a running one is judged
                    key, work, timeout = pending.pop(position)
                    if wanted is not None and not wanted(key):
                        pool.done_with(key)
                        continue
                    stood_for = pool.stood_for(key)
                    if stood_for is not None:  # its template loaded: the work is moot
                        results[key] = stood_for
                        if on_result is not None:
                            on_result(key, stood_for)
                        continue
                    known = set(running) | pool.pids()
                    output = folder / f"{index}.out"
                    child = pool.spawn(key, timeout, limits, output, known)
                    if child is None:
                        pool.done_with(key)  # it forks from here
                        child = spawn(key, work, timeout, limits, folder, index, watch)
                    index += 1
                    running[child.pid] = child
                now = time.monotonic()
                for pid, child in list(running.items()):
                    status = child.exited()
                    if status is not None or now - child.started > child.timeout:
                        del running[pid]
                        results[child.key] = _reap(child, status, expected)
                        pool.done_with(child.key)
                        if on_result is not None:
                            on_result(child.key, results[child.key])
                if running or pool.any_loading():
                    deadlines = [c.started + c.timeout for c in running.values()]
                    deadline = min(deadlines, default=time.monotonic() + 0.05)
                    seconds = max(0.0, min(deadline - time.monotonic(), 0.5))
                    _wait(running, seconds, pool.loading_templates())
                reaper.check_interrupted(since=signals)
    finally:
        for child in running.values():
            child.kill()
            child.wait_killed()
            child.close()
        pool.close()
        reaper.kill_orphans(before)
        cgroups.remove_parents()
        with contextlib.suppress(OSError):
            for leftover in folder.iterdir():
                leftover.unlink()
            folder.rmdir()
    return results


class _Templates:
    """The template processes of one run, and which pending works each still serves."""

    def __init__(self) -> None:
        self.by_key: dict[Hashable, template.Template] = {}
        self.of_work: dict[Hashable, template.Template] = {}
        self.left: dict[Hashable, int] = {}  # template key: works not yet judged
        self.replaced: dict[Hashable, tuple[template.Template, object]] = {}

    def start(
        self,
        specs: dict[Hashable, TemplateSpec],
        template_of: Callable[[Hashable], Hashable | None] | None,
        pending: list[Work],
        limits: Limits,
        folder: Path,
        watch: Callable[[], dict[str, str]] | None,
    ) -> None:
        """Start a template for each spec that serves at least one pending work."""
        served: dict[Hashable, list[Work]] = {}
        for work in reversed(pending):  # pending is reversed: the next is last
            owner = template_of(work[0]) if template_of is not None else None
            if owner in specs:
                served.setdefault(owner, []).append(work)
        for number, (owner, works) in enumerate(served.items()):
            spec = specs[owner]
            longest = max(timeout for _, _, timeout in works)
            output = folder / f"template-{number}.out"
            keyed = [(key, work) for key, work, _ in works]
            started = template.start(
                owner, spec.load, keyed, limits, output, longest, spec.load_timeout, watch
            )
            self.by_key[owner] = started
            self.left[owner] = len(works)
            for key, _, _ in works:
                self.of_work[key] = started
            if spec.replaces is not None:
                self.replaced[spec.replaces] = (started, spec.ready_payload)

    def poll(self) -> None:
        """Take ready messages of loading templates."""
        for each in self.by_key.values():
            each.poll()

    def loading(self, key: Hashable) -> bool:
        """The work ``key`` waits for its template to load (or for the template that may
        stand for it)."""
        owner = self.of_work.get(key) or self.replaced.get(key, (None, None))[0]
        return owner is not None and owner.state == template.LOADING

    def stood_for(self, key: Hashable) -> ChildResult | None:
        """The result of the work ``key`` if a template that stands for it loaded."""
        owner, payload = self.replaced.pop(key, (None, None))
        if owner is None or owner.state != template.READY:
            return None
        return ChildResult(payload, None, owner.ready_at - owner.started)

    def any_loading(self) -> bool:
        """Some template is still loading."""
        return any(t.state == template.LOADING for t in self.by_key.values())

    def loading_templates(self) -> list[template.Template]:
        """The templates still loading (to wait on)."""
        return [t for t in self.by_key.values() if t.state == template.LOADING]

    def pids(self) -> set[int]:
        """The pids of the templates (never a test's)."""
        return {t.pid for t in self.by_key.values()}

    def spawn(
        self, key: Hashable, timeout: float, limits: Limits, output: Path, known: set[int]
    ) -> Spawned | None:
        """The work forked from its ready template, or None (fork it from the grader)."""
        owner = self.of_work.get(key)
        if owner is None or owner.state != template.READY:
            return None
        return owner.spawn(key, timeout, limits, output, known)

    def done_with(self, key: Hashable) -> None:
        """The template of work ``key`` is done with it (judged, left out, or forked from
        the grader instead): close the template after its last."""
        owner = self.of_work.pop(key, None)
        if owner is None:
            return
        self.left[owner.key] -= 1
        if self.left[owner.key] <= 0:
            owner.close()

    def close(self) -> None:
        """End every template."""
        for each in self.by_key.values():
            each.close()


def run_in_child(work: Callable[[], object], timeout: float) -> ChildResult:
    """Run ``work`` in one forked child (see `run_many`)."""
    return run_many([(0, work, timeout)])[0]
