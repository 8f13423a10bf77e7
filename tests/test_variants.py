"""Variants: edit mutants, whole-file mutants and alternative correct solutions."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import paths, variants
from grader.catalog import Exercise, catalog
from grader.results import TestResult as Result  # not collected as a test class
from grader.variants import (
    EDIT,
    FILE,
    MutantError,
    alternatives_for,
    materialize,
    materialize_alternative,
    mutants_for,
    variants_for,
)
from grader.verify import ExerciseVerdict, _judge, grade_marks

EXERCISE = Exercise(id="ex", level=1, title="Ex", file="pkg/ex.py", note="n.md")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def solutions(tmp_path: Path) -> Path:
    """A tiny solutions tree: the exercise's file and a sibling."""
    root = tmp_path / "solutions"
    write(root / "pkg" / "ex.py", "VALUE = 5\n")
    write(root / "pkg" / "sibling.py", "SIBLING = 'reference'\n")
    return root


def test_mutants_of_both_origins_are_listed_sorted_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "mutants" / "ex"
    write(folder / "b_edit.toml", 'description = "edit"\n[[edit]]\nfind = "5"\nreplace = "6"\n')
    write(folder / "a_file.py", '"""Value off by one.\n\nMore words."""\nVALUE = 4\n')
    write(folder / "c_file.py", '"""Value negative."""\nVALUE = -5\n')
    found = mutants_for(EXERCISE, tmp_path / "mutants")
    assert [m.name for m in found] == ["a_file", "b_edit", "c_file"]
    assert [m.origin for m in found] == [FILE, EDIT, FILE]
    assert found[0].description == "Value off by one."
    assert found[0].file == "pkg/ex.py"
    assert found[0].apply("VALUE = 5\n") == '"""Value off by one.\n\nMore words."""\nVALUE = 4\n'
    assert found[1].apply("VALUE = 5\n") == "VALUE = 6\n"


def test_a_file_mutant_needs_a_describing_docstring_and_must_parse(tmp_path: Path) -> None:
    folder = tmp_path / "mutants" / "ex"
    write(folder / "silent.py", "VALUE = 4\n")
    with pytest.raises(MutantError, match="docstring must describe"):
        mutants_for(EXERCISE, tmp_path / "mutants")
    write(folder / "silent.py", '"""Broken."""\ndef f(:\n')
    with pytest.raises(MutantError, match="does not parse"):
        mutants_for(EXERCISE, tmp_path / "mutants")


def test_a_mutant_name_used_by_both_a_toml_and_a_py_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "mutants" / "ex"
    write(folder / "same.py", '"""A."""\n')
    write(folder / "same.toml", 'description = "B"\n[[edit]]\nfind = "5"\nreplace = "6"\n')
    with pytest.raises(MutantError, match=r"both \.py and \.toml"):
        mutants_for(EXERCISE, tmp_path / "mutants")


def test_a_file_mutant_replaces_only_its_file_in_a_copy_of_the_solutions(
    tmp_path: Path, solutions: Path
) -> None:
    write(tmp_path / "mutants" / "ex" / "four.py", '"""Four."""\nVALUE = 4\n')
    (mutant,) = mutants_for(EXERCISE, tmp_path / "mutants")
    root = materialize(mutant, tmp_path / "work", solutions)
    assert (root / "pkg" / "ex.py").read_text() == '"""Four."""\nVALUE = 4\n'
    assert (root / "pkg" / "sibling.py").read_text() == "SIBLING = 'reference'\n"
    assert (solutions / "pkg" / "ex.py").read_text() == "VALUE = 5\n"


def test_an_edit_mutant_with_a_base_edits_that_alternative_not_the_solution(
    tmp_path: Path, solutions: Path
) -> None:
    write(tmp_path / "alts" / "ex" / "theirs.py", '"""Theirs."""\nVALUE = 50\n')
    toml = 'description = "D"\nbase = "theirs"\n[[edit]]\nfind = "50"\nreplace = "49"\n'
    write(tmp_path / "mutants" / "ex" / "off_by_one.toml", toml)
    (mutant,) = mutants_for(EXERCISE, tmp_path / "mutants", tmp_path / "alts")
    root = materialize(mutant, tmp_path / "work", solutions)
    assert (root / "pkg" / "ex.py").read_text() == '"""Theirs."""\nVALUE = 49\n'
    write(tmp_path / "mutants" / "ex" / "off_by_one.toml", toml.replace("theirs", "gone"))
    with pytest.raises(MutantError, match="base 'gone' is not an alternative"):
        mutants_for(EXERCISE, tmp_path / "mutants", tmp_path / "alts")


