"""The README's teacher commands for `grader class` work as written.

The `python3 -m grader class ...` lines of the "For teachers and maintainers" section are
run in order from the repository root (their /tmp/cronkata-* folders moved below the
test's tmp folder); the documented worker command is the one the Celery integration
test starts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from grader import paths

README = paths.REPO_ROOT / "README.md"
SECTION = "## For teachers and maintainers"


def teacher_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else None]


def class_commands() -> list[str]:
    """`python3 -m grader class ...` commands of the section, in order."""
    return re.findall(r"^\s*(python3 -m grader class [^\n`]+)$", teacher_section(), re.M)


def test_the_section_documents_the_class_commands() -> None:
    commands = class_commands()
    assert any(" demo " in c for c in commands) and any(" grade " in c for c in commands)
    section = teacher_section()
    assert "--celery" in section and "benchmarks/bench_class.py" in section
    assert (paths.REPO_ROOT / "benchmarks" / "bench_class.py").is_file()


def test_the_documented_worker_command_is_the_tested_one() -> None:
    [command] = re.findall(r"`([^`]*celery -A grader\.classroom worker[^`]*)`", teacher_section())
    words = shlex.split(command)
    assert words[0].startswith("CRONKATA_CLASS_BROKER=redis://")
    assert words[1] == ".venv/bin/celery" and (paths.REPO_ROOT / words[1]).exists()
    assert words[2:] == ["-A", "grader.classroom", "worker", "--concurrency", "1"]
    tested = (paths.REPO_ROOT / "tests/integration/test_classroom_celery.py").read_text()
    assert '"-A", "grader.classroom", "worker", "--concurrency", "1"' in tested


@pytest.mark.timeout(300)
def test_the_documented_class_commands_run(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "150"}
    for command in class_commands():
        words = [w.replace("/tmp/cronkata-", f"{tmp_path}/cronkata-") for w in shlex.split(command)]
        assert words[:3] == ["python3", "-m", "grader"]
        done = subprocess.run(
            [sys.executable, *words[1:]],
            cwd=paths.REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, f"{command}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    book = json.loads((tmp_path / "cronkata-gradebook" / "gradebook.json").read_text())
    totals = {row["learner"].split("-", 1)[1]: row["total"] for row in book["learners"]}
    assert totals["complete"] == totals["twin"] == book["max_points"] > 0
    assert totals["untouched"] == 0
    assert (tmp_path / "cronkata-gradebook" / "report.html").is_file()
