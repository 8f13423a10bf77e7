"""The gradebook: one row per learner, as CSV and JSON, plus results.json per learner.

``gradebook.csv`` is the wide shape spreadsheets and LMS grade imports take: a header
row, then one row per learner with the learner id first, the total, the maximum, the
percentage, one column of points per exercise, then status, commit, graded at (UTC,
ISO 8601), content hash and the learners with an identical submission. ``gradebook.json``
holds the same rows with the per-exercise points as an object, the course version, and
who moved since the previous gradebook in the same folder (kept as
``gradebook.previous.json``). ``learners/<id>/results.json`` is each learner's Exercism
v3 results.json (the shape of ``grader report --json``).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grader.catalog import catalog
from grader.classroom.inputs import Submission
from grader.classroom.plan import Plan

CSV_FILE = "gradebook.csv"
JSON_FILE = "gradebook.json"
PREVIOUS_FILE = "gradebook.previous.json"
LEARNERS_DIR = "learners"
FIXED_COLUMNS = ("learner", "total", "max_points", "percent")
TRAILING_COLUMNS = ("status", "commit", "graded_at", "content_hash", "identical_to", "message")


@dataclass
class Row:
    """One learner's line of the gradebook."""

    learner: str
    status: str  # graded | timeout | limit | error | invalid
    points: dict[str, int]
    total: int
    max_points: int
    percent: float
    commit: str = ""
    graded_at: str = ""
    content_hash: str = ""
    identical_to: list[str] = field(default_factory=list)
    message: str = ""
    results: str = ""  # the learner's results.json, relative to the gradebook
    feedback: str = ""  # the learner's feedback page, relative to the gradebook


@dataclass
class Move:
    """A learner whose total changed since the previous gradebook."""

    learner: str
    before: int
    after: int

    @property
    def delta(self) -> int:
        """Points gained (negative: lost)."""
        return self.after - self.before


