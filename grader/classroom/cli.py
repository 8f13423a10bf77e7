"""``grader class``: grade a class into a gradebook (``grade``), or make a demo class (``demo``)."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from grader.catalog import catalog
from grader.classroom import demo, gradebook, inputs, isolate
from grader.classroom.isolate import InfrastructureError, Outcome, Settings
from grader.classroom.plan import Cache, Plan

console = Console(highlight=False)
WORK_DIR = ".work"
CACHE_DIR = ".cache"


def _only(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    course = catalog()
    chosen: list[str] = []
    for name in value.split(","):
        for exercise in course.select(name.strip()):
            if exercise.available and exercise.id not in chosen:
                chosen.append(exercise.id)
    if not chosen:
        raise click.BadParameter(f"{value}: no available exercise", param_hint="--only")
    return tuple(chosen)


def _deadline(value: str | None) -> str | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use ISO 8601, e.g. 2025-03-01 or 2025-03-01T23:59+01:00",
            param_hint="--before",
        ) from None
    return (moment if moment.tzinfo else moment.astimezone()).isoformat()


def _size(value: str) -> int:
    from grader.sandbox.limits import parse_size

    try:
        return parse_size(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--memory") from None


def _logging() -> None:
    root = logging.getLogger("grader.classroom")
    if not root.handlers:
        handler = RichHandler(console=console, show_time=False, show_path=False)
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
        root.propagate = False


@click.group(name="class")
def class_group() -> None:
    """Grade a class: many learners' work into one gradebook, isolated per learner."""


@class_group.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="folder of the gradebook, the report, the cache (re-use it to resume)",
)
@click.option(
    "--only",
    default=None,
    help="grade only these exercises or levels (comma-separated: simple_timer,level2)",
)
@click.option("--before", default=None, help="git submissions: the last commit before DATE")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="default: one per CPU")
@click.option("--celery", "use_celery", is_flag=True, help="send the gradings to Celery workers")
@click.option(
    "--isolation",
    type=click.Choice(isolate.MODES),
    default=isolate.AUTO,
    show_default=True,
    help="bwrap: require bubblewrap; auto: fall back with a warning; none: no sandbox",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=Settings.timeout,
    show_default=True,
    help="wall-clock seconds for one learner's grading",
)
@click.option("--memory", default="6G", show_default=True, help="memory cap per learner")
@click.option(
    "--processes",
    type=click.IntRange(min=16),
    default=Settings.processes,
    show_default=True,
    help="process cap per learner",
)
@click.option(
    "--jobs", type=click.IntRange(min=1), default=None, help="graded tests at once per learner"
)
def grade(
    source: Path,
    out: Path,
    only: str | None,
    before: str | None,
    workers: int | None,
    use_celery: bool,
    isolation: str,
    timeout: float,
    memory: str,
    processes: int,
    jobs: int | None,
) -> None:
    """Grade every submission of SOURCE (a folder of learners' folders, or a roster CSV)."""
    _logging()
    out.mkdir(parents=True, exist_ok=True)
    chosen = _only(only)
    settings = Settings.with_environment(
        timeout=timeout, memory=_size(memory), processes=processes, jobs=jobs, isolation=isolation
    )
    try:
        mode = isolate.resolve_mode(isolation)
    except InfrastructureError as error:
        raise click.UsageError(f"--isolation bwrap: {error}") from None
    if mode == isolate.NONE:
        console.print("[yellow]warning:[/yellow] learners are graded WITHOUT their own sandbox")
    with console.status("reading the submissions..."):
        submissions = inputs.discover(source, out / WORK_DIR, _deadline(before))
        plan = Plan(submissions, chosen, settings, Cache(out / CACHE_DIR))
    pending = plan.pending()
    invalid = [s for s in submissions if s.snapshot is None]
    console.print(
        f"{len(submissions)} learners: {len(pending)} to grade, "
        f"{len(plan.cached)} unchanged (from the cache), {len(invalid)} unreadable"
        + (f"; exercises: {', '.join(chosen)}" if chosen else "")
    )
    _run(plan, pending, use_celery, workers)
    from grader.classroom import html  # Jinja2: only when a report is written

    previous = gradebook.load(out)
    book = gradebook.build(plan, previous)
    gradebook.write(out, book, plan)
    report = html.write(out, book, plan)
    _summary(book, out, report)
    if any(row.status == "error" for row in book.rows):
        raise SystemExit(1)


def _run(plan: Plan, pending: list, use_celery: bool, workers: int | None) -> None:
    columns = (
        TextColumn("grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=len(pending))

        def done(key: str, outcome: Outcome) -> None:
            names = ", ".join(plan.learners_of(key))
            progress.update(task, advance=1, description=f"{escape(names)}: {outcome.status}")

        if use_celery:
            from grader.classroom.tasks import run_celery

            run_celery(plan, on_result=done)
        else:
            from grader.classroom.local import run_local

            run_local(plan, workers=workers, on_result=done)


def _summary(book: gradebook.Gradebook, out: Path, report: Path) -> None:
    table = Table(title=f"gradebook ({len(book.rows)} learners)")
    table.add_column("learner")
    table.add_column("total", justify="right")
    table.add_column("status")
    for row in book.rows:
        style = "green" if row.status == "graded" else "red"
        table.add_row(
            escape(row.learner), f"{row.total}/{row.max_points}", f"[{style}]{row.status}[/{style}]"
        )
    console.print(table)
    if book.moved:
        console.print(f"{len(book.moved)} learner(s) moved since the last grading (see the report)")
    console.print(f"gradebook: {out / gradebook.CSV_FILE}, {out / gradebook.JSON_FILE}")
    console.print(f"class report: {report}")


@class_group.command(name="demo")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--count", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--distinct", is_flag=True, help="no two learners alike (no cache sharing)")
def demo_command(folder: Path, count: int, distinct: bool) -> None:
    """Write a demo class into FOLDER: complete, partial, untouched and twin learners."""
    learners = demo.make_class(folder, count, distinct)
    console.print(f"{len(learners)} learners in {folder}: {', '.join(learners)}")
