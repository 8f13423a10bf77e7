"""What a preloaded import assumed, and whether a test still meets it.

A template process imports an exercise's file once, before any test runs, and every test
of it is forked from there (`grader.sandbox.template`). That import saw the grader's own
environment, working folder, clock and libraries. A test that changes one of them before
its first `Target.load()` (sets a variable the file reads at import, patches
``redis.Redis.__init__`` to count clients, freezes the clock) expects the file to be
imported under its conditions: for that test the preloaded module is set aside and the
file imported again, as in a child forked from the grader. `Conditions.differences` says
what changed; nothing a test does is guessed.

Patches are seen through the two tools the suites use: `pytest.MonkeyPatch` instances and
`unittest.mock` patchers, which `watch_patches` makes countable (in the template only).
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from unittest import mock

import pytest

T = TypeVar("T")

_monkeypatches: weakref.WeakSet[pytest.MonkeyPatch] = weakref.WeakSet()
_active_mocks = [0]  # unittest.mock patchers entered and not yet exited


def watch_patches() -> None:
    """Track MonkeyPatch instances and entered mock patchers from now on (idempotent)."""
    if getattr(pytest.MonkeyPatch.__init__, "_cronkata_tracked", False):
        return
    original_init = pytest.MonkeyPatch.__init__

    def tracked_init(self: pytest.MonkeyPatch, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        _monkeypatches.add(self)

    tracked_init._cronkata_tracked = True  # type: ignore[attr-defined]
    pytest.MonkeyPatch.__init__ = tracked_init  # type: ignore[method-assign]
    for patcher in (mock._patch, mock._patch_dict):  # type: ignore[attr-defined]
        _count_entries(patcher)


def _count_entries(patcher: Any) -> None:
    enter, exit_ = patcher.__enter__, patcher.__exit__

    def counted_enter(self: Any) -> Any:
        result = enter(self)
        _active_mocks[0] += 1
        return result

    def counted_exit(self: Any, *exc_info: Any) -> Any:
        _active_mocks[0] -= 1
        return exit_(self, *exc_info)

    patcher.__enter__, patcher.__exit__ = counted_enter, counted_exit


def _active_monkeypatches() -> int:
    """Patches of MonkeyPatch instances still in place, besides environment variables
    (the environment itself is compared)."""
    count = 0
    for patcher in list(_monkeypatches):
        count += len(patcher._setattr)
        count += sum(1 for entry in patcher._setitem if entry[0] is not os.environ)
        count += patcher._cwd is not None
        count += patcher._savesyspath is not None
    return count


def _traveling() -> bool:
    machine = sys.modules.get("time_machine")
    return bool(getattr(machine, "traveller_stack", None))


_streams: list[tuple[int, int]] = []  # sys.stdout and sys.stderr as a test began


def test_begins() -> None:
    """Note the output streams a test starts with (after the harness set up its capture)."""
    _streams[:] = [(id(sys.stdout), id(sys.stderr))]


def _streams_replaced() -> bool:
    """capsys, capfd or a redirect is in place: a handler or print bound at import would
    write elsewhere than in a fresh import."""
    return bool(_streams) and _streams[0] != (id(sys.stdout), id(sys.stderr))


ALWAYS_READ = ("TZ",)  # read by the C library's time functions, not through os.environ
EVERYTHING = None  # the import listed the whole environment (pydantic-settings does)


def _environment(names: frozenset[str] | None = EVERYTHING) -> tuple[tuple[str, str | None], ...]:
    """The environment (or the variables ``names``), without the variable pytest sets to
    the test running now."""
    if names is EVERYTHING:
        return tuple(sorted(i for i in os.environ.items() if i[0] != "PYTEST_CURRENT_TEST"))
    return tuple(sorted((name, os.environ.get(name)) for name in names))


@dataclass
class _Reads:
    """The variables code read through os.environ, or that it listed them all."""

    names: set[str]
    listed: bool = False


@contextmanager
def _recording_environment_reads() -> Iterator[_Reads]:
    """Note which variables code reads through os.environ (get, [], in, os.getenv) while
    the block runs, and whether it lists the environment (iteration, dict(), copy())."""
    environ_type = type(os.environ)
    getitem, iterate = environ_type.__getitem__, environ_type.__iter__
    reads = _Reads(set(ALWAYS_READ))

    def recording_getitem(self: Any, key: str) -> str:
        if isinstance(key, str):  # os.environb's keys are bytes: the same variables
            reads.names.add(key)
        else:
            reads.listed = True
        return getitem(self, key)

    def recording_iter(self: Any) -> Iterator[str]:
        reads.listed = True
        return iterate(self)

    environ_type.__getitem__ = recording_getitem  # type: ignore[method-assign]
    environ_type.__iter__ = recording_iter  # type: ignore[method-assign]
    try:
        yield reads
    finally:
        environ_type.__getitem__ = getitem  # type: ignore[method-assign]
        environ_type.__iter__ = iterate  # type: ignore[method-assign]


@dataclass(frozen=True)
class Conditions:
    """The process state an import depends on, as it was when it started.

    Of the environment, only the variables the import read count (all of them if it
    listed the environment).
    """

    environment: tuple[tuple[str, str | None], ...]
    read: frozenset[str] | None
    cwd: str
    path: tuple[str, ...]
    modules: tuple[tuple[str, int], ...]

    def differences(self) -> list[str]:
        """What differs now from these conditions (empty: an import now would see the same)."""
        found = []
        environment = _environment(self.read)
        if environment != self.environment:
            names = sorted({k for k, _ in set(environment) ^ set(self.environment)})
            found.append(f"environment variables ({', '.join(names[:4])})")
        if os.getcwd() != self.cwd:
            found.append("working folder")
        if tuple(sys.path) != self.path:
            found.append("sys.path")
        modules = sys.modules
        if any(id(modules.get(name)) != ident for name, ident in self.modules):
            found.append("sys.modules")
        if _traveling():
            found.append("the clock (time-machine)")
        if _active_mocks[0] or _active_monkeypatches():
            found.append("patched attributes")
        if _streams_replaced():
            found.append("sys.stdout or sys.stderr (capsys, capfd)")
        return found


def recorded(importing: Callable[[], T]) -> tuple[T, Conditions]:
    """Run an import; returns its result and the conditions it depended on."""
    before = _environment()
    cwd, path = os.getcwd(), tuple(sys.path)
    modules = tuple((name, id(module)) for name, module in list(sys.modules.items()))
    with _recording_environment_reads() as reads:
        result = importing()
    names = EVERYTHING if reads.listed else frozenset(reads.names)
    environment = before if names is None else _subset(before, names)
    return result, Conditions(environment, names, cwd, path, modules)


def _subset(
    environment: tuple[tuple[str, str | None], ...], names: frozenset[str]
) -> tuple[tuple[str, str | None], ...]:
    values = dict(environment)
    return tuple(sorted((name, values.get(name)) for name in names))
