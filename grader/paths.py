"""Where things live in a cronkata checkout."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
# Another learner's work can be graded by pointing here (a teacher grading a class).
EXERCISES_DIR = Path(os.environ.get("CRONKATA_EXERCISES_DIR") or REPO_ROOT / "exercises").resolve()
SOLUTIONS_DIR = REPO_ROOT / "solutions"
NOTES_DIR = REPO_ROOT / "notes"
SUITES_DIR = PACKAGE_DIR / "suites"
MUTANTS_DIR = PACKAGE_DIR / "mutants"
# complete correct learner files written unlike the solution (maintainers only: not packaged)
ALTERNATIVES_DIR = REPO_ROOT / "tests" / "alternatives"
CATALOG_FILE = PACKAGE_DIR / "catalog.toml"
STATE_DIR = Path(os.environ.get("CRONKATA_STATE_DIR") or REPO_ROOT / ".grader")


def level_dir(level: int) -> Path:
    """The learner's folder of one level, e.g. ``exercises/level1``."""
    return EXERCISES_DIR / f"level{level}"


def shown(path: Path) -> str:
    """A path as messages show it: relative to the repository when it is inside."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)
