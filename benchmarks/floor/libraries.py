"""The libraries a level's grading imports: its import floor.

Read from import statements (parsed, never executed) of the level's reference solutions
and hidden suites, following the grader's own helper modules they import (``grader.sim_celery``
imports Celery): the third-party modules named there, nothing of the standard library,
the grader or the course. Importing exactly these is what grading that level cannot
avoid; everything above it is the harness's cost.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from grader.catalog import load_catalog
from grader.sandbox.warmup import imports_of

OWN = ("grader", "solutions", "exercises", "__future__")


def _file_of(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def _imports_following_the_grader(path: Path) -> set[str]:
    found: set[str] = set()
    pending, seen = [path], {path}
    while pending:
        for name in imports_of(pending.pop()):
            found.add(name)
            if name.split(".")[0] == "grader" and (file := _file_of(name)) and file not in seen:
                seen.add(file)
                pending.append(file)
    return found


def level_libraries(level: int | None = None) -> list[str]:
    """Third-party module names the level's (every level's: None) grading imports."""
    names: set[str] = set()
    for exercise in load_catalog().exercises:
        if not exercise.available or (level is not None and exercise.level != level):
            continue
        names |= _imports_following_the_grader(exercise.solution_path())
        if suite := _file_of(exercise.suite_module):
            names |= _imports_following_the_grader(suite)
    return sorted(
        name
        for name in names
        if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith(OWN)
    )
