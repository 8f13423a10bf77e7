"""The course catalog: one manifest (`catalog.toml`) of every level and exercise.

Everything else (the pytest plugin, `report`, `verify`, `compare`, `reset`, the notes'
exercise lists) reads exercises from here; nothing is listed twice.
"""

from __future__ import annotations

import hashlib
import subprocess
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from grader import paths


class CatalogError(ValueError):
    """The catalog file is malformed or inconsistent."""


class UnknownExerciseError(LookupError):
    """A name that is neither an exercise id nor a level."""


@dataclass(frozen=True)
class Level:
    """One level of the course."""

    number: int
    title: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Exercise:
    """One exercise: a stub the learner completes and the hidden suite that grades it."""

    id: str
    level: int
    title: str
    file: str
    note: str
    suite: str | None = None
    hints: tuple[str, ...] = ()
    stub_blob: str | None = None
    spec_coverage: bool = False  # verify checks the stub's (#tags) against the suite's spec=
    planned: str | None = None  # an exercise without a suite yet: when it is planned
    order: int = field(default=0, compare=False)

    @property
    def available(self) -> bool:
        """Whether the exercise has a hidden suite yet (planned ones do not)."""
        return self.suite is not None

    @property
    def suite_module(self) -> str:
        """The importable name of the hidden suite, e.g. ``grader.suites.level1.test_x``."""
        if self.suite is None:
            raise CatalogError(f"exercise {self.id!r} has no suite yet")
        return "grader.suites." + self.suite.removesuffix(".py").replace("/", ".")

    def stub_path(self, exercises_dir: Path | None = None) -> Path:
        """The learner's file, e.g. ``exercises/level1/level1_simple_timer.py``."""
        return (exercises_dir or paths.EXERCISES_DIR) / f"level{self.level}" / self.file

    def solution_path(self, solutions_dir: Path | None = None) -> Path:
        """The reference solution, e.g. ``solutions/level1_simple_timer.py``."""
        return (solutions_dir or paths.SOLUTIONS_DIR) / self.file


@dataclass(frozen=True)
class Catalog:
    """All levels and exercises, in course order."""

    levels: tuple[Level, ...]
    exercises: tuple[Exercise, ...]
    # notes (file names in notes/) whose pitfalls verify traces to tests or mutants
    pitfall_traceability: tuple[str, ...] = ()

    def exercise(self, exercise_id: str) -> Exercise:
        """The exercise with this id; raises UnknownExerciseError with the known ids."""
        for exercise in self.exercises:
            if exercise.id == exercise_id:
                return exercise
        known = ", ".join(e.id for e in self.exercises)
        raise UnknownExerciseError(f"unknown exercise {exercise_id!r} (known: {known})")

    def level(self, number: int) -> Level:
        """The level with this number; raises UnknownExerciseError."""
        for level in self.levels:
            if level.number == number:
                return level
        raise UnknownExerciseError(f"unknown level {number} (levels: 1-{len(self.levels)})")

    def of_level(self, number: int) -> list[Exercise]:
        """The exercises of one level, in course order."""
        return [e for e in self.exercises if e.level == number]

    def select(self, name: str) -> list[Exercise]:
        """Exercises named by an id, ``levelN`` or ``N``; raises UnknownExerciseError."""
        level_name = name.removeprefix("level")
        if level_name.isdigit():
            self.level(int(level_name))
            return self.of_level(int(level_name))
        return [self.exercise(name)]


def git_blob_sha(data: bytes) -> str:
    """Git's object id of a file's content: identifies a pristine stub and lets `reset` find it."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def pristine_source(exercise: Exercise) -> bytes | None:
    """The pristine stub's content, from git by its blob id (None without git or blob)."""
    if exercise.stub_blob is None:
        return None
    try:
        done = subprocess.run(
            ["git", "cat-file", "blob", exercise.stub_blob],
            cwd=paths.REPO_ROOT,
            capture_output=True,
            check=False,
        )
    except OSError:  # no git on this machine
        return None
    return done.stdout if done.returncode == 0 else None


