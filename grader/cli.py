"""The `grader` command: report, check, compare, verify, reset, restore."""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
import tomllib
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from grader import backups, i18n, paths, present, variants
from grader.catalog import CatalogError, Exercise, UnknownExerciseError, catalog, is_pristine
from grader.classroom.cli import class_group
from grader.i18n import t
from grader.progress import live_progress
from grader.report import render, statuses, write_json
from grader.results import HarnessError, TestResult, run_suites
from grader.verify import update_hashes, verify, verify_notes

console = Console(highlight=False)
EXIT_USAGE = 2
EXIT_HARNESS = 3


def _suggestions(name: str, ids: list[str]) -> list[str]:
    """Known ids close to ``name`` (``simple-timer`` -> ``simple_timer``), best first."""
    normalized = re.sub(r"[\s.-]+", "_", name.strip().lower())
    if normalized in ids:
        return [normalized]
    return difflib.get_close_matches(normalized, ids, n=3, cutoff=0.6)


def _select(name: str) -> list[Exercise]:
    course = catalog()
    try:
        chosen = course.select(name)
    except UnknownExerciseError as error:
        if name.removeprefix("level").isdigit():
            raise
        close = _suggestions(name, [e.id for e in course.exercises])
        if not close:
            raise
        guess = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
        raise UnknownExerciseError(f"unknown exercise {name!r}; did you mean {guess}?") from error
    if chosen and not any(e.available for e in chosen):
        for item in chosen:  # when each is planned, not a pointer to --help
            key = "check.planned" if item.planned else "check.coming_soon"
            message = t(key, exercise=item.id, title=item.title, planned=item.planned)
            console.print(present.keep_commands(message, "yellow"))
        raise SystemExit(1)
    return [e for e in chosen if e.available]


def _choose_language(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        i18n.set_language(value)


def lang_option(command: Any) -> Any:
    """``--lang en|zh`` (default: from the locale, LANG=zh_CN.UTF-8 gives Chinese)."""
    return click.option(
        "--lang",
        type=click.Choice(i18n.LANGUAGES),
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_choose_language,
        help="language of the feedback: en or zh (default: from the locale, e.g. LANG)",
    )(command)


def _version() -> str:
    """The installed distribution's version, else the one pyproject.toml declares."""
    try:
        return metadata.version("cronkata")
    except metadata.PackageNotFoundError:
        pyproject = paths.REPO_ROOT / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="grader", message="%(prog)s %(version)s")
@lang_option
def cli() -> None:
    """cronkata: grade your scheduled-task exercises (APScheduler, Celery Beat, FastAPI)."""


cli.add_command(class_group)  # grader class: grading a class (grader/classroom)


@cli.command()
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write results.json (Exercism v3 + points)",
)
@lang_option
def report(json_path: Path | None) -> None:
    """Show progress on every level and exercise, and what to do next."""
    course = catalog()
    untouched = [e.id for e in course.exercises if e.available and is_pristine(e)]
    with live_progress(console, t("report.grading")) as progress:
        results = run_suites(
            course.exercises, [variants.LEARNER], not_run=untouched, progress=progress
        )
    found = statuses(course, results)
    render(console, course, found)
    if json_path is not None:
        write_json(json_path, found)
        console.print(t("report.written", path=json_path), soft_wrap=True)


def _grade(
    chosen: list[Exercise], kinds: tuple[str, ...] = (variants.LEARNER,)
) -> list[TestResult]:
    """Run the suites of ``chosen`` against the given trees, showing the progress."""
    with live_progress(console, t("check.grading", names=", ".join(e.id for e in chosen))) as shown:
        return run_suites(chosen, list(kinds), progress=shown)


def _print_each_test(results: list[TestResult]) -> None:
    """``PASS simple_timer :: test_x (1 pt)``, one line per test (``check -v``)."""
    for result in results:
        word = t("status.pass") if result.outcome == "passed" else t("status.fail")
        line = t(
            "check.test_line",
            status=word,
            exercise=result.exercise,
            name=result.name,
            points=result.points,
        )
        style = "green" if result.outcome == "passed" else "red"
        console.print(Text(line, style), soft_wrap=True)


def _show(chosen: list[Exercise], results: list[TestResult], verbose: bool = False) -> bool:
    """Each exercise once: its first failure in full, the rest by name, or the next step."""
    if verbose:
        _print_each_test(results)
        console.print()
    pristine = [e.id for e in chosen if is_pristine(e)]
    return present.print_exercises(console, catalog(), chosen, results, pristine)


