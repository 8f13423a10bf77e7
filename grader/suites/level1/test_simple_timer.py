"""Hidden suite of `simple_timer` (exercises/level1/level1_simple_timer.py).

The machine's zone is never Asia/Shanghai here (America/Los_Angeles by default, other
zones where a scenario draws one), so a naive datetime or a forgotten `timezone=` shows
up as wrong times. The clock is always frozen at UTC instants: moving time-machine to an
aware local datetime would also change the process zone and hide those bugs.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from grader.drawing import deterministic, near_dst, utc_instants
from grader.feedback import (
    expect,
    expect_equal,
    expect_fire_times,
    fail,
    logger_name,
    own_records,
    quote_records,
    upcoming,
)
from grader.sim_apscheduler import expected_series, simulate
from grader.targets import Target
from grader.testing import machine_zone, run_until_waited_for

NOTE = "07a_ap_scheduler_intro.md"
SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, 17:00 (day before) in LA
# Machine zones a scenario runs in: never Asia/Shanghai, west and east of it, with DST.
MACHINE_ZONES = ("America/Los_Angeles", "UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York")
EXAMPLES = 12


def _starts() -> st.SearchStrategy[datetime]:
    """Start instants over three years (every weekday and hour), and near DST changes."""
    return st.one_of(utc_instants(), near_dst(resolution="second").map(lambda n: n.instant))


def scenarios(check: Callable[[datetime, str], None]) -> Callable[[], None]:
    """Run ``check(start, machine_zone)`` for drawn scenarios, T0 in Los Angeles first."""
    return deterministic(EXAMPLES)(
        example(T0, "America/Los_Angeles")(
            given(start=_starts(), zone=st.sampled_from(MACHINE_ZONES))(check)
        )
    )


@contextmanager
def grading_conditions() -> Iterator[None]:
    """Every test (and the import of the file): the machine in Los Angeles."""
    with machine_zone("America/Los_Angeles"):
        yield


def _scenario(start: datetime, zone: str) -> str:
    built = start.astimezone(SHANGHAI)
    return f"(scheduler built at {built:%Y-%m-%d %H:%M:%S %Z}, machine zone {zone})"


# -- the log lines --------------------------------------------------------------------------


def _records_of(
    function: Callable[[], object], caplog: pytest.LogCaptureFixture
) -> tuple[object, list[logging.LogRecord]]:
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        result = function()
    return result, list(caplog.records)


def _check_one_info_record(
    module: ModuleType,
    name: str,
    word: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result, records = _records_of(getattr(module, name), caplog)
    records = own_records(records, module)  # what a library logs meanwhile is not theirs
    printed = capsys.readouterr().out
    if not records and word in printed:
        fail(f"{name}() printed {printed.strip()!r} instead of logging it: use logger.info(...).")
    expect(
        len(records) == 1,
        f"{name}() should log exactly one record; it logged {len(records)}"
        + (f":\n{quote_records(records, module)}" if records else "."),
    )
    record = records[0]
    expect_equal(record.levelname, "INFO", f"the level of the record {name}() logs")
    expect(
        word in record.getMessage(),
        f"the record {name}() logs should contain {word!r}; it says {record.getMessage()!r}",
    )
    expect(result is None, f"{name}() should return nothing; it returned {result!r}")


def _check_module_logger(module: ModuleType, name: str, caplog: pytest.LogCaptureFixture) -> None:
    _, records = _records_of(getattr(module, name), caplog)
    records = own_records(records, module)  # what a library logs meanwhile is not theirs
    own = getattr(getattr(module, "logger", None), "name", None)
    loggers = [r.name for r in records]
    expect(
        loggers == [own],
        f"the logger of the records {name}() writes:\n"
        f"  expected: [{logger_name(str(own), module)!r}] (the module's own logger)\n"
        f"  actual:   {[logger_name(n, module) for n in loggers]!r}\n"
        "Log with the module's `logger = logging.getLogger(__name__)`: logging.info(...) "
        "writes to the root logger, print() bypasses logging altogether.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint='def heartbeat() -> None: logger.info("heartbeat"): one call, INFO level.',
    spec=("heartbeat-logs-one-info-record",),
)
def test_heartbeat_logs_one_info_record(
    target: Target, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    _check_one_info_record(target.load(), "heartbeat", "heartbeat", caplog, capsys)


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint="logger.info(...) with the module's logger, not logging.info(...) or print().",
    spec=("heartbeat-uses-module-logger",),
)
def test_heartbeat_logs_with_the_module_logger(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    _check_module_logger(target.load(), "heartbeat", caplog)


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint='def one_shot() -> None: logger.info("one-shot ..."): one call, INFO level.',
    spec=("one-shot-logs-one-info-record",),
)
def test_one_shot_logs_one_info_record(
    target: Target, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    _check_one_info_record(target.load(), "one_shot", "one-shot", caplog, capsys)


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint="logger.info(...) with the module's logger, not logging.info(...) or print().",
    spec=("one-shot-uses-module-logger",),
)
def test_one_shot_logs_with_the_module_logger(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    _check_module_logger(target.load(), "one_shot", caplog)


# -- build_scheduler ------------------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint="Build and configure the scheduler, but let the caller decide when to start() it.",
    spec=("not-started",),
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
            "build_scheduler() returned a scheduler that is already running (even paused): "
            "callers (main(), tests, the FastAPI lifespan) must own start() and shutdown().",
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint='add_job(heartbeat, ..., id="heartbeat") and add_job(one_shot, ..., id="one_shot").',
    spec=("two-jobs-by-id",),
)
def test_jobs_call_the_module_functions_that_log(target: Target) -> None:
    module = target.load()
    with simulate(T0):
        scheduler = module.build_scheduler()
        jobs = {job.id: getattr(job, "func", None) for job in scheduler.get_jobs()}
    expect_equal(
        jobs,
        {"heartbeat": module.heartbeat, "one_shot": module.one_shot},
        "the jobs of build_scheduler() (id -> function)",
        "Without id= APScheduler makes up a UUID: the job cannot be found, changed or "
        "replaced by name.",
    )


def _check_heartbeat_series(module: ModuleType, start: datetime, zone: str) -> None:
    with machine_zone(zone), simulate(start) as sim:
        scheduler = module.build_scheduler()
        scheduler.start()
        sim.run_for(timedelta(seconds=60))
        later = upcoming(sim, "heartbeat")  # its runs after the window, for the message
        scheduler.shutdown()
    step = timedelta(seconds=module.HEARTBEAT_SECONDS)
    expected = list(expected_series(start + step, step, start + timedelta(seconds=60)))
    expect_fire_times(
        sim.fire_times("heartbeat"),
        expected,
        what="job 'heartbeat' over the first 60 s",
        tz=SHANGHAI,
        start=start,
        later=later,
        why=f"An interval job runs exactly every HEARTBEAT_SECONDS seconds (no jitter) "
        f"{_scenario(start, zone)}.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#interval-trigger",
    hint="IntervalTrigger(seconds=HEARTBEAT_SECONDS) fires at start + 5 s, + 10 s, ...",
    spec=("heartbeat-every-5-seconds",),
)
def test_heartbeat_runs_every_5_seconds_from_start(target: Target) -> None:
    module = target.load()

    def heartbeat_scenario(start: datetime, zone: str) -> None:
        _check_heartbeat_series(module, start, zone)

    scenarios(heartbeat_scenario)()


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#interval-trigger",
    hint="Do not pass next_run_time=now: an interval job's first run is now + interval.",
    spec=("first-run-after-interval",),
)
def test_heartbeat_first_run_is_one_interval_after_start(target: Target) -> None:
    module = target.load()

    def first_run_scenario(start: datetime, zone: str) -> None:
        with machine_zone(zone), simulate(start) as sim:
            scheduler = module.build_scheduler()
            scheduler.start()
            sim.run_for(timedelta(seconds=module.HEARTBEAT_SECONDS))
            scheduler.shutdown()
        first = sim.fire_times("heartbeat")[:1]
        expect_fire_times(
            first,
            [start + timedelta(seconds=module.HEARTBEAT_SECONDS)],
            what=f"the first run of job 'heartbeat' {_scenario(start, zone)}",
            tz=SHANGHAI,
            why="An interval job first runs one interval after the scheduler starts, not at once.",
        )

    scenarios(first_run_scenario)()


def _check_one_shot(module: ModuleType, start: datetime, zone: str) -> None:
    with machine_zone(zone), simulate(start) as sim:
        scheduler = module.build_scheduler()
        scheduler.start()
        sim.run_for(timedelta(seconds=40))
        remaining = scheduler.get_job("one_shot")
        later = upcoming(sim, "one_shot")  # a run after the window, for the message
        scheduler.shutdown()
    missed = sim.runs("one_shot", outcome="missed")
    why = "A date trigger runs exactly once, ONE_SHOT_DELAY_SECONDS after build_scheduler()."
    if missed:
        late = missed[0].actual - missed[0].scheduled
        why += (
            f" It was scheduled for {missed[0].scheduled.astimezone(SHANGHAI)}, {late} in the past,"
            " so APScheduler reported it missed: was the run date a naive datetime.now() or"
            " datetime.utcnow() instead of datetime.now(ZoneInfo(TIMEZONE))?"
        )
    expect_fire_times(
        sim.fire_times("one_shot"),
        [start + timedelta(seconds=module.ONE_SHOT_DELAY_SECONDS)],
        what=f"job 'one_shot' {_scenario(start, zone)}",
        tz=SHANGHAI,
        why=why,
        start=start,
        later=later,
    )
    expect(remaining is None, "After its single run, the date job must be gone from the scheduler.")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#date-trigger",
    hint="run_date=datetime.now(ZoneInfo(TIMEZONE)) + timedelta(seconds=ONE_SHOT_DELAY_SECONDS), "
    "computed inside build_scheduler().",
    spec=("one-shot-after-delay",),
)
def test_one_shot_runs_once_10_seconds_after_build(target: Target) -> None:
    module = target.load()

    def one_shot_scenario(start: datetime, zone: str) -> None:
        _check_one_shot(module, start, zone)

    scenarios(one_shot_scenario)()


def _trigger_zone(job: Any) -> str:
    return str(getattr(getattr(job, "trigger", None), "timezone", None))


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#timezone",
    hint="BackgroundScheduler(timezone=ZoneInfo(TIMEZONE)).",
    spec=("scheduler-zone",),
)
def test_scheduler_zone_is_asia_shanghai(target: Target) -> None:
    module = target.load()
    with simulate(T0):
        scheduler = module.build_scheduler()
    expect_equal(
        str(scheduler.timezone),
        "Asia/Shanghai",
        "the scheduler's time zone",
        "This machine runs in America/Los_Angeles; without timezone= APScheduler uses it.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#timezone",
    hint="A trigger object you build yourself needs timezone= too: IntervalTrigger(..., "
    "timezone=tz) does not inherit the scheduler's zone.",
    spec=("heartbeat-trigger-zone",),
)
def test_heartbeat_trigger_is_in_asia_shanghai(target: Target) -> None:
    module = target.load()
    with simulate(T0):
        scheduler = module.build_scheduler()
        scheduler.start(paused=True)
        job = scheduler.get_job("heartbeat")
        seen = {"trigger": _trigger_zone(job), "next_run_time": str(job.next_run_time.tzinfo)}
        scheduler.shutdown()
    expect_equal(
        seen,
        {"trigger": "Asia/Shanghai", "next_run_time": "Asia/Shanghai"},
        "the zone of job 'heartbeat' (its trigger, its next_run_time)",
        "This machine runs in America/Los_Angeles: IntervalTrigger(...) without timezone= uses it.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#timezone",
    hint="run_date=datetime.now(ZoneInfo(TIMEZONE)) + ...: aware, and in the TIMEZONE zone.",
    spec=("one-shot-aware-run-date",),
)
def test_one_shot_run_date_is_aware_in_asia_shanghai(target: Target) -> None:
    module = target.load()
    with simulate(T0):
        scheduler = module.build_scheduler()
        trigger = getattr(scheduler.get_job("one_shot"), "trigger", None)
    run_date = getattr(trigger, "run_date", None)
    expect(
        isinstance(run_date, datetime),
        f"job 'one_shot' should have a date trigger with a run_date; its trigger is {trigger!r}",
    )
    assert isinstance(run_date, datetime)
    expect_equal(
        str(run_date.tzinfo),
        "Asia/Shanghai",
        f"the zone of the one-shot's run date ({run_date.isoformat()})",
        "Build it with datetime.now(ZoneInfo(TIMEZONE)): datetime.now(timezone.utc) is the "
        "right instant in the wrong zone, a naive datetime.now() is the machine's wall clock.",
    )


# -- main -----------------------------------------------------------------------------------


class _MainRun:
    """Runs ``main()`` with ``build_scheduler`` wrapped, to see the scheduler it builds."""

    def __init__(self, module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
        self.module = module
        self.schedulers: list[Any] = []
        self.slow_started = threading.Event()
        self.slow_finished = threading.Event()
        self.started = threading.Event()  # start() returned (set only with a slow job)
        self.slow_job = False  # add a job that runs until main() waits for it to finish
        self.returned = threading.Event()  # main() returned or raised
        self.finished_at_return: bool | None = None  # had the slow job finished by then?
        original = module.build_scheduler

        def spy() -> Any:
            scheduler = original()
            self.schedulers.append(scheduler)
            if self.slow_job:
                self._add_slow_job(scheduler)
            return scheduler

        monkeypatch.setattr(module, "build_scheduler", spy)

    def _add_slow_job(self, scheduler: Any) -> None:
        def slow() -> None:
            self.slow_started.set()
            run_until_waited_for(self.returned)
            self.slow_finished.set()

        scheduler.add_job(slow, "date", run_date=datetime.now(UTC), id="grader_slow_job")
        start = scheduler.start

        def start_then_wait_for_the_slow_job(*args: Any, **kwargs: Any) -> Any:
            result = start(*args, **kwargs)
            self.slow_started.wait(5)
            self.started.set()
            return result

        scheduler.start = start_then_wait_for_the_slow_job

    def mark_returned(self) -> None:
        """Note that main() has ended (and whether the slow job had finished by then)."""
        self.finished_at_return = self.slow_finished.is_set()
        self.returned.set()

    def call(self, run_seconds: float) -> float:
        started = time.monotonic()
        try:
            self.module.main(run_seconds=run_seconds)
        finally:
            self.mark_returned()
        return time.monotonic() - started

    @property
    def scheduler(self) -> Any:
        expect(
            len(self.schedulers) == 1,
            f"main() should call build_scheduler() once; it called it {len(self.schedulers)} "
            "time(s).",
        )
        return self.schedulers[0]


def _scheduler_threads(settle: float = 0.5) -> list[str]:
    """APScheduler threads still alive after giving them ``settle`` seconds to end.

    A scheduler that was shut down has joined its thread already: this returns at once.
    """
    deadline = time.monotonic() + settle
    for thread in [t for t in threading.enumerate() if t.name.startswith("APScheduler")]:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in threading.enumerate() if t.name.startswith("APScheduler")]


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint="logging.basicConfig(level=logging.INFO) at the start of main().",
    spec=("main-logging-info",),
)
def test_main_configures_logging_at_info(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    module = target.load()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers[:] = []  # as in a fresh `python level1_simple_timer.py`
    root.setLevel(logging.WARNING)
    try:
        _MainRun(module, monkeypatch).call(0.05)
        level, handlers = root.level, root.handlers[:]
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    expect(handlers, "After main() the root logger has no handler: call logging.basicConfig(...).")
    expect_equal(
        logging.getLevelName(level),
        "INFO",
        "the root logger's level after main()",
        "basicConfig() without level= leaves WARNING: the heartbeat's INFO lines are dropped.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint="time.sleep(run_seconds): run_seconds is a float, e.g. 0.5.",
    spec=("main-sleeps-run-seconds",),
)
def test_main_runs_for_run_seconds(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _MainRun(target.load(), monkeypatch)
    elapsed = run.call(0.3)
    expect(
        0.27 <= elapsed < 3.0,
        f"main(run_seconds=0.3) returned after {elapsed:.2f} s: it should run the scheduler for "
        "run_seconds seconds, then stop (int(run_seconds) one-second steps sleep 0 s here).",
    )
    expect(run.scheduler is not None, "main() should build its scheduler with build_scheduler().")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#hello-world",
    hint="After the sleep: scheduler.shutdown(), which stops the scheduler and its thread.",
    spec=("main-stops-scheduler",),
)
def test_main_leaves_no_scheduler_running(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _MainRun(target.load(), monkeypatch)
    run.call(0.05)
    scheduler = run.scheduler
    alive = _scheduler_threads()
    expect(
        not scheduler.running and not alive,
        "When main() returns, its scheduler is still running "
        f"(running={scheduler.running}, threads alive: {alive}): "
        "call scheduler.shutdown() after the sleep.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#hello-world",
    hint="scheduler.shutdown() waits for running jobs; shutdown(wait=False) does not.",
    spec=("main-waits-for-running-jobs",),
)
def test_main_waits_for_a_running_job_before_returning(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _MainRun(target.load(), monkeypatch)
    run.slow_job = True  # a job that is still running when the 0.1 s are over
    run.call(0.1)
    expect(run.slow_started.is_set(), "main() should start the scheduler it built.")
    expect(
        bool(run.finished_at_return),
        "main() returned while a job was still running: shut down with scheduler.shutdown() "
        "(wait=True, the default) so a running job can finish.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#hello-world",
    hint="try: time.sleep(run_seconds) finally: scheduler.shutdown()",
    spec=("main-stops-when-interrupted",),
)
def test_main_stops_the_scheduler_when_interrupted(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = target.load()
    run = _MainRun(module, monkeypatch)
    real_signal = signal.signal
    previous = real_signal(signal.SIGINT, signal.default_int_handler)
    _without_sigint_handlers(module, monkeypatch)

    returned = threading.Event()
    main_thread = threading.get_ident()

    def press_ctrl_c() -> None:  # once main() sleeps: its scheduler runs
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not returned.is_set():
            if run.schedulers and run.schedulers[0].running:
                _wait_until_blocked(main_thread, returned)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.01)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    try:
        run.call(30.0)
    except KeyboardInterrupt:
        pass
    finally:
        returned.set()
        presser.join()
        real_signal(signal.SIGINT, previous)
    scheduler = run.scheduler
    alive = _scheduler_threads()
    expect(
        not scheduler.running and not alive,
        "Ctrl+C (SIGINT) during main()'s sleep left the scheduler running "
        f"(threads alive: {alive}): shut it down in a `finally:` block.",
    )


def _without_sigint_handlers(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make SIGINT handlers that ``module`` installs have no effect: Ctrl+C then raises
    KeyboardInterrupt wherever the main thread waits (the case a `finally:` is for).

    Covers ``signal.signal(...)`` and names bound by ``from signal import signal``.
    """
    real = signal.signal

    def install(signum: int, handler: Any) -> Any:
        if signum == signal.SIGINT:
            return signal.getsignal(signal.SIGINT)
        return real(signum, handler)

    monkeypatch.setattr(signal, "signal", install)
    for name, value in list(vars(module).items()):
        if value is real:
            monkeypatch.setattr(module, name, install)


