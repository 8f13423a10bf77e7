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
import importlib.util
import json
import logging
import pickle
import re
import runpy
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from grader.drawing import deterministic, utc_instants, zones
from grader.feedback import expect, expect_equal, expect_fire_times, fail
from grader.sim_apscheduler import SchedulerSimulation, running_schedulers, simulate
from grader.targets import Target
from grader.testing import environment, machine_zone

NOTE = "07b_ap_scheduler_advanced.md"
SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
CLEANUP = "cleanup_expired_tokens"
WARMUP = "warm_cache"
REPORT = "daily_report"
# Whole seconds most of the time: a cutoff compared as text differs from one with a
# fraction only there ('...:00' < '...:00.000000').
COUNT_KEYS = ("active_tokens", "expired_tokens", "deleted_last_24h", "cleanup_runs_last_24h")
MICROSECONDS = st.sampled_from([0, 0, 1, 500_000, 999_999])


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


@contextmanager
def grading_conditions() -> Iterator[None]:
    """Every test (and the import of the file): the machine in Los Angeles."""
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


def _cleanup_runs(module: ModuleType, url: str) -> list[tuple[datetime | None, int]]:
    """(ran_at in Shanghai, deleted) of every CleanupRun row, in insertion order."""
    engine = _engine(module, url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(module.CleanupRun.ran_at, module.CleanupRun.deleted).order_by(
                module.CleanupRun.id
            )
        ).all()
    engine.dispose()
    return [(_local(ran_at), deleted) for ran_at, deleted in rows]


def _rows_per_commit(engine: Engine | type[Engine]) -> list[int]:
    """A list that fills with the rows changed by each committed transaction of ``engine``
    (or of every engine), from SQLite's own counter: it also counts DELETE ... RETURNING,
    whose cursor.rowcount is -1. Transactions that change nothing are left out."""
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
    return per_transaction


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
    hint="Expired means expires_at <= now: compare with <=, not <, and compare instants (let "
    "the UTCDateTime column convert now), not now's wall-clock time.",
    spec=("expired-boundary",),
)
def test_a_token_expiring_exactly_now_is_deleted(target: Target, files: Files) -> None:
    module = target.load()
    engine = _engine(module, files.database_url)
    second, tick = timedelta(seconds=1), timedelta(microseconds=1)
    offsets = {
        "expired-1s-ago": -second,
        "expired-1us-ago": -tick,
        "expires-exactly-now": timedelta(0),
        "expires-in-1us": tick,
        "expires-in-1s": second,
    }

    @deterministic(max_examples=12)
    @given(instant=utc_instants(resolution="second"), zone=zones(), micro=MICROSECONDS)
    @example(instant=datetime(2026, 3, 1, 19, 0, tzinfo=UTC), zone=SH, micro=0)
    def check(instant: datetime, zone: ZoneInfo, micro: int) -> None:
        now = (instant + timedelta(microseconds=micro)).astimezone(zone)
        with engine.begin() as connection:
            connection.execute(module.Token.__table__.delete())
            connection.execute(
                module.Token.__table__.insert(),
                [
                    {"token": name, "user_id": i, "expires_at": now + offset}
                    for i, (name, offset) in enumerate(offsets.items())
                ],
            )
        deleted = module.delete_expired_tokens(engine, now, 100)
        with engine.connect() as connection:
            left = sorted(connection.scalars(select(module.Token.token)))
        expect_equal(
            (deleted, left),
            (3, ["expires-in-1s", "expires-in-1us"]),
            f"(returned, tokens left) after delete_expired_tokens(engine, now={now.isoformat()})",
            "A token is expired once expires_at <= now: at its expiry instant it is no longer "
            "valid. Whole-second instants, other zones than UTC and microseconds all count: a "
            "cutoff compared as text ('...:00' < '...:00.000000') or on now's wall clock "
            "instead of the instant misses some of them.",
        )

    check()


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#token-cleanup",
    hint="Loop: select up to batch_size expired ids, delete them, commit; until none is left.",
    spec=("batches-per-transaction",),
)
def test_2000_expired_tokens_are_deleted_in_batches_of_200(target: Target, files: Files) -> None:
    module = target.load()
    now = sh(2, 3)
    engine = _engine(module, files.database_url)
    rows = [
        {"token": f"t{i:05d}", "user_id": i, "expires_at": now - timedelta(minutes=i + 1)}
        for i in range(2_000)
    ]
    rows += [
        {"token": f"active{i}", "user_id": i, "expires_at": now + timedelta(days=1)}
        for i in range(5)
    ]
    with engine.begin() as connection:
        connection.execute(module.Token.__table__.insert(), rows)

    per_transaction = _rows_per_commit(engine)
    deleted = module.delete_expired_tokens(engine, now, 200)

    expect_equal(deleted, 2_000, "delete_expired_tokens(engine, now, 200) on 2,000 expired tokens")
    expect_equal(
        len(_tokens_left(module, files.database_url)), 5, "tokens left (the 5 active ones)"
    )
    expect(
        per_transaction and max(per_transaction) <= 200 and sum(per_transaction) == 2_000,
        "With batch_size=200, each transaction must delete at most 200 rows and commit "
        f"before the next batch. Rows deleted per committed transaction: {per_transaction}."
        "\nOne DELETE of every expired row holds its locks for the whole statement: on a "
        "big table the application's own writes wait (or time out) meanwhile.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#token-cleanup",
    hint="A second call finds no expired token left: it deletes nothing and returns 0.",
    spec=("cleanup-idempotent",),
)
def test_a_second_cleanup_right_after_deletes_nothing(target: Target, files: Files) -> None:
    module = target.load()
    now = sh(2, 3)
    _seed(module, files.database_url, {f"old{i}": now - timedelta(hours=i + 1) for i in range(7)})
    engine = _engine(module, files.database_url)
    first = module.delete_expired_tokens(engine, now, 3)
    again = module.delete_expired_tokens(engine, now, 3)
    expect_equal((first, again), (7, 0), "two delete_expired_tokens(engine, now, 3) in a row")


