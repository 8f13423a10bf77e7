"""First-run set-up with the standard library only: create .venv, install, re-run inside it.

`python3 -m grader report` on a fresh clone creates `.venv/`, installs the project
(editable, with its dev tools) and re-executes the same command with the venv's Python.
The install is redone when pyproject.toml changes (a stamp file keeps its hash).

After installing, one collection of the course fills pytest's bytecode caches: pytest
rewrites the asserts of every module of a pytest-plugin distribution (all of Hypothesis)
and of every test module, and caches the result in ``__pycache__`` only where bytecode may
be written. Under ``PYTHONDONTWRITEBYTECODE`` (set on some machines) nothing is cached and
every run rewrote Hypothesis again: 2 s of a 1.6 s import floor. The collection runs with
bytecode writing allowed, once; later runs read the caches whatever the setting.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".cronkata-installed"
MIN_PYTHON = (3, 11)
# Part of the stamp: raising it redoes the set-up of existing checkouts (new set-up steps).
SETUP_VERSION = "2"  # 2: the bytecode caches are filled


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _wanted_stamp() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(SETUP_VERSION.encode())
    return digest.hexdigest()


def _inside_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _say(message: str) -> None:
    sys.stderr.write(f"grader: {message}\n")
    sys.stderr.flush()


def _run_quietly(command: list[str]) -> None:
    """Run a command; show its output only if it fails."""
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise subprocess.CalledProcessError(done.returncode, command)


def install() -> None:
    """Create .venv if needed and install the project into it (quietly, with progress lines)."""
    if not _venv_python().exists():
        _say(f"creating {VENV.relative_to(ROOT)}/ (first run only)")
        venv.EnvBuilder(with_pip=True).create(VENV)
    _say("installing dependencies into .venv (first run takes a minute)")
    quiet = ["--quiet", "--disable-pip-version-check"]
    python = str(_venv_python())
    _run_quietly([python, "-m", "pip", "install", *quiet, "--upgrade", "pip"])
    _run_quietly([python, "-m", "pip", "install", *quiet, "-e", f"{ROOT}[dev]"])
    _warm_bytecode(python)
    STAMP.write_text(_wanted_stamp(), encoding="utf-8")
    _say("environment ready")


def _warm_bytecode(python: str) -> None:
    """Collect the course and the tests once with bytecode writing allowed (see above).

    Collection imports every suite and library a run imports and runs no learner code, so
    it writes caches only into the venv, the grader and the tests, never into exercises/.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    paths = ["exercises", "tests", "benchmarks/floor"]
    done = subprocess.run(
        [*command, *paths], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:  # only slower runs follow from this: say so, go on
        _say("filling the bytecode caches failed (grading still works, a little slower)")


def ensure_environment() -> None:
    """Make sure the CLI runs inside an up-to-date .venv; re-executes itself if needed."""
    if sys.version_info < MIN_PYTHON:
        sys.exit(f"grader: Python {'.'.join(map(str, MIN_PYTHON))}+ is required")
    current = STAMP.exists() and STAMP.read_text(encoding="utf-8") == _wanted_stamp()
    if _inside_venv() and current:
        return
    if not current:
        try:
            install()
        except subprocess.CalledProcessError as error:
            sys.exit(f"grader: installing the environment failed ({error}); see the output above")
    if not _inside_venv():
        python = str(_venv_python())
        os.execv(python, [python, "-m", "grader", *sys.argv[1:]])
