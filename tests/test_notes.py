"""Every `python` code block of the notes runs as a standalone script and exits 0.

A block that cannot run (a fragment, a long-running server) uses another info string
(`bash`, `text`) or is preceded by `<!-- norun: the reason -->`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader import paths

FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
NORUN = re.compile(r"<!--\s*norun:\s*(.*?)\s*-->\s*\n\s*$")
TIMEOUT = 10.0


@dataclass(frozen=True)
class Block:
    note: str
    line: int
    code: str
    norun_reason: str | None

    @property
    def id(self) -> str:
        return f"{self.note}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for note in sorted(paths.NOTES_DIR.glob("*.md")):
        text = note.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            before = text[: match.start()]
            norun = NORUN.search(before[-300:])
            found.append(
                Block(
                    note.name,
                    before.count("\n") + 1,
                    match.group(1),
                    norun.group(1) if norun else None,
                )
            )
    return found


ALL = blocks()
RUNNABLE = [b for b in ALL if b.norun_reason is None]


def _run(block: Block) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as workdir:
        script = Path(workdir) / "block.py"
        script.write_text(block.code, encoding="utf-8")
        try:
            return subprocess.run(
                [sys.executable, str(script)],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
                check=False,
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(script.name, -9, "", f"timed out after {TIMEOUT} s")


@pytest.fixture(scope="module")
def outcomes() -> dict[str, subprocess.CompletedProcess[str]]:
    """Run every runnable block, two at a time."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        return dict(zip((b.id for b in RUNNABLE), pool.map(_run, RUNNABLE), strict=True))


def test_the_notes_have_code_to_run() -> None:
    assert len(RUNNABLE) >= 5


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.id)
def test_code_block_runs(
    block: Block, outcomes: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    done = outcomes[block.id]
    assert done.returncode == 0, f"{block.id} exited {done.returncode}:\n{done.stderr[-3000:]}"


def test_every_norun_block_says_why() -> None:
    for block in ALL:
        if block.norun_reason is not None:
            assert len(block.norun_reason) > 10, f"{block.id}: give a real reason"


LINK = re.compile(r"\]\(([^)#\s]+)(?:#([^)\s]*))?\)")


@pytest.mark.parametrize("note", sorted(paths.NOTES_DIR.glob("*.md")), ids=lambda p: p.name)
def test_every_relative_link_in_a_note_resolves(note: Path) -> None:
    from grader.verify import anchors_of

    for match in LINK.finditer(note.read_text(encoding="utf-8")):
        target, anchor = match.group(1), match.group(2)
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path = (note.parent / target).resolve()
        assert path.exists(), f"{note.name} links to {target}, which does not exist"
        if anchor and path.suffix == ".md":
            assert anchor in anchors_of(path), f"{note.name} links to {target}#{anchor}: no anchor"