def _within(seconds: float, call: Callable[[], object]) -> tuple[str, object]:
    """("returned", value), ("raised", error) or ("hung", None) after ``seconds``: a call
    that loops forever fails the test with a message instead of its timeout."""
    outcome: list[tuple[str, object]] = []

    def run() -> None:
        try:
            outcome.append(("returned", call()))
        except BaseException as error:  # reported to the test's thread
            outcome.append(("raised", error))

    worker = threading.Thread(target=run, daemon=True)  # left behind if it never returns
    worker.start()
    worker.join(seconds)
    return outcome[0] if outcome else ("hung", None)


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#token-cleanup",
    hint="First thing in delete_expired_tokens: if not 1 <= batch_size <= MAX_BATCH_SIZE: "
    "raise ValueError(...).",
    timeout=30,
    spec=("batch-size-checked",),
)
def test_delete_expired_tokens_rejects_a_batch_size_out_of_range(
    target: Target, files: Files
) -> None:
    module = target.load()
    now = sh(2, 3)
    expired = {f"old{i}": now - timedelta(hours=i + 1) for i in range(3)}
    _seed(module, files.database_url, expired)
    engine = _engine(module, files.database_url)
    for bad in (0, -1, 10_001, 10**20):
        how, value = _within(3.0, functools.partial(module.delete_expired_tokens, engine, now, bad))
        if isinstance(value, NotImplementedError):
            raise value
        left = len(_tokens_left(module, files.database_url))
        call = f"delete_expired_tokens(engine, now, batch_size={bad})"
        why = (
            "A batch size is a small count, 1 to MAX_BATCH_SIZE (10,000): 0 deletes nothing "
            "(or loops forever), -1 is 'no limit' to SQLite, a huge one overflows the driver. "
            "Check the range first and raise ValueError."
        )
        expect(how != "hung", f"{call} did not return within 3 s (an endless loop?). {why}")
        expect(
            how == "raised" and isinstance(value, ValueError),
            f"{call} {'raised ' + type(value).__name__ if how == 'raised' else 'returned'} "
            f"{value!r} instead of raising ValueError ({left} of 3 expired tokens left). {why}",
        )
        expect_equal(left, 3, f"expired tokens left after {call} raised", why)
    for edge in (1, 10_000):  # the range's own ends are fine
        _seed(module, files.database_url, {f"{name}-{edge}": t for name, t in expired.items()})
        expect_equal(
            module.delete_expired_tokens(engine, now, edge),
            6 if edge == 1 else 3,
            f"delete_expired_tokens(engine, now, batch_size={edge})",
            "1 and 10,000 are batch sizes like any other.",
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#token-cleanup",
    hint="cleanup_job(): now = datetime.now(UTC), delete, record a CleanupRun, log the count.",
    spec=("cleanup-job-records-run",),
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
        runs = _cleanup_runs(module, files.database_url)
    expect_equal(
        _tokens_left(module, files.database_url), ["new1"], "tokens left after cleanup_job()"
    )
    expect_equal((first, second), (3, 0), "what cleanup_job() returned, run twice in a row")
    expect_equal(
        runs,
        [(sh(2, 3), 3), (sh(2, 3), 0)],
        "CleanupRun rows (ran_at in Shanghai, deleted) after two runs at Mon 03:00",
        "Each run records one CleanupRun(ran_at=now, deleted=...): the daily report reads them.",
    )
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


def _cron_fires(hour: int, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """What CronTrigger(hour=hour, minute=0, timezone=zone) fires in [start, end)."""
    trigger = CronTrigger(hour=hour, minute=0, timezone=zone)
    fires: list[datetime] = []
    previous = None
    while True:
        upcoming = trigger.get_next_fire_time(previous, previous or start)
        if upcoming is None or upcoming >= end:
            return fires
        fires.append(upcoming)
        previous = upcoming


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#daily-jobs",
    hint="CronTrigger(hour=CLEANUP_HOUR, minute=0, timezone=scheduler.timezone), and the same "
    "with REPORT_HOUR: a trigger without timezone= uses the machine's zone.",
    timeout=30,
    spec=("cleanup-daily-03-local", "report-daily-08-local"),
)
def test_the_daily_jobs_run_at_03_00_and_08_00_in_the_configured_zone(
    target: Target, files: Files
) -> None:
    module = target.load()
    runs = iter(range(1000))

    @deterministic(max_examples=2)
    @given(start=utc_instants(resolution="minute"), zone=zones())
    @example(start=sh(2, 0, 30).astimezone(UTC), zone=SH)
    @example(start=datetime(2026, 10, 31, 20, 0, tzinfo=UTC), zone=ZoneInfo("America/New_York"))
    @example(start=datetime(2026, 10, 3, 1, 0, tzinfo=UTC), zone=ZoneInfo("Australia/Sydney"))
    def check(start: datetime, zone: ZoneInfo) -> None:
        end = start + timedelta(days=2)
        store = files.report_dir.parent / f"jobs-{next(runs)}.sqlite"
        variables = {
            **files.variables,
            "CLEANUP_TIMEZONE": zone.key,
            "CLEANUP_JOBSTORE_URL": f"sqlite:///{store}",
        }
        with environment(variables), simulate(start) as sim:
            scheduler = _start(module)
            sim.run_until(end - timedelta(microseconds=1))
            scheduler.shutdown()
        for job_id, hour in ((CLEANUP, 3), (REPORT, 8)):
            expect_fire_times(
                sim.fire_times(job_id),
                _cron_fires(hour, zone, start, end),
                what=f"job {job_id!r} for 2 days from {start.astimezone(zone):%a %Y-%m-%d %H:%M} "
                f"(CLEANUP_TIMEZONE={zone.key})",
                tz=zone,
                why="This machine runs in America/Los_Angeles: a trigger without timezone= "
                "uses it; a 24 h interval drifts by an hour across a DST change.",
            )

    check()


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#daily-jobs",
    hint="A cron trigger in the configured zone keeps 03:00 local; a 24 h interval drifts.",
    spec=("cleanup-daily-03-local",),
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
    spec=("warmup-at-start-every-10-min", "cache-active-tokens", "warm-cache-job"),
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
    spec=("report-daily-08-local", "report-counts", "report-file"),
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
    spec=("cleanup-job-raises", "alert-on-error", "error-logged"),
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
    spec=("alert-on-skipped",),
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
    spec=("fixed-ids-once",),
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
    spec=("keep-stored-next-run", "overdue-runs-misfire-policy"),
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
    spec=("alert-on-missed", "overdue-runs-misfire-policy"),
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
    spec=("overdue-runs-misfire-policy",),
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
    spec=("pause-survives-restart", "keep-stored-next-run"),
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
    spec=("new-trigger-wins",),
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
    spec=("reject-unstorable-callables", "reject-unpicklable-args", "persistable-returns-ref"),
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
            ("a bound method of a module-level class", threading.Event().is_set, ()),
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
    spec=("pause-stops-runs", "resume-next-fire-time"),
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
    spec=("run-now-through-scheduler",),
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
    spec=("reschedule-local",),
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
    spec=("remove-job-result",),
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


# -- the data functions, more closely -----------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#token-cleanup",
    hint="Check now.tzinfo / now.utcoffset() first and raise ValueError for a naive datetime.",
    spec=("naive-now-rejected",),
)
def test_a_naive_now_is_rejected(target: Target, files: Files) -> None:
    module = target.load()
    _seed(module, files.database_url, {"old": sh(1, 3)})
    engine = _engine(module, files.database_url)
    naive = datetime(2026, 3, 2, 3, 0)
    try:
        module.delete_expired_tokens(engine, naive, 100)
    except ValueError:
        pass
    except NotImplementedError:
        raise
    except Exception as error:
        fail(
            f"delete_expired_tokens(engine, {naive!r}) raised {type(error).__name__}: {error}; "
            "raise a ValueError: a naive datetime is no instant (03:00 where?)."
        )
    else:
        fail(
            f"delete_expired_tokens(engine, {naive!r}) accepted a naive datetime: it must "
            "raise ValueError (03:00 in Shanghai and 03:00 in UTC are 8 hours apart)."
        )
    expect_equal(_tokens_left(module, files.database_url), ["old"], "tokens left")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#token-cleanup",
    hint="get_engine(url): create_engine(url), then Base.metadata.create_all(engine); "
    "functools.cache returns the same engine for the same URL.",
    spec=("engine-per-url",),
)
def test_get_engine_gives_one_engine_per_url_with_the_tables(target: Target, files: Files) -> None:
    module = target.load()
    engine = module.get_engine(files.database_url)
    again = module.get_engine(files.database_url)
    expect(engine is again, "get_engine() twice with one URL must return the same Engine.")
    with sqlite3.connect(files.database_url.removeprefix("sqlite:///")) as raw:
        tables = sorted(
            r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")
        )
    expect_equal(tables, ["cleanup_runs", "tokens"], "tables in a new database after get_engine()")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#cache-warmup",
    hint="Build the new dict in a local variable, then assign TOKEN_CACHE.tokens = fresh; never "
    "clear() and refill the dict readers are using.",
    spec=("cache-swapped-whole", "cache-active-tokens"),
)
def test_warm_cache_swaps_in_a_new_dict(target: Target, files: Files) -> None:
    module = target.load()
    now = sh(2, 9)
    _seed(module, files.database_url, {"alice": sh(2, 9, 1), "at-now": now, "gone": sh(1, 9)})
    old = {"stale": 99}
    module.TOKEN_CACHE.tokens = old
    count = module.warm_cache(_engine(module, files.database_url), now)
    expect_equal(
        (count, module.TOKEN_CACHE.tokens, _local(module.TOKEN_CACHE.warmed_at)),
        (1, {"alice": 1}, now),
        "(returned, TOKEN_CACHE.tokens, TOKEN_CACHE.warmed_at) after warm_cache(engine, now)",
        "Only expires_at > now is active: the token expiring exactly now is not.",
    )
    expect_equal(
        old,
        {"stale": 99},
        "the dict a reader held before the warm-up",
        "A reader in another thread still holds the old dict: clearing and refilling it in "
        "place shows that reader an empty or half-filled cache. Assign a new dict instead.",
    )


