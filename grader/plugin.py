"""The pytest plugin: `pytest exercises/levelN` grades level N with the hidden suites.

- `exercises/levelN` (or a file below it) collects, for each exercise file, its hidden suite
  from `grader/suites/`, bound to the tree being graded (the learner's by default,
  `--solutions` for the reference; `grader verify` adds the stub and the mutants).
- Each graded test runs in a forked child (see `grader.sandbox`) with its own timeout.
- A failure reads as a lesson: expected vs actual, the note section, a hint.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import tempfile
import traceback
from collections.abc import Generator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _pytest.reports import TestReport
from _pytest.runner import runtestprotocol

from grader import paths, sandbox, variants
from grader.catalog import Exercise, catalog
from grader.feedback import GradingFailure
from grader.targets import LoadError, Target

DEFAULT_TIMEOUT = 10.0
LOAD_TIMEOUT = 10.0
# A cap on test timeouts for the harness's own robustness tests (a hang then costs seconds).
TIMEOUT_CAP = float(os.environ.get("CRONKATA_TIMEOUT_CAP") or "inf")
_DONE = pytest.StashKey[dict[str, list[TestReport]]]()
_WORKDIR = pytest.StashKey[tempfile.TemporaryDirectory[str]]()
GRADE_MARK = "grade"


# -- options ----------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options of the grader."""
    group = parser.getgroup("cronkata", "cronkata grading")
    group.addoption(
        "--solutions",
        action="store_true",
        help="grade the reference solutions in solutions/ instead of your exercises/",
    )
    group.addoption("--grader-variants", default=None, help=argparse.SUPPRESS)
    group.addoption("--grader-only", default=None, help=argparse.SUPPRESS)
    group.addoption(
        "--grader-jobs",
        default=None,
        help="graded tests run at once in forked children (default: number of CPUs, at least 2)",
    )
    group.addoption(
        "--grader-no-fork",
        action="store_true",
        help="run graded tests in the pytest process (for debugging the harness only)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and make plain asserts in suites informative."""
    config.addinivalue_line(
        "markers",
        f"{GRADE_MARK}(points=1, note=None, hint=None, timeout=10, spec=()): a graded test",
    )


def _variant_kinds(config: pytest.Config) -> list[str]:
    raw = config.getoption("grader_variants")
    if raw:
        return [kind.strip() for kind in raw.split(",") if kind.strip()]
    return [variants.SOLUTION] if config.getoption("solutions") else [variants.LEARNER]


def _selected(config: pytest.Config, exercise: Exercise) -> bool:
    raw = config.getoption("grader_only")
    return exercise.available and (not raw or exercise.id in raw.split(","))


def _workdir(config: pytest.Config) -> Path:
    """A temporary folder for mutant and pristine trees, removed with the run's config."""
    holder = config.stash.get(_WORKDIR, None)
    if holder is None:
        holder = config.stash[_WORKDIR] = tempfile.TemporaryDirectory(prefix="cronkata-")
    return Path(holder.name)


# -- collection ---------------------------------------------------------------------------------


def _level_of(path: Path) -> int | None:
    try:
        relative = path.resolve().relative_to(paths.EXERCISES_DIR.resolve())
    except ValueError:
        return None
    head = relative.parts[0] if relative.parts else ""
    number = head.removeprefix("level")
    return int(number) if head.startswith("level") and number.isdigit() else None


def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """`exercises/levelN` and its sub-folders collect hidden suites, never the learner's files."""
    level = _level_of(path)
    if level is None:
        return None
    return GradedDirectory.from_parent(parent, path=path, level=level)


class GradedDirectory(pytest.Directory):
    """A folder of `exercises/levelN`: yields the graded exercises and sub-folders in it."""

    def __init__(self, *, level: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.level = level

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        """Exercise modules for files here, sub-directories for files further down."""
        folder = self.path.resolve()
        subfolders: set[Path] = set()
        for exercise in catalog().of_level(self.level):
            if not _selected(self.config, exercise):
                continue
            stub = exercise.stub_path().resolve()
            if stub.parent == folder:
                yield from self._modules(exercise)
            elif folder in stub.parents:
                subfolders.add(folder / stub.relative_to(folder).parts[0])
        for sub in sorted(subfolders):
            yield GradedDirectory.from_parent(self, path=sub, level=self.level)

    def _modules(self, exercise: Exercise) -> Iterator[ExerciseModule]:
        kinds = _variant_kinds(self.config)
        for variant in variants.variants_for(exercise, kinds, _workdir(self.config)):
            kwargs: dict[str, Any] = {}
            if variant.name != variants.LEARNER:
                kwargs["nodeid"] = f"{self.nodeid}/{Path(exercise.file).name}[{variant.name}]"
                kwargs["name"] = f"{Path(exercise.file).name}[{variant.name}]"
            yield ExerciseModule.from_parent(
                self, path=exercise.stub_path(), exercise=exercise, variant=variant, **kwargs
            )


class ExerciseModule(pytest.Module):
    """The hidden suite of one exercise, bound to one variant (tree) of its files."""

    def __init__(self, *, exercise: Exercise, variant: variants.Variant, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exercise = exercise
        self.variant = variant
        self._load_problem: str | bool | None = False  # False: not probed yet

    def _getobj(self) -> ModuleType:
        return importlib.import_module(self.exercise.suite_module)

    def target(self) -> Target:
        """The files this module grades."""
        return Target(self.exercise, self.variant.root, self.variant.name)

    def load_probe(self) -> Any:
        """A child's work: import the exercise's file; returns the problem and libraries used."""
        target = self.target()

        def probe() -> dict[str, Any]:
            before = set(sys.modules)
            try:
                target.load()
            except LoadError as error:
                return {"problem": str(error), "modules": []}
            return {"problem": None, "modules": sandbox.library_modules_since(before)}

        return probe

    def record_probe(self, result: sandbox.ChildResult) -> None:
        """Keep what the load probe found (and warm this process with its libraries)."""
        if result.problem is not None:
            self.load_problem = f"Importing {self.target().shown()} {result.problem}"
            return
        assert isinstance(result.payload, dict)
        self.load_problem = result.payload["problem"]
        sandbox.warm_up(result.payload["modules"])


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Target:
    """The learner's files (or the solutions', or a mutant's) for the exercise under test."""
    module = request.node.getparent(ExerciseModule)
    if module is None:
        raise pytest.UsageError("the `target` fixture is only for hidden suites")
    return module.target()


# -- running ------------------------------------------------------------------------------------


def _grade_info(item: pytest.Item) -> dict[str, Any]:
    marker = item.get_closest_marker(GRADE_MARK)
    return dict(marker.kwargs) if marker else {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Attach exercise, variant and points to each graded test (they travel with reports)."""
    for item in items:
        module = item.getparent(ExerciseModule)
        if module is None:
            continue
        info = _grade_info(item)
        item.extra_keyword_matches.add(module.exercise.id)  # `pytest -k <exercise id>`
        item.user_properties.extend(
            [
                ("exercise", module.exercise.id),
                ("variant", module.variant.name),
                ("points", int(info.get("points", 1))),
            ]
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """Run a graded test in a forked child; other tests run as usual."""
    module = item.getparent(ExerciseModule)
    if module is None or item.config.getoption("grader_no_fork"):
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in _reports_for(item):
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _parallelism(config: pytest.Config) -> int:
    value = config.getoption("grader_jobs")
    return int(value) if value else max(2, os.cpu_count() or 1)


def _reports_for(item: pytest.Item) -> list[TestReport]:
    """The reports of a graded test, running it (and the graded tests after it) if needed."""
    done: dict[str, list[TestReport]] = item.config.stash.setdefault(_DONE, {})
    if item.nodeid not in done:
        index = item.session.items.index(item)
        batch = [
            other
            for other in item.session.items[index:]
            if other.getparent(ExerciseModule) is not None and other.nodeid not in done
        ]
        done.update(_run_batch(item.config, batch))
    return done.pop(item.nodeid)


def _run_batch(config: pytest.Config, items: list[pytest.Item]) -> dict[str, list[TestReport]]:
    parallel = _parallelism(config)
    modules = list(dict.fromkeys(m for i in items if (m := i.getparent(ExerciseModule))))
    probes = sandbox.run_many([(m.nodeid, m.load_probe(), LOAD_TIMEOUT) for m in modules], parallel)
    for module in modules:
        module.record_probe(probes[module.nodeid])
    config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]  # one base for all children
    reports: dict[str, list[TestReport]] = {}
    runnable: list[tuple[str, Any, float]] = []
    for item in items:
        owner = item.getparent(ExerciseModule)
        assert owner is not None
        if owner.load_problem is not None:
            reports[item.nodeid] = _synthetic_reports(
                item, _with_guidance(item, owner.load_problem)
            )
        else:
            timeout = min(float(_grade_info(item).get("timeout", DEFAULT_TIMEOUT)), TIMEOUT_CAP)
            runnable.append((item.nodeid, _child_work(item), timeout))
    results = sandbox.run_many(runnable, parallel)
    by_id = {item.nodeid: item for item in items}
    hook = config.hook
    for nodeid, result in results.items():
        item = by_id[str(nodeid)]
        if result.problem is not None:
            message = f"The test process {result.problem}"
            reports[item.nodeid] = _synthetic_reports(
                item, _with_guidance(item, message), result.seconds
            )
            continue
        assert isinstance(result.payload, dict)
        sandbox.warm_up(result.payload["modules"])
        reports[item.nodeid] = [
            hook.pytest_report_from_serializable(config=config, data=data)
            for data in result.payload["reports"]
        ]
    return reports


def _private_capture(config: pytest.Config) -> None:
    """Give a child its own capture files: siblings running at once must not share them."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None and capman.is_globally_capturing():
        capman._global_capturing = None  # the parent's files stay the parent's
        capman.start_global_capturing()


def _child_work(item: pytest.Item) -> Any:
    hook = item.config.hook

    def child() -> dict[str, Any]:
        _private_capture(item.config)
        before = set(sys.modules)
        reports = runtestprotocol(item, log=False, nextitem=None)
        _fail_on_leaked_threads(item, reports)
        for report in reports:
            report.sections = [(k, sandbox.truncate(v)) for k, v in report.sections]
        return {
            "reports": [
                hook.pytest_report_to_serializable(config=item.config, report=r) for r in reports
            ],
            "modules": sandbox.library_modules_since(before),
        }

    return child


def _fail_on_leaked_threads(item: pytest.Item, reports: list[TestReport]) -> None:
    leaked = sandbox.leaked_threads()
    call = next((r for r in reports if r.when == "call"), None)
    if not leaked or call is None or not call.passed:
        return
    names = ", ".join(repr(t.name) for t in leaked)
    call.outcome = "failed"
    call.longrepr = _with_guidance(
        item,
        f"Your code left non-daemon thread(s) running: {names}.\n"
        "A real program would never exit: shut down what you start "
        "(scheduler.shutdown(), thread.join()) or make background threads daemons.",
    )


def _synthetic_reports(item: pytest.Item, message: str, seconds: float = 0.0) -> list[TestReport]:
    def report(when: str, outcome: str, longrepr: str | None) -> TestReport:
        return TestReport(
            nodeid=item.nodeid,
            location=item.location,
            keywords=dict.fromkeys(item.keywords, 1),
            outcome=outcome,  # type: ignore[arg-type]
            longrepr=longrepr,
            when=when,  # type: ignore[arg-type]
            sections=[],
            duration=seconds if when == "call" else 0.0,
            start=0.0,
            stop=seconds,
            user_properties=list(item.user_properties),
        )

    return [
        report("setup", "passed", None),
        report("call", "failed", message),
        report("teardown", "passed", None),
    ]


# -- feedback -----------------------------------------------------------------------------------


def _with_guidance(item: pytest.Item, message: str) -> str:
    info = _grade_info(item)
    module = item.getparent(ExerciseModule)
    lines = [message.rstrip()]
    note = info.get("note") or (module.exercise.note if module else None)
    if note:
        lines.append(f"\nread: notes/{note}")
    hint = info.get("hint")
    if hint:
        lines.append(f"hint: {hint}")
    if module is not None and module.variant.is_mutant:
        lines.append(f"(mutant: {module.variant.description})")
    return "\n".join(lines)


def _learner_frame(excinfo: pytest.ExceptionInfo[BaseException], root: Path) -> str:
    frames = traceback.extract_tb(excinfo.tb)
    inside = [f for f in frames if Path(f.filename).resolve().is_relative_to(root.resolve())]
    chosen = inside[-1] if inside else (frames[-1] if frames else None)
    if chosen is None:
        return ""
    where = chosen.filename
    if Path(where).is_relative_to(paths.REPO_ROOT):
        where = str(Path(where).relative_to(paths.REPO_ROOT))
    source = f"\n    {chosen.line}" if chosen.line else ""
    return f"\n  at {where}:{chosen.lineno} in {chosen.name}(){source}"


def describe_failure(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """The learner-facing text of a graded test's failure, then the error's notes.

    Hypothesis puts the smallest failing case ("Falsifying example: ...") in ``__notes__``.
    """
    notes = "".join(f"\n{note}" for note in getattr(excinfo.value, "__notes__", ()))
    return _describe_error(item, excinfo) + notes


def _describe_error(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    error = excinfo.value
    module = item.getparent(ExerciseModule)
    root = module.variant.root if module else paths.REPO_ROOT
    if isinstance(error, GradingFailure | LoadError):
        return str(error)
    if isinstance(error, NotImplementedError):
        return f"Not implemented yet: {error or 'this function'}{_learner_frame(excinfo, root)}"
    if isinstance(error, pytest.fail.Exception):
        return str(error.msg)
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        limit = sandbox.FILE_SIZE_LIMIT // (1024 * 1024)
        return (
            f"Your code wrote more than {limit} MB (output or files) and was stopped: "
            f"an endless print or write loop?{_learner_frame(excinfo, root)}"
        )
    if isinstance(error, AssertionError):
        return f"{error}{_learner_frame(excinfo, root)}"
    return f"Your code raised {type(error).__name__}: {error}{_learner_frame(excinfo, root)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, TestReport, TestReport]:
    """Replace tracebacks of graded tests by a teaching message."""
    report = yield
    if (
        item.getparent(ExerciseModule) is not None
        and call.excinfo is not None
        and report.failed
        and call.when == "call"
    ):
        report.longrepr = _with_guidance(item, describe_failure(item, call.excinfo))
    return report
