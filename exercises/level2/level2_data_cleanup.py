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

Check your work:  pytest exercises/level2
Try it by hand:   cd exercises/level2 && python level2_data_cleanup.py   (Ctrl+C stops it)
"""

import functools
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

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- given: settings and schema


class Settings(BaseSettings):
    """Configuration, read from ``CLEANUP_<FIELD>`` environment variables (given)."""

    model_config = SettingsConfigDict(env_prefix="CLEANUP_")

    database_url: str = "sqlite:///cleanup.sqlite"  # the tokens (any SQLAlchemy URL)
    jobstore_url: str = "sqlite:///cleanup_jobs.sqlite"  # the scheduler's job store
    timezone: str = "Asia/Shanghai"  # 03:00 and 08:00 are local times of this zone
    report_dir: str = "reports"
    batch_size: int = Field(default=BATCH_SIZE, ge=1, le=10_000)

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
    """Return the Engine for ``url``, with every table of ``Base`` created.

    One engine per URL for the whole process (``functools.cache`` above does the caching):
    an engine owns a connection pool, creating one per job run would waste it.
    """
    raise NotImplementedError("create_engine(url), then Base.metadata.create_all(engine)")


def delete_expired_tokens(engine: Engine, now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete every token expired at ``now``; return how many were deleted.

    * Expired means ``expires_at <= now``: a token expiring exactly at ``now`` is deleted,
      one expiring 1 microsecond later is kept. ``now`` is aware, in any zone.
    * Work in batches: each transaction deletes at most ``batch_size`` rows and commits
      before the next one starts; repeat until no expired token is left. (The tests delete
      10,000 rows with batch_size=1000 and count the rows deleted per commit.)
    * Idempotent: a second call right after deletes nothing and returns 0.
    * A naive ``now`` raises ValueError.
    """
    raise NotImplementedError("loop: select up to batch_size expired ids, delete them, commit")


def warm_cache(engine: Engine, now: datetime) -> int:
    """Fill TOKEN_CACHE from the database; return the number of tokens cached.

    Afterwards ``TOKEN_CACHE.tokens`` holds exactly the tokens still active at ``now``
    (``expires_at > now``) as ``{token: user_id}``, replacing what was there, and
    ``TOKEN_CACHE.warmed_at == now``. Build the new dict first, then assign it: readers in
    other threads then see either the old cache or the new one, never half of it.
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
    line containing the number of deleted tokens.

    Never catch exceptions here: a failure must reach APScheduler, which emits
    EVENT_JOB_ERROR for your listener (see ``install_listeners``).
    """
    raise NotImplementedError("settings, engine, now in UTC, delete, record the run, log")


def warm_cache_job() -> int:
    """The warm-up job: ``warm_cache`` on the configured database at ``datetime.now(UTC)``;
    log one INFO line with the count and return it."""
    raise NotImplementedError("warm_cache(get_engine(...), datetime.now(UTC))")


def report_job() -> Path:
    """The daily job: write the report as JSON; return the file's path.

    ``now`` is ``datetime.now(ZoneInfo(settings.timezone))``. The file is
    ``<settings.report_dir>/report-<report["date"]>.json`` (create the folder if needed),
    e.g. ``reports/report-2026-03-02.json``, holding ``build_daily_report(engine, now)``.
    """
    raise NotImplementedError("build_daily_report, then write report-<date>.json")


# ---------------------------------------------------------------- your part: failures


def log_alert(alert: Alert) -> None:
    """The default alert hook: log the alert at CRITICAL level (in production: a pager)."""
    raise NotImplementedError("logger.critical(...) with the alert's fields")


def install_listeners(scheduler: BaseScheduler, alert: Callable[[Alert], None] = log_alert) -> None:
    """Add one listener to ``scheduler`` for EVENT_JOB_ERROR, EVENT_JOB_MISSED and
    EVENT_JOB_MAX_INSTANCES that calls ``alert`` once per event with an ``Alert``:

    * error (the job raised): ``kind="error"``, ``run_time=event.scheduled_run_time``, a
      message containing the exception (``repr(event.exception)``); also log one ERROR line
      containing the job id and the exception;
    * missed (too late after an outage, beyond the job's grace): ``kind="missed"``,
      ``run_time=event.scheduled_run_time``; log a WARNING;
    * skipped (max_instances reached: the previous run still runs): ``kind="skipped"``,
      ``run_time=event.scheduled_run_times[0]``; log a WARNING. Careful: this event is a
      JobSubmissionEvent, it has no ``.exception`` and no ``.scheduled_run_time``.
    """
    raise NotImplementedError("scheduler.add_listener(on_event, EVENT_JOB_ERROR | ...)")


# ---------------------------------------------------------------- your part: persistence


