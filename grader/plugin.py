"""The pytest plugin: `pytest exercises/levelN` grades level N with the hidden suites.

- `exercises/levelN` (or a file below it) collects, for each exercise file, its hidden suite
  from `grader/suites/`, bound to the tree being graded (the learner's by default,
  `--solutions` for the reference; `grader verify` adds the stub and the mutants).
- Each graded test runs in a forked child (see `grader.sandbox`) with its own timeout.
- A failure reads as a lesson: expected vs actual, the note section, a hint.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import functools
import importlib
import json
import logging
import os
import re
import tempfile
import traceback
from collections.abc import Hashable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _pytest.reports import TestReport
from _pytest.runner import runtestprotocol

from grader import hints, paths, sandbox, spec, targets, variants
from grader.catalog import Exercise, catalog
from grader.feedback import GradingFailure
from grader.sandbox import conditions, integrity
from grader.targets import LoadError, Target

logger = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 10.0
LOAD_TIMEOUT = 10.0
# A cap on test timeouts for the harness's own robustness tests (a hang then costs seconds):
# ``4`` caps every graded test, ``4@simple_timer`` only that exercise's.
_CAP_SECONDS, _, _CAP_EXERCISE = (os.environ.get("CRONKATA_TIMEOUT_CAP") or "inf").partition("@")


def _timeout_of(item: pytest.Item, exercise: Exercise) -> float:
    timeout = float(_grade_info(item).get("timeout", DEFAULT_TIMEOUT))
    if _CAP_EXERCISE in ("", exercise.id):
        timeout = min(timeout, float(_CAP_SECONDS))
    return timeout


_DONE = pytest.StashKey[dict[str, list[TestReport]]]()
_PROGRESS = pytest.StashKey[list[int]]()  # [judged, total]: graded tests of the session
_GUIDANCE = pytest.StashKey[str]()  # what follows a graded test's failure message
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
        help="graded tests run at once in forked children "
        "(default: $CRONKATA_JOBS, else 4 per CPU, at most 32)",
    )
    group.addoption(
        "--grader-first-catch",
        action="store_true",
        help=argparse.SUPPRESS,  # verify: a mutant's remaining tests are not run once one fails
    )
    group.addoption(
        "--grader-no-preload",
        action="store_true",
        help="import the exercise's file in each test's process instead of once per exercise "
        "(also: CRONKATA_NO_PRELOAD=1)",
    )
    group.addoption(
        "--grader-no-fork",
        action="store_true",
        help="run graded tests in the pytest process (for debugging the harness only)",
    )


class GraderHooks:
    """The hook this plugin calls, for whoever runs the grading (`grader.results`)."""

    @pytest.hookspec
    def pytest_grader_progress(self, config: pytest.Config, done: int, total: int) -> None:
        """``done`` of the session's ``total`` graded tests are judged (called as each one
        is, while the batch that runs them all is still going)."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Declare `pytest_grader_progress`."""
    pluginmanager.add_hookspecs(GraderHooks)


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
        self.load_problem: str | None = None  # why the file cannot be imported (after the probe)

    def _getobj(self) -> ModuleType:
        return importlib.import_module(self.exercise.suite_module)

    def target(self) -> Target:
        """The files this module grades."""
        return Target(self.exercise, self.variant.root, self.variant.name)

    def load_probe(self) -> Any:
        """A child's work: import the exercise's file; returns the problem (None: it loads)."""
        target = self.target()

        def probe() -> dict[str, Any]:
            try:
                target.load()
            except LoadError as error:
                return {"problem": str(error)}
            return {"problem": None}

        return probe

    def preload_work(self) -> Any:
        """A template's load: import the exercise's file for the tests forked from there;
        returns the problem (None: it loaded)."""
        target = self.target()
        factory = _conditions_of(self)

        def preload() -> str | None:
            try:
                with factory():
                    target.preload()
            except LoadError as error:
                return str(error)
            return None

        return preload

    def record_probe(self, result: sandbox.ChildResult) -> None:
        """Keep what the load probe found: why the file cannot be loaded, or None."""
        if result.problem is not None:
            self.load_problem = f"Importing {self.target().shown()} {result.problem}"
            return
        problem = result.payload.get("problem") if isinstance(result.payload, dict) else None
        self.load_problem = sandbox.shown(problem) if isinstance(problem, str) else None


GRADING_CONDITIONS = "grading_conditions"


