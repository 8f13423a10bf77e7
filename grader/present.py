"""What `grader check`, `watch` and `report` print about failures: one root cause, one message.

Per exercise, the failing tests are taken in the suite's order (the order it teaches the
behaviours) and grouped by cause: every test of a file that cannot be loaded fails for
that one reason, and the same error raised at the same place (a missing
``build_scheduler()``) is one cause however many tests it fails. The first failing test
leads, with its message, its promise, its note section and a nudge towards `grader hint`
(its hint once revealed); the same cause's other tests are named with it, and the other
failing tests are summarised by name. After a pass comes the next step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

from rich.console import Console
from rich.text import Text

from grader import hints, paths
from grader.catalog import Catalog, Exercise
from grader.i18n import t
from grader.results import TestResult

INDENT = "     "
# Where the per-test details of a message start: Hypothesis' example, a process's output.
# "  at grader/suites/level1/test_x.py:189 in test_y()": the test's own line, not the learner's
_SUITE_FRAME = re.compile(r"^\s+at \S*grader/suites/\S+:\d+ in ")
_DETAILS = re.compile(
    r"^(Falsifying example|Failing explicit example|You can reproduce|Its output)"
)


def cause_key(result: TestResult) -> str:
    """What identifies a failure's root cause: a load problem, else the message itself
    without what differs from test to test (Hypothesis' example, a process's output)."""
    if result.cause == "load":
        return "load"
    kept: list[str] = []
    skip_source = False
    for line in result.core.splitlines():
        if _DETAILS.match(line.strip()):
            break
        if skip_source:  # the source line under a suite's frame
            skip_source = False
            continue
        if _SUITE_FRAME.match(line):  # where each test called the learner: not the cause
            skip_source = True
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


@dataclass
class Cause:
    """Failing tests of one exercise that fail for one reason, in suite order."""

    key: str
    results: list[TestResult] = field(default_factory=list)

    @property
    def lead(self) -> TestResult:
        """The first test this cause fails."""
        return self.results[0]


def causes(results: Sequence[TestResult]) -> list[Cause]:
    """The failing results grouped by cause, ordered by each cause's first test."""
    grouped: dict[str, Cause] = {}
    for result in results:
        if result.failed:
            key = cause_key(result)
            grouped.setdefault(key, Cause(key)).results.append(result)
    return list(grouped.values())


@cache
def note_title(link: str) -> str:
    """The heading of a note section (``file.md#anchor``), "" when it cannot be found."""
    name, _, anchor = link.partition("#")
    try:
        text = (paths.NOTES_DIR / name).read_text(encoding="utf-8")
    except OSError:
        return ""
    if not anchor:
        heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
        return heading.group(1).strip() if heading else ""
    found = re.search(
        rf'<a id="{re.escape(anchor)}"></a>\s*\n(?:\s*\n)*#+\s+(.+)', text, re.MULTILINE
    )
    return found.group(1).strip() if found else ""


def note_line(link: str) -> str:
    """``read: notes/x.md#anchor «heading»``."""
    title = note_title(link)
    return t("check.read", note=link) + (f" «{title}»" if title else "")


def _names(results: Sequence[TestResult]) -> str:
    return ", ".join(r.name for r in results)


def shown_file(exercise: Exercise) -> str:
    """The learner's file as the CLI names it."""
    return f"exercises/level{exercise.level}/{exercise.file}"


