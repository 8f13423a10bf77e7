"""The trees a suite can be run against: learner, solutions, stub, mutants, alternatives.

A mutant is a known-buggy variant of a solution, of one of two kinds (its ``origin``):

- ``edit``: exact text edits of the solution in ``grader/mutants/<exercise>/<name>.toml``,
  so it follows the solution as it changes::

      description = "interval in minutes instead of seconds"
      file = "level1_simple_timer.py"          # optional: defaults to the exercise's file
      [[edit]]
      find = "seconds=HEARTBEAT_SECONDS"        # must occur exactly once
      replace = "minutes=HEARTBEAT_SECONDS"

  With ``base = "<name>"`` the edits apply to the alternative
  ``tests/alternatives/<exercise>/<name>.py`` instead: a red team's bugs written on their
  own correct file stay a few lines each, not a copy of that file per bug.

- ``file``: a complete learner file ``grader/mutants/<exercise>/<name>.py`` (a bug written
  from the stub alone, red-team style) that replaces the exercise's file; its module
  docstring's first line is its description.

An alternative (``tests/alternatives/<exercise>/<name>.py``) is a complete *correct*
learner file written differently from the solution; every test must pass it. Both whole
files are graded in a copy of the solutions tree, so their siblings are the references.
"""

from __future__ import annotations

import ast
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
ALTERNATIVES = "alternatives"
KINDS = (LEARNER, SOLUTION, STUB, MUTANTS, ALTERNATIVES)
EDIT = "edit"  # a mutant's origin: text edits of the solution (.toml)
FILE = "file"  # a mutant's origin: a whole learner file (.py)


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
    """A known-buggy variant of one exercise's solution (``origin``: ``edit`` or ``file``)."""

    exercise_id: str
    name: str
    description: str
    file: str
    edits: tuple[tuple[str, str], ...] = ()
    origin: str = EDIT
    path: Path | None = None  # the whole learner file of a ``file`` mutant
    base: Path | None = None  # the alternative an ``edit`` mutant edits (None: the solution)

    def apply(self, source: str) -> str:
        """The buggy version of the solution's ``source``.

        A ``file`` mutant ignores ``source`` and returns its own file; an ``edit`` mutant
        raises MutantError when an edit no longer applies exactly once.
        """
        if self.origin == FILE:
            assert self.path is not None
            return self.path.read_text(encoding="utf-8")
        edited = f"solutions/{self.file}"
        if self.base is not None:
            source = self.base.read_text(encoding="utf-8")
            edited = str(self.base)
        for find, replace in self.edits:
            count = source.count(find)
            if count != 1:
                raise MutantError(
                    f"mutant {self.exercise_id}/{self.name}: {find!r} occurs {count} times "
                    f"in {edited} (must be exactly once)"
                )
            source = source.replace(find, replace)
        return source


@dataclass(frozen=True)
class Alternative:
    """A complete correct learner file of one exercise, written unlike the solution."""

    exercise_id: str
    name: str
    description: str
    file: str
    path: Path


def first_docstring_line(path: Path) -> str:
    """The first line of a Python file's module docstring ("" without one).

    Raises MutantError when the file does not parse: a whole-file variant must be a
    working program (broken learner files are the robustness tests' business).
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as error:
        raise MutantError(f"{path}: does not parse ({error.msg}, line {error.lineno})") from None
    docstring = ast.get_docstring(tree) or ""
    return docstring.strip().splitlines()[0].strip() if docstring.strip() else ""


def mutants_for(
    exercise: Exercise, mutants_dir: Path | None = None, alternatives_dir: Path | None = None
) -> list[Mutant]:
    """The exercise's mutants of both origins (``.toml`` edits, ``.py`` files), sorted by name."""
    folder = (mutants_dir or paths.MUTANTS_DIR) / exercise.id
    found = []
    for path in sorted(folder.glob("*.py")):
        description = first_docstring_line(path)
        if not description:
            raise MutantError(f"{path}: a file mutant's module docstring must describe its bug")
        found.append(Mutant(exercise.id, path.stem, description, exercise.file, (), FILE, path))
    for path in sorted(folder.glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        edits = tuple((str(e["find"]), str(e["replace"])) for e in raw.get("edit", ()))
        if not edits or "description" not in raw:
            raise MutantError(f"{path}: needs a description and at least one [[edit]]")
        base = None
        if "base" in raw:
            base = (alternatives_dir or paths.ALTERNATIVES_DIR) / exercise.id / f"{raw['base']}.py"
            if not base.is_file():
                raise MutantError(f"{path}: base {raw['base']!r} is not an alternative ({base})")
        found.append(
            Mutant(
                exercise_id=exercise.id,
                name=path.stem,
                description=str(raw["description"]),
                file=str(raw.get("file", exercise.file)),
                edits=edits,
                base=base,
            )
        )
    names = [m.name for m in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MutantError(f"{folder}: mutant(s) {twice} exist as both .py and .toml")
    return sorted(found, key=lambda m: m.name)


def alternatives_for(exercise: Exercise, alternatives_dir: Path | None = None) -> list[Alternative]:
    """The exercise's alternative correct solutions, sorted by name."""
    folder = (alternatives_dir or paths.ALTERNATIVES_DIR) / exercise.id
    return [
        Alternative(exercise.id, path.stem, first_docstring_line(path), exercise.file, path)
        for path in sorted(folder.glob("*.py"))
    ]


def _solutions_copy(root: Path, solutions_dir: Path | None) -> Path:
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(
        solutions_dir or paths.SOLUTIONS_DIR,
        root,
        ignore=shutil.ignore_patterns("__pycache__", "*.sqlite"),
    )
    return root


def materialize(mutant: Mutant, workdir: Path, solutions_dir: Path | None = None) -> Path:
    """A copy of the solutions tree with the mutant applied to its file; returns its root."""
    root = _solutions_copy(workdir / f"{mutant.exercise_id}--mutant-{mutant.name}", solutions_dir)
    target = root / mutant.file
    target.write_text(mutant.apply(target.read_text(encoding="utf-8")), encoding="utf-8")
    return root


def materialize_alternative(
    alternative: Alternative, workdir: Path, solutions_dir: Path | None = None
) -> Path:
    """A copy of the solutions tree whose exercise file is the alternative; returns its root."""
    root = _solutions_copy(
        workdir / f"{alternative.exercise_id}--alt-{alternative.name}", solutions_dir
    )
    shutil.copyfile(alternative.path, root / alternative.file)
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
        elif kind == ALTERNATIVES:
            for alternative in alternatives_for(exercise):
                root = materialize_alternative(alternative, workdir)
                found.append(Variant(f"alt:{alternative.name}", root, alternative.description))
        else:
            raise ValueError(f"unknown variant kind {kind!r} (known: {', '.join(KINDS)})")
    return found
