"""Spec coverage: the stub's (#tags) against the suite's grade(spec=...)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from grader.catalog import CatalogError, catalog, load_catalog
from grader.spec import SPEC_HEADER, has_header, spec_of, spec_problems, stub_tags
from grader.verify import ExerciseVerdict, _static_checks, grade_marks

HEADER = SPEC_HEADER.replace("; a failing", ";\na failing")  # wrapped, as a docstring would be

STUB = f'''"""Exercise x: a timer.

{HEADER}
"""

LIMIT = 5  # (#not-in-a-docstring)


def build() -> object:
    """Return a scheduler, not started (#not-started).

    * its zone is Asia/Shanghai (#zone-shanghai);
    * its first run is one interval after now (#first-run-after-interval).
    """
    raise NotImplementedError


class Runner:
    """Runs forever until stopped (#stops-on-sigterm)."""
'''

COMPLETE = {
    "test_build": {"points": 1, "spec": ("not-started", "zone-shanghai")},
    "test_first_run": {"points": 2, "spec": ["first-run-after-interval"]},
    "test_runner": {"points": 1, "spec": "stops-on-sigterm"},
}


def test_tags_are_read_from_docstrings_only_in_order() -> None:
    assert stub_tags(STUB) == [
        "not-started",
        "zone-shanghai",
        "first-run-after-interval",
        "stops-on-sigterm",
    ]


def test_the_header_is_recognised_even_wrapped_and_its_example_is_no_tag() -> None:
    assert has_header(STUB)
    without_body_tag = STUB.replace(" (#first-run-after-interval).", ".")
    assert "first-run-after-interval" not in stub_tags(without_body_tag)
    assert not has_header(STUB.replace(HEADER, "Good luck."))


def test_complete_coverage_has_no_problem() -> None:
    assert spec_problems(STUB, COMPLETE) == []


def test_a_tag_no_test_names_is_reported_by_its_name() -> None:
    marks = {**COMPLETE, "test_runner": {"spec": ("not-started",)}}
    assert spec_problems(STUB, marks) == [
        "stub: tag (#stops-on-sigterm) is graded by no test: name it in a test's grade(spec=...)"
    ]


def test_a_test_naming_an_unknown_tag_or_none_is_reported_by_its_name() -> None:
    marks = {
        **COMPLETE,
        "test_typo": {"spec": ("zone-shangai",)},
        "test_hash": {"spec": ("#not-started",)},
        "test_silent": {"points": 1},
        "test_bad_type": {"spec": 3},
    }
    problems = spec_problems(STUB, marks)
    assert problems == [
        "test_typo names spec tag 'zone-shangai', which the stub does not define",
        "test_hash names spec tag '#not-started', which the stub does not define"
        " (write the name without '(#' and ')')",
        "test_silent names no spec tag: add grade(spec=(...)) with what it grades",
        "test_bad_type: grade(spec=...) must be a tuple of tag names",
    ]


def test_duplicate_and_malformed_tags_and_a_missing_header_are_reported() -> None:
    stub = STUB.replace("(#stops-on-sigterm)", "(#not-started)").replace(
        "(#zone-shanghai)", "(#Zone_Shanghai)"
    )
    stub = stub.replace(HEADER, "Good luck.")
    marks = {"test_build": {"spec": ("not-started", "first-run-after-interval")}}
    assert spec_problems(stub, marks) == [
        f'stub: its module docstring lacks the line "{SPEC_HEADER}"',
        "stub: (#Zone_Shanghai) is not a tag: tags are lowercase kebab-case, e.g. (#runs-at-03-00)",
        "stub: tag (#not-started) is defined 2 times: one promise, one tag",
    ]


def test_verify_enforces_spec_coverage_only_where_the_catalog_says_so() -> None:
    # simple_timer's stub is tagged and its suite names every tag (level 1 turned it on)
    simple_timer = catalog().exercise("simple_timer")
    off = ExerciseVerdict(dataclasses.replace(simple_timer, spec_coverage=False))
    _static_checks(off)
    assert not [p for p in off.problems if p.startswith("spec:")]
    assert any("spec coverage not enforced yet" in w for w in off.warnings)
    on = ExerciseVerdict(dataclasses.replace(simple_timer, spec_coverage=True))
    _static_checks(on)
    assert not [p for p in on.problems if p.startswith("spec:")], on.problems
    assert not on.warnings


def test_the_catalog_key_spec_coverage_is_a_boolean_defaulting_to_false(tmp_path: Path) -> None:
    head = '[[level]]\nnumber = 1\ntitle = "One"\n'
    entry = '[[exercise]]\nid = "a"\nlevel = 1\ntitle = "A"\nfile = "a.py"\nnote = "n.md"\n'
    path = tmp_path / "catalog.toml"
    path.write_text(head + entry)
    assert load_catalog(path).exercise("a").spec_coverage is False
    path.write_text(head + entry + "spec_coverage = true\n")
    assert load_catalog(path).exercise("a").spec_coverage is True
    path.write_text(head + entry + 'spec_coverage = "yes"\n')
    with pytest.raises(CatalogError, match="spec_coverage must be true or false"):
        load_catalog(path)


@pytest.mark.timeout(120)
def test_a_failure_names_the_promise_it_grades(run_pytest, pristine_exercises) -> None:
    stub = pristine_exercises / "level1" / "level1_simple_timer.py"
    done = run_pytest(
        "-p",
        "grader.plugin",
        str(stub),
        "-q",
        env={"CRONKATA_EXERCISES_DIR": str(pristine_exercises)},
    )
    shown = set(re.findall(r"promise: \(#([a-z0-9-]+)\)", done.stdout))
    named = {
        tag
        for kw in grade_marks(catalog().exercise("simple_timer")).values()
        for tag in spec_of(kw) or ()
    }
    assert shown, f"no failure names its promise:\n{done.stdout[-2000:]}"
    assert shown <= named, "a shown tag no test names"
    assert shown <= set(stub_tags(stub.read_text())), "a shown tag the stub does not define"
