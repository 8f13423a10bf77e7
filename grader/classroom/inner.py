"""What runs inside a learner's sandbox: ``python -m grader.classroom.inner``.

Reads one request from stdin (a JSON object: ``nonce``, ``only``, ``archive`` as hex),
unpacks the snapshot into ``$CRONKATA_EXERCISES_DIR`` (the sandbox's private /tmp),
grades it with the grader's own per-test sandbox, and writes one line to stdout:
``CRONKATA-CLASS-RESULT <nonce> <json>``, the json holding ``results`` (the
results.json of ``grader report --json``, limited to the chosen exercises) or
``harness_error``. Learner code never writes to this stdout (each graded child's fds
0-2 are capped files), and this process makes itself non-dumpable, so a child (same uid,
no capabilities) can neither open its /proc files nor read the nonce from its memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

PR_SET_DUMPABLE = 4


def _not_dumpable() -> None:
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def grade(only: list[str]) -> dict[str, Any]:
    """Grade the tree at ``$CRONKATA_EXERCISES_DIR``: results.json of the chosen exercises."""
    from grader import variants
    from grader.catalog import catalog, is_pristine
    from grader.report import results_json, statuses
    from grader.results import run_suites

    course = catalog()
    chosen = [e for e in course.exercises if e.available and (not only or e.id in only)]
    exercises_dir = Path(os.environ["CRONKATA_EXERCISES_DIR"])
    for level in {e.level for e in chosen}:  # a learner who never touched a level
        (exercises_dir / f"level{level}").mkdir(parents=True, exist_ok=True)
    untouched = [e.id for e in chosen if is_pristine(e)]
    results = run_suites(chosen, [variants.LEARNER], not_run=untouched)
    found = [s for s in statuses(course, results) if s.exercise in chosen]
    return results_json(found)


def main() -> None:
    """Read the request, unpack, grade, answer (see the module's doc)."""
    _not_dumpable()
    request = json.loads(sys.stdin.buffer.read())
    nonce = str(request["nonce"])
    out = sys.stdout
    out.write(f"CRONKATA-CLASS-STARTED {nonce}\n")
    out.flush()
    try:
        from grader.classroom.snapshot import Snapshot

        exercises_dir = Path(os.environ["CRONKATA_EXERCISES_DIR"])
        exercises_dir.mkdir(parents=True, exist_ok=True)
        Path(os.environ["CRONKATA_STATE_DIR"]).mkdir(parents=True, exist_ok=True)
        Snapshot.from_archive(bytes.fromhex(request["archive"])).write_to(exercises_dir)
        body: dict[str, Any] = {"results": grade(list(request.get("only") or []))}
    except Exception as error:
        body = {"harness_error": f"{error}\n{traceback.format_exc()[-2000:]}"}
    out.write(f"CRONKATA-CLASS-RESULT {nonce} {json.dumps(body, ensure_ascii=True)}\n")
    out.flush()


if __name__ == "__main__":
    main()