def _conditions_of(module: ExerciseModule | None) -> Any:
    """The suite's ``grading_conditions()`` context manager factory (one that does
    nothing if the suite has none).

    What every test of the suite runs under (a machine zone, the course variables set or
    cleared), and what the template imports the exercise's file under: one definition.
    """
    if module is None:
        return contextlib.nullcontext
    return getattr(module.obj, GRADING_CONDITIONS, contextlib.nullcontext)


@pytest.fixture(autouse=True)
def _grading_conditions(request: pytest.FixtureRequest) -> Iterator[None]:
    """Enter the suite's ``grading_conditions()`` around each of its tests."""
    with _conditions_of(request.node.getparent(ExerciseModule))():
        yield


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Attach exercise, variant and points to each graded test (they travel with reports).

    When graded tests fork, the sandbox owns their time: pytest-timeout is turned off for
    them (its timer would otherwise wrap the whole batch that the first item runs).
    """
    forking = not config.getoption("grader_no_fork")
    revealed = hints.all_revealed()  # the hints `grader hint` revealed
    for item in items:
        module = item.getparent(ExerciseModule)
        if module is None:
            continue
        info = _grade_info(item)
        item.extra_keyword_matches.add(module.exercise.id)  # `pytest -k <exercise id>`
        guidance = _guidance(item, revealed.get(module.exercise.id, frozenset()))
        item.stash[_GUIDANCE] = guidance  # computed here, once: children inherit it
        item.user_properties.extend(
            [
                ("exercise", module.exercise.id),
                ("variant", module.variant.name),
                ("points", int(info.get("points", 1))),
                # what the CLI renders itself (in the learner's language)
                ("note", str(info.get("note") or module.exercise.note)),
                ("hint", str(info.get("hint") or "")),
                ("spec", ",".join(spec.spec_of(info) or ())),
                ("guidance", guidance),
            ]
        )
        # The call phase's failure text, per item (an instance attribute shadows the method).
        item.repr_failure = functools.partial(_teaching_repr_failure, item)  # type: ignore[method-assign]
        if forking:
            item.add_marker(pytest.mark.timeout(0))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Count the graded tests the session runs (what the progress counts up to)."""
    graded = sum(item.getparent(ExerciseModule) is not None for item in session.items)
    session.config.stash[_PROGRESS] = [0, graded]


def _settled(config: pytest.Config, count: int) -> None:
    """``count`` more graded tests have their verdict: tell `pytest_grader_progress`."""
    tally = config.stash.get(_PROGRESS, None)
    if tally is None or count <= 0:
        return
    tally[0] = min(tally[0] + count, tally[1])
    config.hook.pytest_grader_progress(config=config, done=tally[0], total=tally[1])


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
    value = config.getoption("grader_jobs") or os.environ.get("CRONKATA_JOBS")
    # Four per CPU: a graded child spends much of its life waiting (moving into its cgroup
    # box waits for an RCU grace period, TestClient hands work to a thread, some tests
    # wait for a real job), so several children per CPU keep the CPUs busy (measured on
    # 2 CPUs: level 1 in 11.8 s with 2 at once, 7.2 s with 4, 5.8 s with 8). Capped: each
    # child holds its own copy of the pages it writes.
    return max(1, int(value)) if value else min(32, 4 * (os.cpu_count() or 1))


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


def _watch(config: pytest.Config) -> Any:
    """The integrity fingerprint a child takes after its test (and the parent before)."""
    return lambda: integrity.fingerprint(config)


