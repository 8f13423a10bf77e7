"""Warming the parent before it forks, from the project's own files only.

A fork costs milliseconds once the heavy libraries are imported in the parent. Which
libraries an exercise needs is read from the reference solutions' import statements
(parsed, never executed): names a child reports are never imported here, so learner code
can never run in the grader process.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import sys
from functools import cache
from pathlib import Path

logger = logging.getLogger(__name__)

# Modules these libraries import lazily, at first use rather than at import: FastAPI
# imports pydantic.v1 when it builds a route's response model, Celery its loader, backend,
# AMQP and event machinery when an app is first used. A child would pay for each again
# (pydantic.v1 alone: 60 ms per graded test). A fixed list of library modules: never
# names a child reports (tests/test_sandbox.py checks that grading the solutions leaves
# none of them to the children).
LAZY_IMPORTS: dict[str, tuple[str, ...]] = {
    "fastapi": ("pydantic.v1", "fastapi.telemetry._runtime", "encodings.ascii"),
    "apscheduler": ("apscheduler.triggers.date",),
    "celery": (
        "celery.app.amqp",
        "celery.app.control",
        "celery.app.events",
        "celery.app.log",
        "celery.app.routes",
        "celery.backends.base",
        "celery.backends.cache",
        "celery.concurrency.solo",
        "celery.events.dispatcher",
        "celery.events.event",
        "celery.events.receiver",
        "celery.fixups.django",
        "celery.loaders.app",
        "celery.worker.autoscale",
        "celery.worker.components",
        "celery.worker.strategy",
        "kombu.message",
        "kombu.mixins",
        "kombu.simple",
        "kombu.transport.memory",
        "kombu.transport.virtual",
        "kombu.utils.scheduling",
        "kombu.utils.text",
        "kombu.utils.time",
    ),
}


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


def _import_quietly(name: str, module: bool = False) -> None:
    """Import ``name``; unless it is known to be a ``module``, only if its parent is a
    package (``from module import function`` names a function, not a submodule)."""
    if name in sys.modules:
        return
    parent, _, _ = name.rpartition(".")
    if not module and parent and not hasattr(sys.modules.get(parent), "__path__"):
        return
    try:
        importlib.import_module(name)
    except Exception:  # optional or context-dependent imports are simply not warmed
        logger.debug("warm-up import of %s failed", name, exc_info=True)


def warm_up(path: Path) -> None:
    """Import, in this process, what a (trusted) source file and its siblings need."""
    names = imports_of(path.resolve())
    for name in names:
        _import_quietly(name)
    for library in dict.fromkeys(name.split(".")[0] for name in names):
        for name in LAZY_IMPORTS.get(library, ()):
            _import_quietly(name, module=True)
    for library, warm in CACHE_WARMERS.items():
        if library in sys.modules and library not in _warmed:  # the suites' libraries too
            _warmed.add(library)
            try:
                warm()
            except Exception:  # a library version without that cache: nothing to warm
                logger.debug("warming the caches of %s failed", library, exc_info=True)
    _fill_inspect_caches()


def _warm_fakeredis() -> None:
    """fakeredis reads and encodes its 1 MB command table when the first server starts."""
    from fakeredis.model import _command_info

    _command_info._load_command_info()


def _warm_celery() -> None:
    """Celery looks up entry points for backends and loaders: the scan of the installed
    distributions is cached per folder by importlib.metadata once done."""
    import importlib.metadata

    importlib.metadata.entry_points(group="celery.result_backends")


# Caches these libraries fill at first use, filled once here instead of in every child.
CACHE_WARMERS = {"fakeredis": _warm_fakeredis, "celery": _warm_celery}
_warmed: set[str] = set()


def _fill_inspect_caches() -> None:
    """Fill `inspect`'s file-to-module caches for every module loaded now.

    Formatting a failure (pytest's traceback, `inspect.getsource`) asks `inspect.getmodule`,
    which, for a file it has not seen, resolves the path of every loaded module: 0.13 s in
    each failing child when done there, once here for all of them.
    """
    inspect.getmodule(compile("", "<cronkata warm-up>", "exec"))