class _Killed(BaseException):
    """What SIGTERM's default action (SIG_DFL) would have done: kill the process."""


def _wait_until_blocked(ident: int, done: threading.Event, within: float = 5.0) -> None:
    """Return once thread ``ident`` waits in a blocking call (its innermost frame stands
    still between two looks), so a signal finds main() in its wait, not half-way there."""
    deadline = time.monotonic() + within
    last: tuple[Any, int] | None = None
    while time.monotonic() < deadline and not done.is_set():
        frame = sys._current_frames().get(ident)
        here = (frame, frame.f_lasti) if frame is not None else None
        if here is not None and last is not None and here[0] is last[0] and here[1] == last[1]:
            return
        last = here
        done.wait(0.02)


@dataclass
class _SignalledRun:
    """How one ``main(run_seconds=...)`` went when a signal came during its wait."""

    run: _MainRun
    ended: str | None  # None: returned normally; else how it ended
    signalled_after: float | None  # seconds from the call to the signal; None: never sent
    returned_after: float | None  # seconds from the signal to the return


def _main_until_signal(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals, run_seconds: float
) -> _SignalledRun:
    """Call main() in this (the main) thread; once its scheduler runs a slow job and main()
    waits, send ``sig`` to this thread, once, as a shell or systemd does.

    Before the call, SIGINT raises KeyboardInterrupt and SIGTERM kills, as in a fresh
    ``python level1_simple_timer.py``: what main() does not handle shows.
    """
    run = _MainRun(module, monkeypatch)
    run.slow_job = True  # a job still running when the signal comes

    def killed(signum: int, frame: object) -> None:
        raise _Killed(signum)

    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, killed),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
    }
    main_thread = threading.get_ident()
    done = threading.Event()
    sent: list[float] = []

    def send() -> None:
        deadline = time.monotonic() + 8
        while not run.started.wait(0.05):
            if done.is_set() or time.monotonic() > deadline:
                return  # main() ended, or never started a scheduler
        _wait_until_blocked(main_thread, done)
        if not done.is_set():
            sent.append(time.monotonic())
            signal.pthread_kill(main_thread, sig)

    sender = threading.Thread(target=send, daemon=True)
    called = time.monotonic()
    sender.start()
    ended: str | None = None
    try:
        module.main(run_seconds=run_seconds)
    except NotImplementedError:
        raise
    except _Killed:
        ended = "killed"
    except BaseException as error:  # a KeyboardInterrupt, a SystemExit, an error
        ended = f"{type(error).__name__}: {error}".rstrip(": ")
    finally:
        returned = time.monotonic()
        run.mark_returned()
        done.set()
        sender.join(10)
        for number, handler in previous.items():
            signal.signal(number, handler)
    return _SignalledRun(
        run,
        ended,
        sent[0] - called if sent else None,
        returned - sent[0] if sent else None,
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#standalone-process",
    hint="signal.signal(SIGTERM, handler) and signal.signal(SIGINT, handler) where the handler "
    "only does requests.put(signum) on a queue.SimpleQueue; requests.get(timeout=0.5) in a "
    "loop until run_seconds are over, instead of time.sleep; then shutdown() in finally.",
    timeout=40,
    spec=("main-stops-on-signal",),
)
def test_main_stops_cleanly_on_sigterm_and_on_sigint(target: Target) -> None:
    module = target.load()
    run_seconds = 10.0
    for sig in (signal.SIGTERM, signal.SIGINT):
        how = {signal.SIGTERM: "kill -TERM <pid>", signal.SIGINT: "Ctrl+C"}[sig]
        with pytest.MonkeyPatch.context() as patch:  # a fresh build_scheduler spy per run
            result = _main_until_signal(module, patch, sig, run_seconds)
        expect(
            result.signalled_after is not None,
            f"main(run_seconds={run_seconds:g}) never waited with a started scheduler, so no "
            f"{sig.name} could be sent: build the scheduler with build_scheduler(), start it, "
            f"then wait (it {'raised ' + result.ended if result.ended else 'returned'}).",
        )
        if result.ended == "killed":
            fail(
                f"{sig.name} ({how}) found no handler: the process would have died on the "
                "spot, its scheduler never shut down and the job it was running cut off "
                "half-way. Install a handler for SIGTERM and for SIGINT with signal.signal(...)."
            )
        expect(
            result.ended is None,
            f"After {sig.name} ({how}), main() ended with {result.ended} instead of returning: "
            "a stop request is the normal way for this program to end. Let the handler only "
            "hand the request to main() (a queue.SimpleQueue), and return after the shutdown.",
        )
        assert result.returned_after is not None
        expect(
            result.returned_after < 5.0,
            f"main(run_seconds={run_seconds:g}) returned {result.returned_after:.1f} s after "
            f"{sig.name} ({how}): the signal should end the wait at once. time.sleep() "
            "carries on after a handler that only sets a flag or calls shutdown() itself; "
            "wait for what the handler hands over: requests.get(timeout=...) on a "
            "queue.SimpleQueue it puts into.",
        )
        scheduler = result.run.scheduler
        alive = _scheduler_threads()
        expect(
            not scheduler.running and not alive,
            f"After {sig.name} ({how}), main() returned with its scheduler still running "
            f"(running={scheduler.running}, threads alive: {alive}): shut it down after the "
            "wait.",
        )
        expect(
            bool(result.run.finished_at_return),
            f"After {sig.name} ({how}), main() returned while a job was still running: shut "
            "down with scheduler.shutdown() (wait=True, the default) so the job can finish.",
        )
