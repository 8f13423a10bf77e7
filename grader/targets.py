"""Which tree is graded, and loading a learner's file in isolation.

A target file is loaded by path under a unique module name. Its folder is put on
``sys.path`` only while it executes, so sibling imports (``from config import ...``)
resolve inside the same tree, and the sibling names are dropped from ``sys.modules``
afterwards: nothing leaks between the exercises tree and the solutions tree, and a
folder named ``apscheduler/`` never shadows the real library (its parent is never on
``sys.path``).
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from grader import paths
from grader.catalog import Exercise
from grader.sandbox.conditions import Conditions, recorded


class LoadError(Exception):
    """The learner's file could not be imported; the message says why and what to do."""


def module_name_for(path: Path) -> str:
    """A unique, importable module name for a file (stable for one path)."""
    digest = hashlib.sha1(str(path.resolve()).encode(), usedforsecurity=False).hexdigest()[:10]
    return f"cronkata_target_{digest}_{path.stem}"


def _sibling_names(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.py")} | {
        p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }


def _describe_import_error(path: Path, shown: str, error: BaseException) -> str:
    if isinstance(error, SyntaxError):
        line = (error.text or "").rstrip()
        where = f"{shown}:{error.lineno}"
        return f"{where}: SyntaxError: {error.msg}\n    {line}\nFix the syntax error first."
    if isinstance(error, SystemExit):
        return (
            f"{shown} called sys.exit()/exit() while being imported (code {error.code!r}).\n"
            'Put start-up code under `if __name__ == "__main__":` so importing the module '
            "only defines things."
        )
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        return (
            f"{shown} wrote more output than the grader keeps while being imported and was "
            "stopped: an endless print or write loop at module level?"
        )
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == str(path)]
    where = f"{shown}:{frames[-1].lineno}" if frames else shown
    return (
        f"importing {shown} raised {type(error).__name__}: {error}\n  at {where}\n"
        "Importing the module must succeed; the tests call its functions."
    )


# Files a template process imported before forking the tests (see grader.sandbox.template),
# by module name, with the conditions that import saw.
_PRELOADED: dict[str, Conditions] = {}
# Preloaded files imported again in this process, and why (a test changed the conditions).
REIMPORTED: list[tuple[str, list[str]]] = []


def preload(path: Path, shown: str | None = None) -> None:
    """In a template process: import a file now for the tests forked from here (LoadError
    as `load_file`). A test's first `load_file` of it gets this module unless the test
    changed what the import depends on (`Conditions.differences`): then it imports anew."""
    module, assumed = recorded(lambda: load_file(path, shown))
    _PRELOADED[module.__name__] = assumed


def _reusable(name: str, shown: str) -> bool:
    assumed = _PRELOADED.pop(name, None)
    if assumed is None:  # imported earlier in this same process: the same module
        return True
    changed = assumed.differences()
    if changed:
        REIMPORTED.append((shown, changed))
    return not changed


def load_file(path: Path, shown: str | None = None) -> ModuleType:
    """Import the Python file at ``path`` in isolation; raises LoadError with a clear message."""
    path = path.resolve()
    shown = shown or path.name
    if not path.is_file():
        raise LoadError(f"{shown} does not exist: create it (or run `grader reset`).")
    name = module_name_for(path)
    if name in sys.modules:
        if _reusable(name, shown):
            return sys.modules[name]
        del sys.modules[name]
    folder = path.parent
    siblings = _sibling_names(folder) - {path.stem}
    shadowed = {n: sys.modules.pop(n) for n in siblings if n in sys.modules}
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"{shown} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(folder))
    # The grader writes into the learner's tree only in `grader reset`: no __pycache__
    # there for the file or the siblings it imports.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    except BaseException as error:
        sys.modules.pop(name, None)
        raise LoadError(_describe_import_error(path, shown, error)) from error
    finally:
        sys.dont_write_bytecode = writes_bytecode
        if str(folder) in sys.path:
            sys.path.remove(str(folder))
        for sibling in siblings:
            loaded = sys.modules.get(sibling)
            origin = getattr(loaded, "__file__", None)
            if origin and Path(origin).resolve().parent == folder:
                del sys.modules[sibling]
        sys.modules.update(shadowed)
    return module


@dataclass
class Target:
    """The files of one exercise in the tree being graded (learner's, solutions, or a mutant)."""

    exercise: Exercise
    root: Path
    variant: str = "learner"
    _modules: dict[str, ModuleType] = field(default_factory=dict, repr=False)

    def path(self, relative: str | None = None) -> Path:
        """The absolute path of a file of this tree (the exercise's own file by default)."""
        return self.root / (relative or self.exercise.file)

    def shown(self, relative: str | None = None) -> str:
        """How the file is named in messages, e.g. ``exercises/level1/x.py``."""
        path = self.path(relative)
        if path.resolve().is_relative_to(paths.REPO_ROOT):
            return paths.shown(path)
        return f"{relative or self.exercise.file} ({self.variant})"

    def preload(self) -> None:
        """In a template process: import the exercise's own file for the tests forked
        from there (see `grader.targets.preload`)."""
        preload(self.path(), self.shown())

    def load(self, relative: str | None = None) -> ModuleType:
        """Import a file of this tree (the exercise's own file by default), once per test."""
        key = relative or self.exercise.file
        if key not in self._modules:
            self._modules[key] = load_file(self.path(key), self.shown(key))
        return self._modules[key]
