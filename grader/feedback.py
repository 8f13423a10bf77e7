"""Failure messages a learner can act on: expected vs actual, as timelines where time matters.

Hidden suites raise `GradingFailure` (an AssertionError) through the helpers below; the
pytest plugin shows its message without a traceback, followed by the note section that
teaches the behaviour and a hint.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

MAX_TIMELINE_ROWS = 12


class GradingFailure(AssertionError):
    """A graded expectation that the learner's code did not meet."""


def fail(message: str) -> None:
    """Fail the current test with a teaching message."""
    raise GradingFailure(message)


def expect(condition: object, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        raise GradingFailure(message)


def expect_equal(actual: Any, expected: Any, what: str, why: str = "") -> None:
    """Fail unless ``actual == expected``, naming what was compared and why it matters."""
    if actual != expected:
        lines = [f"{what}:", f"  expected: {expected!r}", f"  actual:   {actual!r}"]
        if why:
            lines.append(why)
        raise GradingFailure("\n".join(lines))


def _stamp(moment: datetime | None, tz: tzinfo | None) -> str:
    if moment is None:
        return "-"
    shown = moment.astimezone(tz) if tz is not None else moment
    if shown.microsecond:  # a fraction of a second (e.g. every 2.5 s) must stay visible
        fraction = f"{shown.microsecond / 1e6:.6f}".rstrip("0")[1:]
        return shown.strftime(f"%a %Y-%m-%d %H:%M:%S{fraction}%z").rstrip()
    return shown.strftime("%a %Y-%m-%d %H:%M:%S%z").rstrip()


def timeline(
    expected: Sequence[datetime],
    actual: Sequence[datetime],
    tz: tzinfo | None = None,
) -> str:
    """A two-column table of fire times, marking the rows that differ.

    Only the region around the first difference is shown, so a week of runs stays readable.
    """
    rows = max(len(expected), len(actual))
    first_bad = next(
        (
            i
            for i in range(rows)
            if i >= len(expected) or i >= len(actual) or expected[i] != actual[i]
        ),
        rows,
    )
    start = max(0, min(first_bad - 2, rows - MAX_TIMELINE_ROWS))
    stop = min(rows, start + MAX_TIMELINE_ROWS)
    zone = f" ({tz})" if tz is not None else ""
    lines = [f"   #  {'expected' + zone:<34} actual"]
    if start > 0:
        lines.append(f"  ... {start} matching row(s) before")
    for i in range(start, stop):
        want = expected[i] if i < len(expected) else None
        got = actual[i] if i < len(actual) else None
        mark = "  " if want == got else "<>"
        lines.append(f"{mark}{i + 1:>2}  {_stamp(want, tz):<34} {_stamp(got, tz)}")
    if stop < rows:
        lines.append(f"  ... {rows - stop} more row(s)")
    return "\n".join(lines)


def expect_fire_times(
    actual: Sequence[datetime],
    expected: Sequence[datetime],
    *,
    what: str,
    tz: tzinfo | None = None,
    why: str = "",
) -> None:
    """Fail unless the fire times match exactly, showing both as a timeline."""
    if list(actual) == list(expected):
        return
    summary = f"{what}: expected {len(expected)} run(s), got {len(actual)}"
    if len(actual) == len(expected):
        summary = f"{what}: the fire times differ"
    parts = [summary, timeline(expected, actual, tz)]
    if why:
        parts.append(why)
    raise GradingFailure("\n".join(parts))