def is_pristine(exercise: Exercise, exercises_dir: Path | None = None) -> bool:
    """Whether the learner's file is still the untouched stub."""
    path = exercise.stub_path(exercises_dir)
    if exercise.stub_blob is None or not path.is_file():
        return False
    return git_blob_sha(path.read_bytes()) == exercise.stub_blob


def _parse(raw: dict[str, object]) -> Catalog:
    levels_raw = raw.get("level")
    exercises_raw = raw.get("exercise")
    if not isinstance(levels_raw, list) or not isinstance(exercises_raw, list):
        raise CatalogError("catalog.toml needs [[level]] and [[exercise]] tables")
    levels = tuple(
        Level(number=int(lv["number"]), title=str(lv["title"]), notes=tuple(lv.get("notes", ())))
        for lv in levels_raw
    )
    exercises = []
    allowed = {
        "id",
        "level",
        "title",
        "file",
        "note",
        "suite",
        "hints",
        "stub_blob",
        "spec_coverage",
        "planned",
    }
    for order, item in enumerate(exercises_raw, start=1):
        unknown = set(item) - allowed
        if unknown:
            raise CatalogError(f"exercise {item.get('id')!r}: unknown keys {sorted(unknown)}")
        try:
            exercises.append(
                Exercise(
                    id=str(item["id"]),
                    level=int(item["level"]),
                    title=str(item["title"]),
                    file=str(item["file"]),
                    note=str(item["note"]),
                    suite=item.get("suite"),
                    hints=tuple(item.get("hints", ())),
                    stub_blob=item.get("stub_blob"),
                    spec_coverage=_boolean(item, "spec_coverage"),
                    planned=item.get("planned"),
                    order=order,
                )
            )
        except KeyError as missing:
            raise CatalogError(f"exercise #{order} lacks the key {missing}") from None
    traced = raw.get("pitfall_traceability", [])
    if not isinstance(traced, list) or not all(
        isinstance(n, str) and n.endswith(".md") and "/" not in n for n in traced
    ):
        raise CatalogError("pitfall_traceability must be a list of note file names (x.md)")
    if len(set(traced)) != len(traced):
        raise CatalogError("pitfall_traceability lists a note twice")
    catalog = Catalog(levels=levels, exercises=tuple(exercises), pitfall_traceability=tuple(traced))
    _validate(catalog)
    return catalog


def _boolean(item: dict[str, object], key: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise CatalogError(f"exercise {item.get('id')!r}: {key} must be true or false")
    return value


def _validate(catalog: Catalog) -> None:
    ids = [e.id for e in catalog.exercises]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise CatalogError(f"duplicate exercise ids: {sorted(duplicates)}")
    numbers = {lv.number for lv in catalog.levels}
    for exercise in catalog.exercises:
        if exercise.level not in numbers:
            raise CatalogError(f"exercise {exercise.id!r} names unknown level {exercise.level}")
    for exercise in catalog.exercises:
        _validate_planned(exercise)
    files = [(e.level, e.file) for e in catalog.exercises]
    if len(set(files)) != len(files):
        raise CatalogError("two exercises share one stub file")


PLANNED_MAX = 120


def _validate_planned(exercise: Exercise) -> None:
    """``planned`` (when an exercise without a suite comes) is one short line of text, and
    only on an exercise that has no suite yet."""
    planned = exercise.planned
    if planned is None:
        return
    if exercise.available:
        raise CatalogError(f"exercise {exercise.id!r} has a suite: drop its `planned`")
    if not isinstance(planned, str) or not planned.strip():
        raise CatalogError(
            f"exercise {exercise.id!r}: planned must say when it comes, "
            f'e.g. planned = "level {exercise.level}, in the next course release"'
        )
    if "\n" in planned or len(planned) > PLANNED_MAX:
        raise CatalogError(
            f"exercise {exercise.id!r}: planned must be one line of at most "
            f"{PLANNED_MAX} characters"
        )


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate the catalog (the packaged one by default)."""
    target = path or paths.CATALOG_FILE
    try:
        raw = tomllib.loads(target.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(f"{target}: {error}") from None
    return _parse(raw)


@cache
def catalog() -> Catalog:
    """The packaged catalog, read once per process."""
    return load_catalog()
