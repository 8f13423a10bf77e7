"""Hidden suite of `data_cleanup` (exercises/level2/level2_data_cleanup.py).

Everything runs in virtual time against real SQLite files in the test's own folder: the
token database (CLEANUP_DATABASE_URL) and the scheduler's job store (CLEANUP_JOBSTORE_URL).
The configured zone is Asia/Shanghai (Europe/Berlin for the DST test) while the machine
runs in America/Los_Angeles, so a forgotten `timezone=` or a naive datetime shows up.
"Restarts" are two scheduler lifetimes on one job-store file; an "outage" moves the clock
while no scheduler runs. The suite drops the warm-up job (every 10 min) from tests about
other jobs, to keep a week of virtual time fast.
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401  (the pool executor's: loaded before the forks)
import contextlib
import functools
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy.dialects.sqlite  # noqa: F401  (every test uses SQLite: loaded before the forks)
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.util import ref_to_obj
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from grader.feedback import expect, expect_equal, expect_fire_times, fail
from grader.sim_apscheduler import SchedulerSimulation, simulate
from grader.targets import Target
from grader.testing import environment, machine_zone

NOTE = "07b_ap_scheduler_advanced.md"
SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
CLEANUP = "cleanup_expired_tokens"
WARMUP = "warm_cache"
REPORT = "daily_report"


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in Shanghai in March 2026 (2 March is a Monday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=SH)


# -- fixtures and helpers ---------------------------------------------------------------------


@dataclass
class Files:
    """Where this test's databases and reports live, and the variables pointing at them."""

    database_url: str
    jobstore_url: str
    jobstore_file: Path
    report_dir: Path
    variables: dict[str, str]


@pytest.fixture(autouse=True)
def _machine_in_los_angeles() -> Iterator[None]:
    with machine_zone("America/Los_Angeles"):
        yield


@pytest.fixture(autouse=True)
def _sqlite_without_fsync() -> Iterator[None]:
    """A test database needs no durability: without fsync a commit costs microseconds."""

    def no_fsync(dbapi_connection: Any, record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute("PRAGMA synchronous=OFF")

    event.listen(Engine, "connect", no_fsync)
    yield
    event.remove(Engine, "connect", no_fsync)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Files]:
    """CLEANUP_* variables pointing at SQLite files in this test's folder (zone Shanghai)."""
    jobstore_file = tmp_path / "jobs.sqlite"
    found = Files(
        database_url=f"sqlite:///{tmp_path / 'tokens.sqlite'}",
        jobstore_url=f"sqlite:///{jobstore_file}",
        jobstore_file=jobstore_file,
        report_dir=tmp_path / "reports",
        variables={},
    )
    found.variables = {
        "CLEANUP_DATABASE_URL": found.database_url,
        "CLEANUP_JOBSTORE_URL": found.jobstore_url,
        "CLEANUP_TIMEZONE": "Asia/Shanghai",
        "CLEANUP_REPORT_DIR": str(found.report_dir),
    }
    with environment(found.variables):
        yield found


def _engine(module: ModuleType, url: str) -> Engine:
    """The suite's own engine on the token database, with the stub's tables created."""
    engine = create_engine(url)
    module.Base.metadata.create_all(engine)
    return engine


def _seed(module: ModuleType, url: str, tokens: dict[str, datetime]) -> None:
    """Insert tokens (name -> expires_at) through the suite's own engine."""
    engine = _engine(module, url)
    with Session(engine) as session, session.begin():
        session.add_all(
            module.Token(token=name, user_id=number, expires_at=expires)
            for number, (name, expires) in enumerate(tokens.items(), start=1)
        )
    engine.dispose()


def _tokens_left(module: ModuleType, url: str) -> list[str]:
    engine = _engine(module, url)
    with engine.connect() as connection:
        names = sorted(connection.scalars(select(module.Token.token)))
    engine.dispose()
    return names


def _ignore(alert: object) -> None:
    """An alert hook for tests that do not look at alerts."""


