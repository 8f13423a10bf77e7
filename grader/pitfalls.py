"""Pitfall traceability: every pitfall a note teaches names what grades it, or why nothing does.

The notes teach pitfalls in three forms, each found by this parser:

- **table rows**: any table whose first header cell is ``现象`` (the pitfall table after
  ``<a id="pitfalls"></a>``, ``| 现象 | 原因 | 对策 | 出处 | 评分 |``). Its last column
  ``评分`` holds the grading cell.
- **inline warnings**: a paragraph (or list item) with bold text containing ``陷阱``, such
  as ``**陷阱**：...`` or ``**多 worker 陷阱：任务跑了 N 次。**``. The paragraph carries an
  HTML comment ``<!-- 评分: ... -->`` or ``<!-- 不评分: reason -->``.
- **code comments**: a ``# 陷阱...`` comment inside a fenced code block. The comment
  ``<!-- 评分: ... -->`` goes on the lines right before the opening fence (like
  ``<!-- norun: ... -->``, which must stay the last of them).

A grading is either references, comma-separated, each optionally in backticks:
``exercise_id::test_function_name`` (a test of that exercise's suite) or
``exercise_id/mutant_name`` (a mutant of that exercise, ``.toml`` or ``.py``); or
``不评分：<one-line reason>`` (a pitfall no test can grade, and why).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

TABLE = "table"
WARNING = "warning"
CODE = "code"
GRADING_COLUMN = "评分"
NOT_GRADED = re.compile(r"^不评分\s*[:：]\s*(.*)$", re.S)
COMMENT = re.compile(r"<!--\s*((?:不)?评分)\s*[:：]\s*(.*?)\s*-->", re.S)
BOLD_WARNING = re.compile(r"\*\*([^*\n]*陷阱[^*\n]*)\*\*")
CODE_WARNING = re.compile(r"#.*陷阱")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s")
TEST_REF = re.compile(r"^([a-z0-9_]+)::(test_\w+)$")
MUTANT_REF = re.compile(r"^([a-z0-9_]+)/([\w\-]+)$")


class PitfallFormatError(ValueError):
    """A grading cell or comment that does not follow the format."""


@dataclass(frozen=True)
class Pitfall:
    """One pitfall of a note and its grading text as written (None when there is none)."""

    note: str
    line: int
    kind: str  # table | warning | code
    text: str  # the 现象 cell, or the bold / comment text of a warning
    grading: str | None

    @property
    def where(self) -> str:
        """``notes/<file>:<line> "<text>"``, for messages."""
        short = self.text if len(self.text) <= 40 else self.text[:39] + "…"
        return f'notes/{self.note}:{self.line} "{short}"'


@dataclass(frozen=True)
class Grading:
    """What grades a pitfall: test and mutant references, or the reason nothing does."""

    tests: tuple[tuple[str, str], ...] = ()  # (exercise id, test function)
    mutants: tuple[tuple[str, str], ...] = ()  # (exercise id, mutant name)
    reason: str | None = None  # 不评分


def split_cells(row: str) -> list[str]:
    """The cells of a markdown table row (a ``|`` inside backticks or escaped stays)."""
    body = row.strip()
    body = body.removeprefix("|")
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    cells: list[str] = []
    current: list[str] = []
    in_code = False
    previous = ""
    for char in body:
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code and previous != "\\":
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        previous = char
    cells.append("".join(current).strip())
    return cells


def _is_separator(row: str) -> bool:
    return all(re.fullmatch(r":?-+:?", cell) for cell in split_cells(row))


def _comment_grading(text: str) -> str | None:
    match = COMMENT.search(text)
    if match is None:
        return None
    kind, body = match.group(1), match.group(2)
    return f"不评分：{body}" if kind == "不评分" else body


def parse_note(text: str, note: str) -> tuple[list[Pitfall], list[str]]:
    """The pitfalls of a note's text, and format problems found while reading it.

    A pitfall table without a last ``评分`` column is a problem of the table (its rows
    are returned with ``grading`` None).
    """
    lines = text.splitlines()
    pitfalls: list[Pitfall] = []
    problems: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if FENCE.match(line):
            index = _code_block(lines, index, note, pitfalls)
        elif line.lstrip().startswith("|"):
            start = index
            while index < len(lines) and lines[index].lstrip().startswith("|"):
                index += 1
            _table(lines[start:index], start + 1, note, pitfalls, problems)
        elif line.strip() and not HEADING.match(line):
            start = index
            while index < len(lines) and _paragraph_line(lines[index]):
                index += 1
            _paragraph(lines[start:index], start + 1, note, pitfalls)
        else:  # a blank line or a heading (headings are no warnings)
            index += 1
    return pitfalls, problems


def _paragraph_line(line: str) -> bool:
    return bool(
        line.strip()
        and not FENCE.match(line)
        and not HEADING.match(line)
        and not line.lstrip().startswith("|")
    )


def _code_block(lines: list[str], start: int, note: str, pitfalls: list[Pitfall]) -> int:
    """Record ``# 陷阱`` comments of the block opening at ``start``; returns the next index."""
    fence = FENCE.match(lines[start])
    assert fence is not None
    before: list[str] = []
    back = start - 1
    while back >= 0 and lines[back].strip():
        before.insert(0, lines[back])
        back -= 1
    grading = _comment_grading("\n".join(before))
    index = start + 1
    while index < len(lines) and not lines[index].strip().startswith(fence.group(1)):
        if CODE_WARNING.search(lines[index]):
            comment = lines[index][lines[index].index("#") :].lstrip("# ").strip()
            pitfalls.append(Pitfall(note, index + 1, CODE, comment, grading))
        index += 1
    return index + 1