def _report_case(
    module: ModuleType, engine: Engine, now: datetime, runs: dict[timedelta, int]
) -> dict[str, Any]:
    """Tokens expiring at now (expired) and 1 µs later (active); CleanupRun rows at now+offset."""
    tick = timedelta(microseconds=1)
    with engine.begin() as connection:
        connection.execute(module.Token.__table__.delete())
        connection.execute(module.CleanupRun.__table__.delete())
        connection.execute(
            module.Token.__table__.insert(),
            [
                {"token": "at-now", "user_id": 1, "expires_at": now},
                {"token": "in-1us", "user_id": 2, "expires_at": now + tick},
                {"token": "in-1d", "user_id": 3, "expires_at": now + timedelta(days=1)},
            ],
        )
        if runs:
            connection.execute(
                module.CleanupRun.__table__.insert(),
                [{"ran_at": now + offset, "deleted": n} for offset, n in runs.items()],
            )
    report: dict[str, Any] = module.build_daily_report(engine, now)
    return report


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#daily-report",
    hint="The window is now - 24 h < ran_at <= now: > on the left, <= on the right.",
    spec=("report-24h-window", "report-counts"),
)
def test_the_report_counts_cleanup_runs_in_the_24h_window(target: Target, files: Files) -> None:
    module = target.load()
    engine = _engine(module, files.database_url)
    day, tick = timedelta(days=1), timedelta(microseconds=1)
    runs = {-day - tick: 1, -day: 2, -day + tick: 4, -tick: 8, timedelta(0): 16, tick: 32}

    @deterministic(max_examples=10)
    @given(instant=utc_instants(resolution="second"), zone=zones(), micro=MICROSECONDS)
    @example(instant=datetime(2026, 3, 2, 0, 0, tzinfo=UTC), zone=SH, micro=0)
    def check(instant: datetime, zone: ZoneInfo, micro: int) -> None:
        now = (instant + timedelta(microseconds=micro)).astimezone(zone)
        report = _report_case(module, engine, now, runs)
        counts = {key: report.get(key) for key in COUNT_KEYS}
        expect_equal(
            counts,
            {
                "active_tokens": 2,
                "expired_tokens": 1,
                "deleted_last_24h": 4 + 8 + 16,
                "cleanup_runs_last_24h": 3,
            },
            f"the counts of build_daily_report(engine, now={now.isoformat()})",
            "CleanupRun rows at now-24h-1µs (1), now-24h (2), now-24h+1µs (4), now-1µs (8), "
            "now (16), now+1µs (32): the window now-24h < ran_at <= now holds 4, 8 and 16. "
            "Tokens: one expiring at now (expired), two later (active).",
        )

    check()


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#daily-report",
    hint="date is now.date() on now's own wall clock (now is in the configured zone), not the "
    "UTC date; generated_at is now.isoformat().",
    spec=("report-date-local",),
)
def test_the_report_date_is_the_local_date_of_now(target: Target, files: Files) -> None:
    module = target.load()
    engine = _engine(module, files.database_url)

    @deterministic(max_examples=10)
    @given(instant=utc_instants(resolution="minute"), zone=zones())
    @example(instant=datetime(2026, 3, 1, 20, 30, tzinfo=UTC), zone=SH)  # 04:30 on 2 March
    @example(instant=datetime(2026, 3, 2, 10, 0, tzinfo=UTC), zone=ZoneInfo("America/New_York"))
    def check(instant: datetime, zone: ZoneInfo) -> None:
        now = instant.astimezone(zone)
        report = _report_case(module, engine, now, {})
        expect_equal(
            (report.get("date"), report.get("generated_at")),
            (now.date().isoformat(), now.isoformat()),
            f"(date, generated_at) of the report at {now.isoformat()} ({zone.key}; "
            f"UTC date {instant.date().isoformat()})",
            "The date is the local date of now: from 00:00 to 07:59 in Shanghai the UTC date "
            "is still yesterday's.",
        )

    check()


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#daily-report",
    hint="SUM over no rows is NULL (None): func.coalesce(func.sum(...), 0).",
    spec=("report-zero-when-empty",),
)
def test_a_report_without_cleanup_runs_says_0(target: Target, files: Files) -> None:
    module = target.load()
    now = sh(2, 8)
    report = module.build_daily_report(_engine(module, files.database_url), now)
    counts = {key: report.get(key) for key in COUNT_KEYS}
    expect_equal(
        (counts, {key: type(value).__name__ for key, value in counts.items()}),
        (dict.fromkeys(COUNT_KEYS, 0), dict.fromkeys(COUNT_KEYS, "int")),
        "(counts, their types) of the report on an empty database",
        "No token and no cleanup run: every count is the int 0 (SUM over no rows is NULL).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#daily-report",
    hint="report_job(): now = datetime.now(ZoneInfo(settings.timezone)); the file name uses "
    "report['date'], the local date.",
    spec=("report-file", "report-date-local"),
)
def test_report_job_names_the_file_after_the_local_date(target: Target, files: Files) -> None:
    module = target.load()
    tokyo = {**files.variables, "CLEANUP_TIMEZONE": "Asia/Tokyo"}
    moment = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # 08:00 on Monday 2 March in Tokyo
    with environment(tokyo), simulate(moment):
        returned = module.report_job()
    written = (
        sorted(p.name for p in files.report_dir.glob("*")) if files.report_dir.exists() else []
    )
    expect_equal(
        written,
        ["report-2026-03-02.json"],
        "files in CLEANUP_REPORT_DIR after report_job() at 08:00 Tokyo (23:00 UTC on 1 March)",
        "The file is named after the local date of the configured zone, not the UTC date.",
    )
    expect_equal(Path(returned).name, "report-2026-03-02.json", "the path report_job() returned")
    report = json.loads((files.report_dir / "report-2026-03-02.json").read_text("utf-8"))
    expect_equal(
        report.get("generated_at"), "2026-03-02T08:00:00+09:00", "generated_at in the file"
    )