def _start(
    module: ModuleType,
    alert: Callable[[Any], None] = _ignore,
    *,
    keep_warmup: bool = False,
) -> BackgroundScheduler:
    """The learner's running scheduler (without the warm-up job unless asked)."""
    scheduler = module.start_scheduler(alert)
    expect(
        getattr(scheduler, "running", False),
        f"start_scheduler() returned {scheduler!r}: it must return the scheduler, started.",
    )
    if not keep_warmup:
        with contextlib.suppress(JobLookupError):
            scheduler.remove_job(module.WARMUP_JOB_ID)
    return scheduler


def _label(moment: object) -> str:
    """A time as a short local label, e.g. 'Mon 02 03:00' (day of March, Shanghai)."""
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        return moment.astimezone(SH).strftime("%a %d %H:%M")
    return repr(moment)


def _outcomes(sim: SchedulerSimulation, job_id: str) -> dict[str, list[str]]:
    """Scheduled times of a job's runs, by outcome (only outcomes that happened)."""
    found: dict[str, list[str]] = {}
    for firing in sim.runs(job_id, outcome=None):
        found.setdefault(firing.outcome, []).append(_label(firing.scheduled))
    return found


def _alerts_of(alerts: list[Any], job_id: str) -> list[tuple[str, str]]:
    """(kind, run time) of the alerts about one job."""
    return [
        (str(getattr(a, "kind", "?")), _label(getattr(a, "run_time", None)))
        for a in alerts
        if getattr(a, "job_id", None) == job_id
    ]


def _local(moment: datetime | None) -> datetime | None:
    return moment.astimezone(SH) if isinstance(moment, datetime) and moment.tzinfo else moment


def _stored_ids(jobstore_file: Path) -> list[str]:
    """The job ids in the job store file itself (its default table)."""
    expect(
        jobstore_file.exists(),
        f"No job store file at {jobstore_file}: use SQLAlchemyJobStore(url=CLEANUP_JOBSTORE_URL).",
    )
    with sqlite3.connect(jobstore_file) as raw:
        return sorted(row[0] for row in raw.execute("SELECT id FROM apscheduler_jobs"))


def _two_lifetimes(
    target: Target,
    sim: SchedulerSimulation,
    first_until: datetime,
    restart_at: datetime,
    alert: Callable[[Any], None] = _ignore,
) -> tuple[ModuleType, BackgroundScheduler]:
    """Run lifetime A until ``first_until``, stop it, stay down, start B at ``restart_at``."""
    module = target.load()
    first = _start(module, alert, keep_warmup=True)
    sim.run_until(first_until)
    first.shutdown()
    sim.clock.move_to(restart_at)
    return module, _start(module, alert, keep_warmup=True)