@cli.command()
@click.argument("exercise")
@click.option("-v", "--verbose", is_flag=True, help="also list every test with PASS or FAIL")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="also write results.json for these exercises (Exercism v3 + points)",
)
@lang_option
def check(exercise: str, verbose: bool, json_path: Path | None) -> None:
    """Grade one exercise (an id such as simple_timer, or a level such as level1)."""
    chosen = _select(exercise)
    results = _grade(chosen)
    _show(chosen, results, verbose)
    if json_path is not None:
        write_json(json_path, [s for s in statuses(catalog(), results) if s.exercise in chosen])
        console.print(t("report.written", path=json_path), soft_wrap=True)
    passed = sum(r.outcome == "passed" for r in results)
    points = sum(r.points for r in results if r.outcome == "passed")
    total = sum(r.points for r in results)
    if len(chosen) > 1:
        console.print(
            "\n"
            + t(
                "check.total",
                passed=passed,
                total=len(results),
                points=points,
                max_points=total,
            )
        )
    raise SystemExit(0 if passed == len(results) else 1)


@cli.command()
@click.argument("exercise", required=False)
@click.option("--runs", type=int, default=None, hidden=True, help="stop after N re-gradings")
@lang_option
def watch(exercise: str | None, runs: int | None) -> None:
    """Grade as you save, from the first unfinished exercise (or EXERCISE).

    On a terminal, keys: n next, h hint, l list, c check all, r reset, q quit. Without
    one, each save re-grades its exercise (Ctrl+C stops)."""
    from grader import watch as watching  # the loop lives there (watchfiles, termios)

    watching.main(console, catalog(), _select(exercise) if exercise else None, runs)


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
@click.option(
    "--force", is_flag=True, help="show the solution's diff even before your exercise passes"
)
@lang_option
def compare(exercise: str, force: bool) -> None:
    """Both test outcomes side by side; once your exercise passes, a diff with the solution."""
    for item in _select(exercise):
        mine, reference = item.stub_path(), item.solution_path()
        shown_mine = f"exercises/level{item.level}/{item.file}"
        shown_ref = f"solutions/{item.file}"
        console.rule(f"{item.id}: {shown_mine} vs {shown_ref}")
        lines = _lines_of(mine, shown_mine)  # warns about a file that is not UTF-8
        results = _grade([item], (variants.LEARNER, variants.SOLUTION))
        yours = [r for r in results if r.variant == variants.LEARNER]
        passed = sum(r.outcome == "passed" for r in yours)
        passes = bool(yours) and passed == len(yours)
        if passes or force:
            if not passes:
                warning = t("compare.forced", exercise=item.id, passed=passed, total=len(yours))
                console.print(Text(warning, "yellow"), soft_wrap=True)
            diff = "".join(
                difflib.unified_diff(
                    lines,
                    reference.read_text(encoding="utf-8").splitlines(keepends=True),
                    fromfile=shown_mine,
                    tofile=shown_ref,
                )
            )
            console.print(
                Syntax(diff or "(identical)\n", "diff", theme="ansi_dark", word_wrap=True)
            )
        else:
            held = t("compare.held_back", exercise=item.id, passed=passed, total=len(yours))
            console.print(present.keep_commands(held, "yellow", console.width), soft_wrap=True)
        table = Table(title=t("compare.tests", exercise=item.id))
        table.add_column(t("compare.test"))
        table.add_column(t("compare.yours"))
        table.add_column(t("compare.solution"))
        outcome: dict[tuple[str, str], str] = {(r.variant, r.name): r.outcome for r in results}
        names = list(dict.fromkeys(r.name for r in results))
        for name in names:
            cells = []
            for variant in (variants.LEARNER, variants.SOLUTION):
                value = outcome.get((variant, name), "-")
                word = t(f"outcome.{value}") if f"outcome.{value}" in i18n.MESSAGES else value
                style = "green" if value == "passed" else "red"
                cells.append(f"[{style}]{word}[/{style}]")
            table.add_row(name, *cells)
        console.print(table)


@cli.command()
@click.argument("exercise")
@lang_option
def hint(exercise: str) -> None:
    """Reveal the next hint for your first failing test, one at a time (remembered)."""
    chosen = _select(exercise)
    if len(chosen) != 1:
        raise click.UsageError("hint takes one exercise id, not a level")
    item = chosen[0]
    step = present.next_hint(item, _grade([item]))
    if step is None:
        passes = t("hint.passes", exercise=item.id)
        console.print(present.keep_commands(passes, "green", console.width), soft_wrap=True)
        return
    total, test_name, revealed = step.total, step.test, step.revealed
    if step.earlier:
        console.print(Text(t("hint.seen"), "dim"))
        for text in step.earlier:
            console.print(Text(f"  - {text}", "dim"), soft_wrap=True)
    if revealed is None:
        console.print(
            present.keep_commands(
                t("hint.none_left", exercise=item.id, total=total, note=item.note),
                "yellow",
                console.width,
            ),
            soft_wrap=True,
        )
        return
    number, text = revealed
    console.print(
        Text(
            t("hint.header", number=number, total=total, exercise=item.id, test=test_name),
            "bold",
        ),
        soft_wrap=True,
    )
    console.print(Text(f"  {text}", "green"), soft_wrap=True)
    if number < total:
        console.print(Text(t("hint.again"), "dim"), soft_wrap=True)


