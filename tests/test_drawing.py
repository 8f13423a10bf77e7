"""grader.drawing: deterministic Hypothesis settings and the strategies' guarantees."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grader import drawing
from grader.drawing import (
    DST_ZONES,
    NearTransition,
    blank,
    deterministic,
    dst_transitions,
    int_edges,
    int_outside,
    near_dst,
    padded,
    utc_instants,
    zones,
)
from grader.plugin import describe_failure

T = TypeVar("T")


def draws(strategy: st.SearchStrategy[T], count: int = 200) -> list[T]:
    """Every example a deterministic ``@given`` draws from ``strategy`` in ``count`` runs."""
    seen: list[T] = []

    @deterministic(max_examples=count)
    @given(strategy)
    def collect(value: T) -> None:
        seen.append(value)

    collect()
    return seen


def test_deterministic_settings_are_derandomized_quiet_and_bounded() -> None:
    chosen = deterministic(max_examples=40)
    assert chosen.derandomize is True and chosen.database is None and chosen.deadline is None
    assert chosen.print_blob is False and chosen.max_examples == 40
    assert chosen.report_multiple_bugs is False
    with pytest.raises(ValueError, match="max_examples"):
        deterministic(max_examples=drawing.MAX_EXAMPLES + 1)
    with pytest.raises(ValueError, match="max_examples"):
        deterministic(max_examples=0)


def test_the_same_test_draws_the_same_examples_on_every_run() -> None:
    assert draws(utc_instants(), 50) == draws(utc_instants(), 50)


def test_the_examples_do_not_depend_on_the_learners_constants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = st.integers(0, 10**7)
    before = draws(strategy)
    (tmp_path / "learner_constants.py").write_text("LIMITS = (987654, 424242, 8675309, 31337)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "learner_constants", raising=False)
    learner = importlib.import_module("learner_constants")
    after = draws(strategy)
    assert after == before
    assert not set(after) & set(learner.LIMITS)


def test_utc_instants_are_aware_utc_in_range_and_cover_every_weekday_and_hour() -> None:
    seen = draws(utc_instants(), 200)
    assert all(t.tzinfo is UTC and drawing.UTC_START <= t < drawing.UTC_END for t in seen)
    assert {t.weekday() for t in seen} == set(range(7))
    assert len({t.hour for t in seen}) >= 20  # spread over the day, not bunched at midnight
    one_day = utc_instants(drawing.UTC_START, drawing.UTC_START + timedelta(days=1), "hour")
    assert sorted(t.hour for t in draws(one_day, 100)) == list(range(24))  # each is reachable
    assert len({t.year for t in seen}) == 3
    assert any(t.second != 0 for t in seen)


def test_utc_instants_respect_the_resolution_and_bounds() -> None:
    start, end = datetime(2025, 3, 1, 12, tzinfo=UTC), datetime(2025, 3, 4, 6, tzinfo=UTC)
    minutes = draws(utc_instants(start, end, resolution="minute"), 150)
    assert all(t.second == 0 and t.microsecond == 0 and start <= t < end for t in minutes)
    assert any(t.minute != 0 for t in minutes)
    hours = draws(utc_instants(resolution="hour"), 100)
    assert all(t.minute == 0 and t.second == 0 for t in hours)
    with pytest.raises(ValueError, match="aware UTC"):
        utc_instants(datetime(2025, 1, 1), end)
    with pytest.raises(ValueError, match="resolution"):
        utc_instants(resolution="day")  # type: ignore[arg-type]


def test_dst_transitions_are_the_instants_the_offset_changes() -> None:
    for zone in DST_ZONES:
        found = dst_transitions(zone)
        assert len(found) == 6, zone  # twice a year, 2024-2026
        tz = ZoneInfo(zone)
        for t in found:
            before = (t - timedelta(seconds=1)).astimezone(tz).utcoffset()
            assert before != t.astimezone(tz).utcoffset(), (zone, t)
    # an independent fact: New York sprang forward at 2024-03-10 02:00 EST = 07:00 UTC
    assert dst_transitions("America/New_York")[0] == datetime(2024, 3, 10, 7, tzinfo=UTC)
    assert dst_transitions("Asia/Shanghai") == () and dst_transitions("UTC") == ()


def test_near_dst_lands_within_the_window_on_both_sides_in_every_zone() -> None:
    window = timedelta(hours=2)
    seen: list[NearTransition] = draws(near_dst(within=window), 200)
    assert all(abs(n.instant - n.transition) <= window for n in seen)
    assert all(n.instant.tzinfo is UTC and n.instant.second == 0 for n in seen)
    assert all(n.transition in dst_transitions(n.zone.key) for n in seen)
    assert any(n.instant < n.transition for n in seen) and any(
        n.instant > n.transition for n in seen
    )
    assert {n.zone.key for n in seen} == set(DST_ZONES)
    assert {n.spring_forward for n in seen} == {True, False}
    with pytest.raises(ValueError, match="no DST transition"):
        near_dst(zones=("Asia/Shanghai",))


def test_spring_forward_is_told_from_fall_back() -> None:
    spring, fall = dst_transitions("Europe/Berlin")[:2]
    berlin = ZoneInfo("Europe/Berlin")
    assert NearTransition(berlin, spring, spring).spring_forward
    assert not NearTransition(berlin, fall, fall).spring_forward
    sydney_first = dst_transitions("Australia/Sydney")[0]  # April: the southern autumn
    assert not NearTransition(
        ZoneInfo("Australia/Sydney"), sydney_first, sydney_first
    ).spring_forward


def test_zones_with_and_without_dst() -> None:
    with_dst = {z.key for z in draws(zones(dst=True), 60)}
    without = {z.key for z in draws(zones(dst=False), 60)}
    every = {z.key for z in draws(zones(), 100)}
    assert with_dst == set(DST_ZONES) and all(dst_transitions(z) for z in with_dst)
    assert {"UTC", "Asia/Shanghai"} <= without and not any(dst_transitions(z) for z in without)
    assert every == with_dst | without


def test_int_edges_are_the_inclusive_extremes_and_their_neighbours() -> None:
    assert set(draws(int_edges(1, 10), 50)) == {1, 2, 9, 10}
    assert set(draws(int_edges(5, 5), 20)) == {5}
    assert set(draws(int_outside(1, 10), 20)) == {0, 11}
    with pytest.raises(ValueError, match="empty range"):
        int_edges(3, 2)


def test_env_strings_pad_with_whitespace_or_say_nothing() -> None:
    seen = draws(padded("Asia/Shanghai"), 80)
    assert all(s.strip() == "Asia/Shanghai" for s in seen)
    assert any(s[0].isspace() for s in seen) and any(s[-1].isspace() for s in seen)
    assert "Asia/Shanghai" in seen
    empties = set(draws(blank(), 40))
    assert "" in empties and all(not s.strip() for s in empties) and len(empties) > 2


class _Item:
    """The little of a pytest item describe_failure reads outside a hidden suite."""

    def getparent(self, cls: type) -> Any:
        return None


def _failure_of(test: Callable[[], None]) -> pytest.ExceptionInfo[BaseException]:
    with pytest.raises(AssertionError) as excinfo:
        test()
    return excinfo


def test_a_failure_message_shows_the_smallest_falsifying_example() -> None:
    @deterministic(max_examples=100)
    @given(seconds=st.integers(0, 10_000))
    def check(seconds: int) -> None:
        assert seconds < 3600, f"a delay of {seconds} s is an hour or more"

    message = describe_failure(_Item(), _failure_of(check))  # type: ignore[arg-type]
    assert message.startswith("a delay of 3600 s is an hour or more")
    notes = message.split("\n", 1)[1]
    assert "check(\n    seconds=3600,\n)" in notes  # Hypothesis's note: the smallest case
    assert "reproduce_failure" not in message and "@seed" not in message


def _raised(error: BaseException) -> pytest.ExceptionInfo[BaseException]:
    try:
        raise error
    except BaseException as caught:
        return pytest.ExceptionInfo.from_exception(caught)


def test_describe_failure_appends_every_note_of_the_error() -> None:
    error = AssertionError("expected 3 runs, got 2")
    error.add_note("Falsifying example: check(n=1)")
    error.add_note("second note")
    message = describe_failure(_Item(), _raised(error))  # type: ignore[arg-type]
    assert message.splitlines()[0] == "expected 3 runs, got 2"
    assert message.endswith("\nFalsifying example: check(n=1)\nsecond note")
    plain = describe_failure(_Item(), _raised(AssertionError("x")))  # type: ignore[arg-type]
    assert "note" not in plain and plain.startswith("x\n  at tests/test_drawing.py")
