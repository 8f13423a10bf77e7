"""Every "How to run" the course prints works from a fresh clone, as written.

A fresh clone has no ``python`` with the course's libraries on PATH: a command must name
the venv's programs by their path from the folder it ``cd``-s into
(``../.venv/bin/python``, created once by ``python3 -m grader setup``) or be
``python3 -m grader ...``, which sets the venv up itself. A plain ``python`` there would
also import the folder ``apscheduler/`` (no ``__init__.py``) as if it were the library.

The commands of the level-1 and level-2 solutions are run for real, in a copy of
solutions/ (level 2 writes its databases into the current folder): each must start and
log its own "started" line, stop cleanly on SIGTERM (exit 0, a "stopped" line), or end by
itself with exit 0.
"""

from __future__ import annotations

import ast
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader import paths
from grader.catalog import catalog
from grader.testing import free_port

ROOT = paths.REPO_ROOT
VENV = ROOT / ".venv"
PROGRAMS = {"python", "python3", "uvicorn", "celery", "pytest"}  # need the venv's libraries
# `cd <folder> && <command>`, anywhere in a line (after "Try it by hand:", in a code span)
CD_COMMAND = re.compile(r"\bcd\s+(?P<folder>[\w./-]+)\s*&&\s*(?P<command>[^`|]+)")
# Headers whose commands change elsewhere in this change set (other files' owners):
# delete an entry once its header names the venv's programs.
PENDING: dict[str, str] = {}  # file -> why its header is known not to work yet
# The solutions whose documented commands are run for real.
RUN = (
    "solutions/level1_simple_timer.py",
    "solutions/level2_data_cleanup.py",
    "solutions/apscheduler/config.py",
    "solutions/apscheduler/embedded_app.py",
    "solutions/apscheduler/standalone_app.py",
)


@dataclass(frozen=True)
class Command:
    """One documented command: where it is written, the folder it runs in, what it runs."""

    source: str  # "path:line"
    folder: str  # relative to the repository root
    text: str  # the command after `cd folder &&`, comments and continuations resolved

    @property
    def file(self) -> str:
        return self.source.rpartition(":")[0]

    def words(self) -> tuple[dict[str, str], list[str]]:
        """The environment assignments in front, then the program and its arguments."""
        words = shlex.split(self.text)
        env: dict[str, str] = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        return env, words


def _docstring_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a module's docstring with their line numbers in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    node = tree.body[0] if tree.body else None
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
        return []
    return list(enumerate(str(node.value.value).splitlines(), start=node.lineno))


