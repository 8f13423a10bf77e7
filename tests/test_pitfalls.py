"""Pitfall traceability: the notes' pitfalls, their 评分 cells and comments, and verify."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from grader import paths
from grader.catalog import CatalogError, catalog, load_catalog
from grader.pitfalls import (
    CODE,
    TABLE,
    WARNING,
    Grading,
    PitfallFormatError,
    parse_grading,
    parse_note,
    pitfall_problems,
    read_note,
    split_cells,
)
from grader.verify import verify_notes

NOTE = """# 07x

| 角色 | 职责 |
|---|---|
| 调度器 | 决定什么时候做 |

<a id="pitfalls"></a>
## 踩坑清单

| 现象 | 原因 | 对策 | 出处 | 评分 |
|---|---|---|---|---|
| 任务跑 N 次 | 多 worker | 单 worker | #160 | `ex::test_runs_once`, `ex/two_schedulers` |
| `a | b` 被当成两列 | 反引号里的竖线 | 照写 | 第 1 节 | 不评分：只是排版 |

**陷阱**：写成调度器参数会被忽略。
<!-- 评分: ex::test_job_defaults -->

**多 worker 陷阱：任务跑了 N 次。** 每个 worker 一个调度器。

## 陷阱：标题不是警告

**加粗但不是那个词**，普通段落。