@cli.command(name="verify")
@click.option(
    "--update-hashes", "rehash", is_flag=True, help="rewrite stub hashes in the catalog first"
)
@click.argument("exercises", nargs=-1)
def verify_command(rehash: bool, exercises: tuple[str, ...]) -> None:
    """For maintainers: solutions pass, stubs fail, mutants are caught, APIs and links agree.

    EXERCISES: ids or levels (default: every exercise)."""
    course = catalog()
    if rehash:
        changed = update_hashes(paths.CATALOG_FILE, course.exercises)
        catalog.cache_clear()
        course = catalog()
        console.print(f"stub hashes updated: {', '.join(changed) or 'none changed'}")
    chosen = list(dict.fromkeys(e for name in exercises for e in _select(name))) or None
    with live_progress(console, "verifying: solutions, stubs, mutants and alternatives..."):
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


# shared with `grader watch` (r resets the current exercise)
BACKUPS = backups.BACKUPS
BEFORE_RESTORE = backups.BEFORE_RESTORE
_backup = backups.backup
_last_backup = backups.last_backup


def _interactive() -> bool:
    """Whether a person can answer a question (stdin is a terminal)."""
    return sys.stdin is not None and sys.stdin.isatty()


@cli.command()
@click.argument("exercise")
@click.option("-y", "--yes", is_flag=True, help="do not ask before overwriting your file")
def reset(exercise: str, yes: bool) -> None:
    """Restore the pristine stub (your current file is backed up under .grader/backups/)."""
    chosen = _select(exercise)
    for item in chosen:
        if is_pristine(item):
            console.print(f"{item.id}: already the pristine stub")
    changed = [item for item in chosen if not is_pristine(item)]
    if not changed:
        return
    at_risk = [item for item in changed if item.stub_path().is_file()]  # a file to overwrite
    shown = ", ".join(f"exercises/level{e.level}/{e.file}" for e in at_risk)
    if at_risk and not yes:
        if not _interactive():
            raise click.UsageError(
                f"reset would overwrite {shown}: pass --yes to confirm (no terminal to ask)"
            )
        question = f"Overwrite {shown} with the pristine stub (your file is backed up)?"
        if not click.confirm(question, default=False):
            console.print("nothing reset")
            raise SystemExit(1)
    for item in changed:
        backup = backups.restore_stub(item)
        if backup is not None:
            console.print(f"{item.id}: your file is saved as {paths.shown(backup)}", soft_wrap=True)
        console.print(f"{item.id}: restored exercises/level{item.level}/{item.file}")


@cli.command()
@click.argument("exercise")
def restore(exercise: str) -> None:
    """Bring back the file the last `grader reset` backed up (your current file is kept too)."""
    missing = False
    for item in _select(exercise):
        source = _last_backup(item)
        shown = f"exercises/level{item.level}/{item.file}"
        if source is None:
            console.print(f"{item.id}: no backup to restore (grader reset keeps one)")
            missing = True
            continue
        content = source.read_bytes()
        target = item.stub_path()
        if target.is_file():
            if target.read_bytes() == content:
                console.print(
                    f"{item.id}: {shown} already matches {paths.shown(source)}", soft_wrap=True
                )
                continue
            kept = _backup(item, BEFORE_RESTORE)
            console.print(
                f"{item.id}: your current file is saved as {paths.shown(kept)}", soft_wrap=True
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        console.print(f"{item.id}: restored {shown} from {paths.shown(source)}", soft_wrap=True)
    if missing:
        raise SystemExit(1)


@cli.command(
    name="test",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def test_command(pytest_args: tuple[str, ...]) -> None:
    """Run the full test suite of the project (pytest; extra arguments are passed on)."""
    # The harness's tests read the feedback in English whatever the learner's locale.
    env = {**os.environ, "CRONKATA_LANG": i18n.EN}
    command = [sys.executable, "-m", "pytest", *pytest_args]
    done = subprocess.run(command, cwd=paths.REPO_ROOT, env=env)
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
        # command_path is "grader" for the group itself, "grader check" for a command
        hint = f" (see: {error.ctx.command_path} --help)" if error.ctx else ""
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