def _joined(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Lines ending with a backslash continued on the next one."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, line in lines:
        if pending is not None:
            number, line = pending[0], pending[1] + " " + line.strip()
            pending = None
        if line.rstrip().endswith("\\"):
            pending = (number, line.rstrip()[:-1].rstrip())
            continue
        out.append((number, line))
    if pending is not None:
        out.append(pending)
    return out


def _strip_comment(command: str) -> str:
    return re.sub(r"\s+#.*$", "", command).strip().rstrip(";")


def _commands_in(path: Path) -> list[Command]:
    """`cd X && ...` commands of a file, and the lines after one that start with a program
    (or environment assignments, then a program): they run in the folder of the last cd."""
    shown = str(path.relative_to(ROOT))
    if path.suffix == ".py":
        lines = _docstring_lines(path)
    else:
        lines = list(enumerate(path.read_text(encoding="utf-8").splitlines(), start=1))
    found: list[Command] = []
    folder: str | None = None
    for number, line in _joined(lines):
        if line.lstrip().startswith("```"):  # a fenced block ends: so does its cd
            folder = None
            continue
        match = CD_COMMAND.search(line)
        if match:
            folder = match.group("folder")
            found.append(Command(f"{shown}:{number}", folder, _strip_comment(match["command"])))
            continue
        bare = re.search(r"(?:^|\s)cd\s+(?P<cd>[\w./-]+)\s*$", line)
        if bare:  # `cd folder` alone: the next lines run there (a bash block, "Try it by hand")
            folder = bare.group("cd")
            continue
        text = _strip_comment(line)
        if folder and text:
            words = text.split()
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
                words.pop(0)
            if words and Path(words[0]).name in PROGRAMS and words[0] != "python3":
                found.append(Command(f"{shown}:{number}", folder, text))
    return found


def documents() -> list[Path]:
    """Where the course prints run instructions: module headers, the two READMEs."""
    found = [ROOT / "README.md", ROOT / "solutions" / "README.md"]
    for tree in ("solutions", "exercises"):
        found += sorted(p for p in (ROOT / tree).rglob("*.py") if "__pycache__" not in p.parts)
    return found


def learner_texts() -> list[Path]:
    """Everything a learner reads commands in: the documents above, the notes and the docs."""
    notes = sorted((ROOT / "notes").glob("*.md")) + sorted((ROOT / "docs").rglob("*.md"))
    return [*documents(), *notes]


def all_commands() -> list[Command]:
    return [command for path in documents() for command in _commands_in(path)]


def _pending(command: Command) -> list[pytest.MarkDecorator]:
    reason = PENDING.get(command.file)
    return (
        [pytest.mark.xfail(strict=True, reason=f"header not fixed yet: {reason}")] if reason else []
    )


def _problem(command: Command) -> str | None:
    """Why the command would not work from a fresh clone set up by `grader setup`; None if ok."""
    folder = ROOT / command.folder
    if not folder.is_dir():
        return f"cd {command.folder}: no such folder"
    _, words = command.words()
    if not words:
        return "no command after the cd"
    program = words[0]
    if program == "python3" and words[1:3] == ["-m", "grader"]:
        return None if folder == ROOT else "python3 -m grader runs from the repository root"
    if Path(program).name not in PROGRAMS:
        return None  # curl, redis-cli, ...: not the course's libraries
    if "/" not in program:
        return (
            f"{program!r} is whatever is first on PATH, not the course's venv: write its path "
            f"from {command.folder}/, e.g. {os.path.relpath(VENV / 'bin' / program, folder)}"
        )
    where = Path(os.path.normpath(folder / program))
    if not where.is_relative_to(VENV):
        return f"{program} from {command.folder}/ is {where}, not a program of {VENV}"
    if not (folder / program).exists():
        return f"{program} does not exist from {command.folder}/"
    script = words[1] if Path(program).name.startswith("python") and len(words) > 1 else ""
    if script.endswith(".py") and not (folder / script).is_file():
        return f"{script} is not in {command.folder}/"
    return None


def test_the_command_finder_finds_the_documented_commands() -> None:
    """The checks below cannot pass by finding nothing."""
    found = {(c.file, c.folder, c.text) for c in all_commands()}
    assert (
        "solutions/level1_simple_timer.py",
        "solutions",
        "../.venv/bin/python level1_simple_timer.py",
    ) in found
    assert (
        "solutions/apscheduler/embedded_app.py",
        "solutions/apscheduler",
        "SCHEDULER_TIMEZONE=Europe/Berlin SCHEDULER_JOBSTORE_URL=sqlite:////tmp/jobs.sqlite "
        "../../.venv/bin/uvicorn embedded_app:app",
    ) in found
    assert ("README.md", "solutions/celery_beat") in {(c.file, c.folder) for c in all_commands()}
    sources = {c.file for c in all_commands()}
    assert {*RUN, "solutions/README.md", "exercises/level1/level1_simple_timer.py"} <= sources
    bare = Command("x.py:1", "solutions", "python level1_simple_timer.py")
    assert "not the course's venv" in (_problem(bare) or "")


@pytest.mark.parametrize(
    "command", [pytest.param(c, id=c.source, marks=_pending(c)) for c in all_commands()]
)
def test_documented_command_uses_the_venv(command: Command) -> None:
    """Each documented command names the venv's program by a path that exists."""
    problem = _problem(command)
    assert problem is None, f"{command.source}: `cd {command.folder} && {command.text}`: {problem}"


GRADER = re.compile(r"python3 -m grader (?:check|compare|reset|watch) ([\w-]+)")


def test_documented_grader_commands_name_real_exercises() -> None:
    named = [
        (f"{path.relative_to(ROOT)}", match.group(1))
        for path in documents()
        for match in GRADER.finditer(path.read_text(encoding="utf-8"))
    ]
    assert len(named) >= 8, named
    known = {e.id for e in catalog().exercises} | {"<exercise>"}
    unknown = [(where, name) for where, name in named if name not in known]
    assert not unknown, f"grader commands naming no exercise: {unknown}"


@pytest.mark.timeout(60)
def test_apscheduler_is_the_installed_library_in_every_documented_folder() -> None:
    """Run from solutions/ (a parent of the folder apscheduler/) or from inside it, the
    venv's Python imports the installed library: a folder without __init__.py is only a
    namespace portion, and a regular package anywhere on sys.path wins over it."""
    folders = sorted({c.folder for c in all_commands() if (ROOT / c.folder).is_dir()})
    assert "solutions" in folders and "solutions/apscheduler" in folders
    python = VENV / "bin" / "python"
    code = "import apscheduler.schedulers.background as m, apscheduler; print(apscheduler.__file__)"
    for folder in folders:
        done = subprocess.run(
            [str(python), "-c", code],
            cwd=ROOT / folder,
            capture_output=True,
            text=True,
            timeout=30,
            env=_fresh_shell_env(),
            check=False,
        )
        assert done.returncode == 0, f"in {folder}/: {done.stderr[-800:]}"
        library = Path(done.stdout.strip()).resolve()
        assert "site-packages" in library.parts, f"in {folder}/, apscheduler is {library}"


# -- running the level-1 and level-2 solutions' commands ----------------------------------


def _fresh_shell_env() -> dict[str, str]:
    """A shell's environment without the venv activated and without course settings."""
    venv_bin = str(VENV / "bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
        and not k.startswith(("SCHEDULER_", "CLEANUP_", "CELERY_", "UVICORN_", "CRONKATA_"))
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin
    )
    env["PYTHONUNBUFFERED"] = "1"  # see each line as it is written
    return env


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of solutions/ beside a link to the venv: what the commands write stays there."""
    import shutil

    root = tmp_path_factory.mktemp("clone")
    shutil.copytree(
        ROOT / "solutions", root / "solutions", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / ".venv").symlink_to(VENV)
    return root


@dataclass
class Ran:
    output: list[str]
    started: bool
    returncode: int | None
    after_signal: list[str]


def _own_started_line(line: str) -> bool:
    """The program's own "started" line: not APScheduler's nor uvicorn's."""
    lowered = line.lower()
    return (
        re.search(r"(?<!not )\bstarted\b", lowered) is not None  # "built (not started)": no
        and "apscheduler" not in lowered
        and not line.startswith("INFO:     ")  # uvicorn's own lines
    )


def run_documented(command: Command, root: Path, start_within: float = 30.0) -> Ran:
    """Run the command in ``root`` (a copy of the repository's layout); stop it with SIGTERM
    once it logged its own "started" line; give up after ``start_within`` seconds."""
    env_assignments, words = command.words()
    env = {**_fresh_shell_env(), **env_assignments, "UVICORN_PORT": str(free_port())}
    process = subprocess.Popen(  # `cd folder && program ...`: the program runs in the folder
        words,
        cwd=root / command.folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    output: list[str] = []
    signalled_at: int | None = None
    deadline = time.monotonic() + start_within
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:  # the program ended
                break
            output.append(line)
            if signalled_at is None and _own_started_line(line):
                signalled_at = len(output)
                process.send_signal(signal.SIGTERM)  # `kill -TERM <pid>`
                deadline = time.monotonic() + 15
    finally:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            output.append("[killed: it did not stop]")
        reader.join(5)
        while not lines.empty():
            line = lines.get()
            if line is not None:
                output.append(line)
    returncode = None if output and output[-1].startswith("[killed") else process.returncode
    after = output[signalled_at:] if signalled_at is not None else []
    return Ran(output, signalled_at is not None, returncode, after)


def _runnable() -> list[Command]:
    """The documented commands of the level-1/2 solutions, without the variants that set
    variables (those may name a database elsewhere or a shared file such as /tmp/jobs.sqlite)."""
    return [c for c in all_commands() if c.file in RUN and not c.words()[0]]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "command", [pytest.param(c, id=c.source, marks=_pending(c)) for c in _runnable()]
)
def test_documented_command_starts_and_stops_cleanly(command: Command, clone: Path) -> None:
    ran = run_documented(command, clone)
    shown = f"`cd {command.folder} && {command.text}` ({command.source})"
    log = "\n".join(ran.output[-25:])
    if not ran.started:  # a command that ends by itself (config.py prints and exits)
        assert ran.returncode == 0, f"{shown} exited with {ran.returncode}:\n{log}"
        assert ran.output, f"{shown} printed nothing"
        return
    # uvicorn re-raises the signal it stopped on once it has shut down (uvicorn >= 0.29): a
    # clean stop by SIGTERM exits as "killed by SIGTERM", after its "Finished" line.
    uvicorn_done = Path(command.words()[1][0]).name == "uvicorn" and any(
        "Finished server process" in line for line in ran.after_signal
    )
    clean = ran.returncode == 0 or (uvicorn_done and ran.returncode == -signal.SIGTERM)
    assert clean, f"{shown}: after SIGTERM it exited with {ran.returncode}:\n{log}"
    assert any("stopped" in line.lower() for line in ran.after_signal), (
        f"{shown}: no 'stopped' line after SIGTERM:\n{log}"
    )


def test_the_embedded_apps_own_log_lines_show_under_uvicorn(clone: Path) -> None:
    """uvicorn configures only its own loggers: the app's "scheduler started" line shows
    only because the lifespan configures logging (when nothing else has)."""
    [command] = [
        c
        for c in all_commands()
        if c.file == "solutions/apscheduler/embedded_app.py" and not c.words()[0]
    ]
    ran = run_documented(command, clone)
    assert any(re.search(r"\bembedded_app: scheduler started\b", line) for line in ran.output), (
        "the embedded app's own INFO lines do not show when it runs as documented:\n"
        + "\n".join(ran.output[-25:])
    )
    assert any("embedded_app: scheduler stopped" in line for line in ran.after_signal)


def test_a_bare_python_would_fail(tmp_path: Path) -> None:
    """Why the commands name the venv: a Python without the libraries imports the folder
    apscheduler/ as the library, and the error does not say that the venv is missing."""
    bare = next(
        (
            p
            for p in ("/usr/bin/python3", "/usr/local/bin/python3")
            if Path(p).exists() and Path(p).resolve() != Path(sys.executable).resolve()
        ),
        None,
    )
    if bare is None:
        pytest.skip("no system python3 beside the venv's")
    probe = subprocess.run(
        [bare, "-c", "import apscheduler.schedulers"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env=_fresh_shell_env(),
    )
    if probe.returncode == 0:
        pytest.skip(f"{bare} has APScheduler installed")
    done = subprocess.run(
        [bare, "level1_simple_timer.py"],
        cwd=ROOT / "solutions",
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env=_fresh_shell_env(),
    )
    assert done.returncode != 0
    assert "No module named 'apscheduler.schedulers'" in done.stderr


# `celery -A tasks worker`, `celery --app=x worker`, `.venv/bin/celery -A x worker`
WORKER = re.compile(r"celery\s+(?:-A\s*|--app[= ])([\w.]+)\s+worker\b")
WORKER_MODULE = "standalone_worker"  # importing it configures the worker and its queues
CLASS_WORKER_APP = "grader.classroom"  # the teacher's grading workers, not a course worker


def test_every_documented_worker_is_started_through_standalone_worker() -> None:
    """A worker started on tasks.py's app consumes only the default queue: notify and the
    maintenance tasks (routed to their own queues) would wait forever."""
    wrong = [
        f"{path.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}: {match.group(0)}"
        for path in learner_texts()
        for text in [path.read_text(encoding="utf-8", errors="replace")]
        for match in WORKER.finditer(text)
        if match.group(1) not in (WORKER_MODULE, CLASS_WORKER_APP)
    ]
    assert not wrong, "workers started without the worker settings and queues:\n" + "\n".join(wrong)


def test_the_worker_pattern_finds_the_documented_workers() -> None:
    """The check above cannot pass by matching nothing."""
    found = [m.group(1) for p in learner_texts() for m in WORKER.finditer(p.read_text("utf-8"))]
    assert found.count(WORKER_MODULE) >= 3
    match = WORKER.search("celery -A tasks worker --loglevel=INFO")
    assert match is not None and match.group(1) == "tasks"
