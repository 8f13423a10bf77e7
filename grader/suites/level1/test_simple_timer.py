"""Hidden suite of `simple_timer` (exercises/level1/level1_simple_timer.py).

The machine's zone is set to America/Los_Angeles while the course asks for
Asia/Shanghai, so a naive datetime or a forgotten `timezone=` shows up as wrong times.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from grader.feedback import expect, expect_equal, expect_fire_times
from grader.sim_apscheduler import expected_series, simulate
from grader.targets import Target
from grader.testing import machine_zone

NOTE = "07a_ap_scheduler_intro.md"
SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, 17:00 (day before) in LA


@pytest.fixture(autouse=True)
def _machine_in_los_angeles() -> Iterator[None]:
    with machine_zone("America/Los_Angeles"):
        yield


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint="Build and configure the scheduler, but let the caller decide when to start() it.",
)
def test_build_scheduler_returns_a_scheduler_that_is_not_started(target: Target) -> None:
    module = target.load()
    with simulate(T0):
        scheduler = module.build_scheduler()
        expect(
            hasattr(scheduler, "add_job") and hasattr(scheduler, "start"),
            f"build_scheduler() returned {scheduler!r}, not an APScheduler scheduler.",
        )
        expect(
            not scheduler.running,
            "build_scheduler() returned a scheduler that is already running: "
            "callers (main(), tests, the FastAPI lifespan) must own start() and shutdown().",
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#interval-trigger",
    hint="IntervalTrigger(seconds=HEARTBEAT_SECONDS) fires at start + 5 s, + 10 s, ...",
)
def test_heartbeat_runs_every_5_seconds_from_start(target: Target) -> None:
    module = target.load()
    with simulate(T0) as sim:
        module.build_scheduler().start()
        sim.run_for(timedelta(seconds=60))
    expected = list(
        expected_series(T0 + timedelta(seconds=5), timedelta(seconds=5), T0 + timedelta(seconds=60))
    )
    expect_fire_times(
        sim.fire_times("heartbeat"),
        expected,
        what="job 'heartbeat' over the first 60 s",
        tz=SHANGHAI,
        why="An interval job first runs one interval after the scheduler starts.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#date-trigger",
    hint="run_date=datetime.now(ZoneInfo(TIMEZONE)) + timedelta(seconds=ONE_SHOT_DELAY_SECONDS)",
)
def test_one_shot_runs_once_10_seconds_after_build(target: Target) -> None:
    module = target.load()
    with simulate(T0) as sim:
        scheduler = module.build_scheduler()
        scheduler.start()
        sim.run_for(timedelta(minutes=2))
        remaining = scheduler.get_job("one_shot")
    missed = sim.runs("one_shot", outcome="missed")
    why = "A date trigger runs exactly once, at an aware datetime."
    if missed:
        late = missed[0].actual - missed[0].scheduled
        why += (
            f" It was scheduled for {missed[0].scheduled.astimezone(SHANGHAI)}, {late} in the past,"
            " so APScheduler reported it missed: was the run date a naive datetime.now()"
            " (the machine's zone) instead of datetime.now(ZoneInfo(TIMEZONE))?"
        )
    expect_fire_times(
        sim.fire_times("one_shot"),
        [T0 + timedelta(seconds=10)],
        what="job 'one_shot'",
        tz=SHANGHAI,
        why=why,
    )
    expect(remaining is None, "After its single run, the date job must be gone from the scheduler.")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#timezone",
    hint="BackgroundScheduler(timezone=ZoneInfo(TIMEZONE)), and a trigger object you build "
    "yourself needs timezone= too: it does not inherit the scheduler's.",
)
def test_scheduler_and_jobs_use_asia_shanghai_not_the_machine_zone(target: Target) -> None:
    module = target.load()
    with simulate(T0):
        scheduler = module.build_scheduler()
        scheduler.start(paused=True)
        zones = {
            job.id: str(getattr(job.next_run_time, "tzinfo", None)) for job in scheduler.get_jobs()
        }
    expect_equal(
        str(scheduler.timezone),
        "Asia/Shanghai",
        "the scheduler's time zone",
        "This machine runs in America/Los_Angeles; without timezone= APScheduler uses it.",
    )
    expect_equal(
        zones,
        {"heartbeat": "Asia/Shanghai", "one_shot": "Asia/Shanghai"},
        "the zone each job's next_run_time is expressed in",
        "A job's times are shown in its trigger's zone; this machine is in America/Los_Angeles.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint="add_job(heartbeat, ...) and add_job(one_shot, ...): the module's own functions.",
)
def test_jobs_call_the_module_functions_that_log(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    module = target.load()
    caplog.set_level(logging.INFO)
    with simulate(T0) as sim:
        scheduler = module.build_scheduler()
        jobs = {job.id: job.func for job in scheduler.get_jobs()}
        scheduler.start()
        sim.run_for(timedelta(seconds=10))
    expect_equal(
        jobs,
        {"heartbeat": module.heartbeat, "one_shot": module.one_shot},
        "the jobs of build_scheduler() (id -> function)",
    )
    messages = " | ".join(r.getMessage() for r in caplog.records)
    expect("heartbeat" in messages, f"heartbeat() should log 'heartbeat'; logged: {messages!r}")
    expect("one-shot" in messages, f"one_shot() should log 'one-shot'; logged: {messages!r}")