def failure_lines(exercise: Exercise, results: Sequence[TestResult]) -> list[Text]:
    """The lines of one exercise's failures: its lead cause in full, the rest by name."""
    found = causes(results)
    if not found:
        return []
    lead_cause = found[0]
    lead = lead_cause.lead
    failing = [r for r in results if r.failed]
    lines: list[Text] = []
    if lead_cause.key == "load":
        lines.append(
            Text(t("check.load_problem", file=shown_file(exercise), count=len(failing)), "red")
        )
    else:
        text = t(
            "check.lead",
            status=t("status.fail"),
            exercise=exercise.id,
            name=lead.name,
            points=lead.points,
        )
        lines.append(Text(text, "red"))
    lines += [Text(INDENT + line) for line in lead.core.splitlines()]
    others = lead_cause.results[1:]
    if others and lead_cause.key != "load":
        lines.append(Text(INDENT + t("check.same_error", count=len(others), names=_names(others))))
    lines.append(Text(""))
    if lead.tags and lead_cause.key != "load":
        tags = ", ".join(f"(#{tag})" for tag in lead.tags)
        lines.append(Text(INDENT + t("check.promise", tags=tags), "dim"))
    note = exercise.note if lead_cause.key == "load" else (lead.note or exercise.note)
    lines.append(Text(INDENT + note_line(note), "cyan"))
    if lead_cause.key != "load":
        lines += _hint_lines(exercise, lead)
    rest = [r for r in failing if r not in lead_cause.results]
    if rest:
        lines.append(Text(t("check.more", count=len(rest), names=_names(rest)), "yellow"))
    return lines


def _hint_lines(exercise: Exercise, lead: TestResult) -> list[Text]:
    """The lead test's hint if the learner revealed it, and the nudge to the next one."""
    known = set(hints.revealed(exercise.id))
    lines = []
    if lead.hint and lead.hint.strip() in known:
        lines.append(Text(INDENT + t("check.hint_revealed", hint=lead.hint.strip()), "green"))
    seen, total = hints.seen(exercise, lead.hint)
    if seen < total:
        nudge = t("check.nudge", exercise=exercise.id, seen=seen, total=total)
        lines.append(Text(INDENT + nudge, "dim"))
    return lines


def header(exercise: Exercise, results: Sequence[TestResult]) -> Text:
    """``simple_timer: 3/18 passed (4/24 points)`` or ``simple_timer: passed (24/24 points)``."""
    passed = sum(r.outcome == "passed" for r in results)
    points = sum(r.points for r in results if r.outcome == "passed")
    total = sum(r.points for r in results)
    if results and passed == len(results):
        text = t("check.exercise_passed", exercise=exercise.id, points=points, max_points=total)
        return Text(text, "green")
    text = t(
        "check.exercise_failing",
        exercise=exercise.id,
        passed=passed,
        total=len(results),
        points=points,
        max_points=total,
    )
    return Text(text, "bold")


def following(course: Catalog, exercise: Exercise) -> Exercise | None:
    """The next available exercise after ``exercise`` in course order."""
    later = course.exercises[course.exercises.index(exercise) + 1 :]
    return next((e for e in later if e.available), None)


def next_step_lines(course: Catalog, done: Exercise) -> list[Text]:
    """After ``done`` passes: the reference solution to compare with, and what is next."""
    lines = [Text(t("next.compare", exercise=done.id))]
    upcoming = following(course, done)
    if upcoming is None:
        soon = any(not e.available for e in course.exercises)
        lines.append(Text(t("next.last" if soon else "next.all_done"), "green"))
        return lines
    note = upcoming.note
    title = note_title(note)
    text = t(
        "next.exercise",
        exercise=upcoming.id,
        title=upcoming.title,
        file=shown_file(upcoming),
        note=note + (f" «{title}»" if title else ""),
    )
    lines.append(Text(text, "bold green"))
    return lines


def print_exercises(
    console: Console,
    course: Catalog,
    chosen: Sequence[Exercise],
    results: Sequence[TestResult],
    pristine: Sequence[str] = (),
) -> bool:
    """Print each chosen exercise's header and failures, then the next step when every
    chosen exercise passes. Returns whether they all pass."""
    all_pass = True
    for exercise in chosen:
        mine = [r for r in results if r.exercise == exercise.id]
        console.print(header(exercise, mine), soft_wrap=True)
        lines = failure_lines(exercise, mine)
        if lines or not mine:
            all_pass = False
        for line in lines:
            console.print(line, soft_wrap=True)
        if exercise.id in pristine:
            console.print(Text(t("check.untouched", file=shown_file(exercise)), "dim"))
    if all_pass and chosen:
        console.print()
        for line in next_step_lines(course, chosen[-1]):
            console.print(line, soft_wrap=True)
    return all_pass
