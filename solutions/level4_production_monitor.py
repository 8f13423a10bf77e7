"""Level 4 reference solution: a production monitor for scheduled jobs, with an admin API and page.

What it teaches (notes/07e_best_practices.md):
    * run history in SQL (SQLAlchemy 2): one row per run, kept after the job is deleted,
      pruned by age and per job, indexed so that the newest 50 of a million rows come back
      at once;
    * retries per job with exponential backoff, a cap and testable jitter; each retry is a
      run of its own, and a retry never piles onto the next scheduled run;
    * alerts without noise: an incident opens once (``failing`` after N consecutive
      failures, ``late`` when a fire time passed by more than a grace without a run: a dead
      man's switch), reminds at most every so often, resolves once; paused jobs never alert;
    * Prometheus metrics (prometheus-client, one registry per app, bounded labels);
    * an admin API (FastAPI, JSON, OpenAPI): jobs created, changed (through
      ``reschedule_job``, so the next run time is recomputed), paused, resumed, run now and
      deleted at runtime; callables only from a registry; every client error a 4xx that
      changes nothing; viewer and admin tokens; a small HTML page at /admin;
    * an injectable clock, notifier, random source and a synchronous executor, so that
      virtual time drives all of it (the course's hidden suite does).

Run it (with the course's venv: `python3 -m grader setup`, once, from the repository root,
creates .venv; the history goes to monitor.sqlite in the current folder)::

    cd solutions && MONITOR_ADMIN_TOKEN=admin-secret-token \\
        MONITOR_VIEWER_TOKEN=viewer-secret-token MONITOR_DEMO_JOBS=true \\
        ../.venv/bin/uvicorn --factory level4_production_monitor:create_app --port 8000
    curl localhost:8000/healthz
    curl -H 'Authorization: Bearer viewer-secret-token' localhost:8000/api/jobs
    curl -X POST -H 'Authorization: Bearer admin-secret-token' localhost:8000/api/jobs/flaky/run
    curl -u viewer:viewer-secret-token localhost:8000/metrics

and open http://localhost:8000/admin: it asks for a token (viewer: read only; admin: the
buttons work). One process only: ``--workers 2`` would run every job twice (level 3).
With ``--factory`` uvicorn calls ``create_app()`` as it starts: importing the module builds
nothing (no settings read, no database, no app), so tests and tools import it for free.

Settings come from ``MONITOR_*`` variables (see `Settings`): ``MONITOR_DATABASE_URL`` (any
SQLAlchemy URL, e.g. ``postgresql+psycopg://user:password@127.0.0.1:5432/app``),
``MONITOR_TIMEZONE``, ``MONITOR_READ_ONLY``, ``MONITOR_METRICS_PUBLIC``,
``MONITOR_HISTORY_MAX_AGE_SECONDS``, ``MONITOR_HISTORY_MAX_RUNS_PER_JOB``,
``MONITOR_ALERT_REMINDER_SECONDS``, ``MONITOR_EXECUTOR`` (``threads`` or ``sync``).

The admin page and its login: a browser cannot send a bearer header when it first opens a
URL, so ``GET /admin`` without credentials answers 401 (as every protected route does) with
a login form as its body and no data. The form keeps the token in ``sessionStorage`` (gone
when the tab closes, never in a cookie) and loads the page with ``fetch`` and an
``Authorization: Bearer`` header; every button calls the API the same way. No cookie, so
no CSRF: a page of another site cannot make the browser send the token. Basic auth
(user ``admin`` or ``viewer``, the token as password) is accepted too, for curl; a
mutation whose ``Origin`` header names another host is refused (403), in case a browser
keeps Basic credentials. The 401 of /admin challenges with ``Bearer`` only, so that the
browser shows the form rather than its own Basic dialog.

Where this departs from the proposed contract (shared/research/admin-api.md), and why:
    * ``/metrics``, ``/healthz`` and ``/admin`` sit at the root, the API under ``/api``:
      where scrapers, probes and people look for them.
    * no ``date`` trigger: a date job vanishes after its one run (APScheduler removes it),
      which clashes with retries, alerts and statistics that belong to a live job. One-off
      work is ``POST /api/jobs/{id}/run`` on a job; ``{"type": "date"}`` is a 422.
    * retry ``jitter_seconds`` is added (uniformly in [0, jitter)) before the cap, so a delay
      never exceeds ``max_backoff_seconds``; with jitter 0 the delays are exact.
    * ``scheduler_alerts_open`` is labelled by ``kind`` (failing, late) and
      ``scheduler_notifications_sent_total`` by ``event`` (firing, reminder, resolved).
    * pausing (or deleting) a job resolves its open incidents (resolution ``paused`` or
      ``deleted``, with the one resolved notification): a paused job never alerts.
    * lists are plain JSON arrays (no total: counting a million rows per page is slow).
    * jobs live in memory (the seeded demo jobs come back at a restart); history, alerts
      and the per-job statistics (computed from the history) are in SQL and survive.
    * the alert checks and the retention run as internal jobs of the same scheduler
      (ids starting with ``__``, never listed): if the scheduler dies they stop too, so
      watch it from outside as well (``/healthz``, the staleness of
      ``scheduler_job_next_run_timestamp_seconds``).
"""

from __future__ import annotations

import hmac
import inspect
import itertools
import json
import logging
import random
import re
import threading
import time
import traceback
from base64 import b64decode
from collections import Counter as Tally
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.executors.debug import DebugExecutor
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBasic, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as generate_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

logger = logging.getLogger("level4_production_monitor")

API_PREFIX = "/api"
INTERNAL_PREFIX = "__"  # ids of the monitor's own scheduler jobs; never a valid job id
RETRY_PREFIX = "__retry__:"
ALERTS_JOB_ID = "__alerts__"
RETENTION_JOB_ID = "__retention__"
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
TASK_NAME_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
MAX_LIMIT = 500
MAX_OFFSET = 1_000_000_000
MAX_INTERVAL_SECONDS = 366 * 24 * 3600
MAX_ARGUMENTS_BYTES = 10_000
MAX_ERROR_MESSAGE = 2_000
MAX_TRACEBACK = 10_000
REALM = "cronkata"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0)

RunStatus = Literal["running", "success", "failure", "missed", "skipped"]
RunTrigger = Literal["scheduled", "manual", "retry"]
Health = Literal["ok", "late", "failing", "paused"]
AlertKind = Literal["failing", "late"]
Role = Literal["viewer", "admin"]
Clock = Callable[[], datetime]
Notifier = Callable[["Notification"], None]


# -- settings -----------------------------------------------------------------------------


