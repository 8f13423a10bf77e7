"""Hidden suite of `apscheduler_standalone` (exercises/level1/apscheduler/standalone_app.py).

The shutdown tests start the learner's script as a real process and signal it.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from grader.feedback import expect, expect_equal, expect_fire_times
from grader.sim_apscheduler import simulate
from grader.targets import Target
from grader.testing import environment, signal_script

NOTE = "07a_ap_scheduler_intro.md"
FILE = "apscheduler/standalone_app.py"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
EXIT_BOUND = 5.0


def _check_graceful_exit(target: Target, sig: signal.Signals) -> None:
    with environment({"SCHEDULER_TIMEZONE": "UTC"}):
        outcome = signal_script(target.path(FILE), sig, exit_timeout=EXIT_BOUND)
    tail = outcome.output[-1500:]
    expect(
        outcome.seconds_to_exit is not None,
        f"After {sig.name} the process was still running {EXIT_BOUND:g} s later.\nOutput:\n{tail}",
    )
    expect_equal(
        outcome.returncode,
        0,
        f"exit code after {sig.name}",
        f"A negative code means the signal killed it: install a handler.\nOutput:\n{tail}",
    )
    expect(
        "stopped" in outcome.output.lower(),
        f"Log a line containing 'stopped' after the scheduler shut down.\nOutput:\n{tail}",
    )


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#standalone-process",
    hint="signal.signal(signal.SIGTERM, handler): the handler sets a threading.Event "
    "that main() waits on.",
    timeout=30,
)
def test_sigterm_shuts_down_gracefully_with_exit_code_0(target: Target) -> None:
    _check_graceful_exit(target, signal.SIGTERM)


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#standalone-process",
    hint="Ctrl+C sends SIGINT: handle it like SIGTERM.",
    timeout=30,
)
def test_sigint_shuts_down_gracefully_with_exit_code_0(target: Target) -> None:
    _check_graceful_exit(target, signal.SIGINT)


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#interval-trigger",
    hint="register_jobs adds heartbeat every 10 s with id='heartbeat' and replace_existing=True.",
)
def test_register_jobs_runs_heartbeat_every_10_seconds_once(target: Target) -> None:
    module = target.load(FILE)
    with simulate(T0) as sim:
        scheduler = BackgroundScheduler(timezone=UTC)
        module.register_jobs(scheduler)
        module.register_jobs(scheduler)
        scheduler.start()
        sim.run_for(timedelta(seconds=30))
        scheduler.shutdown()
    expect_fire_times(
        sim.fire_times("heartbeat"),
        [T0 + timedelta(seconds=s) for s in (10, 20, 30)],
        what="job 'heartbeat' over 30 s after register_jobs() was called twice",
        tz=UTC,
        why="Twice as many runs means the job was added twice: "
        "use a fixed id and replace_existing.",
    )
