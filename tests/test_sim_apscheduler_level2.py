"""The APScheduler driver's `hold`: a run that lasts, so max_instances can be graded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler

from grader.sim_apscheduler import SimulationError, simulate

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def noop() -> None:
    """A job that does nothing."""


def test_a_held_job_skips_its_runs_until_the_hold_ends() -> None:
    events: list[JobEvent] = []
    with simulate(T0) as sim:
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_listener(events.append, EVENT_JOB_MAX_INSTANCES)
        scheduler.add_job(noop, "interval", seconds=10, id="tick")
        scheduler.start()
        sim.hold("tick", until=T0 + timedelta(seconds=25))
        sim.run_for(timedelta(seconds=40))
        scheduler.shutdown()
    assert [f.scheduled for f in sim.runs("tick", outcome="skipped")] == [
        T0 + timedelta(seconds=10),
        T0 + timedelta(seconds=20),
    ]
    assert sim.fire_times("tick") == [T0 + timedelta(seconds=30), T0 + timedelta(seconds=40)]
    assert [e.job_id for e in events] == ["tick", "tick"]


def test_a_hold_given_as_a_span_and_ending_on_a_due_time_lets_that_run_happen() -> None:
    with simulate(T0) as sim:
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.add_job(noop, "interval", seconds=10, id="tick", max_instances=2)
        scheduler.start()
        sim.hold("tick", timedelta(seconds=20))
        sim.hold("tick", timedelta(seconds=20))  # two instances running: max_instances=2
        sim.run_for(timedelta(seconds=20))
        scheduler.shutdown()
    assert [f.outcome for f in sim.runs("tick", outcome=None)] == ["skipped", "executed"]


def test_holding_a_job_that_no_running_scheduler_has_is_an_error() -> None:
    with simulate(T0) as sim:
        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.start()
        with pytest.raises(SimulationError, match="ghost"):
            sim.hold("ghost", timedelta(seconds=5))
        scheduler.shutdown()
