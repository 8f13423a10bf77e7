"""Failure messages: timelines that show where expected and actual part."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from grader.feedback import GradingFailure, expect_equal, expect_fire_times, timeline

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def series(count: int, step: int = 5) -> list[datetime]:
    return [T0 + timedelta(seconds=step * (i + 1)) for i in range(count)]


def test_equal_fire_times_pass() -> None:
    expect_fire_times(series(3), series(3), what="job")


def test_a_timeline_marks_the_rows_that_differ() -> None:
    text = timeline(series(3), series(2), UTC)
    rows = text.splitlines()
    assert rows[0].startswith("   #  expected (UTC)")
    assert rows[1].startswith("   1") and rows[3].startswith("<> 3")
    assert rows[3].rstrip().endswith("-")


def test_a_long_timeline_shows_the_region_around_the_first_difference() -> None:
    expected = series(200)
    actual = [*expected[:150], *series(50, step=7)]
    text = timeline(expected, actual, UTC)
    assert "matching row(s) before" in text and "more row(s)" in text
    assert "<>151" in text.replace(" ", "") or "<> 151" in text
    assert len(text.splitlines()) < 20


def test_failures_say_what_was_compared() -> None:
    with pytest.raises(GradingFailure, match=r"job 'x': expected 3 run\(s\), got 2"):
        expect_fire_times(series(2), series(3), what="job 'x'")
    with pytest.raises(
        GradingFailure, match="the zone:\n  expected: 'UTC'\n  actual:   'Europe/Paris'"
    ):
        expect_equal("Europe/Paris", "UTC", "the zone")
