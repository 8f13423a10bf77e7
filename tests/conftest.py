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
from grader.catalog import catalog
from grader.variants import pristine_tree

Run = Callable[..., subprocess.CompletedProcess[str]]

collect_ignore = ["bad_submissions", "alternatives"]  # learner files (broken / correct), not tests


@pytest.fixture(scope="session")
def pristine_exercises(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exercises tree as a newcomer gets it: every stub restored from git.

    The harness's tests must not depend on a learner's work in progress in exercises/.
    """
    root = tmp_path_factory.mktemp("pristine") / "exercises"
    workdir = tmp_path_factory.mktemp("pristine-work")
    for level in sorted({e.level for e in catalog().exercises}):
        if paths.level_dir(level).is_dir():
            shutil.copytree(pristine_tree(level, workdir), root / f"level{level}")
    return root


@pytest.fixture
def run_grader(pristine_exercises: Path) -> Run:
    """Run `python -m grader ...` (inside the venv) on the pristine exercises by default."""

    def run(
        *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "grader", *args],
            cwd=paths.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={
                **os.environ,
                "COLUMNS": "120",
                "CRONKATA_EXERCISES_DIR": str(pristine_exercises),
                **(env or {}),
            },
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
