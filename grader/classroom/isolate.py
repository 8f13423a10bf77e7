"""One learner's grading in a sandbox of its own: bubblewrap, an outer cgroup, a timeout.

Inside the sandbox (``bwrap``, Debian's ``bubblewrap``; we run as root, so every
capability is dropped):

- read-only: the system's programs and libraries, the Python and the venv, the grader
  package, the solutions (some suites compare against them), the notes, pyproject.toml;
- nothing else of the host: not the other learners' folders, not the output folder, not
  tests/ or .git;
- writable: a private tmpfs ``/tmp`` (size-capped, gone with the sandbox) into which the
  learner's snapshot is unpacked, and the learner's own cgroup folders (the grader's
  per-test cgroup boxes are made there, below the learner's limits);
- its own PID, network (no interface but a down loopback), IPC and UTS namespaces; it
  dies with its parent.

Outside it, each learner gets a cgroup (v1 or v2) with a memory cap and a process cap on
everything the sandbox runs (the grader's per-test caps stay inside it), and a wall-clock
timeout after which the whole sandbox is killed.

Where bubblewrap is missing or cannot create namespaces, ``auto`` falls back to a plain
subprocess (same outer cgroup and timeout, a private temporary copy of the tree) with a
warning: the course, the venv and the other learners' folders are then only protected by
the grader's own per-test sandbox, not by read-only mounts.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from grader import paths

logger = logging.getLogger(__name__)

AUTO, BWRAP, NONE = "auto", "bwrap", "none"
MODES = (AUTO, BWRAP, NONE)
BWRAP_PATHS = ("/usr/bin/bwrap", "/bin/bwrap")
STARTED = "CRONKATA-CLASS-STARTED"
RESULT = "CRONKATA-CLASS-RESULT"
GIB = 1024**3
# what a learner's grading may read of /etc (no shadow, no host keys)
ETC_FILES = (
    "/etc/localtime",
    "/etc/timezone",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/mime.types",
)
# CRONKATA_* settings of the grader that reach the sandbox (they change grades or messages)
PASSED_ENV = (
    "CRONKATA_TIMEOUT_CAP",
    "CRONKATA_MEMORY_LIMIT",
    "CRONKATA_PROCESS_LIMIT",
    "CRONKATA_LANG",
    "CRONKATA_NO_CGROUPS",
    "TZ",
)
_JOINED_CGROUP_FAILED = 97  # the wrapper's exit status when it cannot enter the cgroup


class InfrastructureError(RuntimeError):
    """The grading could not run (sandbox, cgroup, grader failure): not the learner's fault.

    Celery retries these; a learner's failing or hostile code never raises it."""


