"""Exercise data_cleanup (level 2): real jobs that survive restarts, outages and failures.

Read first: notes/07b_ap_scheduler_advanced.md (all of it; the exercise is its last section).

A token service needs three scheduled jobs, run by one APScheduler BackgroundScheduler
whose jobs are kept in a database (so a restart loses nothing):
    * "cleanup_expired_tokens": every night at 03:00 local time, delete the expired tokens
      in small batches, record the run and log how many were deleted;
    * "warm_cache": at start and then every 10 minutes, copy the active tokens into an
      in-memory cache;
    * "daily_report": every day at 08:00 local time, write a JSON report.
A job that fails, a run that is missed after an outage, or a run skipped because the
previous one still runs must each be logged and reported to an alert hook.

The settings, the tables and the small data classes below are given: the schema is not the
lesson. Keep every name, signature and constant exactly as it is (the hidden tests import
them) and replace each ``raise NotImplementedError(...)`` with your code. Useful pieces:
    sqlalchemy: create_engine, select, delete, func, Session, engine.begin()
    apscheduler: SQLAlchemyJobStore, CronTrigger, IntervalTrigger, scheduler.add_listener,
    apscheduler.events (EVENT_JOB_ERROR, EVENT_JOB_MISSED, EVENT_JOB_MAX_INSTANCES,
    JobExecutionEvent, JobSubmissionEvent), apscheduler.util (obj_to_ref, ref_to_obj)

Each promise the tests grade ends with a tag such as (#first-run-after-interval); a failing test names its tag.

Check your work:  python3 -m grader check data_cleanup   (from the repository root)
Try it by hand:   cd exercises/level2 && ../../.venv/bin/python level2_data_cleanup.py
                  (Ctrl+C stops it; `python3 -m grader setup`, once, from the repository
                  root, creates .venv)
"""

import functools
import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import DateTime, Dialect, Engine, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

CLEANUP_JOB_ID = "cleanup_expired_tokens"
WARMUP_JOB_ID = "warm_cache"
REPORT_JOB_ID = "daily_report"
CLEANUP_HOUR = 3
REPORT_HOUR = 8
WARMUP_MINUTES = 10
CLEANUP_GRACE_SECONDS = 3 * 60 * 60
BATCH_SIZE = 500
MAX_BATCH_SIZE = 10_000

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- given: settings and schema


