"""Hidden suite of `celery_beat_config` (exercises/level3/celery_beat/beat_config.py).

A real `celery.beat.Scheduler` (see `grader.sim_beat`) runs the learner's schedule in
virtual time and records every send. Start instants are drawn (Hypothesis, derandomized)
over a whole week of Asia/Shanghai wall-clock time, not only Monday 00:00 (where a
``*/10`` crontab and a 10 minute interval coincide). Crontab sends are compared with the
reference solution's, simulated from the same instant. Asia/Shanghai has no DST.
The schedule is read from the module exactly as Celery reads it (`config_from_object`).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from numbers import Real
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from grader import paths
from grader.drawing import deterministic
from grader.feedback import expect, expect_equal, expect_fire_times, fail
from grader.sim_beat import BeatSimulation, beat_app, simulate_beat
from grader.targets import LoadError, Target, load_file, module_name_for
from grader.testing import environment

NOTE = "07c_celery_beat_intro.md"
FILE = "celery_beat/beat_config.py"
SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI).astimezone(UTC)  # a Monday
WEEK = timedelta(days=7)
# Beat sleeps until the next due entry (no 5-minute wake-ups): fewer ticks, same sends.
EXACT_SLEEP = {"beat_max_loop_interval": 7 * 24 * 3600}

DRAWN = deterministic(max_examples=10)
# Any second of a week in Asia/Shanghai, Monday 00:00 included.
START_OFFSETS = st.integers(min_value=0, max_value=7 * 24 * 3600 - 1)
# demo_seconds: whole seconds (an int) or quarter seconds (a float), 0.5 s .. 1 h.
DEMO_SECONDS = st.one_of(
    st.integers(min_value=1, max_value=3600), st.integers(2, 4 * 3600).map(lambda n: n / 4)
)
# CELERY_BEAT_DEMO_SECONDS values the stub rejects (0.5 .. 86400 s), and its two edges.
BAD_DEMO_VALUES = ["nan", "inf", "-inf", "1e-9", "0", "-2", "0.25", "86401", "1e12", "2s"]
EDGE_DEMO_VALUES = ["0.5", "86400"]


@contextmanager
def grading_conditions() -> Iterator[None]:
    """Every test (and the import of the file): no course variable set."""
    with environment():
        yield


@cache
def _reference() -> ModuleType:
    with environment():
        return load_file(paths.SOLUTIONS_DIR / FILE, "the reference beat_config.py")


def _schedule(module: ModuleType, *args: Any) -> dict[str, Any]:
    schedule = module.build_beat_schedule(*args)
    expect(
        isinstance(schedule, dict) and schedule,
        f"build_beat_schedule({', '.join(map(repr, args))}) should return a non-empty dict; "
        f"got {schedule!r}",
    )
    return dict(schedule)


def _entry(module: ModuleType, name: str, *args: Any) -> dict[str, Any]:
    schedule = _schedule(module, *args)
    expect(name in schedule, f"build_beat_schedule() has no entry {name!r}: {sorted(schedule)}")
    return dict(schedule[name])


def _start(offset: int) -> datetime:
    return T0 + timedelta(seconds=offset)


def _run(config: ModuleType, entries: dict[str, Any], start: datetime, span: timedelta) -> Any:
    app = beat_app(config, beat_schedule=entries, **EXACT_SLEEP)
    with simulate_beat(app, start) as sim:
        sim.run_until(start + span)
    return sim


def _sends_like_reference(
    target: Target, name: str, start: datetime, span: timedelta, why: str
) -> None:
    module = target.load(FILE)
    reference = _reference()
    mine = _run(module, {name: _entry(module, name)}, start, span)
    theirs = _run(reference, {name: _entry(reference, name)}, start, span)
    local = start.astimezone(SHANGHAI).strftime("%a %Y-%m-%d %H:%M:%S")
    expect_fire_times(
        mine.send_times(name, SHANGHAI),
        theirs.send_times(name, SHANGHAI),
        what=f"sends of {name!r} when beat starts {local} (Asia/Shanghai), for {span}",
        tz=SHANGHAI,
        why=why,
    )


def _week(module: ModuleType) -> BeatSimulation:
    """Monday and Tuesday of beat (every entry sent at least twice) with
    build_beat_schedule()'s entries on the module's settings."""
    app = beat_app(module, beat_schedule=_schedule(module), **EXACT_SLEEP)
    with simulate_beat(app, T0) as sim:
        sim.run_for(timedelta(days=2))
    return sim


def _seconds(value: object) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    return None


def _load_with_demo_env(target: Target, value: str) -> ModuleType:
    with environment({"CELERY_BEAT_DEMO_SECONDS": value}):
        return target.load(FILE)


def _import_with_demo_env(target: Target, value: str) -> ModuleType | BaseException:
    """A fresh import of the file with the variable set: the module, or what it raised."""
    path = target.path(FILE)
    try:
        with environment({"CELERY_BEAT_DEMO_SECONDS": value}):
            return load_file(path, target.shown(FILE))
    except LoadError as error:
        return error.__cause__ or error
    finally:
        sys.modules.pop(module_name_for(path), None)  # the next import runs the file again


# -- the entries ----------------------------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#beat-schedule",
    hint="Each entry: {'task': 'cronkata.cleanup', 'schedule': ..., 'options': {...}}; "
    "tasks by their registered names, never imported.",
    timeout=10,
    spec=("three-entries", "tasks-by-name"),
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
        "Beat sends a task by its registered name (a string), never the function object.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#schedules",
    hint="'schedule': timedelta(seconds=CLEANUP_EVERY_SECONDS): the first send is one "
    "period after beat starts, whatever the hour.",
    timeout=30,
    spec=("cleanup-interval",),
)
@DRAWN
@given(offset=START_OFFSETS)
@example(offset=0)
@example(offset=7 * 60 + 13)
def test_cleanup_is_sent_one_period_after_beat_starts_then_every_period(
    target: Target, offset: int
) -> None:
    module = target.load(FILE)
    start = _start(offset)
    every = timedelta(seconds=module.CLEANUP_EVERY_SECONDS)
    sim = _run(
        module, {module.CLEANUP_ENTRY: _entry(module, module.CLEANUP_ENTRY)}, start, every * 6
    )
    local = start.astimezone(SHANGHAI).strftime("%a %H:%M:%S")
    expect_fire_times(
        sim.send_times(module.CLEANUP_ENTRY),
        [start + every * k for k in range(1, 7)],
        what=f"sends of {module.CLEANUP_ENTRY!r} in the hour after beat starts at {local}",
        tz=SHANGHAI,
        why="An interval entry counts from when beat starts: start + 10 min, + 20 min ... "
        "Sends on the clock's :00/:10/:20 mean a crontab(minute='*/10'), not an interval; "
        "one send every 10 h means timedelta(minutes=...).",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#crontab",
    hint="crontab(minute=REPORT_MINUTE, hour=REPORT_HOUR) with keywords: positionally "
    "crontab's first argument is the minute. The hour is wall-clock time in `timezone`.",
    timeout=30,
    spec=("report-daily-0800",),
)
@DRAWN
@given(offset=START_OFFSETS)
@example(offset=0)
@example(offset=8 * 3600)
def test_daily_report_is_sent_at_0800_shanghai_every_day(target: Target, offset: int) -> None:
    _sends_like_reference(
        target,
        target.load(FILE).REPORT_ENTRY,
        _start(offset),
        timedelta(days=3),
        "Every day at 08:00 in Asia/Shanghai. 16:00 means the zone was UTC (is `timezone` "
        "set?), 00:00 that the hour was converted to UTC by hand, 00:08 that minute and "
        "hour were swapped.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#crontab",
    hint="crontab(minute=0, hour=PURGE_HOUR, day_of_week='mon-fri'): without minute=0 it "
    "runs every minute of that hour; Celery counts day_of_week from Sunday = 0.",
    timeout=30,
    spec=("purge-weekdays-0300",),
)
@DRAWN
@given(offset=START_OFFSETS)
@example(offset=0)
@example(offset=4 * 24 * 3600 + 3 * 3600 + 1)  # Friday 03:00:01: next is Monday
def test_purge_is_sent_at_0300_on_weekdays_only(target: Target, offset: int) -> None:
    _sends_like_reference(
        target,
        target.load(FILE).PURGE_ENTRY,
        _start(offset),
        timedelta(days=4),
        "Monday to Friday at 03:00, once, nothing on the weekend. 60 sends a day: "
        "crontab(hour=3) without minute=0 means every minute of hour 3. Sunday but no "
        "Friday: day_of_week counts from Sunday = 0, so '0-4' is Sunday to Thursday.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#beat-schedule",
    hint="'kwargs': {'max_age_seconds': PURGE_MAX_AGE_SECONDS} in the purge entry.",
    timeout=10,
    spec=("purge-kwargs",),
)
def test_purge_sends_cleanup_with_its_max_age(target: Target) -> None:
    module = target.load(FILE)
    sim = _week(module)
    sends = sim.sends_of(module.PURGE_ENTRY)
    expect(sends, f"{module.PURGE_ENTRY!r} was never sent on Monday and Tuesday.")
    expect_equal(
        sorted({(s.task, tuple(s.args), tuple(sorted(s.kwargs.items()))) for s in sends}),
        [("cronkata.cleanup", (), (("max_age_seconds", module.PURGE_MAX_AGE_SECONDS),))],
        f"(task, args, kwargs) of the {module.PURGE_ENTRY!r} messages",
        "Without the kwargs cleanup runs with its own default (3600 s), not the purge's 600 s.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#options",
    hint="'options': {'queue': MAINTENANCE_QUEUE, ...} in every entry.",
    timeout=10,
    spec=("maintenance-queue",),
)
def test_every_entry_is_sent_to_the_maintenance_queue(target: Target) -> None:
    module = target.load(FILE)
    sim = _week(module)
    queues = {send.entry: send.options.get("queue") for send in sim.sends}
    expect(sim.sends, "Nothing was sent in two days: is the schedule empty?")
    expect_equal(
        queues,
        dict.fromkeys(queues, module.MAINTENANCE_QUEUE),
        "the queue option of each entry's messages",
        "Each entry names its queue itself: task_routes belong to the tasks app, and beat "
        "settings must not depend on them. Maintenance work has its own queue, so a backlog "
        "of it never delays user-facing tasks.",
    )


def _expiry_problems(sim: BeatSimulation) -> list[str]:
    problems = []
    for name in sorted({send.entry for send in sim.sends}):
        sends = sim.sends_of(name)
        gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(sends)]
        period = min(gaps, default=WEEK.total_seconds())
        raw = sends[0].options.get("expires")
        expires = _seconds(raw)
        if expires is None:
            problems.append(f"  {name}: no expires in seconds (options: {sends[0].options!r})")
        elif not 0 < expires < period:
            problems.append(f"  {name}: expires {raw!r} s, but it is sent every {period:g} s")
    return problems


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#options",
    hint="'options': {'expires': seconds}, fewer seconds than the entry's period: a "
    "message that waited longer is stale, the next one is on its way.",
    timeout=10,
    spec=("expires-before-next-send",),
)
def test_every_entry_expires_before_its_next_send(target: Target) -> None:
    problems = _expiry_problems(_week(target.load(FILE)))
    if problems:
        fail(
            "Each entry needs an `expires` option (seconds) strictly shorter than its period:\n"
            + "\n".join(problems)
            + "\nWithout it, a worker that was down for a day runs the whole backlog at once; "
            "expires equal to the period lets a stale message overlap the next one."
        )


# -- demo_seconds and the environment -------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#schedules",
    hint="build_beat_schedule(demo_seconds): timedelta(seconds=demo_seconds) for the cleanup "
    "entry when it is given; build_beat_schedule reads only its argument.",
    timeout=30,
    spec=("demo-seconds-period",),
)
@DRAWN
@given(demo=DEMO_SECONDS, offset=START_OFFSETS)
@example(demo=2, offset=0)
@example(demo=2.5, offset=0)
def test_demo_seconds_replace_the_cleanup_period(target: Target, demo: float, offset: int) -> None:
    module = target.load(FILE)
    start = _start(offset)
    schedule = _schedule(module, demo)
    every = timedelta(seconds=demo)
    sim = _run(module, {module.CLEANUP_ENTRY: schedule.get(module.CLEANUP_ENTRY)}, start, every * 3)
    expect_fire_times(
        sim.send_times(module.CLEANUP_ENTRY),
        [start + every * k for k in (1, 2, 3)],
        what=f"sends of {module.CLEANUP_ENTRY!r} with build_beat_schedule({demo!r}), "
        f"over {every * 3}",
        tz=SHANGHAI,
        why="demo_seconds replaces CLEANUP_EVERY_SECONDS as the cleanup entry's period "
        "(an int or a float); build_beat_schedule must use its argument, not the environment.",
    )
    reference = _schedule(_reference(), demo)
    others = sorted(set(reference) - {module.CLEANUP_ENTRY})
    changed = [
        f"  {name}: {(schedule.get(name) or {}).get('schedule')!r}, "
        f"expected {reference[name]['schedule']!r}"
        for name in others
        if (schedule.get(name) or {}).get("schedule") != reference[name]["schedule"]
    ]
    expect(
        not changed,
        f"build_beat_schedule({demo!r}) changed other entries' schedules:\n"
        + "\n".join(changed)
        + "\ndemo_seconds changes the cleanup entry only.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#options",
    hint="With demo_seconds the cleanup entry's expires must shrink too: e.g. half the period.",
    timeout=30,
    spec=("demo-expires-shorter",),
)
@DRAWN
@given(demo=DEMO_SECONDS)
@example(demo=2)
@example(demo=0.5)
def test_demo_cleanup_expires_before_its_next_send(target: Target, demo: float) -> None:
    module = target.load(FILE)
    options = _entry(module, module.CLEANUP_ENTRY, demo).get("options") or {}
    expires = _seconds(options.get("expires"))
    expect(
        expires is not None and 0 < expires < demo,
        f"build_beat_schedule({demo!r}): the cleanup entry is sent every {demo!r} s but its "
        f"options are {options!r}: expires must be a number of seconds in (0, {demo!r}).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#beat-schedule",
    hint="At the bottom of the module: beat_schedule = build_beat_schedule(...): Celery reads "
    "the lowercase names of a config module.",
    timeout=10,
    spec=("celery-reads-module-settings",),
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
    hint="float(os.environ[DEMO_ENV]) when it is set: '2.5' is a valid number of seconds "
    "(int('2.5') raises ValueError).",
    timeout=10,
    spec=("demo-env-float",),
)
def test_demo_variable_with_a_fraction_sends_cleanup_every_2_5_seconds(target: Target) -> None:
    module = _load_with_demo_env(target, "2.5")
    with simulate_beat(beat_app(module), T0) as sim:
        sim.run_for(10)
    expect_fire_times(
        sim.send_times(module.CLEANUP_ENTRY),
        [T0 + timedelta(seconds=s) for s in (2.5, 5, 7.5, 10)],
        what=f"sends of {module.CLEANUP_ENTRY!r} in 10 s with CELERY_BEAT_DEMO_SECONDS=2.5 "
        "(app.config_from_object(beat_config))",
        tz=SHANGHAI,
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint="Check the float before building: math.isfinite(x) and DEMO_MIN_SECONDS <= x <= "
    "DEMO_MAX_SECONDS (NaN fails every comparison, so `if x <= 0: raise` lets it through), "
    "else raise ValueError(f'{DEMO_ENV} ...'); float('2s')'s own error does not name it.",
    timeout=10,
    spec=("demo-env-validated",),
)
def test_a_demo_variable_beat_cannot_use_fails_the_import_naming_it(target: Target) -> None:
    for value in BAD_DEMO_VALUES:
        outcome = _import_with_demo_env(target, value)
        setting = f"CELERY_BEAT_DEMO_SECONDS={value!r}"
        if isinstance(outcome, ModuleType):
            fail(
                f"With {setting} the module imported (beat_schedule: "
                f"{getattr(outcome, 'beat_schedule', None)!r}): beat would flood the broker or "
                "crash. Reject anything but a number from 0.5 to 86400 with a ValueError."
            )
        expect(
            isinstance(outcome, ValueError) and "CELERY_BEAT_DEMO_SECONDS" in str(outcome),
            f"With {setting} importing the module raised {type(outcome).__name__}: {outcome}\n"
            "Expected a ValueError whose message names CELERY_BEAT_DEMO_SECONDS, so whoever "
            "starts beat knows which variable to fix.",
        )
    for value in EDGE_DEMO_VALUES:
        outcome = _import_with_demo_env(target, value)
        expect(
            isinstance(outcome, ModuleType),
            f"CELERY_BEAT_DEMO_SECONDS={value!r} is within 0.5 .. 86400 (both accepted), but "
            f"importing the module raised {type(outcome).__name__}: {outcome}",
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint="An empty variable counts as unset: os.environ.get(DEMO_ENV) or None, then "
    "build_beat_schedule(None) keeps the 10 minute cleanup.",
    timeout=10,
    spec=("demo-env-empty-is-unset",),
)
def test_empty_demo_variable_keeps_the_10_minute_cleanup(target: Target) -> None:
    module = _load_with_demo_env(target, "")
    with simulate_beat(beat_app(module, **EXACT_SLEEP), T0) as sim:
        sim.run_for(timedelta(minutes=30))
    every = timedelta(seconds=module.CLEANUP_EVERY_SECONDS)
    expect_fire_times(
        sim.send_times(module.CLEANUP_ENTRY),
        [T0 + every * k for k in (1, 2, 3)],
        what=f"sends of {module.CLEANUP_ENTRY!r} in 30 min with CELERY_BEAT_DEMO_SECONDS='' "
        "(an empty value, as `export CELERY_BEAT_DEMO_SECONDS=` leaves it)",
        tz=SHANGHAI,
    )