@dataclass(frozen=True)
class Settings:
    """How each learner's grading is boxed."""

    timeout: float = 900.0  # wall-clock seconds for one learner's whole grading
    # the learner's cgroup, over everything the sandbox runs: well above what the grader's
    # per-test boxes allow at once (up to 32 tests x 64 processes, 2 GiB each), so only a
    # submission that escapes those boxes meets it
    memory: int = 6 * GIB
    processes: int = 4096
    jobs: int | None = None  # graded tests at once inside (CRONKATA_JOBS); None: grader's
    isolation: str = AUTO
    tmp_size: int = 512 * 1024**2  # the private /tmp (tmpfs)
    env: tuple[tuple[str, str], ...] = ()  # CRONKATA_* passed into the sandbox

    @classmethod
    def with_environment(cls, **values: Any) -> Settings:
        """Settings whose ``env`` holds the current process's CRONKATA_* grading settings."""
        env = tuple((k, os.environ[k]) for k in PASSED_ENV if os.environ.get(k))
        return cls(env=env, **values)

    def grading_key(self) -> dict[str, Any]:
        """What in these settings can change a grade (part of the cache key)."""
        return {"env": sorted(self.env)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for a Celery message)."""
        return {**asdict(self), "env": [list(pair) for pair in self.env]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """The inverse of :meth:`to_dict`."""
        return cls(**{**data, "env": tuple(tuple(pair) for pair in data.get("env", ()))})


@dataclass
class Request:
    """One learner's grading: the snapshot's archive and which exercises to grade."""

    learner: str
    archive: bytes
    content_hash: str
    only: tuple[str, ...] = ()  # exercise ids; empty: every available exercise


@dataclass
class Outcome:
    """What one learner's grading gave.

    ``status``: ``graded`` (``results`` is the results.json), ``timeout`` (the whole
    grading ran past the wall-clock limit), ``limit`` (the learner's memory cap killed it),
    ``error`` (the grading ended without a result)."""

    status: str
    results: dict[str, Any] | None = None
    message: str = ""
    seconds: float = 0.0
    isolation: str = ""
    graded_at: str = ""
    host: str = field(default_factory=socket.gethostname)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        """The inverse of :meth:`to_dict`."""
        return cls(**data)


# -- bubblewrap ---------------------------------------------------------------------------------


def bwrap_path() -> str | None:
    """The bubblewrap program, if installed."""
    found = shutil.which("bwrap")
    return found or next((p for p in BWRAP_PATHS if os.access(p, os.X_OK)), None)


@cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox here (None: it can), from one trial run."""
    program = bwrap_path()
    if program is None:
        return "bubblewrap is not installed (Debian: apt-get install bubblewrap)"
    trial = [
        program,
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--die-with-parent",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "true",
    ]
    try:
        done = subprocess.run(trial, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap does not run: {error}"
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip()
        return f"bubblewrap cannot create namespaces here: {reason or done.returncode}"
    return None


def resolve_mode(requested: str) -> str:
    """``bwrap`` or ``none`` for a requested mode; raises InfrastructureError for an
    explicit ``bwrap`` that cannot work, warns when ``auto`` falls back."""
    if requested not in MODES:
        raise ValueError(f"isolation must be one of {', '.join(MODES)}")
    if requested == NONE:
        return NONE
    problem = bwrap_problem()
    if problem is None:
        return BWRAP
    if requested == BWRAP:
        raise InfrastructureError(problem)
    logger.warning(
        "%s: grading WITHOUT per-learner sandbox (read-only course, no network); "
        "only the grader's per-test sandbox protects the course and the other learners",
        problem,
    )
    return NONE


def _bind_ro(path: Path | str) -> list[str]:
    return ["--ro-bind-try", str(path), str(path)]


def _python_roots() -> list[Path]:
    """The folders the sandbox's Python needs: the venv and the Python it was made from."""
    roots: list[Path] = []
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        path = Path(prefix).resolve()
        if not any(path.is_relative_to(r) for r in roots) and path != Path("/"):
            roots.append(path)
    return roots


def bwrap_command(
    program: str, env: dict[str, str], writable: list[Path], tmp_size: int
) -> list[str]:
    """The bubblewrap command line that runs the inner grader (see the module's doc)."""
    command = [
        program,
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        "cronkata-sandbox",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
        # first: a course or a venv below /tmp is bound over it, not hidden by it
        "--size",
        str(tmp_size),
        "--tmpfs",
        "/tmp",
    ]
    for name in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        command += _bind_ro(name)
    for name in ETC_FILES:
        command += _bind_ro(name)
    for root in _python_roots():
        if not root.is_relative_to("/usr"):
            command += _bind_ro(root)
    for name in ("grader", "solutions", "notes", "pyproject.toml"):
        command += _bind_ro(paths.REPO_ROOT / name)
    command += ["--proc", "/proc", "--dev", "/dev"]
    if writable:
        command += _bind_ro("/sys/fs/cgroup")
        for folder in writable:
            command += ["--bind", str(folder), str(folder)]
    command += ["--remount-ro", "/", "--chdir", str(paths.REPO_ROOT)]
    for name, value in env.items():
        command += ["--setenv", name, value]
    return [*command, sys.executable, "-m", "grader.classroom.inner"]


# -- the learner's cgroup -----------------------------------------------------------------------

CGROUP_ROOT = Path("/sys/fs/cgroup")
_counter = itertools.count(1)
_lock = threading.Lock()


def _own_cgroup(controller: str | None) -> str | None:
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


@cache
def _class_parents() -> tuple[int, tuple[Path, ...]] | None:
    """This process's folder(s) for learner cgroups: (version, parents), None if none."""
    if os.environ.get("CRONKATA_NO_CGROUPS"):
        return None
    name = f"cronkata-class-{os.getpid()}"
    own = _own_cgroup(None)
    if (CGROUP_ROOT / "cgroup.controllers").is_file() and own is not None:
        base = CGROUP_ROOT / own.lstrip("/")
        holder = base.parent if base != CGROUP_ROOT else CGROUP_ROOT  # no internal processes
        try:
            enabled = (holder / "cgroup.subtree_control").read_text().split()
            if not {"memory", "pids"} <= set(enabled):
                (holder / "cgroup.subtree_control").write_text("+memory +pids")
            parent = holder / name
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
            return 2, (parent,)
        except OSError:
            logger.debug("cgroup v2 is not writable here", exc_info=True)
    parents = []
    for controller in ("memory", "pids"):
        path = _own_cgroup(controller)
        if path is None:
            return None
        parent = CGROUP_ROOT / controller / path.lstrip("/") / name
        try:
            parent.mkdir(exist_ok=True)
        except OSError:
            logger.debug("cgroup v1 %s is not writable here", controller, exc_info=True)
            return None
        parents.append(parent)
    return 1, tuple(parents)


def _remove_tree(folder: Path) -> None:
    """Remove a cgroup folder and its sub-folders (cgroup folders are removed by rmdir)."""
    if not folder.is_dir():
        return
    for below, _dirs, _files in os.walk(folder, topdown=False):
        for _ in range(100):
            try:
                os.rmdir(below)
                break
            except FileNotFoundError:
                break
            except OSError:  # processes still exiting
                time.sleep(0.01)


@dataclass
class LearnerCgroup:
    """The cgroup(s) of one learner's sandbox: ``limits`` folders with the caps, an
    ``inner`` folder below (the only one the sandbox may write: raising its own limits
    there binds nothing) where the sandbox's processes live."""

    version: int
    limits: tuple[Path, ...]
    inner: tuple[Path, ...]

    @classmethod
    def create(cls, memory: int, processes: int) -> LearnerCgroup | None:
        """A new learner cgroup with the caps, or None where cgroups are not writable."""
        with _lock:
            layout = _class_parents()
            slot = f"learner-{next(_counter)}"
        if layout is None:
            return None
        version, parents = layout
        limits = tuple(parent / slot for parent in parents)
        inner = tuple(folder / "inner" for folder in limits)
        box = cls(version, limits, inner)
        try:
            for folder in limits:
                folder.mkdir()
            if version == 2:
                folder = limits[0]
                (folder / "memory.max").write_text(str(memory))
                with contextlib.suppress(OSError):
                    (folder / "memory.swap.max").write_text("0")
                (folder / "pids.max").write_text(str(processes))
                (folder / "cgroup.subtree_control").write_text("+memory +pids")
                inner[0].mkdir()
                (inner[0] / "cgroup.subtree_control").write_text("+memory +pids")
                (inner[0] / "sandbox").mkdir()
            else:
                (limits[0] / "memory.limit_in_bytes").write_text(str(memory))
                with contextlib.suppress(OSError):
                    (limits[0] / "memory.memsw.limit_in_bytes").write_text(str(memory))
                (limits[1] / "pids.max").write_text(str(processes))
                for folder in inner:
                    folder.mkdir()
        except OSError:
            logger.warning("could not create the learner's cgroup", exc_info=True)
            box.remove()
            return None
        return box

    @property
    def procs(self) -> list[Path]:
        """The ``cgroup.procs`` files the sandbox's first process writes itself into."""
        if self.version == 2:
            return [self.inner[0] / "sandbox" / "cgroup.procs"]
        return [folder / "cgroup.procs" for folder in self.inner]

    def pids(self) -> set[int]:
        """Every process in the learner's cgroup(s), at any depth."""
        found: set[int] = set()
        for top in self.limits:
            for below, _dirs, _files in os.walk(top):
                with contextlib.suppress(OSError, ValueError):
                    text = (Path(below) / "cgroup.procs").read_text()
                    found |= {int(p) for p in text.split()}
        return found

    def kill(self) -> None:
        """SIGKILL everything in the learner's cgroup (until nothing is left)."""
        if self.version == 2:
            with contextlib.suppress(OSError):
                (self.limits[0] / "cgroup.kill").write_text("1")
        for _ in range(200):
            alive = self.pids()
            if not alive:
                return
            for pid in alive:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)  # killed processes leave the cgroup once their parent reaps them

    def hit_memory_limit(self) -> bool:
        """Whether the learner's memory cap made the kernel kill something."""
        folder = self.limits[0]
        try:
            if self.version == 2:
                words = (folder / "memory.events").read_text().split()
            else:
                words = (folder / "memory.oom_control").read_text().split()
            counts = dict(zip(words[::2], words[1::2], strict=False))
            return int(counts.get("oom_kill", "0")) > 0
        except (OSError, ValueError):
            return False

    def remove(self) -> None:
        """Kill what is left and delete the folders."""
        self.kill()
        for folder in self.limits:
            _remove_tree(folder)


def remove_class_cgroups() -> None:
    """Delete this process's (empty) class cgroup folders, at the end of a run."""
    with _lock:
        layout = _class_parents()
        if layout is None:
            return
        for parent in layout[1]:
            _remove_tree(parent)
        _class_parents.cache_clear()


# -- running one learner ------------------------------------------------------------------------

# the shell that puts itself in the learner's cgroup, then becomes the sandbox
_ENTER = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"'


def _sandbox_env(settings: Settings, exercises: str, tmp: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": tmp,
        "TMPDIR": tmp,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "CRONKATA_EXERCISES_DIR": exercises,
        "CRONKATA_STATE_DIR": f"{tmp}/state",
        "CRONKATA_LANG": "en",
    }
    if settings.jobs:
        env["CRONKATA_JOBS"] = str(settings.jobs)
    env.update(dict(settings.env))
    return env


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


_running: set[subprocess.Popen[bytes]] = set()


def stop_all() -> None:
    """Kill every sandbox this process is running (an interrupted run)."""
    with _lock:
        running = list(_running)
    for process in running:
        _kill_group(process)


atexit.register(remove_class_cgroups)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def grade(request: Request, settings: Settings) -> Outcome:
    """Grade one learner's snapshot in its own sandbox; raises InfrastructureError only
    when the grading could not run (a learner's code cannot make it raise)."""
    mode = resolve_mode(settings.isolation)
    nonce = secrets.token_hex(16)
    payload = json.dumps(
        {
            "nonce": nonce,
            "only": list(request.only),
            "archive": request.archive.hex(),
        }
    ).encode()
    box = LearnerCgroup.create(settings.memory, settings.processes)
    scratch: tempfile.TemporaryDirectory[str] | None = None
    try:
        if mode == BWRAP:
            program = bwrap_path()
            assert program is not None
            env = _sandbox_env(settings, "/tmp/submission/exercises", "/tmp")
            writable = list(box.inner) if box is not None else []
            command = bwrap_command(program, env, writable, settings.tmp_size)
            cwd = None
        else:
            scratch = tempfile.TemporaryDirectory(prefix="cronkata-class-")
            root = Path(scratch.name)
            (root / "tmp").mkdir()
            env = _sandbox_env(settings, str(root / "exercises"), str(root / "tmp"))
            command = [sys.executable, "-m", "grader.classroom.inner"]
            cwd = str(paths.REPO_ROOT)
        if box is not None:
            command = ["/bin/sh", "-c", _ENTER, "sh", *map(str, box.procs), "--", *command]
        return _run(command, env if mode == NONE else {}, cwd, payload, nonce, settings, box, mode)
    finally:
        if box is not None:
            box.remove()
        if scratch is not None:
            scratch.cleanup()


def _run(
    command: list[str],
    env: dict[str, str],
    cwd: str | None,
    payload: bytes,
    nonce: str,
    settings: Settings,
    box: LearnerCgroup | None,
    mode: str,
) -> Outcome:
    started = time.monotonic()
    graded_at = _now()
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env or {"PATH": "/usr/bin:/bin"},
            start_new_session=True,
        )
    except OSError as error:
        raise InfrastructureError(f"cannot start the sandbox: {error}") from error
    timed_out = False
    with _lock:
        _running.add(process)
    try:
        stdout, stderr = process.communicate(payload, timeout=settings.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process)
        if box is not None:
            box.kill()
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.returncode is None:  # interrupted: the sandbox dies with its bwrap
            _kill_group(process)
            process.wait()
        with _lock:
            _running.discard(process)
    seconds = round(time.monotonic() - started, 2)
    outcome = Outcome(status="error", seconds=seconds, isolation=mode, graded_at=graded_at)
    lines = stdout.decode(errors="replace").splitlines()
    started_ok = f"{STARTED} {nonce}" in lines
    result = next((ln for ln in lines if ln.startswith(f"{RESULT} {nonce} ")), None)
    tail = stderr.decode(errors="replace").strip()[-600:]
    if result is not None:
        body = json.loads(result.split(" ", 2)[2])
        if "harness_error" in body:
            raise InfrastructureError(f"the grader failed: {body['harness_error']}")
        outcome.status, outcome.results = "graded", body["results"]
        return outcome
    if timed_out:
        outcome.status = "timeout"
        outcome.message = f"the grading took longer than {settings.timeout:g} s and was stopped"
    elif box is not None and box.hit_memory_limit():
        outcome.status = "limit"
        outcome.message = (
            f"the grading used more than {settings.memory / GIB:g} GiB of memory "
            "(the learner's limit) and was stopped"
        )
    elif not started_ok:
        if process.returncode == _JOINED_CGROUP_FAILED:
            raise InfrastructureError("cannot enter the learner's cgroup")
        raise InfrastructureError(
            f"the sandbox did not start (exit status {process.returncode}): {tail}"
        )
    else:
        outcome.message = (
            f"the grading ended without a result (exit status {process.returncode}); "
            f"the submission may have killed the grader. {tail}"
        ).strip()
    return outcome
