"""Virtual time: a frozen clock that only the harness moves.

Built on time-machine with ``tick=False``. The clock is always moved with UTC datetimes
(``datetime.timezone.utc``, not a ZoneInfo): time-machine changes the process time zone
when it is given a ZoneInfo-aware destination.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from types import TracebackType
from typing import Any, Self

import time_machine


class ClockError(RuntimeError):
    """The clock was used wrongly (naive datetime, moving backwards, not started)."""


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; rejects naive datetimes (their meaning is ambiguous)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ClockError(f"naive datetime {moment!r}: give the clock aware datetimes")
    return moment.astimezone(UTC)


class VirtualClock:
    """Frozen virtual time for the current process, moved only by `move_to` / `advance`.

    Use it as a context manager::

        with VirtualClock(datetime(2026, 1, 5, tzinfo=UTC)) as clock:
            clock.advance(timedelta(hours=1))
    """

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)
        self._travel: Any = None
        self._coordinates: Any = None

    def __enter__(self) -> Self:
        self._travel = time_machine.travel(self._now, tick=False)
        self._coordinates = self._travel.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._travel is not None:
            self._travel.stop()
            self._travel = None
            self._coordinates = None

    @property
    def running(self) -> bool:
        """Whether the clock is currently installed."""
        return self._coordinates is not None

    def now(self, tz: tzinfo = UTC) -> datetime:
        """The virtual now, in ``tz`` (UTC by default)."""
        return self._now.astimezone(tz)

    def move_to(self, moment: datetime) -> None:
        """Jump to ``moment`` (aware); time never goes backwards."""
        target = as_utc(moment)
        if target < self._now:
            raise ClockError(f"cannot move back from {self._now} to {target}")
        if self._coordinates is None:
            raise ClockError("the clock is not running: use it as a context manager")
        self._now = target
        self._coordinates.move_to(target)

    def advance(self, delta: timedelta | float) -> None:
        """Move forward by ``delta`` (a timedelta or seconds)."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self.move_to(self._now + step)
