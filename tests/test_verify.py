"""`grader verify`: its checks, and the whole course passing them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grader.catalog import catalog
from grader.variants import Mutant, MutantError, mutants_for
from grader.verify import api_differences, broken_links


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_api_differences_compare_names_signatures_and_constants() -> None:
    solution = "X = 5\ndef f(a: int) -> int:\n    return a\n"
    same = "X = 5\ndef f(a: int) -> int:\n    raise NotImplementedError\n"
    other = "X = 6\ndef f(a: str) -> int:\n    raise NotImplementedError\n"
    assert api_differences(same, solution) == []
    private = "_LUA = 'x'\n" + solution
    assert api_differences(same, private) == [], "private constants are the solution's own"
    problems = api_differences(other, solution)
    assert len(problems) == 2 and "'X' differs" in problems[0] and "'f' differs" in problems[1]


def test_a_mutant_whose_edit_no_longer_applies_is_reported() -> None:
    mutant = Mutant("x", "m", "d", "f.py", (("needle", "pin"),))
    assert mutant.apply("a needle") == "a pin"
    with pytest.raises(MutantError, match="occurs 0 times"):
        mutant.apply("nothing here")
    with pytest.raises(MutantError, match="occurs 2 times"):
        mutant.apply("needle needle")


def test_broken_note_links_are_found(tmp_path: Path) -> None:
    write(tmp_path / "n.md", '<a id="here"></a>\n## Here\n')
    assert broken_links(["n.md#here", "n.md"], tmp_path) == []
    assert len(broken_links(["n.md#gone", "missing.md"], tmp_path)) == 2


def test_every_available_exercise_has_at_least_three_mutants() -> None:
    for exercise in catalog().exercises:
        if exercise.available:
            assert len(mutants_for(exercise)) >= 3, exercise.id


@pytest.mark.timeout(2400)
def test_grader_verify_passes_for_the_whole_course(run_grader) -> None:
    done = run_grader("verify", timeout=2390)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert "verified" in done.stdout


@pytest.mark.timeout(900)
def test_grader_verify_passes_on_a_loaded_machine(run_grader) -> None:
    """Two CPU-bound processes run meanwhile: the sandbox owns time, nothing times a batch."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        done = run_grader("verify", "level1", timeout=890)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert "verified 4 exercise(s)" in done.stdout
    assert "INTERNALERROR" not in done.stdout + done.stderr