# -- the cleanup itself ---------------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#token-cleanup",
    hint="Expired means expires_at <= now: compare with <=, not <.",
)
def test_a_token_expiring_exactly_now_is_deleted(target: Target, files: Files) -> None:
    module = target.load()
    now = sh(2, 3)  # an aware datetime, in Shanghai rather than UTC
    tick = timedelta(microseconds=1)
    _seed(
        module,
        files.database_url,
        {"expired-1us-ago": now - tick, "expires-exactly-now": now, "expires-in-1us": now + tick},
    )
    engine = _engine(module, files.database_url)
    deleted = module.delete_expired_tokens(engine, now, 100)
    expect_equal(
        _tokens_left(module, files.database_url),
        ["expires-in-1us"],
        f"tokens left after delete_expired_tokens(engine, now={now.isoformat()})",
        "A token is expired once expires_at <= now: at its expiry instant it is no longer "
        "valid, so both the one that expired 1 µs ago and the one expiring exactly now go.",
    )
    expect_equal(deleted, 2, "the number returned by delete_expired_tokens()")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#token-cleanup",
    hint="Loop: select up to batch_size expired ids, delete them, commit; until none is left.",
)
def test_10000_expired_tokens_are_deleted_in_batches(target: Target, files: Files) -> None:
    module = target.load()
    now = sh(2, 3)
    engine = _engine(module, files.database_url)
    rows = [
        {"token": f"t{i:05d}", "user_id": i, "expires_at": now - timedelta(minutes=i + 1)}
        for i in range(10_000)
    ]
    rows += [
        {"token": f"active{i}", "user_id": i, "expires_at": now + timedelta(days=1)}
        for i in range(5)
    ]
    with engine.begin() as connection:
        connection.execute(module.Token.__table__.insert(), rows)

    # Rows changed per committed transaction, from SQLite's own counter (it also counts
    # DELETE ... RETURNING, whose cursor.rowcount is -1).
    per_transaction: list[int] = []
    at_begin: dict[int, int] = {}

    def changes(conn: Any) -> tuple[int, int]:
        raw = conn.connection.dbapi_connection
        return id(raw), raw.total_changes

    def on_begin(conn: Any) -> None:
        key, count = changes(conn)
        at_begin[key] = count

    def on_commit(conn: Any) -> None:
        key, count = changes(conn)
        done = count - at_begin.pop(key, count)
        if done:
            per_transaction.append(done)

    event.listen(engine, "begin", on_begin)
    event.listen(engine, "commit", on_commit)
    deleted = module.delete_expired_tokens(engine, now, 1000)
    again = module.delete_expired_tokens(engine, now, 1000)

    expect_equal(deleted, 10_000, "delete_expired_tokens() on 10,000 expired tokens")
    expect_equal(
        len(_tokens_left(module, files.database_url)), 5, "tokens left (the 5 active ones)"
    )
    expect(
        per_transaction and max(per_transaction) <= 1000 and len(per_transaction) >= 10,
        "With batch_size=1000, each transaction must delete at most 1000 rows and commit "
        f"before the next batch. Rows deleted per committed transaction: {per_transaction}."
        "\nOne DELETE of every expired row holds its locks for the whole statement: on a "
        "big table the application's own writes wait (or time out) meanwhile.",
    )
    expect_equal(again, 0, "a second delete_expired_tokens() right after (idempotent)")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#token-cleanup",
    hint="cleanup_job(): now = datetime.now(UTC), delete, record a CleanupRun, log the count.",
)
def test_cleanup_job_deletes_and_logs_the_count(
    target: Target, files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    module = target.load()
    caplog.set_level(logging.INFO)
    _seed(
        module,
        files.database_url,
        {"old1": sh(1, 12), "old2": sh(1, 13), "old3": sh(2, 2, 59), "new1": sh(3, 12)},
    )
    with simulate(sh(2, 3)):
        first = module.cleanup_job()
        second = module.cleanup_job()
    expect_equal(
        _tokens_left(module, files.database_url), ["new1"], "tokens left after cleanup_job()"
    )
    expect_equal((first, second), (3, 0), "what cleanup_job() returned, run twice in a row")
    mine = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO and not r.name.startswith(("apscheduler", "sqlalchemy"))
    ]
    expect(
        any(re.search(r"\b3\b", m) for m in mine),
        f"cleanup_job() should log how many tokens it deleted (3); your log lines: {mine!r}",
    )