# -- jobs read their settings, the batch size, the alert hook -----------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#token-cleanup",
    hint="cleanup_job(): delete_expired_tokens(engine, now, settings.batch_size).",
    spec=("cleanup-job-batch-size",),
)
def test_cleanup_job_deletes_in_batches_of_cleanup_batch_size(target: Target, files: Files) -> None:
    module = target.load()
    now = sh(2, 3)
    _seed(
        module, files.database_url, {f"old{i:02d}": now - timedelta(hours=i + 1) for i in range(10)}
    )
    per_commit = _rows_per_commit(Engine)
    with environment({**files.variables, "CLEANUP_BATCH_SIZE": "3"}), simulate(now):
        deleted = module.cleanup_job()
    expect_equal(deleted, 10, "cleanup_job() with CLEANUP_BATCH_SIZE=3 and 10 expired tokens")
    expect(
        max(per_commit, default=0) <= 3,
        "With CLEANUP_BATCH_SIZE=3 each transaction of cleanup_job() may change at most 3 rows; "
        f"rows changed per commit: {per_commit}. Pass settings.batch_size, not the BATCH_SIZE "
        "default: the operator tunes it for the database.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#persistence",
    hint="Call load_settings() inside each job, when it runs: never read the settings once at "
    "import time.",
    spec=("settings-read-at-run-time",),
)
def test_jobs_read_the_settings_when_they_run(target: Target, files: Files) -> None:
    module = target.load()
    first_dir, second_dir = files.report_dir / "first", files.report_dir / "second"
    with simulate(sh(2, 8)):
        with environment({**files.variables, "CLEANUP_REPORT_DIR": str(first_dir)}):
            first = Path(module.report_job())
        with environment({**files.variables, "CLEANUP_REPORT_DIR": str(second_dir)}):
            second = Path(module.report_job())
    expect_equal(
        (first.parent, second.parent),
        (first_dir, second_dir),
        "the folders of two report_job() runs, CLEANUP_REPORT_DIR changed in between",
        "A job stored in a job store runs long after the import: it must read the settings "
        "when it runs, so a changed variable applies to the next run.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#error-handling",
    hint="log_alert: logger.critical(...) with the alert's job id, kind and message.",
    spec=("log-alert-critical",),
)
def test_log_alert_logs_at_critical(target: Target, caplog: pytest.LogCaptureFixture) -> None:
    module = target.load()
    caplog.set_level(logging.DEBUG)
    module.log_alert(module.Alert(CLEANUP, "missed", sh(2, 3), "not run: down too long"))
    lines = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if not r.name.startswith("apscheduler")
    ]
    expect(
        any(
            level == "CRITICAL"
            and CLEANUP in text
            and "missed" in text.lower()
            and "down too long" in text
            for level, text in lines
        ),
        "log_alert() must log one CRITICAL line with the job id, the kind and the message "
        f"(a pager watches CRITICAL). Logged: {lines!r}",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#error-handling",
    hint="Listen to EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES only.",
    spec=("no-alert-on-success",),
)
def test_a_successful_run_is_no_alert(target: Target, files: Files) -> None:
    module = target.load()
    alerts: list[Any] = []
    with simulate(sh(2, 2)) as sim:
        _start(module, alerts.append, keep_warmup=True)
        sim.run_until(sh(2, 3, 30))
    expect_equal(_outcomes(sim, CLEANUP), {"executed": [_label(sh(2, 3))]}, f"runs of {CLEANUP!r}")
    expect_equal(
        [(getattr(a, "job_id", "?"), getattr(a, "kind", "?")) for a in alerts],
        [],
        "alerts after a start and a successful cleanup",
        "Only failed, missed and skipped runs alert: a pager that rings for every success is "
        "soon ignored.",
    )