def _run_batch(config: pytest.Config, items: list[pytest.Item]) -> dict[str, list[TestReport]]:
    parallel = _parallelism(config)
    modules = list(dict.fromkeys(m for i in items if (m := i.getparent(ExerciseModule))))
    for module in modules:  # from the reference solution: never from names a child reports
        sandbox.warm_up(module.exercise.solution_path())
    # Each module's load probe runs first and its tests are held until it is judged: a file
    # that cannot be imported (or hangs, or forks a bomb while importing) runs once, not once
    # per test. Probes and tests share one run, so no round waits for the slowest probe.
    probes = {m.nodeid: m for m in modules}
    probed: set[str] = set()
    config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]  # one base for all children
    reports: dict[str, list[TestReport]] = {}
    owners: dict[str, ExerciseModule] = {}
    runnable: list[tuple[str, Any, float]] = []
    functions: dict[str, str] = {}
    for item in items:
        owner = item.getparent(ExerciseModule)
        assert owner is not None
        owners[item.nodeid] = owner
        runnable.append((item.nodeid, _child_work(item), _timeout_of(item, owner.exercise)))
        functions[item.nodeid] = _function_identity(item)
    first_catch = _FirstCatch.of(config, items)
    works = [(m.nodeid, m.load_probe(), LOAD_TIMEOUT) for m in modules]
    works += first_catch.ordered(runnable)
    templates = _templates(config, modules, owners, first_catch)
    by_id = {item.nodeid: item for item in items}
    settled: set[str] = set()  # tests whose verdict is known (for the progress)

    def settle(nodeids: list[str]) -> None:
        fresh = [nodeid for nodeid in nodeids if nodeid not in settled]
        settled.update(fresh)
        _settled(config, len(fresh))

    def held(nodeid: Hashable) -> bool:
        return nodeid not in probes and owners[str(nodeid)].nodeid not in probed

    def wanted(nodeid: Hashable) -> bool:
        if nodeid in probes:
            return True
        runs = owners[str(nodeid)].load_problem is None and first_catch.wanted(nodeid)
        if not runs:
            settle([str(nodeid)])  # left out: its verdict is known now
        return runs

    def waits(nodeid: Hashable) -> bool:
        return nodeid not in probes and first_catch.waits(nodeid)

    def judged(nodeid: Hashable, result: sandbox.ChildResult) -> None:
        if nodeid in probes:
            module = probes[str(nodeid)]
            module.record_probe(result)
            probed.add(str(nodeid))
            if module.load_problem is not None:  # its tests all fail for that, unrun
                settle([n for n, owner in owners.items() if owner is module])
            return
        item = by_id[str(nodeid)]
        reports[item.nodeid] = _judge_child(item, result, functions[item.nodeid])
        first_catch.saw(item, reports[item.nodeid])
        settle([item.nodeid])

    sandbox.run_many(
        works,
        parallel,
        watch=_watch(config),
        wanted=wanted,
        on_result=judged,
        waits=waits,
        held=held,
        templates=templates,
        template_of=lambda key: owners[k].nodeid if (k := str(key)) in owners else None,
    )
    for nodeid, _, _ in runnable:
        if nodeid in reports:
            continue
        item, owner = by_id[nodeid], owners[nodeid]
        if owner.load_problem is not None:  # one cause for every test of the exercise
            message = _with_guidance(item, owner.load_problem)
            reports[nodeid] = _reports(item, message, cause="load")
        else:
            reports[nodeid] = _not_run(item, first_catch.catcher(item))
    settle([nodeid for nodeid, _, _ in runnable])
    first_catch.remember()
    return reports


def _preloading(config: pytest.Config) -> bool:
    return not (config.getoption("grader_no_preload") or os.environ.get("CRONKATA_NO_PRELOAD"))


def _templates(
    config: pytest.Config,
    modules: list[ExerciseModule],
    owners: dict[str, ExerciseModule],
    first_catch: _FirstCatch,
) -> dict[Hashable, sandbox.TemplateSpec]:
    """The exercises whose file a template imports once for all their tests: those with
    more than one test to run, except mutants in `grader verify` (most are caught by their
    first test, so a template would cost more than it saves). A template that loads
    stands for the exercise's load probe; if it cannot, the probe runs and says why."""
    if not _preloading(config):
        return {}
    counts = collections.Counter(owner.nodeid for owner in owners.values())
    return {
        m.nodeid: sandbox.TemplateSpec(
            m.preload_work(), LOAD_TIMEOUT, replaces=m.nodeid, ready_payload={"problem": None}
        )
        for m in modules
        if counts[m.nodeid] > 1 and not (first_catch.enabled and m.variant.is_mutant)
    }


