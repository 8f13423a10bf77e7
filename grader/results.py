"""Running graded suites in-process and collecting what happened, test by test."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field

import pytest

from grader import paths
from grader.catalog import Exercise
from grader.sandbox import reaper

logger = logging.getLogger(__name__)
# ``progress(done, total)``: called as each graded test is judged (from the grading loop).
Progress = Callable[[int, int], None]
# The sections of a test's report that hold what the learner's code printed: print()
# writes to stdout (pytest's "Captured stdout setup/call/teardown"). Not stderr: there the
# handler of logging.basicConfig() writes every logger's records, APScheduler's and
# Celery's too; nor "Captured log ...", pytest's own copy of the log records.
_PRINT_SECTIONS = ("Captured stdout ",)


class HarnessError(RuntimeError):
    """The grader itself failed (not the learner's code)."""


@dataclass
class TestResult:
    """The outcome of one graded test against one variant."""

    exercise: str
    variant: str
    name: str
    outcome: str = "passed"  # passed | failed | error | not run (verify: mutant caught)
    message: str = ""
    # what the test's phases captured, by pytest's section title ("Captured stdout call")
    sections: dict[str, str] = field(default_factory=dict)
    points: int = 1
    seconds: float = 0.0
    note: str = ""  # the note section that teaches the behaviour (file.md#anchor)
    hint: str = ""  # the test's own hint (shown to a learner only once revealed)
    tags: tuple[str, ...] = ()  # the stub's promises the test grades
    cause: str = ""  # "load": the exercise's file could not be loaded (one cause for all)
    guidance: str = ""  # what the plugin appended to the message (promise, note, hint)

    @property
    def failed(self) -> bool:
        """Anything but a plain pass (a test not run in verify is not a failure)."""
        return self.outcome not in ("passed", "not run")

    @property
    def output(self) -> str:
        """Everything the test's phases captured: prints and log records."""
        return "".join(self.sections.values())

    @property
    def prints(self) -> str:
        """What the learner's code printed (its stdout), without any log records."""
        return "".join(
            content for title, content in self.sections.items() if title.startswith(_PRINT_SECTIONS)
        )

    @property
    def core(self) -> str:
        """The message without the guidance the plugin appended (the CLI shows its own)."""
        text = self.message.rstrip()
        if self.guidance and text.endswith(self.guidance):
            text = text[: -len(self.guidance)]
        return text.rstrip()


def _result_of(
    nodeid: str, props: dict[str, object], outcome: str = "passed", message: str = ""
) -> TestResult:
    """A result with what the parent's item says about the test (never the child)."""
    tags = str(props.get("spec", "") or "")
    return TestResult(
        exercise=str(props["exercise"]),
        variant=str(props["variant"]),
        name=nodeid.split("::", 1)[-1],
        points=int(str(props.get("points", 1))),
        note=str(props.get("note", "") or ""),
        hint=str(props.get("hint", "") or ""),
        tags=tuple(tag for tag in tags.split(",") if tag),
        guidance=str(props.get("guidance", "") or ""),
        outcome=outcome,
        message=message,
    )


@dataclass
class Collector:
    """A pytest plugin object that records graded reports (and collection errors)."""

    not_run: frozenset[str] = frozenset()  # exercise ids collected (for points) but not run
    progress: Progress | None = None
    results: dict[str, TestResult] = field(default_factory=dict)
    collection_errors: list[str] = field(default_factory=list)

    @pytest.hookimpl(optionalhook=True)
    def pytest_grader_progress(self, done: int, total: int) -> None:
        """Pass the plugin's count of judged tests on (a broken display never stops grading)."""
        if self.progress is None:
            return
        try:
            self.progress(done, total)
        except Exception:
            logger.warning("the progress display failed; grading goes on", exc_info=True)
            self.progress = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Record the tests of exercises not to run (still the stub) and deselect them."""
        kept, skipped = [], []
        for item in items:
            props = dict(item.user_properties)
            if props.get("exercise") in self.not_run:
                skipped.append(item)
                self.results[item.nodeid] = _result_of(
                    item.nodeid,
                    props,
                    outcome="failed",
                    message="not started: the file is still the untouched stub",
                )
            else:
                kept.append(item)
        if skipped:
            config.hook.pytest_deselected(items=skipped)
            items[:] = kept

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Fold setup/call/teardown reports into one result per test."""
        props = dict(report.user_properties)
        if "exercise" not in props:
            return
        result = self.results.get(report.nodeid)
        if result is None:
            result = _result_of(report.nodeid, props)
            self.results[report.nodeid] = result
        result.seconds += report.duration
        if props.get("not_run"):
            result.outcome = "not run"
            result.message = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else ""
            return
        not_a_pass = report.failed or report.skipped or hasattr(report, "wasxfail")
        if not_a_pass and result.outcome == "passed":
            # Only a plain pass counts: a skip or an expected failure is a failure too.
            result.outcome = "error" if report.failed and report.when != "call" else "failed"
            result.message = str(report.longrepr) if report.longrepr else ""
            result.cause = str(props.get("cause", "") or "")
            if not report.failed:
                result.message = f"not a pass ({report.outcome}): {result.message}"
        for title, content in report.sections:
            # Each phase's report repeats the sections of the phases before it.
            result.sections[title] = content

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Remember collection failures: they are harness errors."""
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longrepr}")


def run_suites(
    exercises: Iterable[Exercise],
    variant_kinds: list[str],
    quiet: bool = True,
    not_run: Iterable[str] = (),
    first_catch: bool = False,
    progress: Progress | None = None,
) -> list[TestResult]:
    """Run the hidden suites of ``exercises`` against the given variant kinds, in-process.

    Tests of the exercises named in ``not_run`` are collected (so their points count) and
    recorded as failed without running. ``progress(done, total)`` is called as each graded
    test is judged (``done`` counts up to ``total``, the tests that run); pytest's own
    reports only come once the batch of all graded tests is over.

    The standard streams are redirected to a buffer while pytest runs: a live display must
    write to a stream it took before (see `grader.progress`).
    """
    chosen = [e for e in exercises if e.available]
    if not chosen:
        return []
    levels = sorted({e.level for e in chosen})
    args = [
        *(str(paths.level_dir(level)) for level in levels),
        f"--rootdir={paths.REPO_ROOT}",
        "-p",
        "grader.plugin",
        "-c",
        str(paths.REPO_ROOT / "pyproject.toml"),
        f"--grader-only={','.join(e.id for e in chosen)}",
        f"--grader-variants={','.join(variant_kinds)}",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore",
    ]
    if quiet:
        args += ["-p", "no:terminal"]
    if first_catch:
        args.append("--grader-first-catch")
    collector = Collector(not_run=frozenset(not_run), progress=progress)
    sink = io.StringIO()
    signals = reaper.signals_seen()
    with redirect_stdout(sink), redirect_stderr(sink):
        code = pytest.main(args, plugins=[collector])
    if code == pytest.ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    reaper.check_interrupted(since=signals)  # a signal whose exception a finaliser swallowed
    expected = {pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED}
    if collector.not_run and collector.results:  # everything deselected: nothing left to run
        expected.add(pytest.ExitCode.NO_TESTS_COLLECTED)
    if code not in expected or collector.collection_errors:
        details = "\n".join(collector.collection_errors) or sink.getvalue()[-3000:]
        raise HarnessError(f"pytest exited with {code!r} while grading:\n{details}")
    return list(collector.results.values())
