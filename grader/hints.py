"""Hints on request: `grader hint EXERCISE` reveals one at a time and remembers which.

A failure shows its note section and a nudge, never a hint the learner did not ask for
(hints are often the literal answer). The hints of a failing test are, in order: the
hint of its own ``grade`` marker (the most targeted), then the exercise's hints from the
catalog. Revealed hints are kept in ``.grader/hints.json`` (git-ignored; the folder is
``$CRONKATA_STATE_DIR`` when set), by text, so a failure of that test shows its hint
from then on.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from grader import paths
from grader.catalog import Exercise

logger = logging.getLogger(__name__)
VERSION = 1


def state_file() -> Path:
    """Where revealed hints are remembered."""
    return paths.STATE_DIR / "hints.json"


def _load() -> dict[str, list[str]]:
    try:
        raw = json.loads(state_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    revealed = raw.get("revealed") if isinstance(raw, dict) else None
    if not isinstance(revealed, dict):
        return {}
    return {
        str(key): [str(text) for text in value if isinstance(text, str)]
        for key, value in revealed.items()
        if isinstance(value, list)
    }


def _save(revealed: dict[str, list[str]]) -> None:
    path = state_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"version": VERSION, "revealed": revealed}, indent=1, ensure_ascii=False)
        handle, temporary = tempfile.mkstemp(prefix=".hints-", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(data + "\n")
        os.replace(temporary, path)
    except OSError:
        logger.warning("could not remember the hint in %s", path, exc_info=True)


def revealed(exercise_id: str) -> list[str]:
    """The hints of an exercise the learner has asked for, in the order revealed."""
    return _load().get(exercise_id, [])


def all_revealed() -> dict[str, frozenset[str]]:
    """Every exercise's revealed hints (read once by the plugin before grading)."""
    return {key: frozenset(value) for key, value in _load().items()}


def ladder(exercise: Exercise, test_hint: str | None) -> list[str]:
    """The hints for a failing test, most targeted first, without repeats."""
    found = [test_hint] if test_hint else []
    found += exercise.hints
    return list(dict.fromkeys(h.strip() for h in found if h and h.strip()))


def seen(exercise: Exercise, test_hint: str | None) -> tuple[int, int]:
    """(hints of that ladder already revealed, hints in it)."""
    hints = ladder(exercise, test_hint)
    known = set(revealed(exercise.id))
    return sum(h in known for h in hints), len(hints)


def reveal_next(exercise: Exercise, test_hint: str | None) -> tuple[int, str] | None:
    """Reveal and remember the next hint of the ladder: (its number from 1, the hint).

    None when every hint of the ladder has been revealed already.
    """
    state = _load()
    known = state.setdefault(exercise.id, [])
    for number, hint in enumerate(ladder(exercise, test_hint), start=1):
        if hint not in known:
            known.append(hint)
            _save(state)
            return number, hint
    return None