def check_persistable(job_func: Callable[..., Any], args: Sequence[Any] = ()) -> str:
    """Return the "module:function" reference under which a job store keeps ``job_func``.

    Raise ValueError, with a message saying what to use instead, when a persistent job
    store could not keep the job, whatever store the scheduler uses right now (so the
    mistake shows in development, not only in production):
      * ``job_func`` is a lambda, a nested function, a functools.partial or a bound method
        (only a module-level function can be found again from its reference: the
        reference must lead back to the very same object);
      * ``args`` cannot be pickled (an open Session, an Engine, a lock...): pass ids.
    """
    raise NotImplementedError("obj_to_ref, ref_to_obj(ref) is job_func, pickle.dumps(args)")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add (or update) the three jobs, with triggers in ``scheduler.timezone``.

    Every job: fixed id, its module-level function (checked with ``check_persistable``),
    ``replace_existing=True``, ``coalesce=True``, ``max_instances=1``, and:
      * WARMUP_JOB_ID: ``warm_cache_job`` every WARMUP_MINUTES minutes, first run now
        (``next_run_time=datetime.now(zone)``) at every start; misfire grace 10 minutes;
      * CLEANUP_JOB_ID: ``cleanup_job`` daily at CLEANUP_HOUR:00 local time; misfire
        grace CLEANUP_GRACE_SECONDS (3 h);
      * REPORT_JOB_ID: ``report_job`` daily at REPORT_HOUR:00 local time; no grace limit
        (``misfire_grace_time=None``).

    It is called on a started, paused scheduler, so it sees the jobs already in the store.
    For the cleanup and the report, when the store already holds the job with the same
    trigger (compare ``repr(trigger)``), keep the stored ``next_run_time``: a run that
    came due while the service was down, or a pause (``None``), survives the restart.
    ``replace_existing=True`` alone would recompute it from now and forget both. When the
    trigger differs (a new release changed the schedule), the code's version wins.
    """
    raise NotImplementedError("three add_job calls; keep the stored next_run_time if unchanged")


def build_scheduler(settings: Settings | None = None) -> BackgroundScheduler:
    """Return a BackgroundScheduler, NOT started: job store
    ``SQLAlchemyJobStore(url=settings.jobstore_url)``, ``timezone=ZoneInfo(settings.timezone)``.
    ``settings`` defaults to ``load_settings()``."""
    raise NotImplementedError("BackgroundScheduler(jobstores=..., timezone=...)")


def start_scheduler(alert: Callable[[Alert], None] = log_alert) -> BackgroundScheduler:
    """Return the running scheduler, in this order: ``build_scheduler()``,
    ``install_listeners(scheduler, alert)``, ``scheduler.start(paused=True)``,
    ``register_jobs(scheduler)``, ``scheduler.resume()``. After the resume, overdue runs
    meet their misfire policy: run (coalesced) within grace, reported missed beyond."""
    raise NotImplementedError("build, listeners, start paused, register, resume")


# ---------------------------------------------------------------- your part: job management


def pause_job(scheduler: BaseScheduler, job_id: str) -> None:
    """Stop running ``job_id`` until it is resumed (stored: it survives a restart)."""
    raise NotImplementedError("scheduler.pause_job")


def resume_job(scheduler: BaseScheduler, job_id: str) -> datetime | None:
    """Resume ``job_id``; return its new next run time: the trigger's next fire time after
    now (runs that fell in the pause are not made up), or None if it has none."""
    raise NotImplementedError("scheduler.resume_job")


def remove_job(scheduler: BaseScheduler, job_id: str) -> bool:
    """Remove ``job_id``; return True, or False (no exception) if there is no such job."""
    raise NotImplementedError("scheduler.remove_job, unless the job is not there")


def reschedule_daily(scheduler: BaseScheduler, job_id: str, hour: int, minute: int = 0) -> datetime:
    """Make ``job_id`` run daily at hour:minute in the scheduler's zone (not the machine's);
    return its new next run time."""
    raise NotImplementedError("scheduler.reschedule_job(job_id, trigger=CronTrigger(...))")


def run_job_now(scheduler: BaseScheduler, job_id: str) -> None:
    """Run ``job_id`` as soon as possible, through the scheduler (so max_instances, the
    listeners and the alerts apply), without changing its schedule: after this run, the
    next one is the trigger's usual next fire time."""
    raise NotImplementedError("scheduler.modify_job(job_id, next_run_time=now)")


def main() -> int:
    """Run the service until SIGTERM or SIGINT, then stop gracefully; return the exit code.

    Configure logging (INFO), install handlers for SIGTERM and SIGINT that only set a
    ``threading.Event``, ``start_scheduler()`` (log the error and return 1 if the settings
    or the database are wrong), log a line containing "started", wait for the event,
    ``shutdown(wait=True)``, log a line containing "stopped", return 0.
    """
    raise NotImplementedError("the level 1 standalone pattern, around start_scheduler()")


if __name__ == "__main__":
    raise SystemExit(main())
