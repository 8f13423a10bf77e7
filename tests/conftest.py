"""Shared helpers for the harness's own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from grader import paths

Run = Callable[..., subprocess.CompletedProcess[str]]

collect_ignore = ["bad_submissions"]  # fixtures of broken learner code, not tests


@pytest.fixture
def run_grader() -> Run:
    """Run `python -m grader ...` (inside the venv) and capture its output."""

    def run(
        *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "grader", *args],
            cwd=paths.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "COLUMNS": "120", **(env or {})},
            check=False,
        )

    return run


@pytest.fixture
def run_pytest() -> Run:
    """Run a nested `pytest ...` in the repository and capture its output."""

    def run(
        *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
            cwd=paths.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            check=False,
        )

    return run


@pytest.fixture
def solved_exercises(tmp_path: Path) -> Path:
    """A copy of exercises/ in which level 1 holds the reference solutions."""
    root = tmp_path / "exercises"
    shutil.copytree(paths.REPO_ROOT / "exercises", root)
    for name in ("level1_simple_timer.py", "apscheduler"):
        source = paths.SOLUTIONS_DIR / name
        target = root / "level1" / name
        if source.is_dir():
            shutil.rmtree(target)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    return root
