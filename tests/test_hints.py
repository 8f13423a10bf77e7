"""Hints on request: one at a time, the failing test's own first, remembered under .grader/."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import hints, paths
from grader.catalog import catalog


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / "state")
    return tmp_path / "state"


def test_the_ladder_leads_with_the_tests_own_hint_without_repeats() -> None:
    exercise = catalog().exercise("simple_timer")
    ladder = hints.ladder(exercise, "look at the trigger")
    assert ladder[0] == "look at the trigger"
    assert ladder[1:] == list(exercise.hints)
    assert hints.ladder(exercise, exercise.hints[0]) == list(exercise.hints)


def test_hints_are_revealed_one_at_a_time_and_remembered(_state: Path) -> None:
    exercise = catalog().exercise("simple_timer")
    total = len(hints.ladder(exercise, "own hint"))
    assert hints.seen(exercise, "own hint") == (0, total)
    assert hints.reveal_next(exercise, "own hint") == (1, "own hint")
    assert hints.reveal_next(exercise, "own hint") == (2, exercise.hints[0])
    assert hints.revealed("simple_timer") == ["own hint", exercise.hints[0]]
    assert hints.seen(exercise, "own hint") == (2, total)
    assert (_state / "hints.json").is_file()
    for _ in range(total - 2):
        assert hints.reveal_next(exercise, "own hint") is not None
    assert hints.reveal_next(exercise, "own hint") is None
    assert hints.revealed("apscheduler_config") == []


def test_a_broken_state_file_counts_as_nothing_revealed(_state: Path) -> None:
    _state.mkdir(parents=True)
    (_state / "hints.json").write_text("{not json")
    exercise = catalog().exercise("simple_timer")
    assert hints.revealed("simple_timer") == []
    assert hints.reveal_next(exercise, None) == (1, exercise.hints[0])


def test_the_state_lives_in_the_git_ignored_grader_folder() -> None:
    ignored = (paths.REPO_ROOT / ".gitignore").read_text().split()
    assert ".grader/" in ignored
    assert hints.state_file().parent == paths.STATE_DIR