# -- the jobs' options --------------------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#misfire",
    hint="misfire_grace_time: warm-up 600 s (WARMUP_MINUTES * 60, not WARMUP_MINUTES), cleanup "
    "CLEANUP_GRACE_SECONDS, report None (pass it explicitly: the default is 1 s).",
    spec=("job-options",),
)
def test_each_job_has_its_documented_misfire_options(target: Target, files: Files) -> None:
    module = target.load()
    with simulate(sh(2, 9)):
        scheduler = _start(module, keep_warmup=True)
        found = {
            job.id: (job.misfire_grace_time, job.coalesce, job.max_instances)
            for job in scheduler.get_jobs()
        }
    expect_equal(
        found,
        {WARMUP: (600, True, 1), CLEANUP: (3 * 3600, True, 1), REPORT: (None, True, 1)},
        "(misfire_grace_time, coalesce, max_instances) of each job",
        "A warm-up later than one interval is pointless; a cleanup may start up to 3 h late; a "
        "late report beats none (None: no limit; without it APScheduler allows 1 s).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#misfire",
    hint="misfire_grace_time=None on the report: after any outage it still runs (once).",
    spec=("overdue-runs-misfire-policy", "report-daily-08-local"),
)
def test_a_report_overdue_for_a_day_still_runs_once(target: Target, files: Files) -> None:
    alerts: list[Any] = []
    with simulate(sh(1, 7)) as sim:
        _, second = _two_lifetimes(target, sim, sh(1, 7, 30), sh(3, 7, 30), alerts.append)
        second.remove_job(WARMUP)
        sim.run_for(timedelta(minutes=5))
    expect_equal(
        [(f.outcome, _label(f.scheduled)) for f in sim.runs(REPORT, outcome=None)],
        [("executed", _label(sh(2, 8)))],
        f"runs of {REPORT!r} (outcome, scheduled): down from Sun 07:30 to Tue 07:30",
        "Sunday's and Monday's 08:00 reports are overdue at the restart (Monday's by 23.5 h): "
        "with no grace limit they run, coalesced into one run, right away; none is missed.",
    )
    expect_equal(_alerts_of(alerts, REPORT), [], "alerts for the report")


