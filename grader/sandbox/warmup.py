"""Warming the parent before it forks, from the project's own files only.

A fork costs milliseconds once the heavy libraries are imported in the parent. Which
libraries an exercise needs is read from the reference solutions' import statements
(parsed, never executed): names a child reports are never imported here, so learner code
can never run in the grader process.
"""

from __future__ import annotations

import ast
import importlib
import logging
import sys
from functools import cache
from pathlib import Path

logger = logging.getLogger(__name__)


def _siblings(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if p.is_dir()}


@cache
def _all_imports(path: Path) -> tuple[str, ...]:
    """Absolute module names a source file imports (``from a.b import c`` gives ``a.b``
    and ``a.b.c``, which may be a submodule)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return tuple(dict.fromkeys(found))


def imports_of(path: Path) -> tuple[str, ...]:
    """The library modules a file needs: its imports and those of the sibling files it
    imports (files of one folder import each other by bare name), siblings left out."""
    local = _siblings(path.parent)
    found: list[str] = []
    pending, seen = [path], {path}
    while pending:
        for name in _all_imports(pending.pop()):
            head = name.split(".")[0]
            sibling = path.parent / f"{head}.py"
            if head not in local:
                found.append(name)
            elif sibling.is_file() and sibling not in seen:
                seen.add(sibling)
                pending.append(sibling)
    return tuple(dict.fromkeys(found))


def _import_quietly(name: str) -> None:
    if name in sys.modules:
        return
    parent, _, _ = name.rpartition(".")
    if parent and not hasattr(sys.modules.get(parent), "__path__"):
        return  # ``from module import function``: not a submodule
    try:
        importlib.import_module(name)
    except Exception:  # optional or context-dependent imports are simply not warmed
        logger.debug("warm-up import of %s failed", name, exc_info=True)


def warm_up(path: Path) -> None:
    """Import, in this process, what a (trusted) source file and its siblings need."""
    for name in imports_of(path.resolve()):
        _import_quietly(name)