@dataclass
class Gradebook:
    """Every row, the exercises graded and their maxima, and the moves since last time."""

    course_version: str
    generated_at: str
    exercises: dict[str, int]  # exercise id -> max points, in course order
    rows: list[Row]
    only: list[str] = field(default_factory=list)
    previous_course_version: str = ""
    moved: list[Move] = field(default_factory=list)

    @property
    def max_points(self) -> int:
        """The most a learner can earn in this run."""
        return sum(self.exercises.values())

    def row(self, learner: str) -> Row:
        """The row of one learner; raises KeyError."""
        for row in self.rows:
            if row.learner == learner:
                return row
        raise KeyError(learner)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of gradebook.json."""
        return {
            "course_version": self.course_version,
            "generated_at": self.generated_at,
            "only": self.only,
            "exercises": [{"id": k, "max_points": v} for k, v in self.exercises.items()],
            "max_points": self.max_points,
            "learners": [asdict(row) for row in self.rows],
            "previous_course_version": self.previous_course_version,
            "moved": [{**asdict(m), "delta": m.delta} for m in self.moved],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Gradebook:
        """Read a gradebook.json."""
        return cls(
            course_version=data["course_version"],
            generated_at=data["generated_at"],
            exercises={e["id"]: int(e["max_points"]) for e in data["exercises"]},
            rows=[Row(**row) for row in data["learners"]],
            only=list(data.get("only", [])),
            previous_course_version=data.get("previous_course_version", ""),
            moved=[Move(m["learner"], m["before"], m["after"]) for m in data.get("moved", [])],
        )


def _exercise_maxima(plan: Plan) -> dict[str, int]:
    """Max points per chosen exercise, in course order (from any graded result)."""
    found: dict[str, int] = {}
    for outcome in plan.outcomes.values():
        for exercise in (outcome.results or {}).get("exercises", []):
            found.setdefault(exercise["id"], int(exercise["max_points"]))
    chosen = [
        e.id for e in catalog().exercises if e.available and (not plan.only or e.id in plan.only)
    ]
    return {exercise: found.get(exercise, 0) for exercise in chosen}


def _identical(plan: Plan) -> dict[str, list[str]]:
    """Learners whose submissions are byte for byte the same work, by learner."""
    by_hash: dict[str, list[str]] = {}
    for submission in plan.submissions:
        if submission.snapshot is None:
            continue
        outcome = plan.outcome_of(submission)
        statuses = {e["status"] for e in (outcome.results or {}).get("exercises", [])}
        if statuses and statuses <= {"not started", "file missing"}:
            continue  # untouched stubs are alike without being copied
        by_hash.setdefault(submission.snapshot.content_hash, []).append(submission.learner)
    return {
        learner: [other for other in group if other != learner]
        for group in by_hash.values()
        if len(group) > 1
        for learner in group
    }


def build(plan: Plan, previous: Gradebook | None = None) -> Gradebook:
    """The gradebook of a finished plan (``previous``: the last one, to tell who moved)."""
    maxima = _exercise_maxima(plan)
    identical = _identical(plan)
    rows = []
    for submission in plan.submissions:
        rows.append(_row(submission, plan, maxima, identical.get(submission.learner, [])))
    book = Gradebook(
        course_version=plan.version,
        generated_at=datetime.now(UTC).replace(microsecond=0).isoformat(),
        exercises=maxima,
        rows=rows,
        only=list(plan.only),
    )
    if previous is not None:
        book.previous_course_version = previous.course_version
        before = {row.learner: row.total for row in previous.rows}
        book.moved = [
            Move(row.learner, before[row.learner], row.total)
            for row in rows
            if row.learner in before and before[row.learner] != row.total
        ]
    return book


def _row(submission: Submission, plan: Plan, maxima: dict[str, int], same: list[str]) -> Row:
    outcome = plan.outcome_of(submission)
    points = dict.fromkeys(maxima, 0)
    for exercise in (outcome.results or {}).get("exercises", []):
        if exercise["id"] in points:
            points[exercise["id"]] = int(exercise["points"])
    total = sum(points.values())
    top = sum(maxima.values())
    has_results = outcome.results is not None
    return Row(
        learner=submission.learner,
        status=outcome.status,
        points=points,
        total=total,
        max_points=top,
        percent=round(100 * total / top, 1) if top else 0.0,
        commit=submission.commit,
        graded_at=outcome.graded_at,
        content_hash=submission.snapshot.content_hash[:16] if submission.snapshot else "",
        identical_to=same,
        message=outcome.message,
        results=f"{LEARNERS_DIR}/{submission.slug}/results.json" if has_results else "",
        feedback=f"{LEARNERS_DIR}/{submission.slug}/feedback.html",
    )


def _atomic_write(path: Path, text: str, newline: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8", newline=newline) as file:
        file.write(text)
    os.replace(temporary, path)


def csv_text(book: Gradebook) -> str:
    """gradebook.csv's text (RFC 4180: CRLF line ends, quoted where needed)."""
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*FIXED_COLUMNS, *book.exercises, *TRAILING_COLUMNS])
    for row in book.rows:
        writer.writerow(
            [
                row.learner,
                row.total,
                row.max_points,
                f"{row.percent:.1f}",
                *(row.points[e] for e in book.exercises),
                row.status,
                row.commit,
                row.graded_at,
                row.content_hash,
                " ".join(row.identical_to),
                row.message.splitlines()[0][:200] if row.message else "",
            ]
        )
    return buffer.getvalue()


def load(out: Path) -> Gradebook | None:
    """The gradebook.json in ``out``, if there is a readable one."""
    try:
        return Gradebook.from_dict(json.loads((out / JSON_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(out: Path, book: Gradebook, plan: Plan) -> None:
    """gradebook.csv, gradebook.json (the old one kept as gradebook.previous.json) and
    each learner's results.json."""
    current = out / JSON_FILE
    if current.is_file():
        os.replace(current, out / PREVIOUS_FILE)
    for submission in plan.submissions:
        results = plan.outcome_of(submission).results
        if results is not None:
            text = json.dumps(results, indent=2, ensure_ascii=False)
            _atomic_write(out / LEARNERS_DIR / submission.slug / "results.json", text)
    _atomic_write(out / CSV_FILE, csv_text(book), newline="")
    _atomic_write(current, json.dumps(book.to_dict(), indent=2, ensure_ascii=False))
