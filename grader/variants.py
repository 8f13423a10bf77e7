"""The trees a suite can be run against: the learner's, the solutions, the stub, the mutants.

A mutant is a known-buggy variant of a solution, described as exact text edits in
``grader/mutants/<exercise>/<name>.toml`` so it follows the solution as it changes::

    description = "interval in minutes instead of seconds"
    file = "level1_simple_timer.py"          # optional: defaults to the exercise's file
    [[edit]]
    find = "seconds=HEARTBEAT_SECONDS"        # must occur exactly once
    replace = "minutes=HEARTBEAT_SECONDS"
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from grader import paths
from grader.catalog import Exercise, catalog, pristine_source

LEARNER = "learner"
SOLUTION = "solution"
STUB = "stub"
MUTANTS = "mutants"
KINDS = (LEARNER, SOLUTION, STUB, MUTANTS)


class MutantError(ValueError):
    """A mutant file is malformed or no longer applies to its solution."""


@dataclass(frozen=True)
class Variant:
    """One tree to grade an exercise against."""

    name: str
    root: Path
    description: str = ""

    @property
    def is_mutant(self) -> bool:
        """Whether this variant is a known-buggy solution."""
        return self.name.startswith("mutant:")


@dataclass(frozen=True)
class Mutant:
    """A known-buggy variant of one exercise's solution."""

    exercise_id: str
    name: str
    description: str
    file: str
    edits: tuple[tuple[str, str], ...]

    def apply(self, source: str) -> str:
        """The buggy source; raises MutantError when an edit no longer applies exactly once."""
        for find, replace in self.edits:
            count = source.count(find)
            if count != 1:
                raise MutantError(
                    f"mutant {self.exercise_id}/{self.name}: {find!r} occurs {count} times "
                    f"in solutions/{self.file} (must be exactly once)"
                )
            source = source.replace(find, replace)
        return source


def mutants_for(exercise: Exercise, mutants_dir: Path | None = None) -> list[Mutant]:
    """The exercise's mutants, sorted by name."""
    folder = (mutants_dir or paths.MUTANTS_DIR) / exercise.id
    found = []
    for path in sorted(folder.glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        edits = tuple((str(e["find"]), str(e["replace"])) for e in raw.get("edit", ()))
        if not edits or "description" not in raw:
            raise MutantError(f"{path}: needs a description and at least one [[edit]]")
        found.append(
            Mutant(
                exercise_id=exercise.id,
                name=path.stem,
                description=str(raw["description"]),
                file=str(raw.get("file", exercise.file)),
                edits=edits,
            )
        )
    return found


def materialize(mutant: Mutant, workdir: Path, solutions_dir: Path | None = None) -> Path:
    """A copy of the solutions tree with the mutant's edits applied; returns its root."""
    source_root = solutions_dir or paths.SOLUTIONS_DIR
    root = workdir / f"{mutant.exercise_id}--{mutant.name}"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(source_root, root, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite"))
    target = root / mutant.file
    target.write_text(mutant.apply(target.read_text(encoding="utf-8")), encoding="utf-8")
    return root


def pristine_tree(level: int, workdir: Path) -> Path:
    """A copy of ``exercises/levelN`` with every stub as the catalog's pristine version.

    The learner's work in progress never changes what "the pristine stub" means: each
    stub is restored from git by its blob id (a stub git cannot find is copied as is, and
    `grader verify` reports it).
    """
    root = workdir / f"pristine-level{level}"
    if root.exists():
        return root
    shutil.copytree(
        paths.level_dir(level), root, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite")
    )
    for exercise in catalog().of_level(level):
        content = pristine_source(exercise)
        if content is not None:
            target = root / exercise.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    return root


def variants_for(exercise: Exercise, kinds: list[str], workdir: Path) -> list[Variant]:
    """The variants of ``kinds`` for one exercise (mutant trees are written below workdir)."""
    found: list[Variant] = []
    for kind in kinds:
        if kind == LEARNER:
            found.append(Variant(LEARNER, paths.level_dir(exercise.level)))
        elif kind == SOLUTION:
            found.append(Variant(SOLUTION, paths.SOLUTIONS_DIR))
        elif kind == STUB:
            found.append(Variant(STUB, pristine_tree(exercise.level, workdir)))
        elif kind == MUTANTS:
            for mutant in mutants_for(exercise):
                root = materialize(mutant, workdir)
                found.append(Variant(f"mutant:{mutant.name}", root, mutant.description))
        else:
            raise ValueError(f"unknown variant kind {kind!r} (known: {', '.join(KINDS)})")
    return found
