"""Hypothesis for graded tests: deterministic settings and the strategies suites share.

A graded test must give every learner the same verdict on every run, quickly, and a
failure must show the smallest failing case. `deterministic` is the settings decorator
for that; the strategies draw the values scheduling bugs hide behind::

    from hypothesis import given
    from grader.drawing import deterministic, near_dst, utc_instants

    @pytest.mark.grade(points=2, note=..., hint=..., spec=("fires-at-local-03-00",))
    def test_cleanup_runs_at_03_local(target: Target) -> None:
        module = target.load()

        @deterministic(max_examples=30)
        @given(start=utc_instants(resolution="minute"))
        def check(start: datetime) -> None:
            ...  # expect(...) as usual; a failure reads "Falsifying example: check(start=...)"

        check()

Defining the ``@given`` function inside the test keeps the module loaded once, and
`grader.plugin.describe_failure` appends Hypothesis's falsifying example to the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import providers as _providers
from hypothesis.internal.constants_ast import Constants as _Constants

DEFAULT_EXAMPLES = 25
MAX_EXAMPLES = 200  # a graded test runs within its timeout (default 10 s)
UTC_START = datetime(2024, 1, 1, tzinfo=UTC)
UTC_END = datetime(2027, 1, 1, tzinfo=UTC)  # exclusive: three years, leap day included
DST_ZONES = ("America/New_York", "Europe/Berlin", "Australia/Sydney")
FIXED_ZONES = ("UTC", "Asia/Shanghai", "Asia/Kolkata", "Asia/Tokyo")  # no DST; +05:30 too
WHITESPACE = ("", " ", "  ", "\t", "\n", " \t\n")
Resolution = Literal["hour", "minute", "second"]


def _no_local_constants() -> _Constants:
    return _Constants()


# Hypothesis (6.13x+) also draws literals it finds in "local" modules: the learner's file,
# and whichever grader modules happen to be imported. Then the learner's own constants,
# or running `pytest exercises/levelN` instead of `grader check`, would change the
# derandomized examples. Graded draws must depend on the test alone, so that pool stays
# empty (and nothing is cached in .hypothesis/constants).
if hasattr(_providers, "_get_local_constants"):
    _providers._get_local_constants = _no_local_constants
STEPS: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "minute": timedelta(minutes=1),
    "second": timedelta(seconds=1),
}


def deterministic(max_examples: int = DEFAULT_EXAMPLES) -> settings:
    """Settings (usable as a decorator) for a ``@given`` inside a graded test.

    Derandomized (the same examples on every run and machine), no example database,
    no deadline (virtual-time simulations are slow and timing is the sandbox's job),
    no reproduction blob and no "explain" phase in the message, one bug reported (the
    smallest), and the health checks that misfire on graded tests suppressed: too_slow,
    filter_too_much, and function_scoped_fixture (``target`` is stateless).
    """
    if not 1 <= max_examples <= MAX_EXAMPLES:
        raise ValueError(f"max_examples must be within 1..{MAX_EXAMPLES}, not {max_examples}")
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        report_multiple_bugs=False,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
        suppress_health_check=(
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ),
    )


def _step(resolution: str) -> timedelta:
    if resolution not in STEPS:
        raise ValueError(f"resolution must be one of {', '.join(STEPS)}, not {resolution!r}")
    return STEPS[resolution]


def utc_instants(
    start: datetime = UTC_START, end: datetime = UTC_END, resolution: Resolution = "second"
) -> st.SearchStrategy[datetime]:
    """Aware UTC instants in ``[start, end)`` on whole hours, minutes or seconds.

    The hour is drawn from the whole span and the time within it separately, so the
    draws spread over every weekday and hour of the day (in 200 examples: all weekdays,
    20+ hours), not bunched at midnight; shrinking goes towards ``start``'s hour.
    """
    step = _step(resolution)
    if start.utcoffset() != timedelta(0) or end.utcoffset() != timedelta(0):
        raise ValueError("start and end must be aware UTC datetimes")
    if end - start < timedelta(days=1):
        raise ValueError("utc_instants needs at least one day between start and end")
    first_hour = start.replace(minute=0, second=0, microsecond=0)
    hours = -((first_hour - end) // STEPS["hour"])  # whole or partial hours up to end
    instants = st.builds(
        lambda hour, within: first_hour + hour * STEPS["hour"] + within * step,
        st.integers(0, hours - 1),
        st.integers(0, STEPS["hour"] // step - 1),
    )
    return instants.filter(lambda t: start <= t < end)


@cache
def dst_transitions(
    zone: str, first_year: int = 2024, last_year: int = 2026
) -> tuple[datetime, ...]:
    """The UTC instants (to the second) at which ``zone``'s offset changes, from zoneinfo.

    Each is the first instant with the new offset. A zone without DST has none.
    """
    tz = ZoneInfo(zone)
    start = int(datetime(first_year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(last_year + 1, 1, 1, tzinfo=UTC).timestamp())

    def offset(seconds: int) -> timedelta | None:
        return datetime.fromtimestamp(seconds, UTC).astimezone(tz).utcoffset()

    found = []
    day = 86400  # no zone changes its offset twice within one day
    for low in range(start, end, day):
        high = min(low + day, end)
        before = offset(low)
        if offset(high) == before:
            continue
        while high - low > 1:  # bisect to the second: low has the old offset, high the new
            middle = (low + high) // 2
            if offset(middle) == before:
                low = middle
            else:
                high = middle
        found.append(datetime.fromtimestamp(high, UTC))
    return tuple(found)


@dataclass(frozen=True)
class NearTransition:
    """An instant near one DST transition of a zone (both instants are aware UTC)."""

    zone: ZoneInfo
    transition: datetime  # the first instant with the new offset
    instant: datetime

    @property
    def local(self) -> datetime:
        """The instant on the zone's wall clock."""
        return self.instant.astimezone(self.zone)

    @property
    def spring_forward(self) -> bool:
        """Whether the clocks jump forward at this transition (a local hour is skipped)."""
        before = (self.transition - timedelta(seconds=1)).astimezone(self.zone).utcoffset()
        after = self.transition.astimezone(self.zone).utcoffset()
        assert before is not None and after is not None
        return after > before


def near_dst(
    zones: tuple[str, ...] = DST_ZONES,
    within: timedelta = timedelta(hours=3),
    resolution: Resolution = "minute",
    first_year: int = 2024,
    last_year: int = 2026,
) -> st.SearchStrategy[NearTransition]:
    """Instants at most ``within`` before or after a DST transition of one of ``zones``.

    Transitions (spring forward and fall back, both hemispheres) come from zoneinfo via
    `dst_transitions`; shrinking goes towards the transition instant itself.
    """
    step = _step(resolution)
    pairs = [(zone, t) for zone in zones for t in dst_transitions(zone, first_year, last_year)]
    if not pairs:
        raise ValueError(f"no DST transition in {zones} during {first_year}-{last_year}")
    reach = int(within / step)
    return st.builds(
        lambda pair, k: NearTransition(ZoneInfo(pair[0]), pair[1], pair[1] + k * step),
        st.sampled_from(pairs),
        st.integers(-reach, reach),
    )


def zones(dst: bool | None = None) -> st.SearchStrategy[ZoneInfo]:
    """Time zones: with DST (``dst=True``), without (``False``, UTC and Asia/Shanghai among
    them), or both (``None``); shrinking goes towards UTC (or New York with ``dst=True``)."""
    names = {True: DST_ZONES, False: FIXED_ZONES, None: FIXED_ZONES + DST_ZONES}[dst]
    return st.sampled_from([ZoneInfo(name) for name in names])


def int_edges(low: int, high: int) -> st.SearchStrategy[int]:
    """The inclusive edges of ``low..high``: low, low + 1, high - 1 and high (all valid)."""
    if low > high:
        raise ValueError(f"empty range {low}..{high}")
    return st.sampled_from(sorted({low, min(low + 1, high), max(high - 1, low), high}))


def int_outside(low: int, high: int) -> st.SearchStrategy[int]:
    """The nearest invalid values of ``low..high``: low - 1 and high + 1."""
    if low > high:
        raise ValueError(f"empty range {low}..{high}")
    return st.sampled_from([low - 1, high + 1])


def padded(value: str) -> st.SearchStrategy[str]:
    """``value`` as an environment variable may hold it: with whitespace before and/or after
    (spaces, tabs, newlines); shrinks to ``value`` itself."""
    return st.builds(
        lambda left, right: f"{left}{value}{right}",
        st.sampled_from(WHITESPACE),
        st.sampled_from(WHITESPACE),
    )


def blank() -> st.SearchStrategy[str]:
    """An environment variable that is set but says nothing: empty or whitespace only."""
    return st.sampled_from(WHITESPACE)
