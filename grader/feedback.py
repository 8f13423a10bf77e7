"""Failure messages a learner can act on: expected vs actual, as timelines where time matters.

Hidden suites raise `GradingFailure` (an AssertionError) through the helpers below; the
pytest plugin shows its message without a traceback, followed by the note section that
teaches the behaviour and a hint.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from grader.i18n import t

MAX_TIMELINE_ROWS = 12  # at most this many rows of times (context + differences)
CONTEXT_ROWS = 2  # matching rows shown before the first difference
DIFFERING_ROWS = 5  # rows shown from the first difference on: the first differences
MAX_QUOTED_RECORDS = 3  # log records a message quotes
MAX_QUOTED_CHARS = 120  # of each quoted record's message

Later = Sequence[datetime] | Callable[[], Sequence[datetime]] | None


class GradingFailure(AssertionError):
    """A graded expectation that the learner's code did not meet."""


def fail(message: str) -> NoReturn:
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


def span(delta: timedelta) -> str:
    """A duration as a learner reads it: ``5 s``, ``5 min``, ``1 h 30 min``, ``2 d 3 h``."""
    seconds = abs(delta.total_seconds())
    if seconds < 60:
        return f"{seconds:g} s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [f"{value} {unit}" for value, unit in parts if value]
    return " ".join(shown[:2])


def _offset(moment: datetime, start: datetime | None) -> str:
    if start is None:
        return ""
    delta = moment - start
    key = "timeline.offset_before" if delta < timedelta(0) else "timeline.offset_after"
    return f" ({t(key, span=span(delta))})"


def timeline(
    expected: Sequence[datetime],
    actual: Sequence[datetime],
    tz: tzinfo | None = None,
) -> str:
    """A two-column table of fire times, marking the rows that differ, with a legend.

    Only the first differences are shown (two matching rows before them for context), so
    a week of runs, or a schedule that is wrong from its first run on, stays readable.
    """
    rows = max(len(expected), len(actual))

    def differs(i: int) -> bool:
        return i >= len(expected) or i >= len(actual) or expected[i] != actual[i]

    first_bad = next((i for i in range(rows) if differs(i)), rows)
    start = max(0, first_bad - CONTEXT_ROWS)
    stop = min(rows, first_bad + DIFFERING_ROWS, start + MAX_TIMELINE_ROWS)
    if first_bad == rows:  # nothing differs: the last rows
        start = max(0, rows - CONTEXT_ROWS)
    zone = f" ({tz})" if tz is not None else ""
    lines = [f"   #  {_pad(t('timeline.expected') + zone, 34)} {t('timeline.actual')}"]
    if start > 0:
        lines.append(t("timeline.before", count=start))
    for i in range(start, stop):
        want = expected[i] if i < len(expected) else None
        got = actual[i] if i < len(actual) else None
        mark = "<>" if differs(i) else "  "
        lines.append(f"{mark}{i + 1:>2}  {_stamp(want, tz):<34} {_stamp(got, tz)}")
    if stop < rows:
        hidden = sum(differs(i) for i in range(stop, rows))
        lines.append(t("timeline.after", count=rows - stop, different=hidden))
    if first_bad < rows:
        lines.append(t("timeline.legend"))
    return "\n".join(lines)


def _pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal cells (a Chinese character takes two)."""
    cells = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - cells)


def _later_runs(later: Later) -> tuple[list[datetime], bool]:
    """The learner's runs after the window, and whether the suite said (None: unknown)."""
    if later is None:
        return [], False
    try:
        found = later() if callable(later) else later
        return [m for m in found if isinstance(m, datetime)], True
    except Exception:  # a probe of the learner's schedule must never change a verdict
        return [], False


def first_runs(
    actual: Sequence[datetime],
    expected: Sequence[datetime],
    *,
    tz: tzinfo | None = None,
    start: datetime | None = None,
    later: Later = None,
) -> list[str]:
    """Lines that say where the learner's first run is when it is not the expected one,
    even when it falls after the window graded (``later``: the runs after the window)."""
    if actual and expected and actual[0] == expected[0]:
        return []  # the table shows where they part
    beyond, known = _later_runs(later) if not actual else ([], False)
    if not actual and not beyond and not known:
        return []  # nothing to say about the learner's first run
    lines = []
    if expected:
        moment = f"{_stamp(expected[0], tz)}{_offset(expected[0], start)}"
        lines.append(t("timeline.expected_first", moment=moment))
    if actual:
        moment = f"{_stamp(actual[0], tz)}{_offset(actual[0], start)}"
        lines.append(t("timeline.your_first", moment=moment))
    elif beyond:
        where = t("timeline.after_window")
        moment = f"{_stamp(beyond[0], tz)}{_offset(beyond[0], start)}{where}"
        lines.append(t("timeline.your_first", moment=moment))
        if len(beyond) > 1:
            lines.append(t("timeline.later", moments=_moments(beyond[1:], tz)))
    else:
        lines.append(t("timeline.never"))
    return lines


