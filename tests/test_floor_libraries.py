"""benchmarks/floor/libraries.py: each level's import floor names that level's libraries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_FILE = Path(__file__).resolve().parent.parent / "benchmarks" / "floor" / "libraries.py"
_SPEC = importlib.util.spec_from_file_location("cronkata_floor_libraries", _FILE)
assert _SPEC is not None and _SPEC.loader is not None
_floor = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_floor)
level_libraries = _floor.level_libraries

pytestmark = pytest.mark.timeout(60)


def _tops(level: int | None) -> set[str]:
    return {name.split(".")[0] for name in level_libraries(level)}


def test_a_level_floor_has_its_own_libraries_and_not_the_others() -> None:
    assert {"apscheduler", "fastapi", "hypothesis"} <= _tops(1)
    assert "celery" not in _tops(1) and "fakeredis" not in _tops(1)
    assert {"celery", "kombu", "fakeredis"} <= _tops(3)  # fakeredis: through grader.sim_*
    assert {"prometheus_client", "jinja2", "sqlalchemy"} <= _tops(4)


def test_the_floor_never_names_the_standard_library_the_grader_or_the_course() -> None:
    tops = _tops(None)
    assert not tops & {"os", "sys", "grader", "solutions", "exercises", "__future__"}
    assert tops == set().union(*(_tops(level) for level in (1, 2, 3, 4)))
