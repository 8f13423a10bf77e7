"""The `grader` command: report, check, compare, verify, reset."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
import warnings
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from grader import paths, variants
from grader.catalog import CatalogError, Exercise, UnknownExerciseError, catalog, is_pristine
from grader.report import render, statuses, write_json
from grader.results import HarnessError, TestResult, run_suites
from grader.verify import update_hashes, verify, verify_notes

console = Console(highlight=False)
EXIT_USAGE = 2
EXIT_HARNESS = 3


def _select(name: str) -> list[Exercise]:
    chosen = catalog().select(name)
    unavailable = [e.id for e in chosen if not e.available]
    if unavailable and len(chosen) == len(unavailable):
        raise click.UsageError(f"{', '.join(unavailable)}: not available yet (coming soon)")
    return [e for e in chosen if e.available]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """cronkata: grade your scheduled-task exercises (APScheduler, Celery Beat, FastAPI)."""


@cli.command()
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write results.json (Exercism v3 + points)",
)
def report(json_path: Path | None) -> None:
    """Show progress on every level and exercise, and what to do next."""
    course = catalog()
    untouched = [e.id for e in course.exercises if e.available and is_pristine(e)]
    with console.status("grading your exercises..."):
        results = run_suites(course.exercises, [variants.LEARNER], not_run=untouched)
    found = statuses(course, results)
    render(console, course, found)
    if json_path is not None:
        write_json(json_path, found)
        console.print(f"results written to {json_path}")


def _grade(
    chosen: list[Exercise], kinds: tuple[str, ...] = (variants.LEARNER,)
) -> list[TestResult]:
    """Run the suites of ``chosen`` against the given trees, with a spinner."""
    with console.status(f"grading {', '.join(e.id for e in chosen)}..."):
        return run_suites(chosen, list(kinds))


def _print_results(results: list[TestResult]) -> None:
    for result in results:
        mark = "[green]PASS[/green]" if result.outcome == "passed" else "[red]FAIL[/red]"
        console.print(
            f"{mark} {result.exercise} :: {result.name} [dim]({result.points} pt)[/dim]",
            soft_wrap=True,
        )
        if result.outcome != "passed":
            for line in result.message.rstrip().splitlines():
                console.print(f"     {line}", markup=False, highlight=False, soft_wrap=True)


@cli.command()
@click.argument("exercise")
def check(exercise: str) -> None:
    """Grade one exercise (an id such as simple_timer, or a level such as level1)."""
    chosen = _select(exercise)
    results = _grade(chosen)
    _print_results(results)
    passed = sum(r.outcome == "passed" for r in results)
    points = sum(r.points for r in results if r.outcome == "passed")
    total = sum(r.points for r in results)
    console.print(f"\n{passed}/{len(results)} tests passed, {points}/{total} points")
    if len(chosen) == 1 and is_pristine(chosen[0]):
        console.print(
            f"exercises/level{chosen[0].level}/{chosen[0].file} is still the untouched stub."
        )
    raise SystemExit(0 if passed == len(results) else 1)


def _grade_and_show(chosen: list[Exercise]) -> None:
    results = _grade(chosen)
    _print_results([r for r in results if r.outcome != "passed"][:3] or results)
    for item in chosen:
        mine = [r for r in results if r.exercise == item.id]
        passed = sum(r.outcome == "passed" for r in mine)
        state = "[green]passed[/green]" if passed == len(mine) else f"{passed}/{len(mine)} passed"
        console.print(f"{item.id}: {state}")


@cli.command()
@click.argument("exercise", required=False)
@click.option("--runs", type=int, default=None, hidden=True, help="stop after N re-gradings")
def watch(exercise: str | None, runs: int | None) -> None:
    """Re-grade an exercise each time you save its file (Ctrl+C stops)."""
    from watchfiles import watch as watch_files

    course = catalog()
    watched = _select(exercise) if exercise else [e for e in course.exercises if e.available]
    by_file = {e.stub_path().resolve(): e for e in watched}
    folders = sorted({str(path.parent) for path in by_file})
    console.print(f"watching {len(by_file)} file(s); save one to grade it (Ctrl+C stops)")
    if exercise:
        _grade_and_show(watched)
    done = 0
    ready = False
    try:
        for changes in watch_files(
            *folders, debounce=300, rust_timeout=500, yield_on_timeout=True, raise_interrupt=False
        ):
            if not ready:
                console.print("waiting for changes...")
                ready = True
            files = sorted({Path(change[1]).resolve() for change in changes})
            changed = [by_file[path] for path in files if path in by_file]
            if not changed:
                continue
            console.rule(f"{datetime.now():%H:%M:%S} {', '.join(e.id for e in changed)}")
            _grade_and_show(changed)
            done += 1
            if runs is not None and done >= runs:
                break
    except KeyboardInterrupt:
        pass


def _lines_of(path: Path, shown: str) -> list[str]:
    """A learner's file as lines; undecodable bytes are shown as U+FFFD, with a warning."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        console.print(
            f"[yellow]warning:[/yellow] {shown} is not UTF-8 (byte {data[error.start]:#04x} "
            f"at offset {error.start}); save it as UTF-8. Undecodable bytes show as \ufffd.",
            highlight=False,
        )
        text = data.decode("utf-8", errors="replace")
    return text.splitlines(keepends=True)


