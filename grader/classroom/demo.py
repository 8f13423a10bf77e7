"""A demo class to try ``grader class`` on: learners made from the course's own files.

Kinds of learner, in turn: ``complete`` (every exercise is the reference solution),
``partial`` (level 1 solved, the rest untouched stubs), ``untouched`` (the stubs), and
``twin`` (a byte-for-byte copy of the first complete learner: flagged as identical).
With ``distinct=True`` every learner's files differ by a comment naming the learner, so
none is graded from another's cache entry (what a benchmark needs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from grader import paths
from grader.catalog import catalog, pristine_source

KINDS = ("complete", "partial", "untouched", "twin")


def _copy_stubs(target: Path) -> None:
    """The course's exercises tree with every stub as shipped (not this checkout's edits)."""
    shutil.copytree(
        paths.REPO_ROOT / "exercises",
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"),
    )
    for exercise in catalog().exercises:
        pristine = pristine_source(exercise)
        if pristine is not None:
            exercise.stub_path(target).write_bytes(pristine)


def _solve(target: Path, levels: set[int], mark: str) -> None:
    for exercise in catalog().exercises:
        if exercise.available and exercise.level in levels:
            destination = exercise.stub_path(target)
            text = exercise.solution_path().read_text(encoding="utf-8")
            destination.write_text(text + (f"\n# {mark}\n" if mark else ""), encoding="utf-8")


def make_learner(target: Path, kind: str, mark: str = "") -> None:
    """One learner's ``exercises/`` tree of the given kind at ``target/exercises``."""
    exercises = target / "exercises"
    _copy_stubs(exercises)
    levels = {e.level for e in catalog().exercises}
    if kind in ("complete", "twin"):
        _solve(exercises, levels, mark)
    elif kind == "partial":
        _solve(exercises, {1}, mark)
    elif kind != "untouched":
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")


def make_class(folder: Path, count: int = 4, distinct: bool = False) -> list[str]:
    """Write ``count`` learners into ``folder`` (one sub-folder each); returns their ids."""
    folder.mkdir(parents=True, exist_ok=True)
    learners = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        if distinct and kind == "twin":
            kind = "complete"
        learner = f"learner{index + 1:03d}-{kind}"
        target = folder / learner
        if target.exists():
            shutil.rmtree(target)
        mark = f"learner {learner}" if distinct else ""
        make_learner(target, kind, mark)
        learners.append(learner)
    return learners
