"""Progress of a learner: per exercise status and points, the next step, results.json."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from grader import present
from grader.catalog import Catalog, Exercise, is_pristine
from grader.i18n import t
from grader.results import TestResult

NOT_STARTED = "not started"
PASSED = "passed"
COMING_SOON = "coming soon"
MISSING = "file missing"


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
    earned = sum(s.points for s in found)
    total = sum(s.max_points for s in found)
    done = sum(s.label == PASSED for s in found)
    available = sum(s.exercise.available for s in found)
    console.print(
        t(
            "report.overall",
            done=done,
            available=available,
            points=earned,
            max_points=total,
            soon=len(found) - available,
        )
    )
    console.print(ProgressBar(total=max(total, 1), completed=earned, width=50))
    console.print()  # the bar ends without a line break
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
    console.print(Text(text), soft_wrap=True)
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
        console.print(Text(summary, "yellow"), soft_wrap=True)
        console.print(Text(t("report.details", exercise=exercise.id), "dim"), soft_wrap=True)


def results_json(found: list[ExerciseStatus]) -> dict[str, Any]:
    """Exercism's results.json (version 3) for the whole course, plus points."""
    tests = []
    for status in found:
        for result in status.results:
            tests.append(
                {
                    "name": f"{status.exercise.id}::{result.name}",
                    "status": "pass"
                    if result.outcome == "passed"
                    else "fail"
                    if result.outcome == "failed"
                    else "error",
                    "message": result.message or None,
                    "output": result.output[:500] or None,
                    "task_id": status.exercise.order,
                    "points": result.points if result.outcome == "passed" else 0,
                    "max_points": result.points,
                }
            )
    if any(t["status"] == "error" for t in tests):
        overall = "error"
    elif tests and all(t["status"] == "pass" for t in tests):
        overall = "pass"
    else:
        overall = "fail"
    return {
        "version": 3,
        "status": overall,
        "message": None,
        "tests": tests,
        "points": sum(s.points for s in found),
        "max_points": sum(s.max_points for s in found),
        "exercises": [
            {
                "id": s.exercise.id,
                "level": s.exercise.level,
                "task_id": s.exercise.order,
                "status": s.label,
                "points": s.points,
                "max_points": s.max_points,
            }
            for s in found
        ],
    }


def write_json(path: Path, found: list[ExerciseStatus]) -> None:
    """Write results.json (v3 shape plus points) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_json(found), indent=2, ensure_ascii=False), encoding="utf-8")