class _FirstCatch:
    """`grader verify`: a mutant is caught by its first failing test; the rest is not run.

    The test that caught a mutant last time runs first (remembered in .grader/).
    """

    FILE = paths.STATE_DIR / "first-catch.json"

    def __init__(self, enabled: bool, owners: dict[str, ExerciseModule]) -> None:
        self.enabled = enabled
        self.owners = owners
        self.caught: dict[str, str] = {}  # module nodeid -> nodeid of the test that caught it
        self.running: set[str] = set()  # mutant modules with a test running now
        try:
            self.last: dict[str, str] = json.loads(self.FILE.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.last = {}

    @classmethod
    def of(cls, config: pytest.Config, items: list[pytest.Item]) -> _FirstCatch:
        owners = {i.nodeid: m for i in items if (m := i.getparent(ExerciseModule)) is not None}
        return cls(bool(config.getoption("grader_first_catch")), owners)

    def _key(self, nodeid: Hashable) -> str:
        module = self.owners[str(nodeid)]
        return f"{module.exercise.id}/{module.variant.name}"

    def ordered(self, works: list[tuple[str, Any, float]]) -> list[tuple[str, Any, float]]:
        """Each mutant's tests in rounds: first every mutant's first test (last time's
        catcher, else the suite's first), then the other variants' tests, then every
        mutant's second test, and so on.

        Many children run at once: a mutant's tests queued side by side would all start
        before the first of them catches it; in rounds, most are caught before their
        second test is due, and that one is then left out (`wanted`).
        """
        if not self.enabled:
            return works
        rounds: dict[str, int] = {}

        def rank(work: tuple[str, Any, float]) -> tuple[int, int]:
            nodeid = work[0]
            if not self.owners[nodeid].variant.is_mutant:
                return (0, 1)
            if self.last.get(self._key(nodeid)) == nodeid.rsplit("::", 1)[-1]:
                return (0, 0)
            module = self.owners[nodeid].nodeid
            rounds[module] = rounds.get(module, 0) + 1
            return (rounds[module], 0)

        ranks = {work[0]: rank(work) for work in works}  # in suite order: rounds count up
        has_catcher = {self.owners[n].nodeid for n, r in ranks.items() if r == (0, 0)}
        for nodeid, (number, kind) in ranks.items():
            if kind == 0 and number > 0 and self.owners[nodeid].nodeid not in has_catcher:
                ranks[nodeid] = (number - 1, 0)  # no catcher known: its first test leads
        return sorted(works, key=lambda work: ranks[work[0]])

    def wanted(self, nodeid: Hashable) -> bool:
        """False for the remaining tests of a mutant already caught (asked at each start)."""
        module = self.owners[str(nodeid)]
        if self.enabled and module.nodeid in self.caught:
            return False
        if self.enabled and module.variant.is_mutant:
            self.running.add(module.nodeid)
        return True

    def waits(self, nodeid: Hashable) -> bool:
        """True while another test of the same mutant runs: its verdict may make this moot."""
        return self.enabled and self.owners[str(nodeid)].nodeid in self.running

    def saw(self, item: pytest.Item, reports: list[TestReport]) -> None:
        """Note a test's end, and which test failed a mutant."""
        module = self.owners[item.nodeid]
        self.running.discard(module.nodeid)
        if module.variant.is_mutant and any(r.failed for r in reports):
            self.caught.setdefault(module.nodeid, item.nodeid)

    def catcher(self, item: pytest.Item) -> str:
        """The test that caught the mutant this item belongs to."""
        return self.caught.get(self.owners[item.nodeid].nodeid, "?").rsplit("::", 1)[-1]

    def remember(self) -> None:
        """Keep which test caught each mutant, for the next run."""
        if not self.enabled or not self.caught:
            return
        for nodeid in self.caught.values():
            self.last[self._key(nodeid)] = nodeid.rsplit("::", 1)[-1]
        try:
            self.FILE.parent.mkdir(parents=True, exist_ok=True)
            self.FILE.write_text(json.dumps(self.last, indent=1, sort_keys=True), encoding="utf-8")
        except OSError:
            logger.debug("could not write %s", self.FILE, exc_info=True)


def _not_run(item: pytest.Item, catcher: str) -> list[TestReport]:
    """Reports of a mutant's test left out because an earlier test caught the mutant."""
    reports = [
        _report(item, "setup", "passed", None),
        _report(item, "call", "skipped", ("", 0, f"not run: {catcher} caught the mutant")),
        _report(item, "teardown", "passed", None),
    ]
    for report in reports:
        report.user_properties.append(("not_run", True))
    return reports


def _function_identity(item: pytest.Item) -> str:
    """Which test function and code object the item runs (its replacement is tampering)."""
    return integrity.identity(getattr(item, "obj", None))


def _judge_child(item: pytest.Item, result: sandbox.ChildResult, function: str) -> list[TestReport]:
    """The reports of a graded test, made here from the parent's own item.

    The child only says, per phase, passed or failed and why; the nodeid, location,
    exercise and points come from this process. Anything but a plain pass is a failure
    that says what happened.
    """
    if result.problem is not None:
        message = f"The test process {result.problem}"
        if result.output.strip():
            message += f"\nIts output (last lines):\n{_output_tail(result.output)}"
        return _reports(item, _with_guidance(item, message), result.seconds)
    value = result.payload if isinstance(result.payload, dict) else {}
    phases = value.get("phases")
    if value.get("function") != function:
        message = "The test process replaced the test function it was asked to run."
        return _reports(item, _with_guidance(item, message), result.seconds)
    if not isinstance(phases, list) or [p.get("when") for p in phases] != list(PHASES):
        message = "The test process sent an incomplete result (not setup, call and teardown)."
        return _reports(item, _with_guidance(item, message), result.seconds)
    reports = []
    reimported = value.get("reimported")
    for phase in phases:
        outcome, text = _plain_outcome(item, phase)
        sections = [
            (str(key), sandbox.shown(str(content)))
            for key, content in phase.get("sections", [])[:10]
        ]
        seconds = float(phase.get("duration", 0.0))
        reports.append(_report(item, phase["when"], outcome, text, seconds, sections))
    if isinstance(reimported, list) and reimported:  # the file was imported again: why
        reports[-1].user_properties.append(("reimported", [str(r)[:300] for r in reimported]))
    return reports


PHASES = ("setup", "call", "teardown")


def _plain_outcome(item: pytest.Item, phase: dict[str, Any]) -> tuple[str, str | None]:
    """passed (with no text) only for a plain pass; anything else is failed, explained."""
    outcome = phase.get("outcome")
    text = sandbox.shown(str(phase.get("longrepr") or ""), 8000) or None
    if phase.get("wasxfail") is not None:
        return "failed", _with_guidance(
            item,
            "The test was marked as an expected failure (pytest.xfail() or an xfail marker): "
            "a graded test only counts when it runs and passes.",
        )
    if outcome == "skipped":
        return "failed", _with_guidance(
            item,
            f"The test was skipped during {phase.get('when')} (pytest.skip() or a skip "
            f"marker), which is not a pass: a graded test only counts when it runs and "
            f"passes.\n{text or ''}".rstrip(),
        )
    if outcome == "passed":
        return "passed", None
    return "failed", text or _with_guidance(item, "The test failed without a message.")


def _private_capture(config: pytest.Config) -> None:
    """Give a child its own capture files: siblings running at once must not share them."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None and capman.is_globally_capturing():
        # Never finalised: it would close descriptor numbers the child may have reused.
        _KEEP_ALIVE.append(capman._global_capturing)
        capman._global_capturing = None
        capman.start_global_capturing()


_KEEP_ALIVE: list[object] = []


def _child_work(item: pytest.Item) -> Any:
    def child() -> dict[str, Any]:
        _private_capture(item.config)
        conditions.test_begins()
        reports = runtestprotocol(item, log=False, nextitem=None)
        _fail_on_leaked_threads(item, reports)
        return {
            "function": _function_identity(item),
            "reimported": [f"{shown}: {', '.join(why)}" for shown, why in targets.REIMPORTED],
            "phases": [
                {
                    "when": r.when,
                    "outcome": r.outcome,
                    "longrepr": str(r.longrepr) if r.longrepr else None,
                    "wasxfail": getattr(r, "wasxfail", None),
                    "duration": r.duration,
                    "sections": [(k, sandbox.truncate(v)) for k, v in r.sections],
                }
                for r in reports
            ],
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


def _report(
    item: pytest.Item,
    when: str,
    outcome: str,
    longrepr: str | tuple[str, int, str] | None,
    seconds: float = 0.0,
    sections: list[tuple[str, str]] | None = None,
) -> TestReport:
    return TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords=dict.fromkeys(item.keywords, 1),
        outcome=outcome,  # type: ignore[arg-type]
        longrepr=longrepr,
        when=when,  # type: ignore[arg-type]
        sections=sections or [],
        duration=seconds,
        start=0.0,
        stop=seconds,
        user_properties=list(item.user_properties),
    )


def _reports(
    item: pytest.Item, message: str, seconds: float = 0.0, cause: str = ""
) -> list[TestReport]:
    """Setup passed, call failed with ``message``, teardown passed.

    ``cause="load"``: the exercise's file cannot be loaded, the one reason every test of
    it fails (the CLI says it once).
    """
    reports = [
        _report(item, "setup", "passed", None),
        _report(item, "call", "failed", message, seconds),
        _report(item, "teardown", "passed", None),
    ]
    if cause:
        reports[1].user_properties.append(("cause", cause))
    return reports


OUTPUT_TAIL_LINES = 8
OUTPUT_TAIL_WIDTH = 160


def _output_tail(output: str) -> str:
    """The last few lines a test process wrote, each cut short: enough to recognise it,
    never a page of a library's log."""
    lines = [line.rstrip() for line in output.rstrip().splitlines() if line.strip()]
    shown = [
        line if len(line) <= OUTPUT_TAIL_WIDTH else line[: OUTPUT_TAIL_WIDTH - 3] + "..."
        for line in lines[-OUTPUT_TAIL_LINES:]
    ]
    if len(lines) > OUTPUT_TAIL_LINES:
        shown.insert(0, f"... ({len(lines) - OUTPUT_TAIL_LINES} earlier line(s) not shown)")
    return "\n".join(shown)


# -- feedback -----------------------------------------------------------------------------------


def _guidance(item: pytest.Item, revealed: frozenset[str] = frozenset()) -> str:
    """What follows a failure's message: the promise, the note section, the hint.

    A learner's own files get the hint only once `grader hint` revealed it (``revealed``),
    a nudge otherwise: hints are often the answer. The reference, stub, mutant and
    alternative trees (maintainers') always show it.
    """
    info = _grade_info(item)
    module = item.getparent(ExerciseModule)
    lines = []
    tags = spec.spec_of(info) or ()
    if tags:
        lines.append(
            f"\npromise: {', '.join(f'(#{tag})' for tag in tags)} in the stub's docstrings"
        )
    note = info.get("note") or (module.exercise.note if module else None)
    if note:
        lines.append(f"{'' if tags else chr(10)}read: notes/{note}")
    hint = info.get("hint")
    learner = module is not None and module.variant.name == variants.LEARNER
    if hint and (not learner or str(hint).strip() in revealed):
        lines.append(f"hint: {hint}")
    elif module is not None and learner:
        lines.append(f"hint: `python3 -m grader hint {module.exercise.id}` reveals one")
    if module is not None and module.variant.is_mutant:
        lines.append(f"(mutant: {module.variant.description})")
    return "\n" + "\n".join(lines) if lines else ""


def _with_guidance(item: pytest.Item, message: str) -> str:
    guidance = item.stash.get(_GUIDANCE, None)
    if guidance is None:
        guidance = _guidance(item)
    return message.rstrip() + guidance


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
    limits = sandbox.Limits.from_env()
    if isinstance(error, MemoryError):
        return (
            f"Your code ran out of memory (each test may use {limits.memory // 2**20} MiB) "
            f"and was stopped: a list or string that grows without end?"
            f"{_learner_frame(excinfo, root)}"
        )
    refused = isinstance(error, OSError) and error.errno == errno.EAGAIN
    if refused or (isinstance(error, RuntimeError) and "can't start new thread" in str(error)):
        return (
            f"Your code tried to start more than {limits.processes} processes or threads "
            f"and was refused: a fork or thread loop?{_learner_frame(excinfo, root)}"
        )
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        limit = limits.file_size // (1024 * 1024)
        return (
            f"Your code wrote more than {limit} MB (output or files) and was stopped: "
            f"an endless print or write loop?{_learner_frame(excinfo, root)}"
        )
    if isinstance(error, AssertionError):
        return f"{error}{_learner_frame(excinfo, root)}"
    text = _TARGET_MODULE.sub(r"\1.py", str(error))  # the name the learner knows their file by
    return f"Your code raised {type(error).__name__}: {text}{_learner_frame(excinfo, root)}"


# "module 'cronkata_target_0123456789_level1_simple_timer' has no attribute 'x'"
_TARGET_MODULE = re.compile(r"cronkata_target_[0-9a-f]{10}_(\w+)")


def _teaching_repr_failure(
    item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException], style: object = None
) -> str:
    """A graded test's failure as the learner reads it, in place of pytest's traceback.

    Installed as the item's ``repr_failure``, so pytest never formats the traceback it
    would throw away (that cost 0.06-0.17 s in each failing child: source lookups).
    """
    return _with_guidance(item, describe_failure(item, excinfo))