class Settings(BaseSettings):
    """Configuration, read from ``CLEANUP_<FIELD>`` environment variables (given)."""

    model_config = SettingsConfigDict(env_prefix="CLEANUP_")

    database_url: str = "sqlite:///cleanup.sqlite"  # the tokens (any SQLAlchemy URL)
    jobstore_url: str = "sqlite:///cleanup_jobs.sqlite"  # the scheduler's job store
    timezone: str = "Asia/Shanghai"  # 03:00 and 08:00 are local times of this zone
    report_dir: str = "reports"
    batch_size: int = Field(default=BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """Reject a name that is not an IANA time zone."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value


def load_settings() -> Settings:
    """The settings from the environment (given); a bad value raises a ValueError."""
    return Settings()


class UTCDateTime(TypeDecorator[datetime]):
    """A column type (given): aware datetimes in, naive UTC stored, aware UTC out.

    SQLite keeps no UTC offset: SQLAlchemy would silently drop it, so 03:00+08:00 and
    03:00+00:00 would compare equal. This type converts to UTC before storing (also for
    values you compare a column with, e.g. ``Token.expires_at <= now``) and raises a
    ValueError for a naive datetime.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware in, naive UTC out; a naive datetime is ambiguous and rejected."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Naive UTC from the database, aware UTC to Python."""
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of the tables below (given)."""


class Token(Base):
    """An access token (given). It is expired once ``expires_at <= now``."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class CleanupRun(Base):
    """One run of the cleanup job (given): when it ran, and how many tokens it deleted."""

    __tablename__ = "cleanup_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    deleted: Mapped[int]


@dataclass
class TokenCache:
    """In-memory copy of the active tokens, token -> user id (given)."""

    tokens: dict[str, int] = field(default_factory=dict)
    warmed_at: datetime | None = None


@dataclass(frozen=True)
class Alert:
    """Something an operator must know about a job (given)."""

    job_id: str
    kind: str  # "error", "missed" or "skipped"
    run_time: datetime  # the scheduled run time concerned (aware)
    message: str


TOKEN_CACHE = TokenCache()


# ---------------------------------------------------------------- your part: the work


@functools.cache
def get_engine(url: str) -> Engine:
    """Return the Engine for ``url``, with every table of ``Base`` created; the same Engine
    for the same URL for the whole process (#engine-per-url).

    ``functools.cache`` above does the caching: an engine owns a connection pool, creating
    one per job run would waste it. It does not stop two threads that both open a new
    database at once (two jobs) from both creating the tables, the second failing with
    "table ... already exists": guard ``create_all`` with a ``threading.Lock``.
    """
    raise NotImplementedError("create_engine(url), then Base.metadata.create_all(engine)")


def delete_expired_tokens(engine: Engine, now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete every token expired at ``now``; return how many were deleted.

    * Expired means ``expires_at <= now``: a token expiring exactly at ``now`` is deleted,
      one expiring 1 microsecond later is kept. ``now`` is aware, in any zone; compare
      instants, not wall-clock times (#expired-boundary).
    * Work in batches: each transaction deletes at most ``batch_size`` rows and commits
      before the next one starts; repeat until no expired token is left. (The tests delete
      2,000 rows with batch_size=200 and count the rows deleted per commit; a last
      transaction that only finds nothing left is fine.) (#batches-per-transaction)
    * Idempotent: a second call right after deletes nothing and returns 0
      (#cleanup-idempotent).
    * A naive ``now`` raises ValueError (#naive-now-rejected).
    * ``batch_size`` is a small count, 1 to MAX_BATCH_SIZE (10,000, the range of
      CLEANUP_BATCH_SIZE); anything else (0, -1, 10_001, 10**20) raises ValueError before
      a row is touched: 0 deletes nothing (a loop "until a batch comes back short" never
      ends), -1 means "no limit" to SQLite, a huge number overflows the driver
      (#batch-size-checked).
    """
    raise NotImplementedError("loop: select up to batch_size expired ids, delete them, commit")


def warm_cache(engine: Engine, now: datetime) -> int:
    """Fill TOKEN_CACHE from the database; return the number of tokens cached.

    Afterwards ``TOKEN_CACHE.tokens`` holds exactly the tokens still active at ``now``
    (``expires_at > now``) as ``{token: user_id}``, replacing what was there, and
    ``TOKEN_CACHE.warmed_at == now`` (#cache-active-tokens). Build the new dict first, then
    assign it: readers in other threads then see either the old cache or the new one, never
    half of it; the old dict is left as it was, never cleared or refilled
    (#cache-swapped-whole).
    """
    raise NotImplementedError("select token, user_id of the active tokens into TOKEN_CACHE")


def build_daily_report(engine: Engine, now: datetime) -> dict[str, Any]:
    """The daily report at ``now`` (aware, in the configured zone), as a JSON-ready dict.

    Exactly these keys::

        {"date": "2026-03-02",                        # now.date(), in now's own zone
         "generated_at": "2026-03-02T08:00:00+08:00", # now.isoformat()
         "active_tokens": 4,          # tokens with expires_at > now
         "expired_tokens": 2,         # tokens with expires_at <= now (left for next night)
         "deleted_last_24h": 5,       # sum of CleanupRun.deleted with now-24h < ran_at <= now
         "cleanup_runs_last_24h": 1}  # number of those CleanupRun rows

    The counts follow the comments (#report-counts); "date" is the date on now's own wall
    clock, which differs from the UTC date for 8 hours of every Shanghai day
    (#report-date-local); a run exactly 24 h old is out of the window, a run exactly at
    ``now`` is in (#report-24h-window); every value is an int, 0 when nothing matches
    (``SUM`` over no rows is NULL) (#report-zero-when-empty).
    """
    raise NotImplementedError("count the tokens and sum the cleanup runs of the last 24 h")


# ---------------------------------------------------------------- your part: the jobs

# A job stored in a SQLAlchemyJobStore is saved as a "module:function" reference and
# re-imported when it runs: jobs are module-level functions without arguments that read
# what they need (settings, engine, clock) when they run.


def cleanup_job() -> int:
    """The nightly job; return the number of tokens deleted.

    Read the settings (``load_settings()``), get the engine of ``settings.database_url``
    with ``get_engine``, take ``now = datetime.now(UTC)``, call the module-level
    ``delete_expired_tokens(engine, now, settings.batch_size)`` (the tests replace it to
    make a run fail), add a ``CleanupRun(ran_at=now, deleted=...)`` row, and log one INFO
    line containing the number of deleted tokens (#cleanup-job-records-run). The batch size
    is ``settings.batch_size`` (CLEANUP_BATCH_SIZE), not the BATCH_SIZE default
    (#cleanup-job-batch-size).

    Every job reads the settings when it runs, never once at import: a changed
    CLEANUP_* variable applies to the next run (#settings-read-at-run-time).

    Never catch exceptions here: a failure must reach APScheduler, which emits
    EVENT_JOB_ERROR for your listener (see ``install_listeners``) (#cleanup-job-raises).
    """
    raise NotImplementedError("settings, engine, now in UTC, delete, record the run, log")


def warm_cache_job() -> int:
    """The warm-up job: ``warm_cache`` on the configured database at ``datetime.now(UTC)``;
    log one INFO line with the count and return it (#warm-cache-job)."""
    raise NotImplementedError("warm_cache(get_engine(...), datetime.now(UTC))")


def report_job() -> Path:
    """The daily job: write the report as JSON; return the file's path.

    ``now`` is ``datetime.now(ZoneInfo(settings.timezone))``. The file is
    ``<settings.report_dir>/report-<report["date"]>.json`` (create the folder if needed),
    e.g. ``reports/report-2026-03-02.json``, holding ``build_daily_report(engine, now)``
    (#report-file).
    """
    raise NotImplementedError("build_daily_report, then write report-<date>.json")


# ---------------------------------------------------------------- your part: failures


def log_alert(alert: Alert) -> None:
    """The default alert hook: log the alert, with its job id, kind and message, at
    CRITICAL level (in production: a pager) (#log-alert-critical)."""
    raise NotImplementedError("logger.critical(...) with the alert's fields")


def install_listeners(scheduler: BaseScheduler, alert: Callable[[Alert], None] = log_alert) -> None:
    """Add one listener to ``scheduler`` for EVENT_JOB_ERROR, EVENT_JOB_MISSED and
    EVENT_JOB_MAX_INSTANCES that calls ``alert`` once per event with an ``Alert``:

    * error (the job raised): ``kind="error"``, ``run_time=event.scheduled_run_time``, a
      message containing the exception (``repr(event.exception)``) (#alert-on-error); also
      log one ERROR line containing the job id and the exception (#error-logged);
    * missed (too late after an outage, beyond the job's grace): ``kind="missed"``,
      ``run_time=event.scheduled_run_time``; log a WARNING (#alert-on-missed);
    * skipped (max_instances reached: the previous run still runs): ``kind="skipped"``,
      ``run_time=event.scheduled_run_times[0]``; log a WARNING. Careful: this event is a
      JobSubmissionEvent, it has no ``.exception`` and no ``.scheduled_run_time``
      (#alert-on-skipped).
    A run that succeeds is no alert (#no-alert-on-success).
    """
    raise NotImplementedError("scheduler.add_listener(on_event, EVENT_JOB_ERROR | ...)")


# ---------------------------------------------------------------- your part: persistence


def check_persistable(job_func: Callable[..., Any], args: Sequence[Any] = ()) -> str:
    """Return the "module:function" reference under which a job store keeps ``job_func``
    (#persistable-returns-ref).

    Raise ValueError, with a message saying what to use instead, when a persistent job
    store could not keep the job, whatever store the scheduler uses right now (so the
    mistake shows in development, not only in production):
      * ``job_func`` is a lambda, a nested function, a functools.partial or a bound method
        (only a module-level function can be found again from its reference: the
        reference must lead back to the very same object) (#reject-unstorable-callables);
      * the reference names the module ``__main__`` (a file run as a script): no other
        process can import it, and a SQLAlchemyJobStore that cannot restore a job logs
        "Unable to restore job ... removing it" and deletes its row
        (#reject-main-module);
      * ``args`` cannot be pickled (an open Session, an Engine, a lock...): pass ids
        (#reject-unpicklable-args).
    """
    raise NotImplementedError("obj_to_ref, ref_to_obj(ref) is job_func, pickle.dumps(args)")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add (or update) the three jobs, with triggers in ``scheduler.timezone``.

    Every job: fixed id, its module-level function (checked with ``check_persistable``),
    ``replace_existing=True``: each job exists once, also after restarts (#fixed-ids-once);
    ``coalesce=True``, ``max_instances=1``, and (#job-options):
      * WARMUP_JOB_ID: ``warm_cache_job`` every WARMUP_MINUTES minutes, first run now
        (``next_run_time=datetime.now(zone)``) at every start; misfire grace 10 minutes
        (600 s) (#warmup-at-start-every-10-min);
      * CLEANUP_JOB_ID: ``cleanup_job`` daily at CLEANUP_HOUR:00 local time, DST or not;
        misfire grace CLEANUP_GRACE_SECONDS (3 h) (#cleanup-daily-03-local);
      * REPORT_JOB_ID: ``report_job`` daily at REPORT_HOUR:00 local time; no grace limit
        (``misfire_grace_time=None``) (#report-daily-08-local).

    It is called on a started, paused scheduler, so it sees the jobs already in the store.
    For the cleanup and the report, when the store already holds the job with the same
    trigger (compare ``repr(trigger)``), keep the stored ``next_run_time``: a run that
    came due while the service was down, or a pause (``None``), survives the restart
    (#keep-stored-next-run). ``replace_existing=True`` alone would recompute it from now
    and forget both. When the trigger differs (a new release changed the schedule), the
    code's version wins (#new-trigger-wins).
    """
    raise NotImplementedError("three add_job calls; keep the stored next_run_time if unchanged")


def build_scheduler(settings: Settings | None = None) -> BackgroundScheduler:
    """Return a BackgroundScheduler, NOT started: job store
    ``SQLAlchemyJobStore(url=settings.jobstore_url)``, ``timezone=ZoneInfo(settings.timezone)``.
    ``settings`` defaults to ``load_settings()`` (#build-scheduler)."""
    raise NotImplementedError("BackgroundScheduler(jobstores=..., timezone=...)")


def start_scheduler(alert: Callable[[Alert], None] = log_alert) -> BackgroundScheduler:
    """Return the running scheduler, in this order: ``build_scheduler()``,
    ``install_listeners(scheduler, alert)``, ``scheduler.start(paused=True)``,
    ``register_jobs(scheduler)``, ``scheduler.resume()``. After the resume, overdue runs
    meet their misfire policy: run (coalesced: once, however many were due) within grace,
    reported missed beyond (#overdue-runs-misfire-policy)."""
    raise NotImplementedError("build, listeners, start paused, register, resume")


# ---------------------------------------------------------------- your part: job management


def pause_job(scheduler: BaseScheduler, job_id: str) -> None:
    """Stop running ``job_id`` until it is resumed (#pause-stops-runs); the pause is stored:
    it survives a restart (#pause-survives-restart)."""
    raise NotImplementedError("scheduler.pause_job")


def resume_job(scheduler: BaseScheduler, job_id: str) -> datetime | None:
    """Resume ``job_id``; return its new next run time: the trigger's next fire time after
    now (runs that fell in the pause are not made up), or None if it has none
    (#resume-next-fire-time)."""
    raise NotImplementedError("scheduler.resume_job")


def remove_job(scheduler: BaseScheduler, job_id: str) -> bool:
    """Remove ``job_id``; return True, or False (no exception) if there is no such job
    (#remove-job-result)."""
    raise NotImplementedError("scheduler.remove_job, unless the job is not there")


def reschedule_daily(scheduler: BaseScheduler, job_id: str, hour: int, minute: int = 0) -> datetime:
    """Make ``job_id`` run daily at hour:minute in the scheduler's zone (not the machine's);
    return its new next run time (#reschedule-local)."""
    raise NotImplementedError("scheduler.reschedule_job(job_id, trigger=CronTrigger(...))")


def run_job_now(scheduler: BaseScheduler, job_id: str) -> None:
    """Run ``job_id`` as soon as possible, through the scheduler (so max_instances, the
    listeners and the alerts apply), without changing its trigger: for a cron job such as
    the cleanup, the run after it is the trigger's usual next fire time
    (#run-now-through-scheduler). (An interval job counts its next interval from this run.)"""
    raise NotImplementedError("scheduler.modify_job(job_id, next_run_time=now)")


def main() -> int:
    """Run the service until SIGTERM or SIGINT, then stop gracefully; return the exit code.

    Configure logging (INFO), install handlers for SIGTERM and SIGINT that only hand the
    request to the main thread (``requests.put(signum)`` on a ``queue.SimpleQueue``; a
    ``threading.Event`` can hang the process: its ``set()`` takes a lock the interrupted
    ``wait()`` may hold), ``start_scheduler()``, log a line of your own containing
    "started" (APScheduler's "Scheduler started" does not count), wait for the request
    (``requests.get()``), ``shutdown(wait=True)``, log a line containing "stopped", return
    0; on SIGTERM and on SIGINT alike (#main-stops-gracefully). If the settings are wrong (a ValueError) or the
    job store's database cannot be opened (a SQLAlchemyError), log one ERROR line and
    return 1, without a traceback (#main-bad-settings).

    Run as a script, this file is the module ``__main__``; the given lines at the end
    import it under its own name and run that copy's ``main()``, so the jobs are stored as
    "level2_data_cleanup:cleanup_job", a reference any other process can import
    (#stored-refs-importable).
    """
    raise NotImplementedError("the level 1 standalone pattern, around start_scheduler()")


if __name__ == "__main__":
    # Given. Run as a script this file is the module "__main__": its jobs would be stored
    # as "__main__:cleanup_job", which no other process can import (SQLAlchemyJobStore
    # deletes what it cannot restore). Run the copy imported under the file's own name.
    raise SystemExit(importlib.import_module(Path(__file__).stem).main())
