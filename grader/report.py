"""Progress of a learner: per exercise status and points, the next step, results.json."""

from __future__ import annotations

import ast
import json
import logging
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader import paths, present
from grader.catalog import Catalog, Exercise, is_pristine
from grader.i18n import t
from grader.results import TestResult

NOT_STARTED = "not started"
PASSED = "passed"
COMING_SOON = "coming soon"
MISSING = "file missing"
logger = logging.getLogger(__name__)


@dataclass
class ExerciseStatus:
    """Where the learner stands on one exercise."""

    exercise: Exercise
    results: list[TestResult]
    pristine: bool

    @property
    def passed(self) -> int:
        """Tests passed."""
        return sum(r.outcome == "passed" for r in self.results)

    @property
    def points(self) -> int:
        """Points earned."""
        return sum(r.points for r in self.results if r.outcome == "passed")

    @property
    def max_points(self) -> int:
        """Points available."""
        return sum(r.points for r in self.results)

    @property
    def label(self) -> str:
        """not started / failing k of n / passed / coming soon / file missing."""
        if not self.exercise.available:
            return COMING_SOON
        if not self.exercise.stub_path().is_file():
            return MISSING
        if self.pristine:
            return NOT_STARTED
        if self.results and self.passed == len(self.results):
            return PASSED
        return f"failing {len(self.results) - self.passed} of {len(self.results)}"

    @property
    def shown_label(self) -> str:
        """The label in the learner's language (``label`` stays English: results.json)."""
        label = self.label
        words = {
            PASSED: "status.passed",
            NOT_STARTED: "status.not_started",
            COMING_SOON: "status.coming_soon",
            MISSING: "status.missing",
        }
        if label in words:
            return t(words[label])
        return t("status.failing", failed=len(self.results) - self.passed, total=len(self.results))


def statuses(catalog: Catalog, results: list[TestResult]) -> list[ExerciseStatus]:
    """One status per exercise of the catalog, in course order."""
    grouped: dict[str, list[TestResult]] = defaultdict(list)
    for result in results:
        grouped[result.exercise].append(result)
    return [
        ExerciseStatus(e, grouped.get(e.id, []), e.available and is_pristine(e))
        for e in catalog.exercises
    ]


def next_step(found: list[ExerciseStatus]) -> ExerciseStatus | None:
    """The first available exercise, in course order, that is not passed yet."""
    return next((s for s in found if s.exercise.available and s.label != PASSED), None)


STYLE = {PASSED: "green", NOT_STARTED: "dim", COMING_SOON: "dim italic", MISSING: "red"}


def progress_bar(completed: int, total: int, width: int) -> Text:
    """``█████░░░░░ 50%``: visible in a terminal, a pipe or a file alike (one line)."""
    width = max(width, 10)
    filled = min(width, round(width * completed / total)) if total > 0 else 0
    bar = Text("█" * filled, "green")
    bar.append("░" * (width - filled), "dim")
    bar.append(f" {round(100 * completed / total) if total > 0 else 0}%")
    return bar


def render(console: Console, catalog: Catalog, found: list[ExerciseStatus]) -> None:
    """Print the progress table, the overall progress and the next step."""
    table = Table(title=t("report.title"), show_lines=False, expand=False)
    table.add_column(t("report.level"), justify="right", no_wrap=True)
    table.add_column(t("report.exercise"), no_wrap=True)
    table.add_column(t("report.status"), no_wrap=True)
    table.add_column(t("report.points"), justify="right", no_wrap=True)
    for level in catalog.levels:
        rows = [s for s in found if s.exercise.level == level.number]
        for index, status in enumerate(rows):
            label = status.label
            style = STYLE.get(label, "yellow")
            points = f"{status.points}/{status.max_points}" if status.exercise.available else "-"
            table.add_row(
                f"{level.number} {level.title}" if index == 0 else "",
                status.exercise.id,
                f"[{style}]{status.shown_label}[/{style}]",
                points,
            )
        table.add_section()
    console.print(table)
    width = console.width
    for status in found:
        if not status.exercise.available and status.exercise.planned:
            planned = t(
                "report.planned",
                exercise=status.exercise.id,
                title=status.exercise.title,
                planned=status.exercise.planned,
            )
            console.print(present.keep_commands(planned, STYLE[COMING_SOON], width), soft_wrap=True)
    earned = sum(s.points for s in found)
    total = sum(s.max_points for s in found)
    done = sum(s.label == PASSED for s in found)
    available = sum(s.exercise.available for s in found)
    console.print(
        t(
            "report.overall_soon" if len(found) > available else "report.overall",
            done=done,
            available=available,
            points=earned,
            max_points=total,
            soon=len(found) - available,
        )
    )
    console.print(progress_bar(earned, total, min(50, width - 6)), soft_wrap=True)
    console.print()  # the next step stands apart from the bar
    upcoming = next_step(found)
    if upcoming is None:
        console.print(Text(t("next.all_done"), "green"))
        return
    exercise = upcoming.exercise
    title = present.note_title(exercise.note)
    text = t(
        "report.next",
        file=present.shown_file(exercise),
        note=exercise.note + (f" «{title}»" if title else ""),
        exercise=exercise.id,
    )
    console.print(present.keep_commands(text, width=width), soft_wrap=True)
    failing = present.causes(upcoming.results)
    if failing and not upcoming.pristine:  # where the learner stands on it, in one line
        lead = failing[0].lead
        first = next((line for line in lead.core.splitlines() if line.strip()), "")
        if len(first) > 160:
            first = first[:157] + "..."
        summary = t(
            "report.first_failure",
            exercise=exercise.id,
            failed=sum(r.failed for r in upcoming.results),
            name=lead.name,
            message=first,
        )
        console.print(present.keep_commands(summary, "yellow", width), soft_wrap=True)
        details = t("report.details", exercise=exercise.id)
        console.print(present.keep_commands(details, "dim", width), soft_wrap=True)