# -- main(), and the file run as a script -------------------------------------------------------


class _UnhandledSignal(BaseException):
    """Raised by the suite's own handler: the learner's code installed none for this signal."""


class _StartWatcher(logging.Handler):
    """Collects log lines; notices the learner's own "started" line (APScheduler's "Scheduler
    started" does not count: it appears before the learner's code is ready)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.started = threading.Event()
        self.signalled_at: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.lines.append(f"{record.levelname} {record.name}: {message}")
        if not record.name.startswith("apscheduler") and "started" in message.lower():
            self.started.set()


@dataclass
class MainRun:
    """How one in-process run of main() went after a signal."""

    returned: object
    started: bool
    after_signal: list[str]


def _main_until_signal(call: Callable[[], object], sig: signal.Signals) -> MainRun:
    """Run ``call`` (main() in this, the test's main thread) and send ``sig`` to this thread
    once it logged its own "started" line (or after 8 s without one)."""
    watcher = _StartWatcher()
    root = logging.getLogger()
    root.addHandler(watcher)
    root.setLevel(logging.INFO)

    def unhandled(signum: int, frame: object) -> None:
        raise _UnhandledSignal(signum)

    previous = {s: signal.signal(s, unhandled) for s in (signal.SIGTERM, signal.SIGINT)}
    main_thread = threading.get_ident()

    done = threading.Event()

    def send() -> None:
        watcher.started.wait(8)
        watcher.signalled_at = len(watcher.lines)
        # Once is enough for a waiting main thread; repeat while it was busy (a loaded machine
        # can hold it between its "started" line and its wait), up to 15 s, well inside the
        # test's timeout, so a main that never stops fails with a message instead of a timeout.
        for _ in range(150):
            signal.pthread_kill(main_thread, sig)  # to the thread that waits, as a shell does
            if done.wait(0.1):
                return

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    returned: object
    try:
        returned = call()
    except _UnhandledSignal:
        returned = f"no handler: {sig.name} would have killed the process"
    except NotImplementedError:
        raise
    except BaseException as error:  # a learner's KeyboardInterrupt, SystemExit...
        returned = f"{type(error).__name__}: {error}"
    finally:
        done.set()
        sender.join(10)
        root.removeHandler(watcher)
        for number, handler in previous.items():
            signal.signal(number, handler)
    seen = watcher.signalled_at if watcher.signalled_at is not None else len(watcher.lines)
    return MainRun(returned, watcher.started.is_set(), watcher.lines[seen:])


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#exercises",
    hint="signal.signal(SIGTERM, handler) and signal.signal(SIGINT, handler), where the handler "
    "only puts the signal into a queue.SimpleQueue that main() waits on with get(); then "
    "shutdown(wait=True), log 'stopped', return 0.",
    timeout=30,
    spec=("main-stops-gracefully",),
)
def test_main_stops_gracefully_on_sigterm_and_on_sigint(target: Target, files: Files) -> None:
    module = target.load()
    for sig in (signal.SIGTERM, signal.SIGINT):
        store = files.report_dir.parent / f"jobs-{sig.name}.sqlite"
        variables = {**files.variables, "CLEANUP_JOBSTORE_URL": f"sqlite:///{store}"}
        with environment(variables), simulate(sh(2, 9)):
            run = _main_until_signal(module.main, sig)
            left = running_schedulers()
        expect(
            run.started,
            "main() should log a line of its own containing 'started' once the scheduler runs "
            "(APScheduler's 'Scheduler started' does not count: it comes before your jobs are "
            "registered).",
        )
        stopped = any("stopped" in line.lower() for line in run.after_signal)
        expect(
            run.returned == 0 and stopped and not left,
            f"After {sig.name}, main() must shut the scheduler down, log a line containing "
            f"'stopped' and return 0. It returned {run.returned!r}; schedulers still running: "
            f"{len(left)}; log after the signal: {run.after_signal[-8:]!r}. Kubernetes and "
            "systemd stop a service with SIGTERM, a terminal with SIGINT (Ctrl+C): handle both.",
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#persistence",
    hint="Keep the given last lines: run as a script, import this file under its own name and "
    "run that copy's main(), so the job store never holds '__main__:...'.",
    timeout=30,
    spec=("stored-refs-importable",),
)
def test_run_as_a_script_the_jobs_are_stored_under_an_importable_name(
    target: Target, files: Files
) -> None:
    target.load()  # a file that does not import fails here, with a clear message
    script = target.path()
    folder = str(script.parent)
    sys.path.insert(0, folder)  # as `python level2_data_cleanup.py` does
    try:
        with simulate(sh(2, 9)):
            run = _main_until_signal(
                lambda: runpy.run_path(str(script), run_name="__main__"), signal.SIGTERM
            )
        with sqlite3.connect(files.jobstore_file) as raw:
            refs = {
                job_id: str(pickle.loads(state).get("func"))
                for job_id, state in raw.execute("SELECT id, job_state FROM apscheduler_jobs")
            }
        origins: dict[str, str | None] = {}
        for job_id, ref in refs.items():
            try:
                spec = importlib.util.find_spec(ref.partition(":")[0])
            except (ImportError, ValueError):
                spec = None
            origins[job_id] = getattr(spec, "origin", None)
    finally:
        sys.path.remove(folder)
    expect_equal(sorted(refs), sorted([CLEANUP, REPORT, WARMUP]), "job ids in the job store")
    expect(
        all(origin and Path(origin) == script for origin in origins.values()),
        f"Run as `python {script.name}`, the job store holds the references {refs!r} "
        f"(main() returned {run.returned!r}). Another process (a second instance, a "
        f"`python -c` importing the module) must be able to import each of them from "
        f"{script.parent.name}/: '__main__:...' exists only in the process started as a "
        "script, everywhere else SQLAlchemyJobStore logs 'Unable to restore job ... removing "
        "it' and deletes the row.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#persistence",
    hint="In check_persistable, raise ValueError when the reference starts with '__main__:'.",
    spec=("reject-main-module",),
)
def test_check_persistable_rejects_a_main_module_function(target: Target) -> None:
    module = target.load()

    def job() -> None:
        pass

    job.__module__ = "__main__"
    job.__qualname__ = job.__name__ = "cronkata_probe_job"
    setattr(sys.modules["__main__"], "cronkata_probe_job", job)  # noqa: B010  resolvable here
    try:
        module.check_persistable(job)
    except ValueError as error:
        expect(str(error).strip(), "The ValueError for a __main__ function has an empty message.")
    except NotImplementedError:
        raise
    except Exception as error:
        fail(f"check_persistable() of a __main__ function raised {type(error).__name__}: {error}")
    else:
        fail(
            "check_persistable() accepted '__main__:cronkata_probe_job'. The reference resolves "
            "in the process that runs the script, and nowhere else: any other process opening "
            "the job store deletes the job. Raise ValueError."
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#exercises",
    hint="Wrap start_scheduler() in try/except (ValueError, SQLAlchemyError): log one ERROR line "
    "and return 1.",
    spec=("main-bad-settings",),
)
def test_main_returns_1_on_bad_settings_or_an_unreachable_job_store(
    target: Target, files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    module = target.load()
    caplog.set_level(logging.INFO)
    cases = {
        "CLEANUP_BATCH_SIZE=0": {"CLEANUP_BATCH_SIZE": "0"},
        "a job store in a folder that does not exist": {
            "CLEANUP_JOBSTORE_URL": f"sqlite:///{files.report_dir / 'missing' / 'jobs.sqlite'}"
        },
    }
    for what, change in cases.items():
        caplog.clear()
        with environment({**files.variables, **change}), simulate(sh(2, 9)):
            code = module.main()
        errors = [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.ERROR and not r.name.startswith(("apscheduler", "sqlalchemy"))
        ]
        expect(
            code == 1 and errors,
            f"main() with {what} returned {code!r} and logged these ERROR lines: {errors!r}. "
            "Wrong settings or an unreachable database must end with one ERROR line saying "
            "what is wrong and the exit code 1, not a traceback.",
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#persistence",
    hint="BackgroundScheduler(jobstores={'default': SQLAlchemyJobStore(url=settings.jobstore_url)"
    "}, timezone=ZoneInfo(settings.timezone)); do not start it; use the settings passed in.",
    spec=("build-scheduler",),
)
def test_build_scheduler_uses_the_settings_given_and_does_not_start(
    target: Target, files: Files
) -> None:
    module = target.load()
    own_store = files.report_dir.parent / "own-jobs.sqlite"
    settings = module.Settings(jobstore_url=f"sqlite:///{own_store}", timezone="Europe/Berlin")
    with simulate(sh(2, 9)):
        scheduler = module.build_scheduler(settings)
        running = getattr(scheduler, "running", None)
        zone = getattr(scheduler, "timezone", None)
        scheduler.start(paused=True)
        scheduler.add_job(module.cleanup_job, CronTrigger(hour=3, timezone=BERLIN), id="probe")
        scheduler.shutdown()
    expect_equal(
        (running, str(zone)),
        (False, "Europe/Berlin"),
        "(running, timezone) of build_scheduler(Settings(timezone='Europe/Berlin', ...))",
        "build_scheduler() returns the scheduler unstarted (start_scheduler() starts it, "
        "paused, after installing the listeners), in the zone of the settings passed in.",
    )
    expect(
        own_store.exists() and _stored_ids(own_store) == ["probe"],
        f"A job added to the built scheduler should be stored in {own_store.name}, the "
        "jobstore_url of the settings passed to build_scheduler() (not of the environment).",
    )
