"""The commands the course prints for running things by hand do what they promise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grader import paths

ROOT = paths.REPO_ROOT
# `celery -A tasks worker`, `celery --app=x worker`, `.venv/bin/celery -A x worker`
WORKER = re.compile(r"celery\s+(?:-A\s*|--app[= ])([\w.]+)\s+worker\b")
WORKER_MODULE = "standalone_worker"  # importing it configures the worker and its queues


def documents() -> list[Path]:
    """Every file a learner reads run instructions in."""
    found = [ROOT / "README.md", *sorted((ROOT / "notes").glob("*.md"))]
    for tree in ("solutions", "exercises", "docs"):
        found += sorted((ROOT / tree).rglob("*.md")) + sorted((ROOT / tree).rglob("*.py"))
    return [p for p in found if "__pycache__" not in p.parts]


@pytest.mark.timeout(10)
def test_every_documented_worker_is_started_through_standalone_worker() -> None:
    """A worker started on tasks.py's app consumes only the default queue: notify and the
    maintenance tasks (routed to their own queues) would wait forever."""
    wrong = [
        f"{path.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}: {match.group(0)}"
        for path in documents()
        for text in [path.read_text(encoding="utf-8", errors="replace")]
        for match in WORKER.finditer(text)
        if match.group(1) != WORKER_MODULE
    ]
    assert not wrong, "workers started without the worker settings and queues:\n" + "\n".join(wrong)


@pytest.mark.timeout(10)
def test_the_worker_pattern_finds_the_documented_workers() -> None:
    """The check above cannot pass by matching nothing."""
    found = [m.group(1) for p in documents() for m in WORKER.finditer(p.read_text("utf-8"))]
    assert found.count(WORKER_MODULE) >= 3
    assert WORKER.search("celery -A tasks worker --loglevel=INFO").group(1) == "tasks"
