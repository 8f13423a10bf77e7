"""Detecting a child whose reporting machinery was patched by the code under test.

Patching pytest from inside the process that runs the test (replacing
``_pytest.runner.call_and_report``, registering a plugin whose ``makereport`` forces a
pass, swapping the test function's code) cannot be prevented in-process. It can be
detected: the parent takes a fingerprint of everything that decides a test's outcome
before forking, the child takes the same fingerprint after the test, and the parent
compares them. Objects keep their ``id()`` across ``fork()``, so any rebinding or
replacement of those functions, code objects and hook implementations shows up.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

# (module, attribute path) of what turns a test into a report.
WATCHED = (
    ("_pytest.runner", "runtestprotocol"),
    ("_pytest.runner", "call_and_report"),
    ("_pytest.runner", "call_runtest_hook"),
    ("_pytest.runner", "CallInfo.from_call"),
    ("_pytest.runner", "check_interactive_exception"),
    ("_pytest.reports", "TestReport.from_item_and_call"),
    ("_pytest.reports", "TestReport.__init__"),
    ("_pytest.outcomes", "Skipped"),
    ("_pytest.outcomes", "OutcomeException"),
    ("_pytest.python", "Function.runtest"),
    ("_pytest.python", "pytest_pyfunc_call"),
    ("grader.sandbox.channel", "send"),
    ("grader.sandbox.channel", "read_key"),
    ("grader.sandbox.integrity", "fingerprint"),
    ("grader.sandbox.child", "run"),
    ("json", "dumps"),
    ("hmac", "new"),
    ("os", "_exit"),
)
HOOKS = (
    "pytest_runtest_setup",
    "pytest_runtest_call",
    "pytest_runtest_teardown",
    "pytest_runtest_makereport",
    "pytest_pyfunc_call",
    "pytest_report_teststatus",
)


def _resolve(module: str, path: str) -> object:
    obj: Any = importlib.import_module(module)
    for part in path.split("."):
        # Static lookup: ``Class.classmethod`` would make a new bound object every time.
        obj = inspect.getattr_static(obj, part, None)
    return obj


def identity(obj: object) -> str:
    """An object's identity and its code's, comparable across ``fork()``."""
    code = getattr(obj, "__code__", None)
    func = getattr(obj, "__func__", None)
    if func is not None:
        code = getattr(func, "__code__", code)
    return f"{id(obj):x}/{id(code):x}"


def _hook_impls(config: pytest.Config, name: str) -> str:
    hook = getattr(config.hook, name, None)
    impls = hook.get_hookimpls() if hook is not None else []
    return ",".join(f"{impl.plugin_name}:{identity(impl.function)}" for impl in impls)


def fingerprint(config: pytest.Config | None = None) -> dict[str, str]:
    """What decides outcomes, as comparable identities (equal before and after: untouched)."""
    found = {f"{module}.{path}": identity(_resolve(module, path)) for module, path in WATCHED}
    if config is not None:
        found.update({f"hook {name}": _hook_impls(config, name) for name in HOOKS})
    return found


def changed(before: dict[str, str], after: object) -> list[str]:
    """Names whose identity differs (everything, when ``after`` is not a fingerprint)."""
    if not isinstance(after, dict):
        return ["the fingerprint itself"]
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
