"""Drive real APScheduler 3.x objects in virtual time, event by event, and record every run.

Inside a `SchedulerSimulation`, any Background/Blocking scheduler that learner code
starts is started without its thread (and `BlockingScheduler.start()` does not block),
pool executors run jobs synchronously (as `DebugExecutor` does), and `run_until()`
processes due jobs, then moves the virtual clock to the earliest next run time of all
running schedulers, until the horizon. Several schedulers share one clock, so several
"instances" of an app can be raced deterministically.

Never jump over several due times at once (with the default misfire_grace_time=1 a
jump records a miss instead of a run): `run_until` always stops at every run time.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from types import TracebackType
from typing import Any, Self
from unittest import mock

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.debug import DebugExecutor
from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING, STATE_STOPPED, BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from grader.clock import VirtualClock, as_utc

logger = logging.getLogger(__name__)

OUTCOMES = {
    EVENT_JOB_EXECUTED: "executed",
    EVENT_JOB_ERROR: "error",
    EVENT_JOB_MISSED: "missed",
    EVENT_JOB_MAX_INSTANCES: "skipped",
}
DEFAULT_MAX_STEPS = 200_000


class SimulationError(RuntimeError):
    """The simulation could not proceed (runaway schedule, no clock)."""


@dataclass(frozen=True)
class Firing:
    """One job outcome seen by the simulation."""

    job_id: str
    scheduled: datetime
    actual: datetime
    outcome: str
    scheduler: int
    exception: BaseException | None = None


def running_schedulers() -> list[BaseScheduler]:
    """Every APScheduler scheduler object in this process that is not stopped."""
    return [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, BaseScheduler) and getattr(obj, "state", STATE_STOPPED) != STATE_STOPPED
    ]


def stop_leaked_schedulers() -> list[BaseScheduler]:
    """Shut down schedulers left running (without waiting); returns the ones it stopped."""
    leaked = running_schedulers()
    for scheduler in leaked:
        try:
            scheduler.shutdown(wait=False)
        except Exception:  # a half-broken learner scheduler must not break the harness
            logger.exception("could not stop leaked scheduler %r", scheduler)
    return leaked


class SchedulerSimulation:
    """Patches APScheduler for stepped execution and records every job outcome."""

    def __init__(self, clock: VirtualClock, max_steps: int = DEFAULT_MAX_STEPS) -> None:
        self.clock = clock
        self.max_steps = max_steps
        self.schedulers: list[BaseScheduler] = []
        self.firings: list[Firing] = []
        self.leaked: list[BaseScheduler] = []
        self._patches = ExitStack()
        self._holds: list[tuple[Any, str, datetime]] = []  # (executor, job id, until)

    # -- context management -------------------------------------------------------------

    def __enter__(self) -> Self:
        simulation = self

        def start(scheduler: BaseScheduler, *args: Any, **kwargs: Any) -> None:
            scheduler._event = threading.Event()  # what wakeup() sets; no thread waits on it
            BaseScheduler.start(scheduler, *args, **kwargs)
            simulation.adopt(scheduler)

        def shutdown(scheduler: BaseScheduler, *args: Any, **kwargs: Any) -> None:
            BaseScheduler.shutdown(scheduler, *args, **kwargs)

        def stepped_submit(executor: Any, job: Any, run_times: list[datetime]) -> None:
            DebugExecutor._do_submit_job(executor, job, run_times)

        for cls in (BackgroundScheduler, BlockingScheduler):
            self._patches.enter_context(mock.patch.object(cls, "start", start))
            self._patches.enter_context(mock.patch.object(cls, "shutdown", shutdown))
        self._patches.enter_context(
            mock.patch.object(BasePoolExecutor, "_do_submit_job", stepped_submit)
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.leaked = [s for s in self.schedulers if s.state != STATE_STOPPED]
        for scheduler in self.leaked:
            BaseScheduler.shutdown(scheduler, wait=False)
        self._patches.close()

    # -- schedulers ---------------------------------------------------------------------

    def adopt(self, scheduler: BaseScheduler) -> None:
        """Drive ``scheduler`` (already started) with this simulation and record its jobs."""
        if scheduler in self.schedulers:
            return
        index = len(self.schedulers)
        self.schedulers.append(scheduler)

        def record(event: JobEvent) -> None:
            self._record(index, event)

        scheduler.add_listener(record, mask=sum(OUTCOMES))

    def _record(self, index: int, event: JobEvent) -> None:
        outcome = OUTCOMES[event.code]
        if isinstance(event, JobExecutionEvent):
            scheduled = [event.scheduled_run_time]
            exception = event.exception
        elif isinstance(event, JobSubmissionEvent):
            scheduled = list(event.scheduled_run_times)
            exception = None
        else:  # pragma: no cover - every recorded code is one of the two above
            return
        for when in scheduled:
            self.firings.append(
                Firing(event.job_id, when, self.clock.now(), outcome, index, exception)
            )

    def _next_run_time(self) -> datetime | None:
        candidates: list[datetime] = []
        for scheduler in self.schedulers:
            if scheduler.state != STATE_RUNNING:
                continue
            for store in scheduler._jobstores.values():
                moment = store.get_next_run_time()
                if moment is not None:
                    candidates.append(as_utc(moment))
        return min(candidates, default=None)

    def hold(
        self, job_id: str, until: datetime | timedelta, scheduler: BaseScheduler | None = None
    ) -> None:
        """Pretend one run of ``job_id`` is still going on until ``until`` (a time or a span).

        Jobs run instantly in a simulation, so runs never overlap by themselves. A held job
        counts as running in its executor (what ``max_instances`` checks), so a run due
        before ``until`` is skipped with ``EVENT_JOB_MAX_INSTANCES`` (outcome "skipped").
        ``scheduler`` defaults to the first running scheduler that has the job.
        """
        end = as_utc(self.clock.now() + until if isinstance(until, timedelta) else until)
        owner = scheduler or next(
            (
                s
                for s in self.schedulers
                if s.state != STATE_STOPPED and s.get_job(job_id) is not None
            ),
            None,
        )
        job = owner.get_job(job_id) if owner is not None else None
        if owner is None or job is None:
            raise SimulationError(f"no running scheduler of this simulation has a job {job_id!r}")
        executor = owner._lookup_executor(job.executor)
        with executor._lock:
            executor._instances[job_id] += 1
        self._holds.append((executor, job_id, end))

    def _release_holds(self) -> None:
        now = self.clock.now()
        for hold in [h for h in self._holds if h[2] <= now]:
            executor, job_id, _ = hold
            with executor._lock:
                executor._instances[job_id] -= 1
                if executor._instances[job_id] <= 0:
                    del executor._instances[job_id]
            self._holds.remove(hold)

    def process(self) -> None:
        """Let every running scheduler run the jobs that are due now."""
        self._release_holds()
        for scheduler in list(self.schedulers):
            if scheduler.state == STATE_RUNNING:
                scheduler._process_jobs()

    # -- time ---------------------------------------------------------------------------

    def run_until(self, horizon: datetime) -> None:
        """Run every job due up to and including ``horizon``, stepping the clock to each."""
        end = as_utc(horizon)
        steps = 0
        self.process()
        while True:
            upcoming = self._next_run_time()
            if upcoming is None or upcoming > end:
                break
            steps += 1
            if steps > self.max_steps:
                raise SimulationError(
                    f"more than {self.max_steps} scheduling steps before {end}: "
                    "is a job scheduled with a zero or tiny interval?"
                )
            if upcoming > self.clock.now():
                self.clock.move_to(upcoming)
            self.process()
        if end > self.clock.now():
            self.clock.move_to(end)

    def run_for(self, duration: timedelta | float) -> None:
        """Run for a virtual duration (a timedelta or seconds) from now."""
        span = duration if isinstance(duration, timedelta) else timedelta(seconds=duration)
        self.run_until(self.clock.now() + span)

    # -- what happened --------------------------------------------------------------------

    def runs(self, job_id: str | None = None, outcome: str | None = "executed") -> list[Firing]:
        """Recorded firings, filtered by job id and outcome (``None`` for any outcome)."""
        return [
            f
            for f in self.firings
            if (job_id is None or f.job_id == job_id) and (outcome is None or f.outcome == outcome)
        ]

    def fire_times(self, job_id: str, tz: tzinfo | None = None) -> list[datetime]:
        """Scheduled times of the executed runs of one job (in ``tz`` if given)."""
        times = [f.scheduled for f in self.runs(job_id)]
        return [t.astimezone(tz) for t in times] if tz is not None else times


def expected_series(first: datetime, step: timedelta, until: datetime) -> Iterator[datetime]:
    """``first, first + step, ...`` up to and including ``until``, stepping in absolute time."""
    moment, end = as_utc(first), as_utc(until)
    while moment <= end:
        yield moment
        moment = moment + step


@contextmanager
def simulate(start: datetime) -> Iterator[SchedulerSimulation]:
    """Virtual time from ``start`` with APScheduler stepped by a fresh simulation."""
    with VirtualClock(start) as clock, SchedulerSimulation(clock) as simulation:
        yield simulation
