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

from rich.cells import cell_len
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


# A command to copy: `in backticks`, or python3 -m grader / pytest and its ASCII arguments.
COMMAND = re.compile(
    r"`[^`\n]+`"
    r"|(?:[\w./-]*python3? -m (?:grader|pytest)|(?<![\w-])pytest(?![\w-]))"
    r"(?: [\w./#=:,\[\]-]+)*",
    re.ASCII,
)


def _pieces(line: str) -> list[tuple[int, int, bool]]:
    """``(start, end, foldable)`` of what a row may start with: each command (never cut),
    each word (cut only if wider than a row) and each wide (CJK) character."""
    pieces: list[tuple[int, int, bool]] = []

    def words(low: int, high: int) -> None:
        for word in re.finditer(r"\S+", line[low:high]):
            run = low + word.start()
            for index in range(run, low + word.end()):
                if cell_len(line[index]) > 1:  # CJK text breaks between its characters
                    if run < index:
                        pieces.append((run, index, True))
                    pieces.append((index, index + 1, True))
                    run = index + 1
            if run < low + word.end():
                pieces.append((run, low + word.end(), True))

    position = 0
    for command in COMMAND.finditer(line):
        words(position, command.start())
        pieces.append((command.start(), command.end(), False))
        position = command.end()
    words(position, len(line))
    return pieces


def _breaks(line: str, width: int, indent: int) -> list[int]:
    """Where to cut ``line`` into rows of ``width`` cells (continuation rows start after
    ``indent`` cells)."""
    offsets: list[int] = []
    start = 0  # where the current row starts
    for begin, end, foldable in _pieces(line):
        room = width - (indent if offsets else 0)
        if cell_len(line[start:end]) <= room:
            continue
        if begin > start:
            offsets.append(begin)  # the piece starts the next row
            start = begin
            room = width - indent
            if cell_len(line[start:end]) <= room:
                continue
        if not foldable:
            continue  # a command wider than a row stands alone on its row
        for index in range(start + 1, end + 1):  # a word wider than a row: fold it
            if cell_len(line[start:index]) > room:
                offsets.append(index - 1)
                start = index - 1
    return offsets


def wrap_commands(text: str, width: int) -> list[str]:
    """``text`` in rows of at most ``width`` cells: cut between words, never inside a
    command (it stays whole, copy-pastable, alone on its row if wider than that); a word
    wider than a row, and CJK text, fold between characters. Continuation rows keep the
    line's indentation."""
    rows: list[str] = []
    for line in text.split("\n"):
        indent = line[: len(line) - len(line.lstrip(" "))]
        offsets = _breaks(line, width, cell_len(indent))
        for number, (start, end) in enumerate(
            zip([0, *offsets], [*offsets, len(line)], strict=True)
        ):
            row = line[start:end].rstrip()
            rows.append(indent + row if number else row)
    return rows


def keep_commands(text: str, style: str = "", width: int | None = None) -> Text:
    """``text`` as a Text; with ``width``, wrapped by `wrap_commands` (print it with
    ``soft_wrap=True``: a terminal would cut a command anywhere)."""
    return Text(text if width is None else "\n".join(wrap_commands(text, width)), style)


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


def failure_lines(
    exercise: Exercise, results: Sequence[TestResult], width: int | None = None
) -> list[Text]:
    """The lines of one exercise's failures: its lead cause in full, the rest by name.

    With ``width`` (the console's), lines that hold a command are wrapped to it without
    cutting the command (`keep_commands`)."""
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
        lines += _hint_lines(exercise, lead, width)
    rest = [r for r in failing if r not in lead_cause.results]
    if rest:
        lines.append(Text(t("check.more", count=len(rest), names=_names(rest)), "yellow"))
    return lines


def _hint_lines(exercise: Exercise, lead: TestResult, width: int | None = None) -> list[Text]:
    """The lead test's hint if the learner revealed it, and the nudge to the next one."""
    known = set(hints.revealed(exercise.id))
    lines = []
    if lead.hint and lead.hint.strip() in known:
        lines.append(Text(INDENT + t("check.hint_revealed", hint=lead.hint.strip()), "green"))
    seen, total = hints.seen(exercise, lead.hint)
    if seen < total:
        nudge = t("check.nudge", exercise=exercise.id, seen=seen, total=total)
        lines.append(keep_commands(INDENT + nudge, "dim", width))
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


def next_step_lines(course: Catalog, done: Exercise, width: int | None = None) -> list[Text]:
    """After ``done`` passes: the reference solution to compare with, and what is next."""
    lines = [keep_commands(t("next.compare", exercise=done.id), width=width)]
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
    lines.append(keep_commands(text, "bold green", width))
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
        lines = failure_lines(exercise, mine, console.width)
        if lines or not mine:
            all_pass = False
        for line in lines:
            console.print(line, soft_wrap=True)
        if exercise.id in pristine:
            console.print(Text(t("check.untouched", file=shown_file(exercise)), "dim"))
    if all_pass and chosen:
        console.print()
        for line in next_step_lines(course, chosen[-1], console.width):
            console.print(line, soft_wrap=True)
    return all_pass


@dataclass(frozen=True)
class HintStep:
    """What `grader hint` and the watch's ``h`` reveal for an exercise's first failing test."""

    test: str  # the first failing test ("-" when the file cannot be loaded)
    total: int  # hints on that test's ladder
    earlier: list[str]  # revealed before this step
    revealed: tuple[int, str] | None  # (number, text) of the hint revealed now; None: none left


def next_hint(exercise: Exercise, results: list[TestResult]) -> HintStep | None:
    """Reveal (and remember) the next hint for the first failing test; None if it passes."""
    found = causes(results)
    if results and not found:
        return None
    lead = found[0].lead if found else None
    test_hint = lead.hint if lead is not None and found[0].key != "load" else None
    ladder = hints.ladder(exercise, test_hint)
    earlier = [h for h in hints.revealed(exercise.id) if h in ladder]
    revealed = hints.reveal_next(exercise, test_hint)
    test = lead.name if lead is not None else "-"
    return HintStep(test, len(ladder), earlier, revealed)
