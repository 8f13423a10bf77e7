"""The APScheduler driver: real scheduler objects stepped through virtual time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from grader.clock import VirtualClock
from grader.sim_apscheduler import (
    SchedulerSimulation,
    SimulationError,
    running_schedulers,
    simulate,
    stop_leaked_schedulers,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def noop() -> None:
    """A job that does nothing."""


def test_a_week_of_a_daily_0300_shanghai_job_fires_7_times_at_0300_local() -> None:
    with simulate(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) as sim:
        scheduler = BackgroundScheduler(timezone=SHANGHAI)
        scheduler.add_job(noop, "cron", hour=3, minute=0, id="nightly")
        scheduler.start()
        sim.run_for(timedelta(days=7))
    times = sim.fire_times("nightly", SHANGHAI)
    assert len(times) == 7
    assert all((t.hour, t.minute, t.second) == (3, 0, 0) for t in times)
    assert [t.day for t in times] == [2, 3, 4, 5, 6, 7, 8]
    assert not [t for t in threading.enumerate() if t.name == "APScheduler"], "no thread"


def test_new_york_cron_across_spring_forward_moves_0230_to_0330_local() -> None:
    with simulate(datetime(2024, 3, 8, 12, 0, tzinfo=UTC)) as sim:
        scheduler = BackgroundScheduler(timezone=NEW_YORK)
        scheduler.add_job(noop, "cron", hour=2, minute=30, id="j")
        scheduler.start()
        sim.run_until(datetime(2024, 3, 12, 0, 0, tzinfo=UTC))
    assert [str(t) for t in sim.fire_times("j", UTC)] == [
        "2024-03-09 07:30:00+00:00",  # 02:30 EST
        "2024-03-10 07:30:00+00:00",  # 02:30 does not exist: 03:30 EDT
        "2024-03-11 06:30:00+00:00",  # 02:30 EDT
    ]


def test_new_york_cron_in_the_repeated_hour_fires_twice_on_fall_back() -> None:
    with simulate(datetime(2024, 11, 2, 12, 0, tzinfo=UTC)) as sim:
        scheduler = BackgroundScheduler(timezone=NEW_YORK)
        scheduler.add_job(noop, "cron", hour=1, minute=30, id="j")
        scheduler.start()
        sim.run_until(datetime(2024, 11, 4, 12, 0, tzinfo=UTC))
    assert [str(t) for t in sim.fire_times("j", UTC)] == [
        "2024-11-03 05:30:00+00:00",  # 01:30 EDT
        "2024-11-03 06:30:00+00:00",  # 01:30 EST, the same wall time again
        "2024-11-04 06:30:00+00:00",
    ]


def test_a_5_second_interval_over_1_hour_fires_720_times() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    with simulate(start) as sim:
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(noop, "interval", seconds=5, id="tick")
        scheduler.start()
        sim.run_for(timedelta(hours=1))
    times = sim.fire_times("tick")
    assert len(times) == 720
    assert times[0] == start + timedelta(seconds=5)
    assert times[-1] == start + timedelta(hours=1)
    assert all(f.actual == f.scheduled for f in sim.runs("tick")), "runs happen on time"


def test_a_scheduler_left_running_is_detected_and_stopped() -> None:
    with simulate(datetime(2026, 1, 5, tzinfo=UTC)) as sim:
        forgotten = BackgroundScheduler(timezone=UTC)
        forgotten.start()
        tidy = BackgroundScheduler(timezone=UTC)
        tidy.start()
        tidy.shutdown()
    assert sim.leaked == [forgotten]
    assert not forgotten.running


def test_a_real_scheduler_thread_left_running_is_found_and_stopped() -> None:
    scheduler = BackgroundScheduler(timezone=UTC, daemon=False)
    scheduler.start()
    try:
        assert scheduler in running_schedulers()
    finally:
        stopped = stop_leaked_schedulers()
    assert scheduler in stopped
    assert not scheduler.running


def test_blocking_scheduler_start_does_not_block_in_virtual_time() -> None:
    with simulate(datetime(2026, 1, 5, tzinfo=UTC)) as sim:
        scheduler = BlockingScheduler(timezone=UTC)
        scheduler.add_job(noop, "interval", minutes=1, id="m")
        scheduler.start()
        sim.run_for(timedelta(minutes=3))
        scheduler.shutdown()
    assert len(sim.fire_times("m")) == 3


def test_several_schedulers_share_one_clock_and_each_records_its_runs() -> None:
    with simulate(datetime(2026, 1, 5, tzinfo=UTC)) as sim:
        for _ in range(3):
            scheduler = BackgroundScheduler(timezone=UTC)
            scheduler.add_job(noop, "interval", minutes=1, id="same")
            scheduler.start()
        sim.run_for(timedelta(minutes=2))
    assert sorted(f.scheduler for f in sim.runs("same")) == [0, 0, 1, 1, 2, 2]


def test_a_raising_job_is_recorded_as_an_error_and_keeps_its_schedule() -> None:
    def explode() -> None:
        raise RuntimeError("boom")

    with simulate(datetime(2026, 1, 5, tzinfo=UTC)) as sim:
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(explode, "interval", minutes=1, id="bad")
        scheduler.start()
        sim.run_for(timedelta(minutes=2))
    errors = sim.runs("bad", outcome="error")
    assert len(errors) == 2
    assert isinstance(errors[0].exception, RuntimeError)


def test_a_run_later_than_the_grace_time_is_recorded_as_missed() -> None:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    with VirtualClock(start) as clock, SchedulerSimulation(clock) as sim:
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(noop, "date", run_date=start + timedelta(seconds=10), id="once")
        scheduler.start()
        clock.advance(timedelta(minutes=5))  # a jump over the due time: the outage case
        sim.process()
    assert [f.outcome for f in sim.firings] == ["missed"]


def test_a_runaway_schedule_is_stopped_with_a_clear_error() -> None:
    with simulate(datetime(2026, 1, 5, tzinfo=UTC)) as sim:
        sim.max_steps = 100
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(noop, "interval", seconds=1, id="fast")
        scheduler.start()
        with pytest.raises(SimulationError, match="tiny interval"):
            sim.run_for(timedelta(hours=1))