# -- when the jobs run ------------------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#daily-jobs",
    hint="CronTrigger(hour=CLEANUP_HOUR, minute=0, timezone=scheduler.timezone)",
)
def test_cleanup_runs_daily_at_03_00_in_the_configured_zone(target: Target, files: Files) -> None:
    module = target.load()
    with simulate(sh(2, 0, 30)) as sim:
        _start(module)
        sim.run_until(sh(9, 0, 30))
    expect_fire_times(
        sim.fire_times(CLEANUP),
        [sh(day, 3) for day in range(2, 9)],
        what=f"job {CLEANUP!r} over 7 days (CLEANUP_TIMEZONE=Asia/Shanghai)",
        tz=SH,
        why="This machine runs in America/Los_Angeles: a trigger without timezone= uses it.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#daily-jobs",
    hint="A cron trigger in the configured zone keeps 03:00 local; a 24 h interval drifts.",
)
def test_cleanup_stays_at_03_00_local_across_the_dst_change(target: Target, files: Files) -> None:
    module = target.load()
    start = datetime(2026, 3, 26, 0, 30, tzinfo=BERLIN)
    berlin = {**files.variables, "CLEANUP_TIMEZONE": "Europe/Berlin"}
    with environment(berlin), simulate(start) as sim:
        _start(module)
        sim.run_until(start + timedelta(days=7))
    expect_fire_times(
        sim.fire_times(CLEANUP),
        [datetime(2026, 3, day, 3, tzinfo=BERLIN) for day in range(26, 32)]
        + [datetime(2026, 4, 1, 3, tzinfo=BERLIN)],
        what=f"job {CLEANUP!r} from Thu 26 March to Wed 1 April (CLEANUP_TIMEZONE=Europe/Berlin)",
        tz=BERLIN,
        why="On Sunday 29 March Berlin jumps from 02:00 to 03:00 (CET -> CEST). 03:00 still "
        "exists, so the cleanup runs at 03:00 every day: that night only 23 h after the "
        "previous run. Expected behaviour of APScheduler 3.11 with a cron trigger.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#cache-warmup",
    hint="add_job(..., next_run_time=datetime.now(zone)) runs an interval job at once, "
    "then every interval.",
)
def test_warm_up_runs_at_start_then_every_10_minutes(target: Target, files: Files) -> None:
    module = target.load()
    t0 = sh(2, 9)
    _seed(module, files.database_url, {"alice": sh(3, 9), "bob": sh(4, 9), "gone": sh(1, 9)})
    with simulate(t0) as sim:
        _start(module, keep_warmup=True)
        sim.run_until(t0)
        at_start = dict(module.TOKEN_CACHE.tokens)
        warmed_at = _local(module.TOKEN_CACHE.warmed_at)
        _seed(module, files.database_url, {"carol": sh(5, 9)})
        sim.run_until(t0 + timedelta(minutes=30))
        later = sorted(module.TOKEN_CACHE.tokens)
    expect_fire_times(
        sim.fire_times(WARMUP),
        [t0 + timedelta(minutes=m) for m in (0, 10, 20, 30)],
        what=f"job {WARMUP!r} over the first 30 minutes",
        tz=SH,
        why="The cache is empty in a fresh process: warm it at start, then every 10 minutes.",
    )
    expect_equal(sorted(at_start), ["alice", "bob"], "TOKEN_CACHE.tokens right after start")
    expect_equal(warmed_at, t0, "TOKEN_CACHE.warmed_at right after start")
    expect_equal(later, ["alice", "bob", "carol"], "TOKEN_CACHE.tokens 30 minutes later")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#daily-report",
    hint="At 08:00 local, write report-<local date>.json with the six documented keys.",
)
def test_daily_report_at_08_00_with_the_nights_numbers(target: Target, files: Files) -> None:
    module = target.load()
    tokens = {f"old{i}": sh(1, 12) for i in range(5)}  # expired before the 03:00 cleanup
    tokens |= {f"morning{i}": sh(2, 5) for i in range(2)}  # expire between cleanup and report
    tokens |= {f"active{i}": sh(3, 12) for i in range(4)}
    _seed(module, files.database_url, tokens)
    with simulate(sh(2, 0, 30)) as sim:
        _start(module)
        sim.run_until(sh(2, 8, 30))
    expect_fire_times(
        sim.fire_times(REPORT),
        [sh(2, 8)],
        what=f"job {REPORT!r} on Monday",
        tz=SH,
    )
    written = (
        sorted(p.name for p in files.report_dir.glob("*")) if files.report_dir.exists() else []
    )
    expect_equal(written, ["report-2026-03-02.json"], "files in CLEANUP_REPORT_DIR")
    report = json.loads((files.report_dir / "report-2026-03-02.json").read_text("utf-8"))
    expect_equal(
        report,
        {
            "date": "2026-03-02",
            "generated_at": "2026-03-02T08:00:00+08:00",
            "active_tokens": 4,
            "expired_tokens": 2,
            "deleted_last_24h": 5,
            "cleanup_runs_last_24h": 1,
        },
        "the report written at 08:00",
        "5 tokens expired before the 03:00 cleanup deleted them; 2 more expired at 05:00 and "
        "wait for the next night; 4 are still active.",
    )