class Settings(BaseSettings):
    """Configuration, read from ``MONITOR_<FIELD>`` environment variables.

    No token set means no credentials are accepted: every protected route answers 401
    (a warning is logged at start). Tokens are at least 8 characters and must differ.
    """

    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore")

    database_url: str = "sqlite:///monitor.sqlite"  # run history and alerts
    timezone: str = "UTC"  # the scheduler's zone; cron triggers default to it
    admin_token: SecretStr | None = None  # may read and change everything
    viewer_token: SecretStr | None = None  # may only read (GET)
    read_only: bool = False  # 403 on every mutation, even for the admin
    metrics_public: bool = False  # /metrics without credentials
    executor: Literal["threads", "sync"] = "threads"  # sync: jobs run in the caller's thread
    max_workers: int = Field(default=4, ge=1, le=64)
    max_jobs: int = Field(default=500, ge=1, le=10_000)  # bounds the metrics' labels too
    history_max_age_seconds: int = Field(default=30 * 24 * 3600, ge=1)
    history_max_runs_per_job: int = Field(default=10_000, ge=1)
    retention_interval_seconds: int = Field(default=3600, ge=0)  # 0: no automatic pruning
    alert_check_interval_seconds: int = Field(default=15, ge=0)  # 0: only check_alerts()
    alert_reminder_seconds: int | None = Field(default=None, ge=1)  # None: no reminders
    default_failing_after: int = Field(default=3, ge=1, le=1000)
    default_late_after_seconds: int = Field(default=60, ge=0, le=MAX_INTERVAL_SECONDS)
    demo_jobs: bool = False  # add the demo jobs (heartbeat, flaky) at start

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """Reject a name that is not an IANA time zone."""
        _zone(value)
        return value

    @field_validator("admin_token", "viewer_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty variable means "not set"; a set token has at least 8 characters."""
        if value is None or value.get_secret_value() == "":
            return None
        if len(value.get_secret_value()) < 8:
            raise ValueError("a token needs at least 8 characters")
        return value

    @model_validator(mode="after")
    def _distinct_tokens(self) -> Self:
        """The same token for both roles would make every viewer an admin."""
        if (
            self.admin_token is not None
            and self.viewer_token is not None
            and self.admin_token.get_secret_value() == self.viewer_token.get_secret_value()
        ):
            raise ValueError("admin_token and viewer_token must differ")
        return self


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: give an aware datetime")
    return moment.astimezone(UTC)


# -- task registry ------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A callable that jobs may run, under a registry name such as ``demo.flaky``."""

    name: str
    func: Callable[..., Any]
    description: str = ""


class TaskRegistry:
    """The only callables jobs can reference: by name, never by import path.

    Names match ``TASK_NAME_PATTERN`` (lower-case dotted words, e.g. ``reports.daily``), so
    an import path such as ``os:system`` can never name a task.
    """

    def __init__(self, tasks: Iterable[Task] = ()) -> None:
        self._tasks: dict[str, Task] = {}
        for task in tasks:
            self.register(task.name, task.func, description=task.description)

    def register(
        self, name: str, func: Callable[..., Any], *, description: str | None = None
    ) -> Callable[..., Any]:
        """Register ``func`` under ``name`` (ValueError for a bad or taken name); returns it."""
        if not re.fullmatch(TASK_NAME_PATTERN, name):
            raise ValueError(f"task name {name!r} does not match {TASK_NAME_PATTERN}")
        if name in self._tasks:
            raise ValueError(f"task {name!r} is registered already")
        doc = inspect.getdoc(func) or ""
        self._tasks[name] = Task(name, func, description or doc.partition("\n")[0])
        return func

    def get(self, name: str) -> Task | None:
        """The task named ``name``, or None."""
        return self._tasks.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[Task]:
        """The tasks, sorted by name."""
        return iter(sorted(self._tasks.values(), key=lambda task: task.name))


def heartbeat() -> str:
    """Log one line: the scheduler is alive."""
    logger.info("heartbeat")
    return "ok"


def flaky(failure_rate: float = 0.3) -> str:
    """Fail (RuntimeError) with probability ``failure_rate``, else succeed: for demos."""
    if random.random() < failure_rate:
        raise RuntimeError(f"simulated failure (failure_rate={failure_rate})")
    return "ok"


def always_fail(message: str = "this task always fails") -> None:
    """Raise RuntimeError(message): to watch retries and alerts."""
    raise RuntimeError(message)


def sleep(seconds: float = 1.0) -> str:
    """Sleep for ``seconds`` (at most 60, real time): to watch max_instances."""
    time.sleep(max(0.0, min(float(seconds), 60.0)))
    return "ok"


def demo_tasks() -> TaskRegistry:
    """A new registry with the demo tasks: ``demo.heartbeat``, ``demo.flaky``,
    ``demo.fail`` and ``demo.sleep``."""
    return TaskRegistry(
        [
            Task("demo.heartbeat", heartbeat, "Log one line: the scheduler is alive."),
            Task("demo.flaky", flaky, "Fail with probability failure_rate (default 0.3)."),
            Task("demo.fail", always_fail, "Always raise RuntimeError(message)."),
            Task("demo.sleep", sleep, "Sleep for `seconds` (at most 60)."),
        ]
    )


# -- request and response models ----------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", strict=True)


class IntervalSpec(BaseModel):
    """Every ``seconds`` seconds (1 to 366 days), counted from when it was (re)scheduled."""

    model_config = _STRICT
    type: Literal["interval"]
    seconds: int = Field(ge=1, le=MAX_INTERVAL_SECONDS)


class CronSpec(BaseModel):
    """A 5-field crontab expression (minute hour day month day-of-week), in ``timezone``
    (an IANA name; null: the scheduler's zone)."""

    model_config = _STRICT
    type: Literal["cron"]
    expression: str = Field(min_length=1, max_length=100)
    timezone: str | None = Field(default=None, max_length=64)


TriggerSpec = Annotated[IntervalSpec | CronSpec, Field(discriminator="type")]


class RetryPolicy(BaseModel):
    """How a failed run is retried. ``max_attempts`` counts the first run: 1 means no retry.

    The delay before attempt ``n + 1``, after attempt ``n`` failed, is
    ``min(max_backoff_seconds, backoff_seconds * factor ** (n - 1) + jitter_seconds * r)``
    with ``r`` drawn from the monitor's random source in [0, 1).
    """

    model_config = _STRICT
    max_attempts: int = Field(default=1, ge=1, le=20)
    backoff_seconds: float = Field(default=10.0, gt=0, le=86_400)
    factor: float = Field(default=2.0, ge=1, le=10)
    max_backoff_seconds: float = Field(default=600.0, gt=0, le=86_400)
    jitter_seconds: float = Field(default=0.0, ge=0, le=3_600)

    @model_validator(mode="after")
    def _cap_above_base(self) -> Self:
        """A cap below the first delay is a mistake, not a policy."""
        if self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError("max_backoff_seconds must be >= backoff_seconds")
        return self


class AlertPolicy(BaseModel):
    """When a job alerts: ``failing`` once ``failing_after`` runs in a row failed; ``late``
    once a fire time passed by more than ``late_after_seconds`` without a run starting.
    Null for a field: the settings' default."""

    model_config = _STRICT
    failing_after: int | None = Field(default=None, ge=1, le=1000)
    late_after_seconds: int | None = Field(default=None, ge=0, le=MAX_INTERVAL_SECONDS)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class JobCreate(BaseModel):
    """The body of ``POST /api/jobs``: a job that runs a registered task on a trigger.

    ``id`` matches ``JOB_ID_PATTERN`` (1-64 characters, letters, digits, ``_ . -``, not
    starting with ``_ . -``). ``task`` is a name of the task registry (``GET /api/tasks``);
    ``args``/``kwargs`` are JSON values (at most 10,000 bytes together) that must bind to the
    task's signature. Unknown fields are a 422.
    """

    model_config = _STRICT
    id: str = Field(pattern=JOB_ID_PATTERN)
    name: str | None = Field(default=None, max_length=200)
    task: str = Field(max_length=200)
    args: list[JsonValue] = Field(default_factory=list)
    kwargs: dict[str, JsonValue] = Field(default_factory=dict)
    trigger: TriggerSpec
    max_instances: int = Field(default=1, ge=1, le=10)
    misfire_grace_time: int | None = Field(default=30, ge=1, le=MAX_INTERVAL_SECONDS)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    alerts: AlertPolicy = Field(default_factory=AlertPolicy)
    paused: bool = False  # create it paused (no next run time)

    @field_validator("name")
    @classmethod
    def _clean_name(cls, value: str | None) -> str | None:
        """No NUL characters (PostgreSQL rejects them)."""
        return None if value is None else _no_nul(value)


class JobPatch(BaseModel):
    """The body of ``PATCH /api/jobs/{id}``: the fields to replace, all optional.

    Each field given replaces the job's field whole (``retry`` and ``alerts`` too: the
    fields left out of them take their defaults). ``id`` and ``paused`` cannot be patched
    (422: use pause/resume). ``null`` is accepted only where the field itself is nullable
    (``name``, ``misfire_grace_time``: null means no limit).
    """

    model_config = _STRICT
    name: str | None = Field(default=None, max_length=200)
    task: str | None = Field(default=None, max_length=200)
    args: list[JsonValue] | None = None
    kwargs: dict[str, JsonValue] | None = None
    trigger: TriggerSpec | None = None
    max_instances: int | None = Field(default=None, ge=1, le=10)
    misfire_grace_time: int | None = Field(default=None, ge=1, le=MAX_INTERVAL_SECONDS)
    retry: RetryPolicy | None = None
    alerts: AlertPolicy | None = None

    @model_validator(mode="after")
    def _null_only_where_nullable(self) -> Self:
        """``{"trigger": null}`` is an error, not "keep the trigger"."""
        for name in self.model_fields_set - {"name", "misfire_grace_time"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class RunRecord(BaseModel):
    """One run of a job, as stored in the history.

    ``trigger``: ``scheduled`` (its fire time came), ``manual`` (run now) or ``retry``.
    ``attempt``: 1 for a scheduled or manual run, n + 1 for the retry after attempt n.
    ``scheduled_at``: the fire time (scheduled), the request time (manual), the due time
    (retry). ``started_at``/``finished_at``: null for ``missed`` and ``skipped`` runs (never
    started) and ``finished_at`` null while ``running``; ``duration_seconds`` is
    ``finished_at - started_at`` in seconds. ``error_type`` (the exception's class name),
    ``error_message`` (at most 2,000 characters) and ``traceback`` (the last 10,000) are set
    for failures only. All times are UTC.
    """

    run_id: int
    job_id: str
    trigger: RunTrigger
    attempt: int
    scheduled_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    status: RunStatus
    error_type: str | None
    error_message: str | None
    traceback: str | None


class JobView(BaseModel):
    """A job as the API shows it. ``state`` is ``paused`` (no next run) or ``scheduled``.

    ``next_run_time``: the next fire time (UTC), null when paused. ``retry_at``: when the
    pending retry runs, null if none. ``running``: runs of the job in progress now.
    ``consecutive_failures``: failed runs since the last success (missed and skipped runs
    neither count nor reset). ``health``: ``paused`` if paused, else ``failing`` or ``late``
    while such an alert is open for the job (failing first), else ``ok``.
    """

    id: str
    name: str
    task: str
    args: list[JsonValue]
    kwargs: dict[str, JsonValue]
    trigger: IntervalSpec | CronSpec
    schedule: str  # the trigger in words, e.g. "interval[0:00:30]"
    max_instances: int
    misfire_grace_time: int | None
    retry: RetryPolicy
    alerts: AlertPolicy
    state: Literal["scheduled", "paused"]
    next_run_time: datetime | None
    retry_at: datetime | None
    running: int
    last_run: RunRecord | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    consecutive_failures: int
    health: Health


class AlertView(BaseModel):
    """An incident: one per job and kind while open.

    ``notifications_sent`` counts its firing, reminder and resolved notifications.
    ``resolution``: ``recovered`` (a success, or a run started again for ``late``),
    ``paused``, ``deleted`` or ``job gone`` (not there after a restart); null while open.
    """

    id: int
    job_id: str
    kind: AlertKind
    state: Literal["open", "resolved"]
    message: str
    opened_at: datetime
    resolved_at: datetime | None
    last_notified_at: datetime | None
    notifications_sent: int
    resolution: str | None


class SchedulerView(BaseModel):
    """The scheduler: ``running``, ``paused`` (no job fires) or ``stopped``; its zone;
    the number of jobs (internal jobs not counted)."""

    state: Literal["running", "paused", "stopped"]
    timezone: str
    job_count: int


class TaskView(BaseModel):
    """A registered task: its name and a one-line description."""

    name: str
    description: str


class RunAccepted(BaseModel):
    """The answer to run-now: the id of the run (see ``GET /api/runs/{run_id}``)."""

    run_id: int
    job_id: str


@dataclass(frozen=True)
class Notification:
    """What a notifier receives: ``event`` is ``firing`` (the incident opened), ``reminder``
    or ``resolved``; ``alert`` is the incident after the change."""

    event: Literal["firing", "reminder", "resolved"]
    alert: AlertView
    at: datetime


def log_notifier(notification: Notification) -> None:
    """The default notifier: one WARNING line per notification (wire a pager here)."""
    alert = notification.alert
    logger.warning(
        "ALERT %s: %s %s for job %s: %s",
        notification.event,
        alert.kind,
        alert.state,
        alert.job_id,
        alert.message,
    )


# -- errors -------------------------------------------------------------------------------


class MonitorError(Exception):
    """Base of the errors the Monitor raises for a request it refuses (nothing changed)."""

    status_code = 400


class NotFoundError(MonitorError, LookupError):
    """No job (or run) with that id: HTTP 404."""

    status_code = 404


class ConflictError(MonitorError):
    """The request conflicts with the current state (duplicate id, max_instances): HTTP 409."""

    status_code = 409


class InvalidJobError(MonitorError, ValueError):
    """A job definition that validates as JSON but cannot work: HTTP 422.

    ``loc`` is the path of the offending field in the request body, e.g. ``("trigger",
    "expression")``.
    """

    status_code = 422

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class NotStartedError(MonitorError):
    """The monitor is not started (use the app's lifespan, ``with TestClient(app)``): 503."""

    status_code = 503


# -- SQL ----------------------------------------------------------------------------------


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC (SQLite keeps no offset), aware UTC when read."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware in, naive UTC out; a naive datetime is ambiguous and rejected."""
        return None if value is None else _as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Naive UTC from the database, aware UTC to Python."""
        return None if value is None else value.replace(tzinfo=UTC)


_BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only


class Base(DeclarativeBase):
    """Declarative base of the monitor's tables."""


class RunRow(Base):
    """A run. No foreign key to a job: the history outlives the job."""

    __tablename__ = "monitor_runs"
    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    error_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)

    # Newest first is ORDER BY id DESC: the primary key serves GET /runs; these serve the
    # filters (job, status, both) and the age-based retention, without a sort.
    __table_args__ = (
        Index("ix_monitor_runs_job_id", "job_id", "id"),
        Index("ix_monitor_runs_status_id", "status", "id"),
        Index("ix_monitor_runs_job_status_id", "job_id", "status", "id"),
        Index("ix_monitor_runs_scheduled_at", "scheduled_at"),
    )


class AlertRow(Base):
    """An incident (see AlertView)."""

    __tablename__ = "monitor_alerts"
    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    notifications_sent: Mapped[int] = mapped_column(Integer, default=0)
    resolution: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (Index("ix_monitor_alerts_state_id", "state", "id"),)


def _clean_text(value: str | None, limit: int, keep: Literal["head", "tail"]) -> str | None:
    if value is None:
        return None
    value = value.replace("\x00", "\\x00")  # PostgreSQL text cannot hold NUL
    if len(value) <= limit:
        return value
    return value[:limit] if keep == "head" else value[-limit:]


def _run_record(row: RunRow) -> RunRecord:
    return RunRecord(
        run_id=row.id,
        job_id=row.job_id,
        trigger=row.trigger,  # type: ignore[arg-type]
        attempt=row.attempt,
        scheduled_at=row.scheduled_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_seconds=row.duration_seconds,
        status=row.status,  # type: ignore[arg-type]
        error_type=row.error_type,
        error_message=row.error_message,
        traceback=row.traceback,
    )


def _alert_view(row: AlertRow) -> AlertView:
    return AlertView(
        id=row.id,
        job_id=row.job_id,
        kind=row.kind,  # type: ignore[arg-type]
        state=row.state,  # type: ignore[arg-type]
        message=row.message,
        opened_at=row.opened_at,
        resolved_at=row.resolved_at,
        last_notified_at=row.last_notified_at,
        notifications_sent=row.notifications_sent,
        resolution=row.resolution,
    )


@dataclass(frozen=True)
class JobStats:
    """What the history says about one job id."""

    last_run: RunRecord | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    consecutive_failures: int = 0


class Store:
    """The run history and the alerts, in SQL (any SQLAlchemy URL).

    ``sqlite://`` (in memory) is served by one shared connection, used by one thread at a
    time. A file SQLite database is switched to WAL, so readers do not wait for writers.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        memory = url in {"sqlite://", "sqlite:///:memory:"}
        if memory:
            self.engine: Engine = create_engine(
                url, poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._serial: Any = threading.RLock() if memory else nullcontext()
        if self.engine.dialect.name == "sqlite" and not memory:
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def create_tables(self) -> None:
        """Create the tables and indexes that do not exist yet."""
        with self._serial:
            Base.metadata.create_all(self.engine)

    def dispose(self) -> None:
        """Close the connections."""
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction, committed at the end (rolled back on error)."""
        with (
            self._serial,
            Session(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    def ping(self) -> bool:
        """Whether the database answers."""
        try:
            with self._serial, self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    # runs

    def add_run(self, **values: Any) -> RunRecord:
        """Insert a run; returns it with its new run_id."""
        with self.session() as session:
            row = RunRow(**values)
            session.add(row)
            session.flush()
            return _run_record(row)

    def update_run(self, run_id: int, **values: Any) -> RunRecord | None:
        """Change a run's columns; returns it, or None if it is gone (pruned)."""
        with self.session() as session:
            row = session.get(RunRow, run_id)
            if row is None:
                return None
            for name, value in values.items():
                setattr(row, name, value)
            session.flush()
            return _run_record(row)

    def get_run(self, run_id: int) -> RunRecord | None:
        """The run with that id, or None."""
        with self.session() as session:
            row = session.get(RunRow, run_id)
            return None if row is None else _run_record(row)

    def list_runs(
        self,
        *,
        job_id: str | None = None,
        status: str | None = None,
        trigger: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs matching every filter given, newest (highest run_id) first.

        ``since`` keeps runs with ``scheduled_at >= since`` (inclusive).
        """
        query = select(RunRow)
        if job_id is not None:
            query = query.where(RunRow.job_id == job_id)
        if status is not None:
            query = query.where(RunRow.status == status)
        if trigger is not None:
            query = query.where(RunRow.trigger == trigger)
        if since is not None:
            query = query.where(RunRow.scheduled_at >= _as_utc(since))
        query = query.order_by(RunRow.id.desc()).limit(limit).offset(offset)
        with self.session() as session:
            return [_run_record(row) for row in session.scalars(query)]

    def job_stats(self, job_id: str) -> JobStats:
        """Last run, last success and failure times, failures since the last success."""
        with self.session() as session:
            last = session.scalars(
                select(RunRow)
                .where(RunRow.job_id == job_id, RunRow.status != "running")
                .order_by(RunRow.id.desc())
                .limit(1)
            ).first()
            if last is None:
                return JobStats()

            def latest(status: str) -> RunRow | None:
                return session.scalars(
                    select(RunRow)
                    .where(RunRow.job_id == job_id, RunRow.status == status)
                    .order_by(RunRow.id.desc())
                    .limit(1)
                ).first()

            success, failure = latest("success"), latest("failure")
            failures = select(func.count()).where(
                RunRow.job_id == job_id, RunRow.status == "failure"
            )
            if success is not None:
                failures = failures.where(RunRow.id > success.id)
            return JobStats(
                last_run=_run_record(last),
                last_success_at=success.finished_at if success else None,
                last_failure_at=failure.finished_at if failure else None,
                consecutive_failures=int(session.scalar(failures) or 0),
            )

    def prune(self, now: datetime, max_age_seconds: int, max_runs_per_job: int) -> int:
        """Delete runs scheduled before ``now - max_age_seconds``, then all but the newest
        ``max_runs_per_job`` runs of each job (running runs are kept); returns how many."""
        cutoff = _as_utc(now) - timedelta(seconds=max_age_seconds)
        deleted = 0
        while True:  # short transactions: writers wait milliseconds, not the whole prune
            with self.session() as session:
                ids = session.scalars(
                    select(RunRow.id)
                    .where(RunRow.scheduled_at < cutoff, RunRow.status != "running")
                    .limit(5_000)
                ).all()
                if not ids:
                    break
                session.execute(delete(RunRow).where(RunRow.id.in_(ids)))
                deleted += len(ids)
        with self.session() as session:
            crowded = session.execute(
                select(RunRow.job_id)
                .group_by(RunRow.job_id)
                .having(func.count() > max_runs_per_job)
            ).scalars()
            for job_id in list(crowded):
                oldest_kept = session.scalar(
                    select(RunRow.id)
                    .where(RunRow.job_id == job_id)
                    .order_by(RunRow.id.desc())
                    .offset(max_runs_per_job - 1)
                    .limit(1)
                )
                if oldest_kept is None:
                    continue
                result = session.execute(
                    delete(RunRow).where(
                        RunRow.job_id == job_id,
                        RunRow.id < oldest_kept,
                        RunRow.status != "running",
                    )
                )
                deleted += int(getattr(result, "rowcount", 0) or 0)
        return deleted

    # alerts

    def open_alert(self, job_id: str, kind: str, message: str, now: datetime) -> AlertView:
        """Insert an open incident."""
        with self.session() as session:
            row = AlertRow(
                job_id=job_id,
                kind=kind,
                state="open",
                message=_clean_text(message, MAX_ERROR_MESSAGE, "head") or "",
                opened_at=now,
                notifications_sent=0,
            )
            session.add(row)
            session.flush()
            return _alert_view(row)

    def update_alert(self, alert_id: int, **values: Any) -> AlertView:
        """Change an incident's columns; returns it."""
        with self.session() as session:
            session.execute(update(AlertRow).where(AlertRow.id == alert_id).values(**values))
            row = session.get(AlertRow, alert_id)
            assert row is not None
            session.refresh(row)
            return _alert_view(row)

    def get_alert(self, alert_id: int) -> AlertView | None:
        """The incident with that id, or None."""
        with self.session() as session:
            row = session.get(AlertRow, alert_id)
            return None if row is None else _alert_view(row)

    def list_alerts(
        self,
        *,
        state: str | None = None,
        job_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AlertView]:
        """Incidents matching the filters, newest first."""
        query = select(AlertRow)
        if state is not None:
            query = query.where(AlertRow.state == state)
        if job_id is not None:
            query = query.where(AlertRow.job_id == job_id)
        query = query.order_by(AlertRow.id.desc()).limit(limit).offset(offset)
        with self.session() as session:
            return [_alert_view(row) for row in session.scalars(query)]


def _sqlite_pragmas(connection: Any, record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# -- scheduling helpers -------------------------------------------------------------------


def backoff_delay(policy: RetryPolicy, attempt: int, r: float = 0.0) -> float:
    """Seconds to wait before attempt ``attempt + 1`` once attempt ``attempt`` (>= 1) failed.

    ``min(max_backoff_seconds, backoff_seconds * factor ** (attempt - 1) + jitter_seconds * r)``,
    ``r`` in [0, 1). With ``jitter_seconds == 0`` the delays never decrease.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, not {attempt}")
    base = policy.backoff_seconds * policy.factor ** min(attempt - 1, 100)
    return min(policy.max_backoff_seconds, base + policy.jitter_seconds * r)


def build_trigger(spec: IntervalSpec | CronSpec, default_zone: tzinfo) -> BaseTrigger:
    """The APScheduler trigger of a spec; InvalidJobError(loc, message) if it cannot work.

    A cron expression must have a fire time in the future; an interval starts now.
    """
    if isinstance(spec, IntervalSpec):
        return IntervalTrigger(seconds=spec.seconds, timezone=default_zone)
    zone: tzinfo = default_zone
    if spec.timezone is not None:
        try:
            zone = _zone(spec.timezone)
        except ValueError as error:
            raise InvalidJobError(("trigger", "timezone"), str(error)) from error
    try:
        trigger = CronTrigger.from_crontab(spec.expression, timezone=zone)
        upcoming = trigger.get_next_fire_time(None, datetime.now(zone))
    except Exception as error:  # APScheduler raises ValueError, KeyError, IndexError, ...
        message = f"invalid cron expression {spec.expression!r}: {error}"
        raise InvalidJobError(("trigger", "expression"), message) from error
    if upcoming is None:
        message = f"cron expression {spec.expression!r} never fires"
        raise InvalidJobError(("trigger", "expression"), message)
    return trigger


def _check_arguments(task: Task, args: list[Any], kwargs: dict[str, Any]) -> None:
    if len(json.dumps([args, kwargs])) > MAX_ARGUMENTS_BYTES:
        raise InvalidJobError(("args",), f"args and kwargs exceed {MAX_ARGUMENTS_BYTES} bytes")
    try:
        inspect.signature(task.func).bind(*args, **kwargs)
    except TypeError as error:
        raise InvalidJobError(("kwargs",), f"arguments do not fit {task.name}: {error}") from error
    except ValueError:  # a builtin without a signature: nothing to check
        pass


class _Submitting:
    """Hands each submission's fire time to the monitor's runner (APScheduler does not)."""

    def submit_job(self, job: Job, run_times: list[datetime]) -> None:
        """Submit a copy of ``job`` whose kwargs carry ``scheduled_at`` (the fire time)."""
        if "job_id" in job.kwargs and "scheduled_at" not in job.kwargs:
            copy = Job.__new__(Job)
            for slot in Job.__slots__:
                if slot != "__weakref__" and hasattr(job, slot):
                    setattr(copy, slot, getattr(job, slot))
            copy.kwargs = {**job.kwargs, "scheduled_at": run_times[-1]}
            job = copy
        super().submit_job(job, run_times)  # type: ignore[misc]


class MonitorThreadPoolExecutor(_Submitting, ThreadPoolExecutor):
    """The default executor: a thread pool."""


class MonitorSyncExecutor(_Submitting, DebugExecutor):
    """Runs each job at once in the submitting thread (the scheduler's, or a request's)."""


# -- the monitor --------------------------------------------------------------------------


@dataclass
class _JobState:
    spec: JobCreate
    stats: JobStats
    running: int = 0
    retry_at: datetime | None = None
    retry_job_id: str | None = None  # the pending retry's scheduler job
    last_fire: datetime | None = None  # the latest fire time whose run started
    pending_due: datetime | None = None  # the earliest fire time that missed its run
    watch_from: datetime | None = None  # fire times before this never make it late
    open_alerts: dict[str, int] = field(default_factory=dict)  # kind -> alert id


class _Gauges(Collector):
    """The per-job gauges, read from the monitor at scrape time (deleted jobs vanish)."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterable[Metric]:
        """One family per gauge, one sample per live job."""
        return self.monitor._gauge_families()


class Monitor:
    """The scheduler, the run history, the retries, the alerts and the metrics, without HTTP.

    Build it, ``start()`` it, ``shutdown()`` it. Every method is thread-safe. Methods that
    change a job raise NotFoundError (unknown id), ConflictError or InvalidJobError and
    then have changed nothing. Times are aware datetimes in UTC.

    ``clock`` (a callable returning an aware datetime) stamps runs and alerts and decides
    retries and lateness; APScheduler itself reads ``datetime.now()``, so in tests move
    both at once with time-machine (``grader.clock.VirtualClock``) rather than passing a
    clock that disagrees. ``notifier`` receives each Notification (exceptions are logged,
    never raised). ``rng`` returns floats in [0, 1) for the retry jitter. ``tasks`` is the
    task registry (default: ``demo_tasks()``). ``settings.executor == "sync"`` runs jobs in
    the thread that submits them, so a stepped scheduler (``_process_jobs()``) runs them
    at once and a run-now has finished when ``run_now`` returns.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        rng: Callable[[], float] | None = None,
        tasks: TaskRegistry | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        self.clock: Clock = clock or _utc_now
        self.notifier: Notifier = notifier or log_notifier
        self.rng: Callable[[], float] = rng or random.Random().random
        self.tasks = tasks if tasks is not None else demo_tasks()
        self.timezone = _zone(self.settings.timezone)
        self.store = Store(self.settings.database_url)
        executor = (
            MonitorSyncExecutor()
            if self.settings.executor == "sync"
            else MonitorThreadPoolExecutor(max_workers=self.settings.max_workers)
        )
        self.scheduler = BackgroundScheduler(
            executors={"default": executor},
            job_defaults={"coalesce": True},
            timezone=self.timezone,
            daemon=True,
        )
        # One lock for the monitor's state and APScheduler's job stores: runs in the
        # scheduler thread hold the latter while they update the former, so two locks
        # taken in different orders would deadlock.
        self._lock: threading.RLock = self.scheduler._jobstores_lock
        self._jobs: dict[str, _JobState] = {}
        self._retry_ids = itertools.count(1)
        self._started = False
        self.registry = CollectorRegistry()
        self._runs_total = Counter(
            "scheduler_job_runs_total",
            "Finished runs (and missed or skipped fire times) by job and status.",
            ["job_id", "status"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "scheduler_job_run_duration_seconds",
            "Duration of finished runs (success or failure).",
            ["job_id"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._retries_total = Counter(
            "scheduler_job_retries_total",
            "Retry runs started.",
            ["job_id"],
            registry=self.registry,
        )
        self._notifications_total = Counter(
            "scheduler_notifications_sent_total",
            "Alert notifications sent, by event (firing, reminder, resolved).",
            ["event"],
            registry=self.registry,
        )
        self.registry.register(_Gauges(self))

    # -- life cycle -------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether start() ran and shutdown() did not."""
        return self._started

    def start(self) -> None:
        """Create the tables, start the scheduler, add the internal jobs (and the demo jobs
        if ``settings.demo_jobs``), and resolve open alerts of jobs that are not there."""
        if self._started:
            return
        self.store.create_tables()
        self.scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self.scheduler.start()
        self._started = True
        if self.settings.alert_check_interval_seconds:
            self.scheduler.add_job(
                self.check_alerts,
                IntervalTrigger(seconds=self.settings.alert_check_interval_seconds),
                id=ALERTS_JOB_ID,
                misfire_grace_time=None,
                replace_existing=True,
            )
        if self.settings.retention_interval_seconds:
            self.scheduler.add_job(
                self.prune_history,
                IntervalTrigger(seconds=self.settings.retention_interval_seconds),
                id=RETENTION_JOB_ID,
                misfire_grace_time=None,
                replace_existing=True,
            )
        if self.settings.demo_jobs:
            for spec in DEMO_JOBS:
                if spec.id not in self._jobs:
                    self.add_job(spec)
        now = self.clock()
        for alert in self.store.list_alerts(state="open", limit=MAX_LIMIT):
            state = self._jobs.get(alert.job_id)
            if state is None:
                self._resolve(alert.id, "job gone", now)
            else:
                state.open_alerts[alert.kind] = alert.id
        if self.settings.admin_token is None and self.settings.viewer_token is None:
            logger.warning("no MONITOR_ADMIN_TOKEN or MONITOR_VIEWER_TOKEN: every request is 401")
        logger.info("monitor started (history: %s)", self.store.engine.url.render_as_string())

    def shutdown(self, wait: bool = True) -> None:
        """Stop the scheduler (waiting for running jobs if ``wait``) and close the database."""
        if not self._started:
            return
        self._started = False
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        self.store.dispose()
        logger.info("monitor stopped")

    def _require_started(self) -> None:
        if not self._started:
            raise NotStartedError("the monitor is not started")

    # -- scheduler --------------------------------------------------------------------

    def scheduler_info(self) -> SchedulerView:
        """The scheduler's state, zone and job count."""
        state = self.scheduler.state
        shown: Literal["running", "paused", "stopped"] = (
            "running"
            if state == STATE_RUNNING
            else "paused"
            if state == STATE_PAUSED
            else "stopped"
        )
        return SchedulerView(state=shown, timezone=str(self.timezone), job_count=len(self._jobs))

    def pause_scheduler(self) -> SchedulerView:
        """Stop firing any job (idempotent). Late alerts are neither opened nor resolved
        while the scheduler is paused."""
        self._require_started()
        with self._lock:
            if self.scheduler.state == STATE_RUNNING:
                self.scheduler.pause()
                logger.info("scheduler paused")
        return self.scheduler_info()

    def resume_scheduler(self) -> SchedulerView:
        """Fire jobs again (idempotent). Fire times that passed while it was paused never
        make a job late."""
        self._require_started()
        with self._lock:
            if self.scheduler.state == STATE_PAUSED:
                now = self.clock()
                for state in self._jobs.values():
                    state.watch_from, state.pending_due = now, None
                self.scheduler.resume()
                logger.info("scheduler resumed")
        return self.scheduler_info()

    # -- jobs -------------------------------------------------------------------------

    def list_jobs(
        self, state: Literal["scheduled", "paused"] | None = None, limit: int = 100, offset: int = 0
    ) -> list[JobView]:
        """Jobs sorted by id, optionally only ``scheduled`` or ``paused`` ones, paged."""
        with self._lock:
            views = [self._view(job_id) for job_id in sorted(self._jobs)]
        if state is not None:
            views = [view for view in views if view.state == state]
        return views[offset : offset + limit]

    def get_job(self, job_id: str) -> JobView:
        """The job (NotFoundError if there is none)."""
        with self._lock:
            return self._view(job_id)

    def add_job(self, spec: JobCreate) -> JobView:
        """Add a job. InvalidJobError for an unknown task, arguments that do not fit it or a
        trigger that cannot fire (checked first); then ConflictError for a taken id or
        ``settings.max_jobs`` reached. A paused spec has no next run time."""
        self._require_started()
        with self._lock:
            trigger = self._validate(spec)  # 422 before 409: a bad request is bad anywhere
            if spec.id in self._jobs:
                raise ConflictError(f"a job with id {spec.id!r} exists already")
            if len(self._jobs) >= self.settings.max_jobs:
                raise ConflictError(f"at most {self.settings.max_jobs} jobs")
            now = self.clock()
            self.scheduler.add_job(
                self._run,
                trigger,
                id=spec.id,
                name=spec.name or spec.id,
                kwargs={"job_id": spec.id, "trigger": "scheduled"},
                max_instances=spec.max_instances,
                misfire_grace_time=spec.misfire_grace_time,
                coalesce=True,
                **({"next_run_time": None} if spec.paused else {}),
            )
            self._jobs[spec.id] = _JobState(
                spec=spec, stats=self.store.job_stats(spec.id), watch_from=now
            )
            logger.info("job %s added (%s)", spec.id, trigger)
            return self._view(spec.id)

    def update_job(self, job_id: str, patch: JobPatch) -> JobView:
        """Apply the fields set in ``patch``, all or none.

        The merged definition is validated first (as by add_job); then a ``trigger`` in
        the patch goes through ``reschedule_job``, so the next run time is recomputed from
        now (a paused job stays paused, with the new trigger), and a pending retry is
        cancelled.
        """
        self._require_started()
        with self._lock:
            state = self._state(job_id)
            merged = state.spec.model_dump()
            merged.update(patch.model_dump(include=patch.model_fields_set))
            try:
                spec = JobCreate.model_validate(merged)
            except ValidationError as error:
                first = error.errors()[0]
                raise InvalidJobError(tuple(first["loc"]), first["msg"]) from error
            trigger = self._validate(spec)
            job = self._apscheduler_job(job_id)
            changes: dict[str, Any] = {
                "name": spec.name or spec.id,
                "max_instances": spec.max_instances,
                "misfire_grace_time": spec.misfire_grace_time,
            }
            if "trigger" in patch.model_fields_set:
                self._cancel_retry(state)
                if job.next_run_time is None:
                    changes["trigger"] = trigger  # paused: keep it paused
                else:
                    self.scheduler.reschedule_job(job_id, trigger=trigger)
                state.watch_from, state.pending_due, state.last_fire = self.clock(), None, None
            self.scheduler.modify_job(job_id, **changes)
            state.spec = spec
            logger.info("job %s changed: %s", job_id, sorted(patch.model_fields_set))
            return self._view(job_id)

    def remove_job(self, job_id: str) -> None:
        """Delete the job and its pending retry; its history stays (``list_runs(job_id=...)``),
        its open alerts are resolved (``deleted``)."""
        self._require_started()
        with self._lock:
            state = self._state(job_id)
            self._cancel_retry(state)
            self.scheduler.remove_job(job_id)
            del self._jobs[job_id]
            now = self.clock()
            for alert_id in list(state.open_alerts.values()):
                self._resolve(alert_id, "deleted", now)
            for status in ("success", "failure", "missed", "skipped"):
                self._forget_label(self._runs_total, job_id, status)
            self._forget_label(self._duration, job_id)
            self._forget_label(self._retries_total, job_id)
            logger.info("job %s deleted (history kept)", job_id)

    def pause_job(self, job_id: str) -> JobView:
        """Pause (idempotent): no next run time, the pending retry cancelled, open alerts
        resolved (``paused``), no alert while paused."""
        self._require_started()
        with self._lock:
            state = self._state(job_id)
            job = self._apscheduler_job(job_id)
            if job.next_run_time is not None:
                self.scheduler.pause_job(job_id)
                logger.info("job %s paused", job_id)
            self._cancel_retry(state)
            now = self.clock()
            for alert_id in list(state.open_alerts.values()):
                self._resolve(alert_id, "paused", now)
            state.open_alerts.clear()
            return self._view(job_id)

    def resume_job(self, job_id: str) -> JobView:
        """Resume (idempotent): the next run time is the trigger's next fire time from now
        (paused fire times are not made up); a job still failing alerts again at once."""
        self._require_started()
        with self._lock:
            state = self._state(job_id)
            job = self._apscheduler_job(job_id)
            if job.next_run_time is None:
                self.scheduler.resume_job(job_id)
                state.watch_from, state.pending_due, state.last_fire = self.clock(), None, None
                logger.info("job %s resumed", job_id)
                self._evaluate_failing(job_id, self.clock())
            return self._view(job_id)

    def run_now(self, job_id: str) -> int:
        """Start a manual run now (also of a paused job) and return its run_id; the job's
        next run time is unchanged. ConflictError if ``max_instances`` runs of the job are
        running (no run is recorded then). With the sync executor the run has finished
        when this returns; with threads it may still be ``running``."""
        self._require_started()
        with self._lock:
            state = self._state(job_id)
            job = self._apscheduler_job(job_id)
            executor = self.scheduler._lookup_executor(job.executor)
            busy = max(state.running, executor._instances.get(job_id, 0))
            if busy >= state.spec.max_instances:
                raise ConflictError(
                    f"job {job_id!r} is running {busy} time(s): max_instances is "
                    f"{state.spec.max_instances}"
                )
            now = self.clock()
            record = self.store.add_run(
                job_id=job_id,
                trigger="manual",
                attempt=1,
                scheduled_at=now,
                started_at=now,
                status="running",
            )
            manual = Job.__new__(Job)
            for slot in Job.__slots__:
                if slot != "__weakref__" and hasattr(job, slot):
                    setattr(manual, slot, getattr(job, slot))
            manual.misfire_grace_time = None  # a manual run is never "missed"
            manual.kwargs = {
                "job_id": job_id,
                "trigger": "manual",
                "run_id": record.run_id,
                "scheduled_at": now,
            }
            try:
                executor.submit_job(manual, [now])
            except MaxInstancesReachedError as error:
                self.store.update_run(record.run_id, status="skipped", started_at=None)
                self._runs_total.labels(job_id, "skipped").inc()
                raise ConflictError(f"job {job_id!r} is at max_instances") from error
            logger.info("job %s: manual run %d submitted", job_id, record.run_id)
            return record.run_id

    # -- runs and alerts ----------------------------------------------------------------

    def list_runs(
        self,
        *,
        job_id: str | None = None,
        status: RunStatus | None = None,
        trigger: RunTrigger | None = None,
        since: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs newest first (descending run_id; run ids grow in the order runs are
        recorded), filtered (``since``: ``scheduled_at >= since``), paged. Deleted jobs'
        runs are included."""
        return self.store.list_runs(
            job_id=job_id,
            status=status,
            trigger=trigger,
            since=since,
            limit=limit,
            offset=offset,
        )

    def get_run(self, run_id: int) -> RunRecord:
        """The run (NotFoundError if there is none, or it was pruned)."""
        record = self.store.get_run(run_id)
        if record is None:
            raise NotFoundError(f"no run {run_id}")
        return record

    def list_alerts(
        self,
        *,
        state: Literal["open", "resolved"] | None = None,
        job_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AlertView]:
        """Incidents newest first, filtered by state and job, paged."""
        return self.store.list_alerts(state=state, job_id=job_id, limit=limit, offset=offset)

    def check_alerts(self) -> None:
        """Evaluate every job now: open or resolve ``late``, open ``failing`` where the
        threshold is reached, send the reminders that are due. The internal job
        ``__alerts__`` calls it every ``settings.alert_check_interval_seconds``."""
        now = self.clock()
        with self._lock:
            for job_id in list(self._jobs):
                self._evaluate_late(job_id, now)
                self._evaluate_failing(job_id, now)
            reminder = self.settings.alert_reminder_seconds
            if reminder is None:
                return
            for job_id, state in self._jobs.items():
                if self._paused(job_id):
                    continue
                for alert_id in list(state.open_alerts.values()):
                    alert = self.store.get_alert(alert_id)
                    last = None if alert is None else alert.last_notified_at
                    if last is not None and now - last >= timedelta(seconds=reminder):
                        self._notify("reminder", alert_id, now)

    def prune_history(self, now: datetime | None = None) -> int:
        """Apply the retention settings now (or at ``now``); returns the runs deleted."""
        deleted = self.store.prune(
            now or self.clock(),
            self.settings.history_max_age_seconds,
            self.settings.history_max_runs_per_job,
        )
        if deleted:
            logger.info("retention: %d run(s) deleted", deleted)
        return deleted

    def metrics_text(self) -> bytes:
        """The Prometheus text exposition of this monitor's registry."""
        return generate_metrics(self.registry)

    # -- internals: the runner ------------------------------------------------------------

    def _run(
        self,
        job_id: str,
        trigger: RunTrigger,
        attempt: int = 1,
        run_id: int | None = None,
        scheduled_at: datetime | None = None,
        retry_id: str | None = None,
    ) -> Any:
        """Run one attempt of a job: record it, run the task, then retry or alert."""
        now = self.clock()
        with self._lock:
            state = self._jobs.get(job_id)
            if state is None:  # deleted since it was submitted
                if run_id is not None:
                    self.store.update_run(run_id, status="skipped", started_at=None)
                return None
            spec = state.spec
            if trigger == "retry":
                if retry_id != state.retry_job_id:  # cancelled or replaced meanwhile
                    return None
                # Consumed: APScheduler removes this date job itself once it has run.
                state.retry_at = state.retry_job_id = None
                upcoming = self._upcoming(job_id, now)
                if self._paused(job_id) or (upcoming is not None and upcoming <= now):
                    logger.info("job %s: retry dropped (paused or due anyway)", job_id)
                    return None
                if state.running >= spec.max_instances:
                    self._record_unstarted(job_id, "retry", attempt, scheduled_at or now, "skipped")
                    return None
            if trigger == "scheduled" and scheduled_at is not None:
                state.last_fire, state.pending_due = scheduled_at, None
            state.running += 1
            if trigger == "retry":
                self._retries_total.labels(job_id).inc()
        try:
            if run_id is None:
                record = self.store.add_run(
                    job_id=job_id,
                    trigger=trigger,
                    attempt=attempt,
                    scheduled_at=scheduled_at or now,
                    started_at=now,
                    status="running",
                )
                run_id = record.run_id
            else:
                self.store.update_run(run_id, started_at=now)
            if trigger == "scheduled":
                with self._lock:
                    self._evaluate_late(job_id, now)
            task = self.tasks.get(spec.task)
            error: BaseException | None = None
            trace: str | None = None
            try:
                if task is None:
                    raise LookupError(f"task {spec.task!r} is no longer registered")
                task.func(*spec.args, **spec.kwargs)
            except BaseException as exc:  # recorded, then re-raised for APScheduler
                error, trace = exc, traceback.format_exc()
            self._finish(job_id, run_id, attempt, now, error, trace)
        finally:
            with self._lock:
                if job_id in self._jobs:
                    self._jobs[job_id].running -= 1
        if error is not None:
            raise error
        return None

    def _finish(
        self,
        job_id: str,
        run_id: int,
        attempt: int,
        started: datetime,
        error: BaseException | None,
        trace: str | None,
    ) -> None:
        finished = self.clock()
        status: RunStatus = "success" if error is None else "failure"
        record = self.store.update_run(
            run_id,
            status=status,
            finished_at=finished,
            duration_seconds=max(0.0, (finished - started).total_seconds()),
            error_type=None if error is None else type(error).__name__,
            error_message=None
            if error is None
            else _clean_text(str(error), MAX_ERROR_MESSAGE, "head"),
            traceback=_clean_text(trace, MAX_TRACEBACK, "tail"),
        )
        self._runs_total.labels(job_id, status).inc()
        if record is not None and record.duration_seconds is not None:
            self._duration.labels(job_id).observe(record.duration_seconds)
        with self._lock:
            state = self._jobs.get(job_id)
            if state is None:
                return
            old = state.stats
            if error is None:
                state.stats = JobStats(record, finished, old.last_failure_at, 0)
                self._cancel_retry(state)
                alert_id = state.open_alerts.pop("failing", None)
                if alert_id is not None:
                    self._resolve(alert_id, "recovered", finished)
                logger.info("job %s: run %d succeeded", job_id, run_id)
                return
            state.stats = JobStats(
                record, old.last_success_at, finished, old.consecutive_failures + 1
            )
            logger.warning("job %s: run %d failed: %r", job_id, run_id, error)
            self._evaluate_failing(job_id, finished)
            self._schedule_retry(job_id, attempt, finished)

    def _schedule_retry(self, job_id: str, attempt: int, now: datetime) -> None:
        state = self._jobs[job_id]
        policy = state.spec.retry
        if attempt >= policy.max_attempts or self._paused(job_id):
            return
        due = now + timedelta(seconds=backoff_delay(policy, attempt, self.rng()))
        upcoming = self._upcoming(job_id, now)
        if upcoming is not None and due >= upcoming:
            logger.info("job %s: retry at %s dropped: the next run is at %s", job_id, due, upcoming)
            self._cancel_retry(state)
            return
        self._cancel_retry(state)
        retry_id = f"{RETRY_PREFIX}{job_id}:{next(self._retry_ids)}"
        self.scheduler.add_job(
            self._run,
            DateTrigger(run_date=due),
            id=retry_id,
            name=f"retry of {job_id}",
            kwargs={
                "job_id": job_id,
                "trigger": "retry",
                "attempt": attempt + 1,
                "retry_id": retry_id,
            },
            misfire_grace_time=None,
        )
        state.retry_at, state.retry_job_id = due, retry_id
        logger.info("job %s: attempt %d at %s", job_id, attempt + 1, due)

    def _cancel_retry(self, state: _JobState) -> None:
        retry_id, state.retry_at, state.retry_job_id = state.retry_job_id, None, None
        if retry_id is not None:
            with suppress(JobLookupError):
                self.scheduler.remove_job(retry_id)

    def _record_unstarted(
        self, job_id: str, trigger: str, attempt: int, scheduled_at: datetime, status: str
    ) -> None:
        self.store.add_run(
            job_id=job_id,
            trigger=trigger,
            attempt=attempt,
            scheduled_at=scheduled_at,
            status=status,
        )
        self._runs_total.labels(job_id, status).inc()

    def _on_event(self, event: JobEvent) -> None:
        """Record missed and skipped fire times of the jobs (not of internal jobs)."""
        job_id = event.job_id
        if job_id.startswith(INTERNAL_PREFIX):
            return
        if isinstance(event, JobExecutionEvent):
            times = [event.scheduled_run_time]
        elif isinstance(event, JobSubmissionEvent):
            times = list(event.scheduled_run_times)
        else:  # pragma: no cover - only the two codes above are listened to
            return
        status = "missed" if event.code == EVENT_JOB_MISSED else "skipped"
        now = self.clock()
        with self._lock:
            state = self._jobs.get(job_id)
            if state is None:
                return
            for moment in times:
                moment = _as_utc(moment)
                self._record_unstarted(job_id, "scheduled", 1, moment, status)
                watched = state.watch_from is None or moment >= state.watch_from
                if watched and (state.pending_due is None or moment < state.pending_due):
                    state.pending_due = moment
            logger.warning("job %s: %s fire time(s) %s", job_id, status, times)
            self._evaluate_late(job_id, now)

    # -- internals: alerts ----------------------------------------------------------------

    def _policy(self, spec: JobCreate) -> tuple[int, int]:
        failing = spec.alerts.failing_after or self.settings.default_failing_after
        late = spec.alerts.late_after_seconds
        return failing, self.settings.default_late_after_seconds if late is None else late

    def _upcoming(self, job_id: str, now: datetime) -> datetime | None:
        """The job's next fire time after the fire time being run now, if any."""
        job = self.scheduler.get_job(job_id)
        if job is None or job.next_run_time is None:
            return None
        upcoming: datetime = _as_utc(job.next_run_time)
        state = self._jobs.get(job_id)
        last = state.last_fire if state else None
        # Stepped (sync) runs happen before APScheduler moves next_run_time on.
        if last is not None and upcoming <= last:
            following = job.trigger.get_next_fire_time(job.next_run_time, now)
            return None if following is None else _as_utc(following)
        return upcoming

    def _evaluate_late(self, job_id: str, now: datetime) -> None:
        state = self._jobs.get(job_id)
        if state is None or self._paused(job_id) or self.scheduler.state != STATE_RUNNING:
            return
        _, grace = self._policy(state.spec)
        due = state.pending_due or self._upcoming(job_id, now)
        late = due is not None and now > due + timedelta(seconds=grace)
        alert_id = state.open_alerts.get("late")
        if late and alert_id is None and due is not None:
            message = f"no run since the fire time {due.isoformat()} (grace {grace} s)"
            state.open_alerts["late"] = self._open(job_id, "late", message, now)
        elif not late and alert_id is not None:
            del state.open_alerts["late"]
            self._resolve(alert_id, "recovered", now)

    def _evaluate_failing(self, job_id: str, now: datetime) -> None:
        state = self._jobs.get(job_id)
        if state is None or self._paused(job_id) or "failing" in state.open_alerts:
            return
        threshold, _ = self._policy(state.spec)
        failures = state.stats.consecutive_failures
        if failures >= threshold:
            message = f"{failures} consecutive failure(s) (threshold {threshold})"
            state.open_alerts["failing"] = self._open(job_id, "failing", message, now)

    def _open(self, job_id: str, kind: str, message: str, now: datetime) -> int:
        alert = self.store.open_alert(job_id, kind, message, now)
        self._notify("firing", alert.id, now)
        return alert.id

    def _resolve(self, alert_id: int, resolution: str, now: datetime) -> None:
        self.store.update_alert(alert_id, state="resolved", resolved_at=now, resolution=resolution)
        self._notify("resolved", alert_id, now)

    def _notify(
        self, kind: Literal["firing", "reminder", "resolved"], alert_id: int, now: datetime
    ) -> None:
        alert = self.store.update_alert(
            alert_id,
            last_notified_at=now,
            notifications_sent=AlertRow.notifications_sent + 1,
        )
        self._notifications_total.labels(kind).inc()
        try:
            self.notifier(Notification(kind, alert, now))
        except Exception:  # a broken notifier must not break the runs
            logger.exception("notifier failed on %s of alert %d", kind, alert_id)

    # -- internals: views, validation, metrics ----------------------------------------------

    def _state(self, job_id: str) -> _JobState:
        state = self._jobs.get(job_id)
        if state is None:
            raise NotFoundError(f"no job {job_id!r}")
        return state

    def _apscheduler_job(self, job_id: str) -> Job:
        job = self.scheduler.get_job(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}")
        return job

    def _paused(self, job_id: str) -> bool:
        job = self.scheduler.get_job(job_id)
        return job is None or job.next_run_time is None

    def _validate(self, spec: JobCreate) -> BaseTrigger:
        task = self.tasks.get(spec.task)
        if task is None:
            hint = " (tasks are registry names, not import paths)" if ":" in spec.task else ""
            raise InvalidJobError(("task",), f"unknown task {spec.task!r}{hint}")
        _check_arguments(task, spec.args, spec.kwargs)
        return build_trigger(spec.trigger, self.timezone)

    def _view(self, job_id: str) -> JobView:
        state = self._state(job_id)
        job = self._apscheduler_job(job_id)
        spec = state.spec
        next_run = None if job.next_run_time is None else _as_utc(job.next_run_time)
        if job.next_run_time is None:
            health: Health = "paused"
        elif "failing" in state.open_alerts:
            health = "failing"
        elif "late" in state.open_alerts:
            health = "late"
        else:
            health = "ok"
        return JobView(
            id=spec.id,
            name=spec.name or spec.id,
            task=spec.task,
            args=spec.args,
            kwargs=spec.kwargs,
            trigger=spec.trigger,
            schedule=str(job.trigger),
            max_instances=spec.max_instances,
            misfire_grace_time=spec.misfire_grace_time,
            retry=spec.retry,
            alerts=spec.alerts,
            state="paused" if next_run is None else "scheduled",
            next_run_time=next_run,
            retry_at=state.retry_at,
            running=state.running,
            last_run=state.stats.last_run,
            last_success_at=state.stats.last_success_at,
            last_failure_at=state.stats.last_failure_at,
            consecutive_failures=state.stats.consecutive_failures,
            health=health,
        )

    @staticmethod
    def _forget_label(metric: Counter | Histogram, *labels: str) -> None:
        with suppress(KeyError):
            metric.remove(*labels)

    def _gauge_families(self) -> list[Metric]:
        def family(name: str, doc: str, labels: tuple[str, ...] = ("job_id",)) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=list(labels))

        last_success = family(
            "scheduler_job_last_success_timestamp_seconds", "End of the last successful run."
        )
        last_failure = family(
            "scheduler_job_last_failure_timestamp_seconds", "End of the last failed run."
        )
        next_run = family(
            "scheduler_job_next_run_timestamp_seconds", "Next fire time (absent when paused)."
        )
        failures = family(
            "scheduler_job_consecutive_failures", "Failed runs since the last success."
        )
        running = family("scheduler_job_running", "Runs in progress.")
        paused = family("scheduler_job_paused", "1 if the job is paused, else 0.")
        scheduler_running = family(
            "scheduler_running", "1 if the scheduler fires jobs, else 0.", ()
        )
        alerts_open = family("scheduler_alerts_open", "Open incidents by kind.", ("kind",))
        kinds: Tally[str] = Tally()
        with self._lock:
            for job_id, state in sorted(self._jobs.items()):
                job = self.scheduler.get_job(job_id)
                if job is None:
                    continue
                stats = state.stats
                if stats.last_success_at is not None:
                    last_success.add_metric([job_id], stats.last_success_at.timestamp())
                if stats.last_failure_at is not None:
                    last_failure.add_metric([job_id], stats.last_failure_at.timestamp())
                if job.next_run_time is not None:
                    next_run.add_metric([job_id], job.next_run_time.timestamp())
                failures.add_metric([job_id], stats.consecutive_failures)
                running.add_metric([job_id], state.running)
                paused.add_metric([job_id], 1.0 if job.next_run_time is None else 0.0)
                kinds.update(state.open_alerts)
            scheduler_running.add_metric([], 1.0 if self.scheduler.state == STATE_RUNNING else 0.0)
        for kind in ("failing", "late"):
            alerts_open.add_metric([kind], kinds[kind])
        return [
            last_success,
            last_failure,
            next_run,
            failures,
            running,
            paused,
            scheduler_running,
            alerts_open,
        ]


DEMO_JOBS = (
    JobCreate(
        id="heartbeat",
        task="demo.heartbeat",
        trigger=IntervalSpec(type="interval", seconds=30),
    ),
    JobCreate(
        id="flaky",
        task="demo.flaky",
        kwargs={"failure_rate": 0.5},
        trigger=IntervalSpec(type="interval", seconds=20),
        retry=RetryPolicy(max_attempts=3, backoff_seconds=2, factor=2, max_backoff_seconds=8),
        alerts=AlertPolicy(failing_after=3, late_after_seconds=30),
    ),
)


# -- HTTP: auth ---------------------------------------------------------------------------


def authenticate(authorization: str | None, settings: Settings) -> Role | None:
    """The role that an ``Authorization`` header proves, or None.

    ``Bearer <token>``, or ``Basic`` with the token as the password (the user name is not
    checked). Tokens are compared with ``hmac.compare_digest``; both are always compared.
    """
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        token = value
    elif scheme.lower() == "basic":
        try:
            decoded = b64decode(value.encode("ascii"), validate=True).decode("utf-8")
        except (ValueError, UnicodeError):
            return None
        if ":" not in decoded:
            return None
        token = decoded.partition(":")[2]
    else:
        return None
    given = token.encode("utf-8", "surrogateescape")

    def matches(secret: SecretStr | None) -> bool:
        expected = (secret.get_secret_value() if secret else "\x00" * 32).encode("utf-8")
        return hmac.compare_digest(given, expected) and secret is not None

    is_admin, is_viewer = matches(settings.admin_token), matches(settings.viewer_token)
    return "admin" if is_admin else "viewer" if is_viewer else None


PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return netloc.lower() == request.headers.get("host", "").lower()


async def _auth_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """401, 403 or on: see `create_app` for the rules."""
    path = request.url.path
    settings: Settings = request.app.state.monitor.settings
    if path in PUBLIC_PATHS or (path == "/metrics" and settings.metrics_public):
        return await call_next(request)
    role = authenticate(request.headers.get("authorization"), settings)
    if role is None:
        if path == "/admin":
            page = _render_page(request, authenticated=False)
            headers = {"WWW-Authenticate": f'Bearer realm="{REALM}"'}
            return HTMLResponse(page, status_code=401, headers=headers)
        challenge = f'Bearer realm="{REALM}", Basic realm="{REALM}"'
        return JSONResponse(
            {"detail": "authentication required"},
            status_code=401,
            headers={"WWW-Authenticate": challenge},
        )
    if request.method not in READ_METHODS:
        if role != "admin":
            return JSONResponse({"detail": "the admin role is required"}, status_code=403)
        if settings.read_only:
            return JSONResponse({"detail": "read-only mode"}, status_code=403)
        if not _same_origin(request):
            return JSONResponse({"detail": "cross-origin request refused"}, status_code=403)
    request.state.role = role
    return await call_next(request)


# -- HTTP: errors -------------------------------------------------------------------------


def _error_body(loc: Iterable[Any], message: str, kind: str) -> dict[str, Any]:
    return {"detail": [{"loc": list(loc), "msg": message, "type": kind}]}


async def _monitor_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, InvalidJobError):
        # A location in the query or the path is the request's; anything else is the body's.
        where = exc.loc if exc.loc[:1] in (("query",), ("path",)) else ("body", *exc.loc)
        body = _error_body(where, exc.message, "value_error")
        return JSONResponse(body, status_code=422)
    status = exc.status_code if isinstance(exc, MonitorError) else 400
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _bad_input(request: Request, exc: Exception) -> JSONResponse:
    # Input that passed validation and still broke something (an overflowing date, a
    # value APScheduler rejects): the client's fault, so a 422, and a log line for us.
    logger.warning("unexpected bad input on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(_error_body(("request",), str(exc)[:500], "invalid_input"), 422)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("history database error on %s", request.url.path, exc_info=exc)
    return JSONResponse({"detail": "the history database is unavailable"}, status_code=503)


# -- HTTP: routes -------------------------------------------------------------------------

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most 500")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
RunId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _rfc3339(value: object) -> object:
    """Only an RFC 3339 date-time (``2026-03-29T01:00:00Z``): pydantic alone would also
    read a number such as ``0.5`` as a Unix time, which the schema does not promise."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("since must be a date-time such as 2026-03-29T01:00:00Z") from None
    return value


Since = Annotated[
    datetime | None, BeforeValidator(_rfc3339), Query(description="RFC 3339, with an offset")
]


def _monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    monitor._require_started()
    return monitor


def _add_routes(app: FastAPI) -> None:
    security = [Depends(HTTPBearer(auto_error=False)), Depends(HTTPBasic(auto_error=False))]
    api = APIRouter(prefix=API_PREFIX, dependencies=security)

    @api.get("/scheduler", response_model=SchedulerView, tags=["scheduler"])
    def get_scheduler(request: Request) -> SchedulerView:
        """The scheduler's state, time zone and job count."""
        return _monitor(request).scheduler_info()

    @api.post("/scheduler/pause", response_model=SchedulerView, tags=["scheduler"])
    def pause_scheduler(request: Request) -> SchedulerView:
        """Stop firing jobs (idempotent)."""
        return _monitor(request).pause_scheduler()

    @api.post("/scheduler/resume", response_model=SchedulerView, tags=["scheduler"])
    def resume_scheduler(request: Request) -> SchedulerView:
        """Fire jobs again (idempotent)."""
        return _monitor(request).resume_scheduler()

    @api.get("/tasks", response_model=list[TaskView], tags=["jobs"])
    def list_tasks(request: Request) -> list[TaskView]:
        """The registered tasks, sorted by name: the only things a job can run."""
        return [TaskView(name=t.name, description=t.description) for t in _monitor(request).tasks]

    @api.get("/jobs", response_model=list[JobView], tags=["jobs"])
    def list_jobs(
        request: Request,
        state: Literal["scheduled", "paused"] | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Offset = 0,
    ) -> list[JobView]:
        """Jobs sorted by id."""
        return _monitor(request).list_jobs(state, limit, offset)

    @api.post("/jobs", response_model=JobView, status_code=201, tags=["jobs"])
    def create_job(request: Request, response: Response, spec: JobCreate) -> JobView:
        """Create a job: 201 with ``Location: /api/jobs/{id}``; 409 if the id is taken."""
        view = _monitor(request).add_job(spec)
        response.headers["Location"] = f"{API_PREFIX}/jobs/{view.id}"
        return view

    @api.get("/jobs/{job_id}", response_model=JobView, tags=["jobs"])
    def get_job(request: Request, job_id: str) -> JobView:
        """One job."""
        return _monitor(request).get_job(job_id)

    @api.patch("/jobs/{job_id}", response_model=JobView, tags=["jobs"])
    def patch_job(request: Request, job_id: str, patch: JobPatch) -> JobView:
        """Change some fields, all or none; a new trigger recomputes ``next_run_time``."""
        return _monitor(request).update_job(job_id, patch)

    @api.delete("/jobs/{job_id}", status_code=204, tags=["jobs"])
    def delete_job(request: Request, job_id: str) -> Response:
        """Delete the job (204); its runs stay in ``GET /api/runs?job_id=``."""
        _monitor(request).remove_job(job_id)
        return Response(status_code=204)

    @api.post("/jobs/{job_id}/pause", response_model=JobView, tags=["jobs"])
    def pause_job(request: Request, job_id: str) -> JobView:
        """Pause the job (idempotent)."""
        return _monitor(request).pause_job(job_id)

    @api.post("/jobs/{job_id}/resume", response_model=JobView, tags=["jobs"])
    def resume_job(request: Request, job_id: str) -> JobView:
        """Resume the job (idempotent)."""
        return _monitor(request).resume_job(job_id)

    @api.post("/jobs/{job_id}/run", response_model=RunAccepted, status_code=202, tags=["jobs"])
    def run_job(request: Request, response: Response, job_id: str) -> RunAccepted:
        """Run now (202 with the run id and ``Location: /api/runs/{run_id}``); 409 at
        ``max_instances``. ``next_run_time`` is unchanged."""
        run_id = _monitor(request).run_now(job_id)
        response.headers["Location"] = f"{API_PREFIX}/runs/{run_id}"
        return RunAccepted(run_id=run_id, job_id=job_id)

    @api.get("/jobs/{job_id}/runs", response_model=list[RunRecord], tags=["runs"])
    def list_job_runs(
        request: Request,
        job_id: str,
        status: RunStatus | None = None,
        trigger: RunTrigger | None = None,
        since: Since = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> list[RunRecord]:
        """The runs of an existing job, newest first (404 for an unknown job)."""
        monitor = _monitor(request)
        monitor.get_job(job_id)
        return monitor.list_runs(
            job_id=job_id,
            status=status,
            trigger=trigger,
            since=_aware(since),
            limit=limit,
            offset=offset,
        )

    @api.get("/runs", response_model=list[RunRecord], tags=["runs"])
    def list_runs(
        request: Request,
        job_id: Annotated[str | None, Query(max_length=200)] = None,
        status: RunStatus | None = None,
        trigger: RunTrigger | None = None,
        since: Since = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> list[RunRecord]:
        """All runs, deleted jobs' included, newest first; ``since`` is inclusive."""
        return _monitor(request).list_runs(
            job_id=job_id,
            status=status,
            trigger=trigger,
            since=_aware(since),
            limit=limit,
            offset=offset,
        )

    @api.get("/runs/{run_id}", response_model=RunRecord, tags=["runs"])
    def get_run(request: Request, run_id: RunId) -> RunRecord:
        """One run."""
        return _monitor(request).get_run(run_id)

    @api.get("/alerts", response_model=list[AlertView], tags=["alerts"])
    def list_alerts(
        request: Request,
        state: Literal["open", "resolved"] | None = None,
        job_id: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Offset = 0,
    ) -> list[AlertView]:
        """Incidents, newest first."""
        return _monitor(request).list_alerts(state=state, job_id=job_id, limit=limit, offset=offset)

    app.include_router(api)

    @app.get("/metrics", tags=["ops"], dependencies=security, response_class=Response)
    def metrics(request: Request) -> Response:
        """Prometheus text format (needs a token unless ``metrics_public``)."""
        return Response(_monitor(request).metrics_text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"])
    def healthz(request: Request) -> JSONResponse:
        """Public: 200 if the scheduler runs (or is paused) and the database answers, else 503."""
        monitor: Monitor = request.app.state.monitor
        scheduler = monitor.scheduler_info().state if monitor.started else "stopped"
        database = monitor.started and monitor.store.ping()
        healthy = scheduler != "stopped" and database
        body = {
            "status": "ok" if healthy else "unavailable",
            "scheduler": scheduler,
            "database": "ok" if database else "unavailable",
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    @app.get("/admin", response_class=HTMLResponse, tags=["ops"], dependencies=security)
    def admin_page(request: Request) -> HTMLResponse:
        """The admin page (without credentials: 401 and a login form)."""
        return HTMLResponse(_render_page(request, authenticated=True))


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise InvalidJobError(("query", "since"), "since needs a time zone offset, e.g. Z")
    return moment


# -- HTTP: the page -----------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cronkata monitor</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.health-ok { color: #17702d; } .health-failing { color: #b00020; font-weight: bold; }
.health-late { color: #b35900; font-weight: bold; } .health-paused { color: #666; }
.status-failure { color: #b00020; } .status-success { color: #17702d; }
#flash { min-height: 1.4em; color: #b00020; }
form.edit { display: inline; }
</style>
</head>
<body>
<h1>cronkata monitor</h1>
<p id="flash" role="status"></p>
<main id="app" data-authenticated="{{ 'true' if authenticated else 'false' }}">
{% if not authenticated %}
<form id="login">
  <p>Log in with the viewer token (read only) or the admin token.</p>
  <label>Token <input id="token" name="token" type="password" required
    autocomplete="current-password"></label>
  <button id="login-button" type="submit">Log in</button>
</form>
{% else %}
<section id="scheduler">
  <p>Scheduler: <strong id="scheduler-state">{{ scheduler.state }}</strong>
  ({{ scheduler.timezone }}, {{ scheduler.job_count }} jobs). Logged in as
  <strong id="role">{{ role }}</strong>{% if read_only %} (read-only mode){% endif %}.
  {% if can_edit %}
    {% if scheduler.state == "running" %}
    <button data-method="POST" data-url="/api/scheduler/pause">Pause scheduler</button>
    {% else %}
    <button data-method="POST" data-url="/api/scheduler/resume">Resume scheduler</button>
    {% endif %}
  {% endif %}
  <button id="logout" type="button">Log out</button></p>
</section>
<h2>Jobs</h2>
<table id="jobs">
<tr><th>id</th><th>task</th><th>schedule</th><th>state</th><th>next run (UTC)</th>
<th>health</th><th>last run</th><th>failures in a row</th>
{% if can_edit %}<th>actions</th>{% endif %}</tr>
{% for job in jobs %}
<tr data-job-id="{{ job.id }}">
  <td>{{ job.id }}</td><td>{{ job.task }}</td><td>{{ job.schedule }}</td>
  <td class="state">{{ job.state }}</td>
  <td class="next-run">{{ job.next_run_time|when }}</td>
  <td class="health health-{{ job.health }}">{{ job.health }}</td>
  <td>{{ job.last_run.status if job.last_run else "-" }}</td>
  <td>{{ job.consecutive_failures }}</td>
  {% if can_edit %}
  <td>
    {% if job.state == "paused" %}
    <button class="resume" data-method="POST"
      data-url="/api/jobs/{{ job.id|urlencode }}/resume">Resume</button>
    {% else %}
    <button class="pause" data-method="POST"
      data-url="/api/jobs/{{ job.id|urlencode }}/pause">Pause</button>
    {% endif %}
    <button class="run" data-method="POST"
      data-url="/api/jobs/{{ job.id|urlencode }}/run">Run now</button>
    <form class="edit" data-url="/api/jobs/{{ job.id|urlencode }}">
      <select name="type" aria-label="schedule type">
        <option value="interval"{% if job.trigger.type == "interval" %} selected{% endif %}>
          every N seconds</option>
        <option value="cron"{% if job.trigger.type == "cron" %} selected{% endif %}>
          cron</option>
      </select>
      <input name="value" size="14" aria-label="schedule"
        value="{{ job.trigger.seconds if job.trigger.type == 'interval'
                  else job.trigger.expression }}">
      <button type="submit">Save schedule</button>
    </form>
  </td>
  {% endif %}
</tr>
{% else %}
<tr><td colspan="9">No jobs.</td></tr>
{% endfor %}
</table>
<h2>Open alerts</h2>
<table id="alerts">
<tr><th>job</th><th>kind</th><th>since (UTC)</th><th>message</th></tr>
{% for alert in alerts %}
<tr><td>{{ alert.job_id }}</td><td>{{ alert.kind }}</td>
<td>{{ alert.opened_at|when }}</td><td>{{ alert.message }}</td></tr>
{% else %}
<tr><td colspan="4">None.</td></tr>
{% endfor %}
</table>
<h2>Recent runs</h2>
<table id="runs">
<tr><th>run</th><th>job</th><th>trigger</th><th>attempt</th><th>scheduled (UTC)</th>
<th>status</th><th>duration (s)</th><th>error</th></tr>
{% for run in runs %}
<tr><td>{{ run.run_id }}</td><td>{{ run.job_id }}</td><td>{{ run.trigger }}</td>
<td>{{ run.attempt }}</td>
<td>{{ run.scheduled_at|when }}</td><td class="status-{{ run.status }}">{{ run.status }}</td>
<td>{{ "%.3f"|format(run.duration_seconds) if run.duration_seconds is not none else "-" }}</td>
<td>{{ (run.error_type ~ ": " ~ run.error_message) if run.error_type else "" }}</td></tr>
{% else %}
<tr><td colspan="8">No runs yet.</td></tr>
{% endfor %}
</table>
{% endif %}
</main>
<script>
{% raw %}
"use strict";
const KEY = "cronkata-monitor-token";
const flash = (text) => { document.getElementById("flash").textContent = text; };
function authHeaders() {
  const token = sessionStorage.getItem(KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}
async function refresh() {
  const response = await fetch("/admin", { headers: authHeaders(), cache: "no-store" });
  if (response.status === 401 && sessionStorage.getItem(KEY)) {
    sessionStorage.removeItem(KEY);
    flash("That token was not accepted.");
  }
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  document.getElementById("app").replaceWith(page.getElementById("app"));
}
async function call(method, url, body) {
  const headers = authHeaders();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.ok) {
    flash("");
  } else {
    const data = await response.json().catch(() => ({}));
    flash(response.status + ": " + JSON.stringify(data.detail === undefined ? data : data.detail));
  }
  await refresh();
}
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-url]");
  if (button) { event.preventDefault(); call(button.dataset.method, button.dataset.url); }
  if (event.target.id === "logout") { sessionStorage.removeItem(KEY); flash(""); refresh(); }
});
document.addEventListener("submit", (event) => {
  const form = event.target;
  event.preventDefault();
  if (form.id === "login") {
    sessionStorage.setItem(KEY, form.elements.token.value);
    flash("");
    refresh();
  } else if (form.classList.contains("edit")) {
    const type = form.elements.type.value, value = form.elements.value.value.trim();
    const trigger = type === "interval"
      ? { type: "interval", seconds: Number(value) }
      : { type: "cron", expression: value };
    call("PATCH", form.dataset.url, { trigger });
  }
});
const loggedOut = document.getElementById("app").dataset.authenticated === "false";
if (loggedOut && sessionStorage.getItem(KEY)) {
  refresh();
}
{% endraw %}
</script>
</body>
</html>
"""

_templates = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_templates.filters["when"] = lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


@cache
def _page() -> jinja2.Template:
    """The page's template, compiled at its first use: importing the module stays cheap."""
    return _templates.from_string(PAGE)


def _render_page(request: Request, *, authenticated: bool) -> str:
    if not authenticated:
        return _page().render(authenticated=False)
    monitor = _monitor(request)
    role: Role = getattr(request.state, "role", "viewer")
    return _page().render(
        authenticated=True,
        role=role,
        read_only=monitor.settings.read_only,
        can_edit=role == "admin" and not monitor.settings.read_only,
        scheduler=monitor.scheduler_info(),
        jobs=monitor.list_jobs(limit=MAX_LIMIT),
        alerts=monitor.list_alerts(state="open", limit=50),
        runs=monitor.list_runs(limit=20),
    )


# -- the app ------------------------------------------------------------------------------


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    rng: Callable[[], float] | None = None,
    tasks: TaskRegistry | None = None,
) -> FastAPI:
    """A new app with its own Monitor (``app.state.monitor``), started and stopped by the
    app's lifespan (``with TestClient(app) as client:`` runs it); the keyword arguments
    are passed to `Monitor`. Before the lifespan ran, routes answer 503.

    Routes: the API under ``/api`` (see ``/openapi.json``), ``/metrics``, ``/healthz``,
    ``/admin``. Auth, checked before anything else (so before the body is parsed):
        * ``/healthz`` and ``/openapi.json`` are public; ``/metrics`` too if
          ``settings.metrics_public``;
        * every other path, unknown ones included, needs a viewer or admin token
          (`authenticate`): without one, or with a wrong one, 401 with
          ``WWW-Authenticate`` (``/admin``: an HTML login form, challenge ``Bearer`` only);
        * GET, HEAD and OPTIONS need the viewer role (an admin has it too); any other
          method needs the admin role (403 for a viewer), and is 403 for everyone if
          ``settings.read_only``, or if its ``Origin`` header names another host.
    Errors: JSON. 404 unknown id; 409 duplicate id, ``max_jobs`` or ``max_instances``; 422
    invalid input, with ``detail`` a list of ``{loc, msg, type}``; 503 when the database
    does not answer. A refused request changes nothing.
    """
    monitor = Monitor(settings, clock=clock, notifier=notifier, rng=rng, tasks=tasks)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Show our INFO lines next to uvicorn's (does nothing if logging is set up already).
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        monitor.start()
        try:
            yield
        finally:
            monitor.shutdown(wait=True)

    app = FastAPI(
        title="cronkata production monitor",
        version="1.0",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN
        redoc_url=None,
    )
    app.state.monitor = monitor
    app.middleware("http")(_auth_middleware)
    app.add_exception_handler(MonitorError, _monitor_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    for error in (ValueError, TypeError, OverflowError, ArithmeticError, LookupError):
        app.add_exception_handler(error, _bad_input)
    _add_routes(app)
    return app
