"""First-run set-up with the standard library only: create .venv, install, re-run inside it.

`python3 -m grader report` on a fresh clone creates `.venv/`, installs the project
(editable, with its dev tools) and re-executes the same command with the venv's Python.
The install is redone when pyproject.toml changes (a stamp file keeps its hash).
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


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _wanted_stamp() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


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
    STAMP.write_text(_wanted_stamp(), encoding="utf-8")
    _say("environment ready")


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