# Exercism's test runner interface: "The output must be limited to 500 chars. Either
# truncating with a message of [OUTPUT_TRUNCATED] or returning an error ... are acceptable."
OUTPUT_LIMIT = 500
OUTPUT_TRUNCATED = "Output was truncated. Please limit to 500 chars"


def readable_name(exercise: Exercise, name: str) -> str:
    """A test's name for people: ``simple_timer: heartbeat runs every 5 seconds from start``
    (a parametrized ``test_x[case]`` reads ``x (case)``)."""
    function, _, case = name.partition("[")
    words = function.rsplit("::", 1)[-1].removeprefix("test_").replace("_", " ").strip()
    return f"{exercise.id}: {words}" + (f" ({case.removesuffix(']')})" if case else "")


@cache
def _test_functions(suite: Path) -> dict[str, str]:
    """The source of each test function of a suite file, from its ``def`` line (without
    decorators: the grade marker holds the hint) to its end, by name (``Class::name`` for
    a method)."""
    try:
        source = suite.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, SyntaxError, ValueError):
        logger.warning("cannot read the tests of %s", suite, exc_info=True)
        return {}
    lines = source.splitlines()
    found: dict[str, str] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}::")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test"
            ):
                code = "\n".join(lines[node.lineno - 1 : node.end_lineno])
                found[prefix + node.name] = textwrap.dedent(code)

    visit(tree.body, "")
    return found


def source_of_test(exercise: Exercise, name: str) -> str:
    """The code of the hidden test ``name`` (``test_x``, ``test_x[case]``): Exercism's
    ``test_code``, which learners need since they cannot see the suites."""
    if exercise.suite is None:
        return ""
    functions = _test_functions(paths.SUITES_DIR / exercise.suite)
    function = name.partition("[")[0]
    code = functions.get(function) or functions.get(function.rsplit("::", 1)[-1])
    return code or f"# {function} in grader/suites/{exercise.suite}"


def learner_output(result: TestResult) -> str | None:
    """What the learner's code printed during the test, at most `OUTPUT_LIMIT` characters
    (cut with Exercism's notice); None when it printed nothing."""
    text = result.prints
    if not text.strip():
        return None
    if len(text) <= OUTPUT_LIMIT:
        return text
    return text[: OUTPUT_LIMIT - len(OUTPUT_TRUNCATED) - 1] + "\n" + OUTPUT_TRUNCATED


def _status_of(result: TestResult) -> str:
    """pass, fail, or error: the learner's file could not be loaded (or a phase before or
    after the test itself failed)."""
    if result.outcome == "passed":
        return "pass"
    if result.cause == "load" or result.outcome == "error":
        return "error"
    return "fail"


def results_json(found: Sequence[ExerciseStatus]) -> dict[str, Any]:
    """Exercism's results.json (version 3) for these exercises (``report``: the whole
    course; ``check --json``: the chosen ones), plus points.

    Each test has its ``name`` for people, its ``test_code``, ``status`` (``error`` when
    the learner's file cannot be loaded), ``message``, ``output`` (only what the learner's
    code printed, not the libraries' log records; cut at 500 characters with the spec's
    notice) and ``task_id`` (the exercise's place in the course); beyond the spec,
    ``exercise``, ``test`` (pytest's name), ``points`` and ``max_points``. Tests are in
    course order, and in suite order within an exercise. The status is ``error`` only
    when no test could run (every test errs), with the reason in ``message``.
    """
    tests = []
    problems: list[str] = []
    for status in found:
        for result in status.results:
            state = _status_of(result)
            if state == "error" and (result.core or result.message) not in problems:
                problems.append(result.core or result.message)
            tests.append(
                {
                    "name": readable_name(status.exercise, result.name),
                    "test_code": source_of_test(status.exercise, result.name),
                    "status": state,
                    "message": result.message or None,
                    "output": learner_output(result),
                    "task_id": status.exercise.order,
                    "exercise": status.exercise.id,
                    "test": result.name,
                    "points": result.points if result.outcome == "passed" else 0,
                    "max_points": result.points,
                }
            )
    message = None
    if tests and all(test["status"] == "error" for test in tests):
        overall = "error"
        message = "\n\n".join(problems) or "no test could run"
    elif tests and all(test["status"] == "pass" for test in tests):
        overall = "pass"
    else:
        overall = "fail"
    return {
        "version": 3,
        "status": overall,
        "message": message,
        "tests": tests,
        "points": sum(s.points for s in found),
        "max_points": sum(s.max_points for s in found),
        "exercises": [
            {
                "id": s.exercise.id,
                "level": s.exercise.level,
                "task_id": s.exercise.order,
                "status": s.label,
                "planned": s.exercise.planned,
                "points": s.points,
                "max_points": s.max_points,
            }
            for s in found
        ],
    }


def write_json(path: Path, found: Sequence[ExerciseStatus]) -> None:
    """Write results.json (v3 shape plus points) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_json(found), indent=2, ensure_ascii=False), encoding="utf-8")