def test_an_alternative_replaces_only_its_file_in_a_copy_of_the_solutions(
    tmp_path: Path, solutions: Path
) -> None:
    write(tmp_path / "alts" / "ex" / "other_style.py", '"""Written as a class."""\nVALUE = 5\n')
    write(tmp_path / "alts" / "ex" / "notes.txt", "not a variant")
    (alternative,) = alternatives_for(EXERCISE, tmp_path / "alts")
    assert (alternative.name, alternative.description) == ("other_style", "Written as a class.")
    root = materialize_alternative(alternative, tmp_path / "work", solutions)
    assert (root / "pkg" / "ex.py").read_text() == '"""Written as a class."""\nVALUE = 5\n'
    assert (root / "pkg" / "sibling.py").read_text() == "SIBLING = 'reference'\n"
    mutant_root = tmp_path / "work" / "ex--mutant-other_style"
    assert root != mutant_root  # an alternative and a mutant of one name never share a tree


def test_the_alternatives_kind_yields_one_alt_variant_per_file(
    tmp_path: Path, solutions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "alts" / "ex" / "one.py", '"""One."""\n')
    write(tmp_path / "alts" / "ex" / "two.py", '"""Two."""\n')
    monkeypatch.setattr(paths, "ALTERNATIVES_DIR", tmp_path / "alts")
    monkeypatch.setattr(paths, "SOLUTIONS_DIR", solutions)
    found = variants_for(EXERCISE, [variants.ALTERNATIVES], tmp_path / "work")
    assert [(v.name, v.description) for v in found] == [("alt:one", "One."), ("alt:two", "Two.")]
    assert not any(v.is_mutant for v in found)
    assert all((v.root / "pkg" / "ex.py").is_file() for v in found)


def _result(variant: str, name: str, outcome: str, message: str = "") -> Result:
    return Result("ex", variant, name, outcome, message)


def test_verify_counts_mutants_by_origin_and_fails_an_over_specifying_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mutants = tmp_path / "mutants" / "ex"
    write(mutants / "e1.toml", 'description = "e1"\n[[edit]]\nfind = "5"\nreplace = "6"\n')
    write(mutants / "e2.toml", 'description = "e2"\n[[edit]]\nfind = "5"\nreplace = "7"\n')
    write(mutants / "f1.py", '"""File bug that survives."""\n')
    write(tmp_path / "alts" / "ex" / "good.py", '"""Good."""\n')
    write(tmp_path / "alts" / "ex" / "picky.py", '"""Fails a test."""\n')
    monkeypatch.setattr(paths, "MUTANTS_DIR", tmp_path / "mutants")
    monkeypatch.setattr(paths, "ALTERNATIVES_DIR", tmp_path / "alts")
    by_variant = {
        ("ex", "solution"): [_result("solution", "test_a", "passed")],
        ("ex", "stub"): [_result("stub", "test_a", "failed")],
        ("ex", "mutant:e1"): [_result("mutant:e1", "test_a", "failed")],
        ("ex", "mutant:e2"): [_result("mutant:e2", "test_a", "failed")],
        ("ex", "mutant:f1"): [_result("mutant:f1", "test_a", "passed")],
        ("ex", "alt:good"): [_result("alt:good", "test_a", "passed")],
        ("ex", "alt:picky"): [_result("alt:picky", "test_a", "failed", "log said 'x'\nmore")],
    }
    verdict = ExerciseVerdict(EXERCISE)
    _judge(verdict, by_variant)
    assert verdict.caught(EDIT) == (2, 2)
    assert verdict.caught(FILE) == (0, 1)
    assert verdict.alternatives == {"good": [], "picky": ["test_a"]}
    assert verdict.problems == [
        "file mutant f1 survives: File bug that survives.",
        "the suite over-specifies: alternative picky fails test_a: log said 'x' / more",
    ]


def test_the_course_example_file_mutant_and_alternative_are_found() -> None:
    simple_timer = catalog().exercise("simple_timer")
    origins = {m.name: m.origin for m in mutants_for(simple_timer)}
    assert origins["heartbeat_runs_immediately"] == FILE
    assert origins["interval_in_minutes"] == EDIT
    assert "string_aliases" in [a.name for a in alternatives_for(simple_timer)]


@pytest.mark.timeout(180)
def test_authors_can_grade_the_alternatives_and_file_mutants_with_pytest(run_pytest) -> None:
    target = "exercises/level1/level1_simple_timer.py"
    done = run_pytest(target, "--grader-variants=alternatives", "-q", timeout=170)
    assert done.returncode == 0, done.stdout[-3000:]
    tests = len(grade_marks(catalog().exercise("simple_timer")))
    alternatives = len(alternatives_for(catalog().exercise("simple_timer")))
    assert f"{tests * alternatives} passed" in done.stdout
    done = run_pytest(
        target, "--grader-variants=mutants", "-q", "-k", "heartbeat_runs_immediately", timeout=170
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert "[mutant:heartbeat_runs_immediately]::test_heartbeat_runs_every_5_seconds" in done.stdout
