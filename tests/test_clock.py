"""The virtual clock: frozen, moved only forward, only with aware datetimes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from grader.clock import ClockError, VirtualClock

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_time_is_frozen_until_moved() -> None:
    with VirtualClock(START) as clock:
        first = datetime.now(UTC)
        time.sleep(0.01)  # real time passes; virtual time must not
        assert datetime.now(UTC) == first == START
        clock.advance(timedelta(hours=2))
        assert datetime.now(UTC) == START + timedelta(hours=2)
        assert time.time() == pytest.approx((START + timedelta(hours=2)).timestamp())


def test_moving_with_a_zoned_datetime_keeps_the_process_zone() -> None:
    before = time.tzname
    with VirtualClock(START) as clock:
        clock.move_to(datetime(2026, 1, 6, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
        assert clock.now() == datetime(2026, 1, 6, 1, 0, tzinfo=UTC)
        assert time.tzname == before


def test_rejects_naive_datetimes_and_moving_back() -> None:
    with pytest.raises(ClockError, match="naive"):
        VirtualClock(datetime(2026, 1, 5))
    with VirtualClock(START) as clock, pytest.raises(ClockError, match="back"):
        clock.move_to(START - timedelta(seconds=1))