def _table(
    rows: list[str], first_line: int, note: str, pitfalls: list[Pitfall], problems: list[str]
) -> None:
    header = split_cells(rows[0])
    if header[0] != "现象":
        return
    body = rows[2:] if len(rows) > 1 and _is_separator(rows[1]) else rows[1:]
    column = len(header) - 1 if header[-1] == GRADING_COLUMN else None
    if column is None:
        where = "is not its last column" if GRADING_COLUMN in header else "is missing"
        problems.append(
            f"notes/{note}:{first_line}: the pitfall table's column {GRADING_COLUMN} {where} "
            f"({len(body)} row(s) without a grading)"
        )
    offset = first_line + len(rows) - len(body)
    for number, row in enumerate(body):
        cells = split_cells(row)
        grading = cells[column] if column is not None and column < len(cells) else None
        pitfalls.append(Pitfall(note, offset + number, TABLE, cells[0], grading))


def _paragraph(lines: list[str], first_line: int, note: str, pitfalls: list[Pitfall]) -> None:
    text = "\n".join(lines)
    bold = BOLD_WARNING.search(text)
    if bold is None:
        return
    line = first_line + text[: bold.start()].count("\n")
    pitfalls.append(Pitfall(note, line, WARNING, bold.group(1), _comment_grading(text)))


def parse_grading(text: str) -> Grading:
    """A grading cell or comment's content; raises PitfallFormatError when malformed."""
    text = text.strip()
    reason = NOT_GRADED.match(text)
    if reason is not None:
        if not reason.group(1).strip():
            raise PitfallFormatError("不评分 needs a one-line reason: 不评分：<why no test can>")
        if "\n" in reason.group(1).strip():
            raise PitfallFormatError("the 不评分 reason must fit on one line")
        return Grading(reason=reason.group(1).strip())
    if not text:
        raise PitfallFormatError(
            "no grading: name `exercise_id::test_name` or `exercise_id/mutant`, "
            "or write 不评分：why"
        )
    tests, mutants = [], []
    for raw in re.split(r"[,，]", text):
        ref = raw.strip().strip("`").strip()
        if match := TEST_REF.match(ref):
            tests.append((match.group(1), match.group(2)))
        elif match := MUTANT_REF.match(ref):
            mutants.append((match.group(1), match.group(2)))
        else:
            raise PitfallFormatError(
                f"{raw.strip()!r} is no reference: write `exercise_id::test_name` or "
                "`exercise_id/mutant_name`, or the whole cell as 不评分：why"
            )
    return Grading(tests=tuple(tests), mutants=tuple(mutants))


Lookup = Callable[[str], set[str] | None]  # exercise id -> names, None if no such exercise


def pitfall_problems(
    pitfalls: Iterable[Pitfall], tests_of: Lookup, mutants_of: Lookup
) -> list[str]:
    """Pitfalls without a valid grading, or naming a test or mutant that does not exist."""
    problems = []
    for pitfall in pitfalls:
        if pitfall.grading is None:
            if pitfall.kind != TABLE:  # a table without the column is reported once, by parse_note
                problems.append(
                    f"{pitfall.where}: the {pitfall.kind} has no <!-- 评分: ... --> "
                    "or <!-- 不评分: reason --> comment"
                )
            continue
        try:
            grading = parse_grading(pitfall.grading)
        except PitfallFormatError as error:
            problems.append(f"{pitfall.where}: {error}")
            continue
        for exercise_id, test in grading.tests:
            known = tests_of(exercise_id)
            if known is None:
                problems.append(f"{pitfall.where}: no graded exercise {exercise_id!r}")
            elif test not in known:
                problems.append(f"{pitfall.where}: {exercise_id}'s suite has no test {test}")
        for exercise_id, mutant in grading.mutants:
            known = mutants_of(exercise_id)
            if known is None:
                problems.append(f"{pitfall.where}: no graded exercise {exercise_id!r}")
            elif mutant not in known:
                problems.append(f"{pitfall.where}: {exercise_id} has no mutant {mutant}")
    return problems


def read_note(path: Path) -> tuple[list[Pitfall], list[str]]:
    """`parse_note` of a note file."""
    return parse_note(path.read_text(encoding="utf-8"), path.name)
