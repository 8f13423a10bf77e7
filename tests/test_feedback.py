"""Failure messages: timelines that show where expected and actual part."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest

from grader import i18n
from grader.feedback import (
    GradingFailure,
    expect_equal,
    expect_fire_times,
    own_records,
    quote_records,
    timeline,
    upcoming,
)

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


# -- the timeline says what the learner's code did, and explains itself ------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    i18n.set_language("en")
    yield
    i18n.set_language(None)


def _failure(**kwargs: object) -> str:
    with pytest.raises(GradingFailure) as caught:
        expect_fire_times(**kwargs)  # type: ignore[arg-type]
    return str(caught.value)


def test_a_timeline_explains_its_markers_in_a_legend() -> None:
    text = timeline(series(3), series(2), UTC)
    assert text.splitlines()[-1].startswith("legend: <> marks a row where your run differs")
    assert "- means no run" in text


def test_a_timeline_keeps_to_the_first_differences() -> None:
    text = timeline(series(12), [], UTC)
    marked = [row for row in text.splitlines() if row.startswith("<>")]
    assert 1 <= len(marked) <= 5, text
    assert "7 more row(s), 7 of them different" in text


def test_a_first_run_outside_the_window_is_named_with_its_offset() -> None:
    """Minutes instead of seconds: nothing in the 60 s window, the first run at +5 min."""
    later = [T0 + timedelta(minutes=5 * (i + 1)) for i in range(3)]
    text = _failure(
        actual=[], expected=series(12), what="job 'heartbeat'", tz=SHANGHAI, start=T0, later=later
    )
    assert "expected first run: Mon 2026-03-02 08:00:05+0800 (+5 s)" in text
    assert "your first run:     Mon 2026-03-02 08:05:00+0800 (+5 min), after the window" in text
    assert "08:10:00+0800, Mon 2026-03-02 08:15:00+0800" in text
    assert text.index("your first run") < text.index("   #  expected")


def test_a_wrong_first_run_inside_the_window_is_named_too() -> None:
    text = _failure(actual=[T0, *series(11)], expected=series(12), what="job", start=T0)
    assert "your first run:     Mon 2026-03-02 00:00:00+0000 (+0 s)" in text


def test_a_job_that_never_runs_says_so_and_a_broken_probe_changes_nothing() -> None:
    text = _failure(actual=[], expected=series(1), what="job 'one_shot'", later=list)
    assert "your code never runs it" in text

    def broken() -> list[datetime]:
        raise RuntimeError("the learner's trigger is broken")

    text = _failure(actual=[], expected=series(1), what="job 'one_shot'", later=broken)
    assert "job 'one_shot': expected 1 run(s), got 0" in text
    assert "never runs it" not in text and "your first run" not in text


def test_upcoming_reads_a_job_before_the_scheduler_shuts_down() -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from grader.sim_apscheduler import simulate

    with simulate(T0) as sim:
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(print, "interval", minutes=5, id="heartbeat")
        scheduler.start()
        sim.run_for(60)
        later = upcoming(sim, "heartbeat")
        missing = upcoming(sim, "no_such_job")
        scheduler.shutdown()  # empties the memory job store
    assert later() == [T0 + timedelta(minutes=5 * (i + 1)) for i in range(3)]
    assert missing() == []


def test_the_legend_and_first_run_follow_the_language() -> None:
    i18n.set_language("zh")
    text = _failure(actual=[], expected=series(2), what="job", start=T0, later=[T0])
    assert "图例：<> 表示这一行你的运行与期望不同" in text
    assert "你的第一次运行：" in text


# -- log records: only the learner's, a few lines ---------------------------------------------


def _record(name: str, message: str, pathname: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, pathname, 1, message, None, None)


def test_own_records_keep_what_the_learners_files_log_whatever_the_logger(tmp_path) -> None:
    module = ModuleType("cronkata_target_x")
    module.__file__ = str(tmp_path / "level1_simple_timer.py")
    mine = _record("cronkata_target_x", "heartbeat", module.__file__)
    root = _record("root", "heartbeat", module.__file__)
    library = _record("apscheduler.scheduler", "Added job", logging.__file__)
    assert own_records([mine, library, root], module) == [mine, root]


def test_quoted_records_are_a_few_short_lines() -> None:
    module = ModuleType("cronkata_target_x")
    records = [_record("cronkata_target_x", f"line {i} " + "x" * 300, "f.py") for i in range(10)]
    text = quote_records(records, module)
    lines = text.splitlines()
    assert len(lines) == 4 and lines[-1] == "  ... and 7 more"
    assert lines[0].startswith("  INFO __name__: line 0 x") and len(lines[0]) < 140