def _moments(moments: Sequence[datetime], tz: tzinfo | None) -> str:
    return ", ".join(_stamp(m, tz) for m in moments)


def expect_fire_times(
    actual: Sequence[datetime],
    expected: Sequence[datetime],
    *,
    what: str,
    tz: tzinfo | None = None,
    why: str = "",
    start: datetime | None = None,
    later: Later = None,
) -> None:
    """Fail unless the fire times match exactly, showing both as a timeline.

    ``start`` (the instant the window begins) lets the message say "+5 min"; ``later``
    (the learner's runs after the window, or a callable returning them, such as
    `upcoming(sim, job_id)`, evaluated only on failure) shows what the learner's code does
    when it does nothing inside the window.
    """
    if list(actual) == list(expected):
        return
    summary = f"{what}: expected {len(expected)} run(s), got {len(actual)}"
    if len(actual) == len(expected):
        summary = f"{what}: the fire times differ"
    parts = [summary]
    parts += first_runs(actual, expected, tz=tz, start=start, later=later)
    parts.append(timeline(expected, actual, tz))
    if why:
        parts.append(why)
    raise GradingFailure("\n".join(parts))


def upcoming(sim: Any, job_id: str, count: int = 3) -> Callable[[], list[datetime]]:
    """A probe of the next ``count`` runs job ``job_id`` has scheduled in a simulation's
    schedulers (after the window it ran), for `expect_fire_times(..., later=...)`.

    Call it before the scheduler shuts down (``shutdown()`` empties a memory job store):
    it only takes hold of the job then. The times are worked out from the job's trigger
    when a check fails, without running anything; ``[]`` when the job is gone.
    """
    job: Any = None
    try:
        for scheduler in list(getattr(sim, "schedulers", ())):
            for store in list(getattr(scheduler, "_jobstores", {}).values()):
                job = job or store.lookup_job(job_id)
    except Exception:  # looking must never change a verdict
        job = None

    def probe() -> list[datetime]:
        found: list[datetime] = []
        moment = getattr(job, "next_run_time", None)
        while isinstance(moment, datetime) and len(found) < count:
            found.append(moment)
            moment = job.trigger.get_next_fire_time(moment, moment)
        return found

    return probe


# -- log records ----------------------------------------------------------------------------


def own_records(
    records: Iterable[logging.LogRecord], module: ModuleType
) -> list[logging.LogRecord]:
    """The records written by code in the learner's files (the module's folder), whatever
    the logger: what a library (APScheduler, SQLAlchemy...) logs meanwhile is not theirs."""
    origin = getattr(module, "__file__", None)
    if not origin:
        return list(records)
    folder = Path(origin).resolve().parent
    mine = []
    for record in records:
        try:
            inside = Path(record.pathname).resolve().is_relative_to(folder)
        except (OSError, ValueError):
            inside = False
        if inside:
            mine.append(record)
    return mine


def logger_name(name: str, module: ModuleType | None = None) -> str:
    """A logger's name as a learner knows it: the module's own is ``__name__``."""
    if module is not None and name == getattr(module, "__name__", None):
        return "__name__"
    return name


def quote_records(
    records: Sequence[logging.LogRecord],
    module: ModuleType | None = None,
    limit: int = MAX_QUOTED_RECORDS,
) -> str:
    """At most ``limit`` records, one short line each (``INFO __name__: heartbeat``)."""
    lines = []
    for record in records[:limit]:
        text = record.getMessage().replace("\n", " ")
        if len(text) > MAX_QUOTED_CHARS:
            text = text[: MAX_QUOTED_CHARS - 3] + "..."
        lines.append(f"  {record.levelname} {logger_name(record.name, module)}: {text}")
    if len(records) > limit:
        lines.append(f"  ... and {len(records) - limit} more")
    return "\n".join(lines)