# -- failures -------------------------------------------------------------------------------


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#error-handling",
    hint="Do not catch the exception in the job: let APScheduler emit EVENT_JOB_ERROR, and "
    "have a listener log it and call the alert hook.",
)
def test_a_failing_job_is_alerted_once_and_keeps_its_schedule(
    target: Target, files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    module = target.load()
    caplog.set_level(logging.INFO)
    real_delete = module.delete_expired_tokens
    calls = []

    @functools.wraps(real_delete)
    def flaky_delete(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return real_delete(*args, **kwargs)

    setattr(module, "delete_expired_tokens", flaky_delete)  # noqa: B010  Monday's run fails, later ones work
    alerts: list[Any] = []
    with simulate(sh(2, 0, 30)) as sim:
        scheduler = _start(module, alerts.append)
        sim.run_until(sh(4, 3, 30))
        next_run = _local(getattr(scheduler.get_job(CLEANUP), "next_run_time", None))
    expect_equal(
        _outcomes(sim, CLEANUP),
        {"error": [_label(sh(2, 3))], "executed": [_label(sh(3, 3)), _label(sh(4, 3))]},
        f"runs of {CLEANUP!r} (Monday's raises RuntimeError('database is locked'))",
        "The job must raise (APScheduler records the error), and the next nights still run.",
    )
    expect_equal(
        _alerts_of(alerts, CLEANUP),
        [("error", _label(sh(2, 3)))],
        "alerts (kind, run_time) sent to the alert hook for the cleanup",
    )
    alert = next(a for a in alerts if getattr(a, "job_id", None) == CLEANUP)
    expect(
        "database is locked" in str(getattr(alert, "message", "")),
        f"The alert's message should say what was raised; it is {alert!r}",
    )
    logged = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and not r.name.startswith("apscheduler")
    ]
    expect(
        any(CLEANUP in m and "database is locked" in m for m in logged),
        "Log the failure at ERROR with the job id and the exception (one line is enough). "
        f"Your ERROR lines: {logged!r}",
    )
    expect_equal(next_run, sh(5, 3), f"next run of {CLEANUP!r} after Wednesday's")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#misfire",
    hint="max_instances=1 on the cleanup; the listener must handle EVENT_JOB_MAX_INSTANCES, "
    "a JobSubmissionEvent that has no .exception and no .scheduled_run_time.",
)
def test_an_overlapping_cleanup_is_skipped_and_reported(target: Target, files: Files) -> None:
    module = target.load()
    alerts: list[Any] = []
    with simulate(sh(2, 0, 30)) as sim:
        _start(module, alerts.append)
        sim.hold(CLEANUP, until=sh(2, 3, 30))  # a run started by hand is still going at 03:00
        sim.run_until(sh(3, 3, 30))
    expect_equal(
        _outcomes(sim, CLEANUP),
        {"skipped": [_label(sh(2, 3))], "executed": [_label(sh(3, 3))]},
        f"runs of {CLEANUP!r} while a previous run lasts from 00:30 to 03:30 on Monday",
        "Two cleanups at once fight over the same rows: the 03:00 run must be skipped.",
    )
    expect_equal(
        _alerts_of(alerts, CLEANUP),
        [("skipped", _label(sh(2, 3)))],
        "alerts (kind, run_time) sent to the alert hook for the cleanup",
    )