@cli.command()
@click.argument("exercise")
def compare(exercise: str) -> None:
    """Your file vs the reference solution: a diff, then each test's outcome side by side."""
    for item in _select(exercise):
        mine, reference = item.stub_path(), item.solution_path()
        shown_mine = f"exercises/level{item.level}/{item.file}"
        shown_ref = f"solutions/{item.file}"
        diff = "".join(
            difflib.unified_diff(
                _lines_of(mine, shown_mine),
                reference.read_text(encoding="utf-8").splitlines(keepends=True),
                fromfile=shown_mine,
                tofile=shown_ref,
            )
        )
        console.rule(f"{item.id}: {shown_mine} vs {shown_ref}")
        console.print(Syntax(diff or "(identical)\n", "diff", theme="ansi_dark", word_wrap=True))
        results = _grade([item], (variants.LEARNER, variants.SOLUTION))
        table = Table(title=f"{item.id}: tests")
        table.add_column("test")
        table.add_column("yours")
        table.add_column("solution")
        outcome: dict[tuple[str, str], str] = {(r.variant, r.name): r.outcome for r in results}
        names = list(dict.fromkeys(r.name for r in results))
        for name in names:
            cells = []
            for variant in (variants.LEARNER, variants.SOLUTION):
                value = outcome.get((variant, name), "-")
                cells.append(
                    f"[green]{value}[/green]" if value == "passed" else f"[red]{value}[/red]"
                )
            table.add_row(name, *cells)
        console.print(table)


@cli.command(name="verify")
@click.option(
    "--update-hashes", "rehash", is_flag=True, help="rewrite stub hashes in the catalog first"
)
@click.argument("exercise", required=False)
def verify_command(rehash: bool, exercise: str | None) -> None:
    """For maintainers: solutions pass, stubs fail, mutants are caught, APIs and links agree."""
    course = catalog()
    if rehash:
        changed = update_hashes(paths.CATALOG_FILE, course.exercises)
        catalog.cache_clear()
        course = catalog()
        console.print(f"stub hashes updated: {', '.join(changed) or 'none changed'}")
    chosen = _select(exercise) if exercise else None
    with console.status("verifying: solutions, stubs, mutants and alternatives..."):
        verdicts = verify(course, chosen)
        course_verdict = verify_notes(course)
    table = Table(title="grader verify")
    columns = ("exercise", "solution passes", "stub fails", "edit mutants caught")
    for column in (*columns, "file mutants caught", "alternatives pass", "verdict"):
        table.add_column(column)
    for verdict in verdicts:
        passing = sum(not failed for failed in verdict.alternatives.values())
        table.add_row(
            verdict.exercise.id,
            f"{verdict.solution[0]}/{verdict.solution[1]}",
            f"{verdict.stub[0]}/{verdict.stub[1]}",
            "{}/{}".format(*verdict.caught(variants.EDIT)),
            "{}/{}".format(*verdict.caught(variants.FILE)),
            f"{passing}/{len(verdict.alternatives)}",
            "[green]ok[/green]" if verdict.ok else "[red]problems[/red]",
        )
    console.print(table)
    for verdict in verdicts:
        for note in verdict.notes:
            console.print(f"[dim]note: {verdict.exercise.id}: {note}[/dim]", highlight=False)
    warnings = [f"{v.exercise.id}: {w}" for v in verdicts for w in v.warnings]
    for warning in [*warnings, *course_verdict.warnings]:
        console.print(
            f"[yellow]warning[/yellow]: {escape(warning)}", highlight=False, soft_wrap=True
        )
    problems = [f"{v.exercise.id}: {p}" for v in verdicts for p in v.problems]
    problems += course_verdict.problems
    for problem in problems:
        console.print(f"[red]x[/red] {escape(problem)}", highlight=False, soft_wrap=True)
    if problems:
        raise SystemExit(1)
    console.print(f"[green]verified {len(verdicts)} exercise(s)[/green]")


@cli.command()
@click.argument("exercise")
def reset(exercise: str) -> None:
    """Restore the pristine stub (your current file is backed up under .grader/backups/)."""
    for item in _select(exercise):
        target = item.stub_path()
        if is_pristine(item):
            console.print(f"{item.id}: already the pristine stub")
            continue
        if item.stub_blob is None:
            raise HarnessError(f"{item.id}: the catalog has no stub hash to restore from")
        done = subprocess.run(
            ["git", "cat-file", "blob", item.stub_blob],
            cwd=paths.REPO_ROOT,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise HarnessError(f"{item.id}: git cannot find the pristine stub ({item.stub_blob})")
        if target.is_file():
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            backup = paths.STATE_DIR / "backups" / stamp / target.relative_to(paths.EXERCISES_DIR)
            backup.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(target, backup)
            console.print(f"{item.id}: your file is saved as {backup}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(done.stdout)
        console.print(f"{item.id}: restored exercises/level{item.level}/{item.file}")


@cli.command(
    name="test",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def test_command(pytest_args: tuple[str, ...]) -> None:
    """Run the full test suite of the project (pytest; extra arguments are passed on)."""
    done = subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=paths.REPO_ROOT)
    raise SystemExit(done.returncode)


@cli.command()
def setup() -> None:
    """Prepare .venv (every command does it on first use); prints where it is."""
    console.print(f"environment ready: {sys.prefix}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: one line of error and exit 2 for bad usage, 3 when the harness fails."""
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    try:
        code = cli.main(args=argv, prog_name="grader", standalone_mode=False)
    except click.UsageError as error:
        hint = f" (see: grader {error.ctx.info_name} --help)" if error.ctx else ""
        print(f"grader: error: {error.format_message()}{hint}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except UnknownExerciseError as error:
        print(f"grader: error: {error.args[0]}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    except (HarnessError, CatalogError, variants.MutantError) as error:
        print(f"grader: harness error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_HARNESS) from None
    except (click.Abort, KeyboardInterrupt):
        print("grader: interrupted; every graded process was stopped", file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)
