"""The catalog: one manifest, consistent with the files on disk."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

from grader import paths
from grader.catalog import CatalogError, UnknownExerciseError, catalog, is_pristine, load_catalog
from grader.verify import broken_links, suite_note_links, unmarked_tests

AVAILABLE = [e for e in catalog().exercises if e.available]


def test_every_level_has_exercises_in_course_order() -> None:
    course = catalog()
    assert [lv.number for lv in course.levels] == [1, 2, 3, 4]
    for level in course.levels:
        assert course.of_level(level.number), f"level {level.number} lists no exercise"
    assert [e.order for e in course.exercises] == sorted(e.order for e in course.exercises)


@pytest.mark.parametrize("exercise", AVAILABLE, ids=lambda e: e.id)
def test_an_available_exercise_has_stub_solution_suite_and_hash(exercise) -> None:
    assert exercise.stub_path().is_file()
    assert exercise.solution_path().is_file()
    assert importlib.import_module(exercise.suite_module)
    assert exercise.stub_blob and len(exercise.stub_blob) == 40


@pytest.mark.parametrize("exercise", AVAILABLE, ids=lambda e: e.id)
def test_every_note_link_of_an_available_exercise_has_its_anchor(exercise) -> None:
    assert broken_links(suite_note_links(exercise)) == []


@pytest.mark.parametrize("exercise", AVAILABLE, ids=lambda e: e.id)
def test_every_graded_test_has_points_a_note_and_a_hint(exercise) -> None:
    assert unmarked_tests(exercise) == []


def test_select_understands_ids_and_levels() -> None:
    course = catalog()
    assert [e.id for e in course.select("simple_timer")] == ["simple_timer"]
    assert course.select("level1") == course.select("1") == course.of_level(1)
    with pytest.raises(UnknownExerciseError, match="simple_timer"):
        course.select("simple_timmer")
    with pytest.raises(UnknownExerciseError, match="unknown level 7"):
        course.select("level7")


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text('[[level]]\nnumber = 1\ntitle = "One"\n' + body)
    return path


def test_a_malformed_catalog_is_rejected_with_a_reason(tmp_path: Path) -> None:
    entry = '[[exercise]]\nid = "a"\nlevel = 1\ntitle = "A"\nfile = "a.py"\nnote = "n.md"\n'
    with pytest.raises(CatalogError, match="duplicate exercise ids"):
        load_catalog(_write(tmp_path, entry + entry))
    with pytest.raises(CatalogError, match="unknown keys"):
        load_catalog(_write(tmp_path, entry + 'colour = "red"\n'))
    with pytest.raises(CatalogError, match="unknown level 2"):
        load_catalog(_write(tmp_path, entry.replace("level = 1", "level = 2")))


def test_no_exercise_tree_has_an_init_file_that_could_shadow_a_library() -> None:
    for tree in (paths.REPO_ROOT / "exercises", paths.SOLUTIONS_DIR):
        assert not list(tree.rglob("__init__.py"))


def _exercise_section(note: Path) -> str:
    text = note.read_text(encoding="utf-8")
    start = text.find('<a id="exercises"></a>')
    assert start >= 0, f"{note.name} has no exercises section"
    return text[start:]


@pytest.mark.parametrize("exercise", AVAILABLE, ids=lambda e: e.id)
def test_the_note_of_an_exercise_lists_it_with_its_stub(exercise) -> None:
    note = paths.NOTES_DIR / exercise.note.partition("#")[0]
    section = _exercise_section(note)
    assert exercise.id in section, f"{note.name} does not name exercise {exercise.id}"
    assert f"exercises/level{exercise.level}/{exercise.file}" in section


@pytest.mark.skipif(
    not os.environ.get("CI"),
    reason="a learner's stubs hold their work; CI checks that a clean clone's stubs are pristine",
)
@pytest.mark.parametrize("exercise", AVAILABLE, ids=lambda e: e.id)
def test_on_a_clean_clone_every_stub_matches_its_catalog_hash(exercise) -> None:
    assert is_pristine(exercise), (
        f"exercises/level{exercise.level}/{exercise.file} changed without a new stub_blob: "
        "run `python3 -m grader verify --update-hashes`"
    )