# -- persistence and restarts ---------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#persistence",
    hint="SQLAlchemyJobStore(url=settings.jobstore_url); fixed ids with replace_existing=True.",
)
def test_a_restart_on_the_same_job_store_keeps_each_job_once(target: Target, files: Files) -> None:
    with simulate(sh(2, 0, 30)) as sim:
        module, second = _two_lifetimes(target, sim, sh(2, 1), sh(2, 1, 30))
        jobs = {job.id: job for job in second.get_jobs()}
        functions = {job_id: job.func for job_id, job in jobs.items()}
        refs = {job_id: job.func_ref for job_id, job in jobs.items()}
        stored = _stored_ids(files.jobstore_file)
        second.remove_job(WARMUP)
        sim.run_until(sh(2, 3, 30))
    expect_equal(
        sorted(jobs),
        sorted([CLEANUP, REPORT, WARMUP]),
        "job ids after a restart on the same job store",
    )
    expect_equal(stored, sorted(jobs), "rows in the job store's apscheduler_jobs table")
    expect_equal(
        functions,
        {CLEANUP: module.cleanup_job, REPORT: module.report_job, WARMUP: module.warm_cache_job},
        "the function of each job after the restart",
    )
    expect(
        all(isinstance(r, str) and ":" in r for r in refs.values()),
        f"Stored jobs must reference 'module:function'; got {refs!r}",
    )
    expect_fire_times(
        sim.fire_times(CLEANUP),
        [sh(2, 3)],
        what=f"job {CLEANUP!r} on Monday across both lifetimes",
        tz=SH,
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#misfire",
    hint="Re-adding a job with replace_existing=True recomputes its next run time from now: "
    "keep the stored next_run_time when the stored trigger is the same.",
)
def test_a_6h_outage_restarted_within_grace_runs_the_cleanup_once(
    target: Target, files: Files
) -> None:
    alerts: list[Any] = []
    with simulate(sh(1, 22)) as sim:
        _two_lifetimes(target, sim, sh(1, 23), sh(2, 5), alerts.append)
        sim.run_for(timedelta(minutes=5))
    firings = [
        (f.outcome, _label(f.scheduled), _label(f.actual)) for f in sim.runs(CLEANUP, outcome=None)
    ]
    expect_equal(
        firings,
        [("executed", _label(sh(2, 3)), _label(sh(2, 5)))],
        f"runs of {CLEANUP!r} (outcome, scheduled, actual): down from Sun 23:00 to Mon 05:00",
        "The 03:00 run is 2 h late at the restart, within the cleanup's 3 h grace: it must run "
        "once, right away. No run at all means the restart forgot the stored next run time.",
    )
    expect_equal(_alerts_of(alerts, CLEANUP), [], "alerts for the cleanup")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#misfire",
    hint="misfire_grace_time=CLEANUP_GRACE_SECONDS on the cleanup, and a listener for "
    "EVENT_JOB_MISSED that calls the alert hook.",
)
def test_a_6h_outage_restarted_beyond_grace_reports_a_missed_run(
    target: Target, files: Files
) -> None:
    alerts: list[Any] = []
    with simulate(sh(2, 0, 30)) as sim:
        _, second = _two_lifetimes(target, sim, sh(2, 1, 30), sh(2, 7, 30), alerts.append)
        second.remove_job(WARMUP)
        sim.run_until(sh(3, 3, 30))
    expect_equal(
        _outcomes(sim, CLEANUP),
        {"missed": [_label(sh(2, 3))], "executed": [_label(sh(3, 3))]},
        f"runs of {CLEANUP!r}: down from Mon 01:30 to 07:30, then running until Tue 03:30",
        "At 07:30 the 03:00 run is 4.5 h late, beyond the 3 h grace: APScheduler reports it "
        "missed instead of deleting rows in the morning traffic; Tuesday runs as usual.",
    )
    expect_equal(
        _alerts_of(alerts, CLEANUP),
        [("missed", _label(sh(2, 3)))],
        "alerts (kind, run_time) sent to the alert hook for the cleanup",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#misfire",
    hint="coalesce=True: several overdue runs become one.",
)
def test_a_weekend_outage_coalesces_into_one_cleanup(target: Target, files: Files) -> None:
    alerts: list[Any] = []
    with simulate(sh(6, 22)) as sim:
        _two_lifetimes(target, sim, sh(6, 23), sh(9, 4), alerts.append)
        sim.run_for(timedelta(minutes=5))
    expect_equal(
        _outcomes(sim, CLEANUP),
        {"executed": [_label(sh(9, 3))]},
        f"runs of {CLEANUP!r}: down from Fri 23:00 to Mon 04:00",
        "Saturday's, Sunday's and Monday's 03:00 runs are all overdue at the restart: with "
        "coalesce they become one run (the latest, 1 h late, within grace), not two missed "
        "runs and one run.",
    )
    expect_equal(_alerts_of(alerts, CLEANUP), [], "alerts for the cleanup")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#persistence",
    hint="A paused job is stored with next_run_time None: keep it when re-registering.",
)
def test_a_paused_job_stays_paused_after_a_restart(target: Target, files: Files) -> None:
    module = target.load()
    with simulate(sh(2, 0, 30)) as sim:
        first = _start(module)
        module.pause_job(first, CLEANUP)
        first.shutdown()
        sim.clock.move_to(sh(2, 1))
        second = _start(module)
        paused = getattr(second.get_job(CLEANUP), "next_run_time", "<no such job>")
        sim.run_until(sh(3, 4))
    expect_equal(paused, None, f"next_run_time of the paused {CLEANUP!r} after a restart")
    expect_fire_times(sim.fire_times(CLEANUP), [], what=f"job {CLEANUP!r} while paused", tz=SH)


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#persistence",
    hint="Keep the stored job only when its trigger is the same as the code's; otherwise the "
    "code wins (replace_existing=True).",
)
def test_a_new_schedule_in_the_code_replaces_the_stored_one(target: Target, files: Files) -> None:
    module = target.load()
    with simulate(sh(2, 0, 30)) as sim:
        old = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=files.jobstore_url)}, timezone=SH
        )
        old.start(paused=True)
        old.add_job(module.cleanup_job, CronTrigger(hour=4, timezone=SH), id=CLEANUP)
        old.shutdown()  # last release ran the cleanup at 04:00; this one says 03:00
        _start(module)
        sim.run_until(sh(3, 4, 30))
    expect_fire_times(
        sim.fire_times(CLEANUP),
        [sh(2, 3), sh(3, 3)],
        what=f"job {CLEANUP!r} after deploying 03:00 over a store that says 04:00",
        tz=SH,
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#persistence",
    hint="obj_to_ref(func) then ref_to_obj(ref) is func; pickle.dumps(args) for the arguments.",
)
def test_what_a_job_store_cannot_keep_is_rejected_clearly(target: Target, files: Files) -> None:
    module = target.load()

    class Service:
        def run(self) -> None:
            pass

    def nested() -> None:
        pass

    engine = create_engine(files.database_url)
    with Session(engine) as session:
        cases: list[tuple[str, Any, tuple[Any, ...]]] = [
            ("a lambda", lambda: None, ()),
            ("a nested function", nested, ()),
            ("a bound method", Service().run, ()),
            ("functools.partial", functools.partial(module.cleanup_job), ()),
            ("an open Session argument", module.cleanup_job, (session,)),
        ]
        for what, job_func, args in cases:
            try:
                module.check_persistable(job_func, args)
            except ValueError as error:
                expect(str(error).strip(), f"The ValueError for {what} has an empty message.")
            except NotImplementedError:
                raise
            except Exception as error:
                fail(
                    f"check_persistable() with {what} raised {type(error).__name__}: {error}; "
                    "raise a ValueError that says what to do instead."
                )
            else:
                fail(
                    f"check_persistable() accepted {what}: a persistent job store cannot keep "
                    "it (it stores a 'module:function' reference and pickled arguments)."
                )
    ref = module.check_persistable(module.cleanup_job, (42, "ids are fine"))
    expect(
        isinstance(ref, str)
        and ref.endswith(":cleanup_job")
        and ref_to_obj(ref) is module.cleanup_job,
        "check_persistable(cleanup_job) should return its 'module:function' reference; "
        f"got {ref!r}",
    )


