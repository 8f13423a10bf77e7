"""Hidden suite of `celery_beat_config` (exercises/level3/celery_beat/beat_config.py).

A real `celery.beat.Scheduler` (see `grader.sim_beat`) runs the learner's schedule for a
virtual week starting Monday 2026-03-02 00:00 in Asia/Shanghai and records every send.
The schedule is read from the module exactly as Celery reads it (`config_from_object`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from numbers import Real
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from grader.feedback import expect, expect_equal, expect_fire_times, fail
from grader.sim_beat import BeatSimulation, beat_app, simulate_beat
from grader.targets import Target
from grader.testing import environment

NOTE = "07c_celery_beat_intro.md"
FILE = "celery_beat/beat_config.py"
SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI).astimezone(UTC)  # a Monday
WEEK = timedelta(days=7)


@pytest.fixture(autouse=True)
def _clean_environment() -> Iterator[None]:
    with environment():
        yield


def _schedule(module: ModuleType) -> dict[str, Any]:
    schedule = module.build_beat_schedule()
    expect(
        isinstance(schedule, dict) and schedule,
        f"build_beat_schedule() should return a non-empty dict; got {schedule!r}",
    )
    return schedule


def _week(module: ModuleType) -> BeatSimulation:
    """A week of beat on the module's settings with build_beat_schedule()'s entries."""
    app = beat_app(module, beat_schedule=_schedule(module))
    with simulate_beat(app, T0) as sim:
        sim.run_for(WEEK)
    return sim


def _seconds(value: object) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    return None


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#beat-schedule",
    hint="Each entry: {'task': 'cronkata.cleanup', 'schedule': ..., 'options': {...}}; "
    "tasks by their registered names, never imported.",
)
def test_schedule_has_three_entries_naming_their_tasks(target: Target) -> None:
    module = target.load(FILE)
    schedule = _schedule(module)
    expect_equal(
        {name: entry.get("task") for name, entry in schedule.items()},
        {
            module.CLEANUP_ENTRY: "cronkata.cleanup",
            module.REPORT_ENTRY: "cronkata.daily_report",
            module.PURGE_ENTRY: "cronkata.cleanup",
        },
        "entries of build_beat_schedule() (entry name -> task name)",
    )
    expect_equal(
        schedule[module.PURGE_ENTRY].get("kwargs"),
        {"max_age_seconds": module.PURGE_MAX_AGE_SECONDS},
        f"kwargs of the {module.PURGE_ENTRY!r} entry",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#schedules",
    hint="'schedule': timedelta(seconds=CLEANUP_EVERY_SECONDS): the first send is one "
    "period after beat starts.",
)
def test_cleanup_is_sent_every_10_minutes_for_a_week(target: Target) -> None:
    module = target.load(FILE)
    sim = _week(module)
    every = timedelta(seconds=module.CLEANUP_EVERY_SECONDS)
    expected = [T0 + every * k for k in range(1, WEEK // every + 1)]
    expect_fire_times(
        sim.send_times(module.CLEANUP_ENTRY),
        expected,
        what=f"sends of {module.CLEANUP_ENTRY!r} over a week",
        tz=SHANGHAI,
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#crontab",
    hint="crontab(minute=REPORT_MINUTE, hour=REPORT_HOUR) with keywords: positionally "
    "crontab's first argument is the minute.",
)
def test_daily_report_is_sent_at_0800_shanghai_every_day(target: Target) -> None:
    module = target.load(FILE)
    sim = _week(module)
    expected = [
        datetime(2026, 3, day, module.REPORT_HOUR, module.REPORT_MINUTE, tzinfo=SHANGHAI)
        for day in range(2, 9)
    ]
    expect_fire_times(
        sim.send_times(module.REPORT_ENTRY, SHANGHAI),
        expected,
        what=f"sends of {module.REPORT_ENTRY!r} from Monday 2026-03-02 00:00 (Asia/Shanghai)",
        tz=SHANGHAI,
        why="Every day at 08:00 in Asia/Shanghai. 16:00 means the zone was UTC: "
        "is `timezone = TIMEZONE` set? 00:08 means minute and hour were swapped.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#crontab",
    hint="crontab(minute=0, hour=PURGE_HOUR, day_of_week='mon-fri'): Celery counts "
    "day_of_week from Sunday = 0.",
)
def test_purge_is_sent_at_0300_on_weekdays_only(target: Target) -> None:
    module = target.load(FILE)
    sim = _week(module)
    expected = [datetime(2026, 3, day, module.PURGE_HOUR, tzinfo=SHANGHAI) for day in range(2, 7)]
    expect_fire_times(
        sim.send_times(module.PURGE_ENTRY, SHANGHAI),
        expected,
        what=f"sends of {module.PURGE_ENTRY!r} in the week of Monday 2026-03-02 (Asia/Shanghai)",
        tz=SHANGHAI,
        why="Monday to Friday at 03:00, nothing on the weekend.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#options",
    hint="'options': {'queue': MAINTENANCE_QUEUE, ...} in every entry.",
)
def test_every_entry_is_sent_to_the_maintenance_queue(target: Target) -> None:
    module = target.load(FILE)
    sim = _week(module)
    queues = {send.entry: send.options.get("queue") for send in sim.sends}
    expect(sim.sends, "Nothing was sent in a whole week: is the schedule empty?")
    expect_equal(
        queues,
        dict.fromkeys(queues, module.MAINTENANCE_QUEUE),
        "the queue option of each entry's messages",
        "Maintenance work goes to its own queue, so a backlog of it never delays user-facing "
        "tasks (the worker consumes that queue too).",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#options",
    hint="'options': {'expires': seconds}, fewer seconds than the entry's period: a "
    "message that waited longer is stale, the next one is on its way.",
)
def test_every_entry_expires_before_its_next_send(target: Target) -> None:
    module = target.load(FILE)
    sim = _week(module)
    problems = []
    for name in sorted({send.entry for send in sim.sends}):
        sends = sim.sends_of(name)
        gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(sends)]
        period = min(gaps, default=WEEK.total_seconds())
        raw = sends[0].options.get("expires")
        expires = _seconds(raw)
        if expires is None:
            problems.append(f"  {name}: no expires (options: {sends[0].options!r})")
        elif not 0 < expires < period:
            problems.append(f"  {name}: expires {raw!r} s, but it is sent every {period:g} s")
    if problems:
        fail(
            "Each entry needs an `expires` option (seconds) shorter than its period:\n"
            + "\n".join(problems)
            + "\nWithout it, a worker that was down for a day runs the whole backlog at once."
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#beat-schedule",
    hint="At the bottom of the module: beat_schedule = build_beat_schedule(...): Celery reads "
    "the lowercase names of a config module.",
)
def test_celery_reads_the_zone_and_the_schedule_from_the_module(target: Target) -> None:
    module = target.load(FILE)
    built = _schedule(module)
    app = beat_app(module)
    expect_equal(
        str(app.conf.timezone), "Asia/Shanghai", "app.conf.timezone after config_from_object"
    )
    expect_equal(app.conf.enable_utc, True, "app.conf.enable_utc after config_from_object")
    expect_equal(
        sorted(app.conf.beat_schedule or {}),
        sorted(built),
        "entries of app.conf.beat_schedule after app.config_from_object(beat_config)",
        "The module-level `beat_schedule` must be build_beat_schedule(...)'s result.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint="Read os.environ.get(DEMO_ENV) when the module is imported; if set, pass it as "
    "demo_seconds: the cleanup entry then runs every that many seconds.",
)
def test_demo_variable_sends_cleanup_every_2_seconds(target: Target) -> None:
    with environment({"CELERY_BEAT_DEMO_SECONDS": "2"}):
        module = target.load(FILE)
    with simulate_beat(beat_app(module), T0) as sim:
        sim.run_for(10)
    expect_fire_times(
        sim.send_times(module.CLEANUP_ENTRY),
        [T0 + timedelta(seconds=s) for s in (2, 4, 6, 8, 10)],
        what=f"sends of {module.CLEANUP_ENTRY!r} in 10 s with CELERY_BEAT_DEMO_SECONDS=2",
        tz=SHANGHAI,
    )
