"""Drive a real ``celery.beat.Scheduler`` in virtual time and record every task it sends.

`RecordingScheduler` is the scheduler `celery beat` runs, with three changes:
    * it never publishes: ``apply_async`` records a `Send` (entry, task, args, kwargs,
      options such as queue and expires, the virtual instant) instead, and ``producer``
      is None so ``tick()`` never connects to a broker;
    * ``adjust()`` has no -10 ms drift (beat wakes up 10 ms early; on a frozen clock that
      lands at xx:59.99, where the entry is not due yet: a livelock);
    * no default entries (``celery.backend_cleanup``): only the schedule under test.

`BeatSimulation.run_until()` loops ``tick()`` and moves the clock by what it returns,
exactly as beat's service loop sleeps. The app's ``timezone`` and ``enable_utc`` apply as
in production: a crontab entry is wall-clock time in the app's zone.

Celery 5.7's crontab across DST (measured, asserted in tests/test_sim_beat.py), in
America/New_York: a time in the repeated hour (01:30 on fall-back day) is sent once, at
its first occurrence (EDT); a time that does not exist (02:30 on spring-forward day) is
sent at 03:30 EDT, the same instant as 02:30 EST would have been.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from celery import Celery
from celery.beat import BeatLazyFunc, ScheduleEntry, Scheduler

from grader.clock import VirtualClock, as_utc

DEFAULT_MAX_TICKS = 200_000
ONE_MICROSECOND = timedelta(microseconds=1)


class BeatSimulationError(RuntimeError):
    """The simulation could not proceed (a runaway schedule, a broken entry)."""


@dataclass(frozen=True)
class Send:
    """One task message beat would have published."""

    entry: str
    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    at: datetime  # UTC


def _evaluate(value: Any) -> Any:
    """Beat evaluates BeatLazyFunc arguments at send time; so does the recorder."""
    return value() if isinstance(value, BeatLazyFunc) else value


class RecordingScheduler(Scheduler):
    """A beat scheduler that records sends instead of publishing them (see the module doc)."""

    producer = None  # shadows Scheduler.producer (a cached property that connects)

    def __init__(
        self, app: Celery, *, clock: VirtualClock, record: Callable[[Send], None], **kwargs: Any
    ) -> None:
        self._clock = clock
        self._record = record
        super().__init__(app, **kwargs)

    def install_default_entries(self, data: Any) -> None:
        """No ``celery.backend_cleanup``: only the learner's entries are simulated."""

    def adjust(self, n: float | None, drift: float = 0.0) -> float | None:
        """The delay as computed, without beat's -10 ms drift."""
        return n

    def apply_async(
        self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any
    ) -> None:
        """Record the send of ``entry`` at the virtual now (what beat would publish)."""
        entry = self.reserve(entry) if advance else entry
        options = dict(entry.options or {})
        self._record(
            Send(
                entry=str(entry.name),
                task=str(entry.task),
                args=tuple(_evaluate(a) for a in (entry.args or ())),
                kwargs={k: _evaluate(v) for k, v in (entry.kwargs or {}).items()},
                options=options,
                at=self._clock.now(),
            )
        )

    def sync(self) -> None:
        """Nothing to persist."""


@dataclass
class BeatSimulation:
    """A recording beat scheduler for ``app``, stepped through virtual time."""

    app: Celery
    clock: VirtualClock
    max_ticks: int = DEFAULT_MAX_TICKS
    sends: list[Send] = field(default_factory=list)
    ticks: int = 0
    scheduler: RecordingScheduler = field(init=False)

    def __post_init__(self) -> None:
        # Entries take their first ``last_run_at`` from the (virtual) now, as in production.
        self.scheduler = RecordingScheduler(self.app, clock=self.clock, record=self.sends.append)

    def _tick(self) -> float:
        self.ticks += 1
        if self.ticks > self.max_ticks:
            raise BeatSimulationError(
                f"more than {self.max_ticks} beat ticks: is an entry scheduled every few "
                "microseconds, or is its schedule broken?"
            )
        return float(self.scheduler.tick() or 0.0)

    def run_until(self, horizon: datetime) -> None:
        """Send everything due up to and including ``horizon``, moving the clock as beat sleeps."""
        end = as_utc(horizon)
        while True:
            delay = self._tick()
            if delay <= 0:
                continue  # something was sent; more may be due at this very instant
            step = timedelta(seconds=delay)
            upcoming = self.clock.now() + max(step, ONE_MICROSECOND)
            if upcoming > end:
                if self.clock.now() < end:
                    self.clock.move_to(end)
                    continue  # send what is due exactly at the horizon
                return
            self.clock.move_to(upcoming)

    def run_for(self, duration: timedelta | float) -> None:
        """Run for a virtual duration (a timedelta or seconds) from now."""
        span = duration if isinstance(duration, timedelta) else timedelta(seconds=duration)
        self.run_until(self.clock.now() + span)

    def sends_of(self, entry: str) -> list[Send]:
        """The recorded sends of one entry, in order."""
        return [s for s in self.sends if s.entry == entry]

    def send_times(self, entry: str, tz: tzinfo | None = None) -> list[datetime]:
        """The instants one entry was sent at (in ``tz`` if given, else UTC)."""
        times = [s.at for s in self.sends_of(entry)]
        return [t.astimezone(tz) for t in times] if tz is not None else times


def beat_app(config: object | None = None, **settings: Any) -> Celery:
    """A fresh Celery app (memory broker, never current) configured from a module and settings.

    ``config`` is a configuration module or object (read as ``app.config_from_object``
    does); ``settings`` are applied on top, e.g. ``beat_app(beat_schedule={...},
    timezone="Asia/Shanghai")``.
    """
    app = Celery("cronkata-beat-simulation", set_as_current=False)
    if config is not None:
        app.config_from_object(config)
    app.conf.update(broker_url="memory://", result_backend="cache+memory://", **settings)
    return app


@contextmanager
def simulate_beat(
    app: Celery | Mapping[str, Any], start: datetime, max_ticks: int = DEFAULT_MAX_TICKS
) -> Iterator[BeatSimulation]:
    """Virtual time from ``start`` with a recording beat scheduler for ``app``.

    ``app`` may also be a mapping of settings (``beat_schedule``, ``timezone``, ...), for
    which a fresh app is built with `beat_app`.
    """
    celery_app = app if isinstance(app, Celery) else beat_app(**dict(app))
    with VirtualClock(start) as clock:
        yield BeatSimulation(celery_app, clock, max_ticks)