<!-- 评分: ex::test_weekday -->
<!-- norun: shows the pitfall only -->
```python
x = 1  # 陷阱：0 是周一
print("**陷阱** in code is code")
```
"""


def test_cells_split_on_pipes_outside_backticks_only() -> None:
    assert split_cells("| `a | b` | c \\| d | e |") == ["`a | b`", "c \\| d", "e"]


def test_every_form_of_pitfall_is_found_with_its_line_and_grading() -> None:
    found, problems = parse_note(NOTE, "07x.md")
    assert problems == []
    assert [(p.kind, p.line, p.text, p.grading) for p in found] == [
        (TABLE, 12, "任务跑 N 次", "`ex::test_runs_once`, `ex/two_schedulers`"),
        (TABLE, 13, "`a | b` 被当成两列", "不评分：只是排版"),
        (WARNING, 15, "陷阱", "ex::test_job_defaults"),
        (WARNING, 18, "多 worker 陷阱：任务跑了 N 次。", None),
        (CODE, 27, "陷阱：0 是周一", "ex::test_weekday"),
    ]


def test_a_pitfall_table_without_a_last_grading_column_is_reported_once() -> None:
    without = NOTE.replace(" | 评分 |", " |").replace("|---|---|---|---|---|", "|---|---|---|---|")
    found, problems = parse_note(without, "07x.md")
    assert problems == [
        "notes/07x.md:10: the pitfall table's column 评分 is missing (2 row(s) without a grading)"
    ]
    tables = [p for p in found if p.kind == TABLE]
    assert len(tables) == 2 and all(p.grading is None for p in tables)
    assert pitfall_problems(tables, lambda _: set(), lambda _: set()) == []
    moved = NOTE.replace(
        "| 现象 | 原因 | 对策 | 出处 | 评分 |", "| 现象 | 评分 | 原因 | 对策 | 出处 |"
    )
    assert "is not its last column" in parse_note(moved, "07x.md")[1][0]


def test_gradings_parse_references_and_reasons() -> None:
    assert parse_grading("`ex::test_a`, ex/bug_one，`other::test_b`") == Grading(
        tests=(("ex", "test_a"), ("other", "test_b")), mutants=(("ex", "bug_one"),)
    )
    assert parse_grading("不评分：运维层面的问题") == Grading(reason="运维层面的问题")
    assert parse_grading("不评分: ops only") == Grading(reason="ops only")
    for bad, why in [
        ("", "no grading"),
        ("不评分：", "needs a one-line reason"),
        ("`ex.test_a`", "is no reference"),
        ("ex::check_a", "is no reference"),
        ("`ex::test_a`, 不评分：x", "is no reference"),
    ]:
        with pytest.raises(PitfallFormatError, match=why):
            parse_grading(bad)


def test_references_must_name_existing_tests_and_mutants() -> None:
    found, _ = parse_note(NOTE, "07x.md")
    tests = {"ex": {"test_runs_once", "test_job_defaults", "test_weekday"}}
    mutants = {"ex": {"two_schedulers"}}
    problems = pitfall_problems(found, tests.get, mutants.get)
    assert problems == [
        'notes/07x.md:18 "多 worker 陷阱：任务跑了 N 次。": the warning has no '
        "<!-- 评分: ... --> or <!-- 不评分: reason --> comment"
    ]
    problems = pitfall_problems(found, {"ex": {"test_weekday"}}.get, {"ex": set()}.get)
    assert problems[:3] == [
        'notes/07x.md:12 "任务跑 N 次": ex\'s suite has no test test_runs_once',
        'notes/07x.md:12 "任务跑 N 次": ex has no mutant two_schedulers',
        'notes/07x.md:15 "陷阱": ex\'s suite has no test test_job_defaults',
    ]
    assert "no graded exercise 'ex'" in pitfall_problems(found, {}.get, {}.get)[0]
    malformed = dataclasses.replace(found[0], grading="`ex::runs_once`")
    assert "is no reference" in pitfall_problems([malformed], tests.get, mutants.get)[0]


def test_verify_enforces_only_the_notes_the_catalog_lists(tmp_path: Path) -> None:
    good = NOTE.replace(
        "`ex::test_runs_once`", "`simple_timer::test_jobs_call_the_module_functions_that_log`"
    )
    good = good.replace("`ex/two_schedulers`", "`simple_timer/heartbeat_runs_immediately`")
    good = good.replace(
        "ex::test_job_defaults", "simple_timer::test_heartbeat_runs_every_5_seconds_from_start"
    )
    good = good.replace("ex::test_weekday", "simple_timer::test_nope")
    (tmp_path / "07x.md").write_text(good, encoding="utf-8")
    (tmp_path / "07y.md").write_text(NOTE, encoding="utf-8")
    (tmp_path / "07z.md").write_text("# nothing to trace\n", encoding="utf-8")
    course = dataclasses.replace(catalog(), pitfall_traceability=("07x.md", "gone.md"))
    verdict = verify_notes(course, tmp_path)
    assert verdict.pitfalls == {"07x.md": 5, "07y.md": 5, "07z.md": 0}
    assert verdict.problems == [
        "pitfall_traceability lists notes/gone.md, which does not exist",
        'notes/07x.md:18 "多 worker 陷阱：任务跑了 N 次。": the warning has no '
        "<!-- 评分: ... --> or <!-- 不评分: reason --> comment",
        'notes/07x.md:27 "陷阱：0 是周一": simple_timer\'s suite has no test test_nope',
    ]
    assert len(verdict.warnings) == 1 and verdict.warnings[0].startswith("notes/07y.md:")


def test_the_catalog_key_pitfall_traceability_lists_note_files(tmp_path: Path) -> None:
    body = '[[level]]\nnumber = 1\ntitle = "One"\n[[exercise]]\nid = "a"\nlevel = 1\n'
    body += 'title = "A"\nfile = "a.py"\nnote = "n.md"\n'
    path = tmp_path / "catalog.toml"
    path.write_text(body)
    assert load_catalog(path).pitfall_traceability == ()
    path.write_text('pitfall_traceability = ["07a.md"]\n' + body)
    assert load_catalog(path).pitfall_traceability == ("07a.md",)
    for bad in ('"07a.md"', '["07a"]', '["notes/07a.md"]', '["07a.md", "07a.md"]'):
        path.write_text(f"pitfall_traceability = {bad}\n" + body)
        with pytest.raises(CatalogError, match="pitfall_traceability"):
            load_catalog(path)


# -- the real notes, read only ----------------------------------------------------------------


def pitfall_counts() -> dict[str, dict[str, int]]:
    """Pitfalls per note and form, as the parser finds them in notes/."""
    counts = {}
    for note in sorted(paths.NOTES_DIR.glob("*.md")):
        found, _ = read_note(note)
        counts[note.name] = {
            kind: sum(p.kind == kind for p in found) for kind in (TABLE, WARNING, CODE)
        }
    return counts


def _independent_count(text: str) -> dict[str, int]:
    """A naive second reading: rows of the table after the pitfalls anchor; bold 陷阱 and
    `# 陷阱` comments, outside / inside code fences."""
    rows = 0
    if '<a id="pitfalls"></a>' in text:
        after = text.split('<a id="pitfalls"></a>', 1)[1]
        table = re.search(r"^\|.*?(?=^[^|]|\Z)", after, flags=re.M | re.S)
        assert table is not None
        rows = table.group(0).count("\n") - 2  # minus the header and separator rows
    prose, code = [], []
    for index, chunk in enumerate(re.split(r"^```.*$", text, flags=re.M)):
        (code if index % 2 else prose).append(chunk)
    warnings = sum(
        bool(re.search(r"\*\*[^*\n]*陷阱[^*\n]*\*\*", para))
        for chunk in prose
        for para in re.split(r"\n\s*\n", chunk)
        if not para.lstrip().startswith("#")
    )
    comments = sum(len(re.findall(r"#.*陷阱", chunk)) for chunk in code)
    return {TABLE: rows, WARNING: warnings, CODE: comments}


def test_the_parser_finds_every_pitfall_of_the_real_notes() -> None:
    counts = pitfall_counts()
    assert counts, "no notes found"
    for note, found in counts.items():
        text = (paths.NOTES_DIR / note).read_text(encoding="utf-8")
        assert found == _independent_count(text), note
        if '<a id="pitfalls"></a>' in text:
            assert found[TABLE] > 0, f"{note}: the pitfall table was not found"