# -- managing jobs ----------------------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#job-management",
    hint="scheduler.pause_job(id) / scheduler.resume_job(id); resume computes the next fire "
    "time from now, it does not make up the paused runs.",
)
def test_pause_stops_runs_and_resume_restarts_at_the_next_fire_time(
    target: Target, files: Files
) -> None:
    module = target.load()
    with simulate(sh(2, 0, 30)) as sim:
        scheduler = _start(module)
        sim.run_until(sh(2, 4))
        module.pause_job(scheduler, CLEANUP)
        sim.run_until(sh(4, 12))
        resumed = _local(module.resume_job(scheduler, CLEANUP))
        sim.run_until(sh(6, 4))
    expect_fire_times(
        sim.fire_times(CLEANUP),
        [sh(2, 3), sh(5, 3), sh(6, 3)],
        what=f"job {CLEANUP!r}: paused Mon 04:00, resumed Wed 12:00",
        tz=SH,
    )
    expect_equal(resumed, sh(5, 3), "what resume_job() returned (the next run time)")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#job-management",
    hint="scheduler.modify_job(id, next_run_time=datetime.now(scheduler.timezone))",
)
def test_run_now_runs_at_once_and_keeps_the_nightly_schedule(target: Target, files: Files) -> None:
    module = target.load()
    with simulate(sh(2, 10)) as sim:
        scheduler = _start(module)
        module.run_job_now(scheduler, CLEANUP)
        sim.run_until(sh(3, 3, 30))
    expect_fire_times(
        sim.fire_times(CLEANUP),
        [sh(2, 10), sh(3, 3)],
        what=f"job {CLEANUP!r} after run_job_now() at Mon 10:00",
        tz=SH,
        why="The run happens through the scheduler, at once, and the nightly schedule goes on.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#job-management",
    hint="scheduler.reschedule_job(id, trigger=CronTrigger(..., timezone=scheduler.timezone))",
)
def test_reschedule_moves_the_cleanup_to_a_new_local_time(target: Target, files: Files) -> None:
    module = target.load()
    with simulate(sh(2, 10)) as sim:
        scheduler = _start(module)
        upcoming = _local(module.reschedule_daily(scheduler, CLEANUP, 4, 30))
        sim.run_until(sh(5, 0))
    expect_equal(upcoming, sh(3, 4, 30), "what reschedule_daily(..., 4, 30) returned")
    expect_fire_times(
        sim.fire_times(CLEANUP),
        [sh(3, 4, 30), sh(4, 4, 30)],
        what=f"job {CLEANUP!r} after reschedule_daily(scheduler, {CLEANUP!r}, 4, 30)",
        tz=SH,
        why="04:30 in the configured zone (Asia/Shanghai), not in the machine's.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#job-management",
    hint="remove_job returns False for an id that is not there instead of raising.",
)
def test_remove_job_stops_it_and_tells_whether_it_existed(target: Target, files: Files) -> None:
    module = target.load()
    with simulate(sh(2, 9)) as sim:
        scheduler = _start(module, keep_warmup=True)
        sim.run_until(sh(2, 9))
        removed = module.remove_job(scheduler, WARMUP)
        again = module.remove_job(scheduler, WARMUP)
        sim.run_until(sh(2, 10))
        left = scheduler.get_job(WARMUP)
    expect_equal((removed, again), (True, False), "remove_job() called twice")
    expect(left is None, f"After remove_job() the job is still there: {left!r}")
    expect_fire_times(
        sim.fire_times(WARMUP), [sh(2, 9)], what=f"job {WARMUP!r} (removed at 09:00)", tz=SH
    )
