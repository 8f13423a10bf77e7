"""Exercise production_monitor (level 4): run history, retries, alerts, metrics, an admin API.

Read first: notes/07e_best_practices.md (the production part, then the exercise at its end).

One process runs an APScheduler BackgroundScheduler whose jobs are defined at runtime
through a small FastAPI admin API. Every run goes into a SQL history (SQLAlchemy 2); a
failed run is retried with exponential backoff; a job that keeps failing, or whose fire
time passed without a run (a dead man's switch), opens one alert, reminds at most every
so often, and resolves once; Prometheus metrics count all of it; viewer and admin tokens
guard every route. An injectable clock, notifier, random source and a synchronous
executor let the tests drive all of it in virtual time.

Given (the plumbing, not the lesson): the settings, the task registry and the demo tasks,
the request and response models (pydantic), the errors, the tables and the Store's simple
reads and writes, the executors, the Monitor's constructor, life cycle and small helpers
(``_view``, ``_upcoming``, ``_on_event`` for missed and skipped fire times, ``_open``,
``_resolve``, ``_notify``, ``_cancel_retry``), the error handlers, ``/healthz``, the
``/admin`` page and ``create_app``. Yours: every body that raises NotImplementedError:
backoff and triggers, the history queries and retention, the runner (history, retries,
metrics), the alert decisions, the gauges, the Monitor's job operations (add, PATCH,
pause, resume, run now, delete), authentication and the API routes. The private methods
marked "yours" are a suggested structure: change it if you like, but keep every public
name, signature and constant exactly as it is (the hidden tests use them), and keep
``_add_routes``, ``_auth_middleware`` and ``_gauge_families``, which the given code calls.

Each promise the tests grade ends with a tag such as (#first-run-after-interval); a failing test names its tag.

Useful pieces: ``scheduler.add_job/reschedule_job/modify_job/pause_job/resume_job/
remove_job``, ``DateTrigger``, ``CronTrigger.from_crontab``; ``select(...).where(...)
.order_by(RunRow.id.desc()).limit().offset()``, ``delete``, ``func.count``;
``Counter.labels(...).inc()``, ``Histogram.labels(...).observe()``,
``GaugeMetricFamily``; ``hmac.compare_digest``, ``base64.b64decode``; FastAPI's
``APIRouter``, ``Query(ge=..., le=...)``, ``Response``, ``status_code=``.

Check your work:  python3 -m grader check production_monitor   (from the repository root)
Try it by hand:   cd exercises/level4 && MONITOR_ADMIN_TOKEN=admin-secret-token \\
                      MONITOR_VIEWER_TOKEN=viewer-secret-token MONITOR_DEMO_JOBS=true \\
                      ../../.venv/bin/uvicorn --factory \\
                      level4_production_monitor:create_app --port 8000
                  then open http://localhost:8000/admin (`python3 -m grader setup`, once,
                  from the repository root, creates .venv; one process only: never
                  --workers 2, every job would run twice)
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
from functools import cache
from datetime import UTC, datetime, timedelta, tzinfo
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
        """Runs matching every filter given, newest first; yours.

        * Newest first: descending ``RunRow.id`` (run ids grow in the order runs are recorded),
          never by a time column (#runs-newest-first).
        * Filters, all optional and combined with AND: ``job_id``, ``status``, ``trigger``, and
          ``since``, which keeps runs with ``scheduled_at >= since`` (inclusive; ``since`` is
          aware) (#runs-filters).
        * Paging: skip ``offset`` runs, then return at most ``limit`` (#runs-paging).
        """
        table = RunRow.__table__
        conditions = []
        for column, wanted in (("job_id", job_id), ("status", status), ("trigger", trigger)):
            if wanted is not None:
                conditions.append(table.c[column] == wanted)
        if since is not None:
            conditions.append(table.c.scheduled_at >= since)
        statement = (
            select(RunRow)
            .where(*conditions)
            .order_by(table.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        with self.session() as session:
            rows = session.execute(statement).scalars().all()
        return list(map(_run_record, rows))

    def job_stats(self, job_id: str) -> JobStats:
        """What the history says about ``job_id`` (a JobStats); yours.

        ``last_run``: the newest run that is not ``running``; ``last_success_at`` /
        ``last_failure_at``: ``finished_at`` of the newest success / failure;
        ``consecutive_failures``: failures newer than the newest success (all failures if none).
        Missed and skipped runs neither count nor reset. A job id without runs: ``JobStats()``.
        The Monitor computes this when a job is added, so a job re-created under an old id shows
        its history (#job-stats).
        """
        def newest(session: Session, *criteria: Any) -> RunRow | None:
            return session.execute(
                select(RunRow).where(RunRow.job_id == job_id, *criteria).order_by(RunRow.id.desc()).limit(1)
            ).scalar_one_or_none()

        with self.session() as session:
            finished = newest(session, RunRow.status.not_in(["running"]))
            if finished is None:
                return JobStats()
            good = newest(session, RunRow.status == "success")
            bad = newest(session, RunRow.status == "failure")
            floor = good.id if good is not None else 0
            streak = session.execute(
                select(func.count(RunRow.id)).where(
                    RunRow.job_id == job_id, RunRow.status == "failure", RunRow.id > floor
                )
            ).scalar_one()
        return JobStats(
            _run_record(finished),
            good.finished_at if good else None,
            bad.finished_at if bad else None,
            int(streak),
        )

    def prune(self, now: datetime, max_age_seconds: int, max_runs_per_job: int) -> int:
        """Delete old runs; return how many were deleted; yours.

        First every run with ``scheduled_at < now - max_age_seconds`` (#retention-age), then, for
        each job id with more than ``max_runs_per_job`` runs, all but its newest
        ``max_runs_per_job`` (by run id) (#retention-per-job). Runs still ``running`` are never
        deleted. Delete in batches (a few thousand ids per transaction) so that writers never
        wait for a whole prune.
        """
        CHUNK = 2000

        def drain(*criteria: Any) -> int:
            total = 0
            while True:
                with self.session() as session:
                    victims = session.execute(
                        select(RunRow.id).where(RunRow.status != "running", *criteria).order_by(RunRow.id).limit(CHUNK)
                    ).scalars().all()
                    if not victims:
                        return total
                    result = session.execute(delete(RunRow).where(RunRow.id.in_(victims)))
                    total += result.rowcount or len(victims)
                if len(victims) < CHUNK:
                    return total

        removed = drain(RunRow.scheduled_at < now - timedelta(seconds=max_age_seconds))
        with self.session() as session:
            counts = session.execute(
                select(RunRow.job_id, func.count(RunRow.id)).group_by(RunRow.job_id)
            ).all()
        for name, how_many in counts:
            if how_many <= max_runs_per_job:
                continue
            with self.session() as session:
                keep_from = session.execute(
                    select(RunRow.id).where(RunRow.job_id == name).order_by(RunRow.id.desc())
                    .limit(1).offset(max_runs_per_job - 1)
                ).scalar_one_or_none()
            if keep_from is not None:
                removed += drain(RunRow.job_id == name, RunRow.id < keep_from)
        return removed

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

    Exactly ``min(max_backoff_seconds, backoff_seconds * factor ** (attempt - 1) +
    jitter_seconds * r)``, ``r`` in [0, 1): the jitter is added before the cap, so a delay
    never exceeds the cap (#backoff-formula). ``attempt < 1`` raises ValueError; a huge
    ``attempt`` must not overflow (cap the exponent, e.g. at 100) (#backoff-attempt-checked).
    """
    if not isinstance(attempt, int) or attempt < 1:
        raise ValueError("attempt counts from 1")
    growth = policy.factor ** (min(attempt, 101) - 1)
    delay = policy.backoff_seconds * growth + policy.jitter_seconds * r
    return delay if delay < policy.max_backoff_seconds else policy.max_backoff_seconds


def build_trigger(spec: IntervalSpec | CronSpec, default_zone: tzinfo) -> BaseTrigger:
    """The APScheduler trigger of a spec; InvalidJobError(loc, message) if it cannot work; yours.

    * ``IntervalSpec``: ``IntervalTrigger(seconds=..., timezone=default_zone)``: the first run
      is ``seconds`` after now (#interval-from-now).
    * ``CronSpec``: ``CronTrigger.from_crontab(expression, timezone=zone)`` where ``zone`` is
      the spec's ``timezone`` or, when null, ``default_zone``: "0 3 * * *" with
      ``Asia/Shanghai`` fires at 03:00 Shanghai time (#cron-in-zone).
    * An expression APScheduler rejects (any exception: ValueError, KeyError, ...), or one
      without a fire time from now on (``0 0 31 2 *``), raises
      ``InvalidJobError(("trigger", "expression"), ...)``; an unknown zone
      ``InvalidJobError(("trigger", "timezone"), ...)`` (#cron-invalid-422).
    """
    if spec.type == "interval":
        return IntervalTrigger(seconds=spec.seconds, timezone=default_zone)
    if spec.timezone is None:
        where: tzinfo = default_zone
    else:
        try:
            where = ZoneInfo(spec.timezone)
        except Exception:
            raise InvalidJobError(("trigger", "timezone"), f"not an IANA zone: {spec.timezone!r}") from None
    loc = ("trigger", "expression")
    try:
        cron = CronTrigger.from_crontab(spec.expression, timezone=where)
    except Exception as problem:
        raise InvalidJobError(loc, f"cannot parse {spec.expression!r}: {problem}") from None
    try:
        upcoming = cron.get_next_fire_time(None, datetime.now(UTC).astimezone(where))
    except Exception as problem:
        raise InvalidJobError(loc, f"{spec.expression!r} does not work: {problem}") from None
    if upcoming is None:
        raise InvalidJobError(loc, f"{spec.expression!r} has no future fire time")
    return cron


def _check_arguments(task: Task, args: list[Any], kwargs: dict[str, Any]) -> None:
    if len(json.dumps([args, kwargs])) > MAX_ARGUMENTS_BYTES:
        raise InvalidJobError(("args",), f"args and kwargs exceed {MAX_ARGUMENTS_BYTES} bytes")
    try:
        inspect.signature(task.func).bind(*args, **kwargs)
    except TypeError as error:
        raise InvalidJobError(("kwargs",), f"arguments do not fit {task.name}: {error}") from error
    except ValueError:  # a builtin without a signature: nothing to check
        pass


def _job_copy(job: Job, kwargs: dict[str, Any], misfire_grace_time: Any = ...) -> Job:
    """A copy of an APScheduler Job with other kwargs (given): what an executor runs.

    The copy is never added to a job store; ``misfire_grace_time=None`` makes a run that
    starts late never "missed" (run-now uses that).
    """
    copy = Job.__new__(Job)
    for slot in Job.__slots__:
        if slot != "__weakref__" and hasattr(job, slot):
            setattr(copy, slot, getattr(job, slot))
    copy.kwargs = kwargs
    if misfire_grace_time is not ...:
        copy.misfire_grace_time = misfire_grace_time
    return copy


class _Submitting:
    """Hands each submission's fire time to the monitor's runner (given: APScheduler does
    not): a scheduled run's ``_run`` gets ``scheduled_at``, the fire time."""

    def submit_job(self, job: Job, run_times: list[datetime]) -> None:
        """Submit a copy of ``job`` whose kwargs carry ``scheduled_at`` (the fire time)."""
        if "job_id" in job.kwargs and "scheduled_at" not in job.kwargs:
            job = _job_copy(job, {**job.kwargs, "scheduled_at": run_times[-1]})
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
        """Stop firing every job (idempotent); return scheduler_info(); yours.

        While the scheduler is paused no job fires; pausing twice is one pause, resuming twice
        one resume (#scheduler-pause-resume). Late alerts are neither opened nor resolved while
        it is paused.
        """
        self._require_started()
        with self._lock:
            if self.scheduler.state == STATE_RUNNING:
                self.scheduler.pause()
                logger.info("scheduler paused")
            return self.scheduler_info()

    def resume_scheduler(self) -> SchedulerView:
        """Fire jobs again (idempotent); return scheduler_info(); yours.

        Fire times that passed while the scheduler was paused never make a job late: set each
        job state's ``watch_from`` to now and ``pending_due`` to None before resuming.
        """
        self._require_started()
        with self._lock:
            if self.scheduler.state == STATE_PAUSED:
                now = self.clock()
                for state in self._jobs.values():
                    state.watch_from = now
                    state.pending_due = None
                self.scheduler.resume()
                logger.info("scheduler resumed")
            return self.scheduler_info()

    # -- jobs -------------------------------------------------------------------------

    def list_jobs(
        self, state: Literal["scheduled", "paused"] | None = None, limit: int = 100, offset: int = 0
    ) -> list[JobView]:
        """The jobs' views sorted by id, only ``scheduled`` or ``paused`` ones if ``state``
        is given, then ``[offset : offset + limit]`` (#jobs-listed); yours.
        """
        with self._lock:
            selected = []
            for job_id in sorted(self._jobs):
                view = self._view(job_id)
                if state is None or view.state == state:
                    selected.append(view)
        return selected[offset:][:limit]

    def get_job(self, job_id: str) -> JobView:
        """The job's view; NotFoundError for an unknown id (#get-job-404); yours."""
        with self._lock:
            return self._view(job_id)

    def add_job(self, spec: JobCreate) -> JobView:
        """Add a job and return its view; yours.

        1. Validate first (``_validate``: the task, its arguments, the trigger): InvalidJobError
           before any conflict check (a bad request is bad anywhere).
        2. ConflictError for an id that exists (#duplicate-409) or when ``settings.max_jobs``
           jobs exist (#max-jobs-409).
        3. ``scheduler.add_job(self._run, trigger, id=spec.id, name=spec.name or spec.id,
           kwargs={"job_id": spec.id, "trigger": "scheduled"}, max_instances=...,
           misfire_grace_time=..., coalesce=True)``; a spec with ``paused=True`` gets
           ``next_run_time=None``: created paused, no next run time (#create-paused).
        4. Remember a ``_JobState(spec=spec, stats=self.store.job_stats(spec.id),
           watch_from=now)``.
        """
        trigger = self._validate(spec)
        with self._lock:
            if spec.id in self._jobs:
                raise ConflictError(f"a job with id {spec.id!r} exists already")
            if len(self._jobs) >= self.settings.max_jobs:
                raise ConflictError(f"at most {self.settings.max_jobs} jobs")
            stats = self.store.job_stats(spec.id)
            options: dict[str, Any] = {}
            if spec.paused:
                options["next_run_time"] = None
            self.scheduler.add_job(
                self._run,
                trigger,
                id=spec.id,
                name=spec.name or spec.id,
                kwargs={"job_id": spec.id, "trigger": "scheduled"},
                max_instances=spec.max_instances,
                misfire_grace_time=spec.misfire_grace_time,
                coalesce=True,
                **options,
            )
            self._jobs[spec.id] = _JobState(spec=spec, stats=stats, watch_from=self.clock())
            logger.info("job %s added (%s)", spec.id, spec.task)
            return self._view(spec.id)

    def update_job(self, job_id: str, patch: JobPatch) -> JobView:
        """Apply the fields set in ``patch``, all or none; return the new view; yours.

        * Merge ``patch.model_dump(include=patch.model_fields_set)`` into the current spec's
          ``model_dump()``, validate the whole result (``JobCreate.model_validate``, then
          ``_validate``) and only then change anything: a patch with one valid and one invalid
          field raises InvalidJobError and changes nothing (#patch-atomic). (Turn a pydantic
          ValidationError into ``InvalidJobError(tuple(loc), msg)`` of its first error.)
        * A ``trigger`` in the patch goes through ``scheduler.reschedule_job(job_id,
          trigger=...)``, so the next run time is recomputed from now: every 30 s from now, or the
          cron's next fire time (``modify_job(trigger=...)`` would keep the old next run time)
          (#patch-reschedules). A patch without a trigger keeps the next run time
          (#patch-keeps-next-run).
        * A paused job stays paused with the new trigger (``modify_job(job_id, trigger=...)``,
          no next run time); resumed later, it runs at the new trigger's next fire time after
          then (an interval counts from the PATCH) (#patch-paused-stays).
        * A new trigger cancels a pending retry and resets the lateness watch (``watch_from`` now,
          ``pending_due`` and ``last_fire`` None). Name, max_instances and misfire_grace_time go to
          ``modify_job``.
        """
        fields = set(patch.model_fields_set)
        with self._lock:
            current = self._state(job_id)
            aps_job = self._apscheduler_job(job_id)
            candidate = current.spec.model_dump()
            candidate.update(patch.model_dump(include=fields))
            try:
                new_spec = JobCreate.model_validate(candidate)
            except ValidationError as problem:
                detail = problem.errors(include_url=False)[0]
                raise InvalidJobError(tuple(detail["loc"]), detail["msg"]) from None
            new_trigger = self._validate(new_spec)
            plain = {
                key: value
                for key, value in (
                    ("name", new_spec.name or job_id),
                    ("max_instances", new_spec.max_instances),
                    ("misfire_grace_time", new_spec.misfire_grace_time),
                )
                if key in fields
            }
            if "trigger" in fields:
                self._cancel_retry(current)
                was_paused = aps_job.next_run_time is None
                if was_paused:
                    plain["trigger"] = new_trigger
                else:
                    self.scheduler.reschedule_job(job_id, trigger=new_trigger)
                current.watch_from = self.clock()
                current.pending_due = current.last_fire = None
            if plain:
                self.scheduler.modify_job(job_id, **plain)
            current.spec = new_spec
            return self._view(job_id)

    def remove_job(self, job_id: str) -> None:
        """Delete the job; yours.

        Its pending retry is cancelled and the scheduler job removed; its history stays:
        ``list_runs(job_id=...)`` still returns its runs, and a job later created under the same
        id starts from them (#delete-keeps-history). Its open alerts are resolved (``deleted``),
        and its labelled series leave the registry: ``_forget_label`` on ``_runs_total`` (every
        status), ``_duration`` and ``_retries_total`` (#metric-labels-bounded).
        """
        with self._lock:
            state = self._state(job_id)
            self._cancel_retry(state)
            with suppress(JobLookupError):
                self.scheduler.remove_job(job_id)
            del self._jobs[job_id]
            now = self.clock()
            for alert_id in list(state.open_alerts.values()):
                self._resolve(alert_id, "deleted", now)
            state.open_alerts.clear()
            for status in ("running", "success", "failure", "missed", "skipped"):
                self._forget_label(self._runs_total, job_id, status)
            self._forget_label(self._duration, job_id)
            self._forget_label(self._retries_total, job_id)
            logger.info("job %s deleted", job_id)

    def pause_job(self, job_id: str) -> JobView:
        """Pause the job (idempotent) and return its view; yours.

        No next run time (``scheduler.pause_job``), ``state == health == "paused"``; pausing a
        paused job changes nothing (#pause-idempotent). The pending retry is cancelled
        (#retry-cancelled-on-pause). Its open alerts are resolved (resolution ``paused``, one
        ``resolved`` notification each) (#pause-resolves-alerts).
        """
        with self._lock:
            state = self._state(job_id)
            job = self._apscheduler_job(job_id)
            if job.next_run_time is not None:
                self.scheduler.pause_job(job_id)
            self._cancel_retry(state)
            now = self.clock()
            for kind, alert_id in list(state.open_alerts.items()):
                del state.open_alerts[kind]
                self._resolve(alert_id, "paused", now)
            return self._view(job_id)

    def resume_job(self, job_id: str) -> JobView:
        """Resume the job (idempotent) and return its view; yours.

        The next run time is the trigger's next fire time from now: fire times that fell in the
        pause are not made up; resuming a scheduled job changes nothing (#resume-next-fire). Reset
        the lateness watch (``watch_from`` now, ``pending_due``/``last_fire`` None); a job still
        failing alerts again at once (``_evaluate_failing``).
        """
        with self._lock:
            state = self._state(job_id)
            job = self._apscheduler_job(job_id)
            if job.next_run_time is None:
                self.scheduler.resume_job(job_id)
                now = self.clock()
                state.watch_from, state.pending_due, state.last_fire = now, None, None
                self._evaluate_failing(job_id, now)
            return self._view(job_id)

    def run_now(self, job_id: str) -> int:
        """Start a manual run now (also of a paused job) and return its run_id; yours.

        * The run is recorded with ``trigger="manual"``, ``attempt=1``, ``scheduled_at`` = now,
          and runs on the job's executor like any run (#run-now-manual).
        * The job's next run time is unchanged (never ``modify_job(next_run_time=now)``)
          (#run-now-keeps-next-run).
        * ConflictError when ``max_instances`` runs of the job are running now, counting both
          ``_JobState.running`` and the executor's ``_instances[job_id]``; no run is recorded
          then (#run-now-409).

        How: ``executor = self.scheduler._lookup_executor(job.executor)``; record the run
        (``store.add_run(..., status="running", started_at=now)``); submit
        ``_job_copy(job, {"job_id": ..., "trigger": "manual", "run_id": ..., "scheduled_at":
        now})`` with ``executor.submit_job(copy, [now])``; a MaxInstancesReachedError from it
        means the run is ``skipped`` (update it, count it) and a ConflictError. With the sync
        executor the run has finished when this returns.
        """
        with self._lock:
            state = self._state(job_id)
            job = self._apscheduler_job(job_id)
            pool = self.scheduler._lookup_executor(job.executor)
            limit = state.spec.max_instances
            if state.running >= limit or pool._instances[job_id] >= limit:
                raise ConflictError(f"{job_id}: already {limit} run(s) in progress")
            started = self.clock()
            run = self.store.add_run(
                job_id=job_id, trigger="manual", attempt=1,
                scheduled_at=started, started_at=started, status="running",
            )
            payload = dict(job_id=job_id, trigger="manual", run_id=run.run_id, scheduled_at=started)
            try:
                pool.submit_job(_job_copy(job, payload, misfire_grace_time=None), [started])
            except MaxInstancesReachedError:
                self._runs_total.labels(job_id, "skipped").inc()
                self.store.update_run(run.run_id, status="skipped", started_at=None)
                raise ConflictError(f"{job_id}: max_instances reached") from None
            logger.info("manual run %d of %s submitted", run.run_id, job_id)
            return run.run_id

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
        """Runs newest first, filtered, paged: ``self.store.list_runs(...)`` (deleted
        jobs' runs included); yours.
        """
        return self.store.list_runs(
            job_id=job_id, status=status, trigger=trigger, since=since, limit=limit, offset=offset
        )

    def get_run(self, run_id: int) -> RunRecord:
        """The run; NotFoundError if there is none or it was pruned (#get-run-404); yours."""
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
        """Evaluate every job now; yours.

        For each job: ``_evaluate_late`` then ``_evaluate_failing``. Then, if
        ``settings.alert_reminder_seconds`` is set, send a ``reminder`` (``_notify``) for each
        open alert of a job that is not paused whose ``last_notified_at`` is at least that long
        ago: a failing job notified at t gets reminders at t + R, t + 2R, ... as the checks reach
        them, never more often, and none without the setting (#reminder-interval). The internal
        job ``__alerts__`` calls this every ``settings.alert_check_interval_seconds``.
        """
        at = self.clock()
        interval = self.settings.alert_reminder_seconds
        with self._lock:
            job_ids = sorted(self._jobs)
            for job_id in job_ids:
                self._evaluate_late(job_id, at)
                self._evaluate_failing(job_id, at)
            if not interval:
                return
            due_before = at - timedelta(seconds=interval)
            for job_id in job_ids:
                state = self._jobs.get(job_id)
                if state is None or self._paused(job_id):
                    continue
                for alert_id in tuple(state.open_alerts.values()):
                    alert = self.store.get_alert(alert_id)
                    if alert is not None and alert.state == "open":
                        stamp = alert.last_notified_at or alert.opened_at
                        if stamp <= due_before:
                            self._notify("reminder", alert_id, at)

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
        """Run one attempt of a job (the scheduler's callable, and run-now's); yours.

        This is where the history is written (#run-recorded):
        * unless ``run_id`` is given (run-now recorded it already), add a run with ``trigger``,
          ``attempt``, ``scheduled_at`` (the fire time, else now), ``started_at`` now, status
          ``running``; then run the task (``self.tasks.get(spec.task).func(*spec.args,
          **spec.kwargs)``) and ``_finish`` it, whatever it raised; re-raise the error afterwards
          (APScheduler's listeners see it).
        * ``_JobState.running`` counts the runs in progress (increment before, decrement in a
          ``finally``).
        * ``trigger == "scheduled"``: set ``last_fire = scheduled_at``, ``pending_due = None``
          and call ``_evaluate_late`` once the run is recorded (a run starting resolves ``late``).
        * ``trigger == "retry"``: run only if ``retry_id`` is still the job's ``retry_job_id``
          (else it was cancelled: do nothing); consume it (``retry_at``/``retry_job_id`` None);
          drop it when the job is paused or its next scheduled run is due now; record it
          ``skipped`` when ``max_instances`` runs are running. A retry that runs counts in
          ``_retries_total`` (#metric-retries).
        * The job may have been deleted meanwhile: then record nothing (mark a given ``run_id``
          ``skipped``).
        """
        now = self.clock()
        with self._lock:
            state = self._jobs.get(job_id)
            if state is None:
                if run_id is not None:
                    self.store.update_run(run_id, status="skipped", started_at=None)
                return None
            spec = state.spec
            if trigger == "retry":
                if retry_id is None or retry_id != state.retry_job_id:
                    return None  # cancelled or superseded
                state.retry_at, state.retry_job_id = None, None
                if self._paused(job_id):
                    return None
                upcoming = self._upcoming(job_id, now)
                if upcoming is not None and upcoming <= now:
                    return None  # the scheduled run takes over
                if state.running >= spec.max_instances:
                    self._record_unstarted(job_id, "retry", attempt, scheduled_at or now, "skipped")
                    return None
                self._retries_total.labels(job_id).inc()
            task = self.tasks.get(spec.task)
            if run_id is None:
                run_id = self.store.add_run(
                    job_id=job_id,
                    trigger=trigger,
                    attempt=attempt,
                    scheduled_at=_as_utc(scheduled_at) if scheduled_at is not None else now,
                    started_at=now,
                    status="running",
                ).run_id
            else:
                self.store.update_run(run_id, started_at=now)
            state.running += 1
            if trigger == "scheduled":
                state.last_fire = None if scheduled_at is None else _as_utc(scheduled_at)
                state.pending_due = None
                self._evaluate_late(job_id, now)
        error: BaseException | None = None
        trace: str | None = None
        result: Any = None
        try:
            if task is None:
                raise LookupError(f"task {spec.task!r} is not registered")
            result = task.func(*spec.args, **spec.kwargs)
        except BaseException as caught:
            error, trace = caught, traceback.format_exc()
        try:
            with self._lock:
                self._finish(job_id, run_id, attempt, now, error, trace)
        finally:
            with self._lock:
                state.running -= 1
        if error is not None:
            raise error
        return result

    def _finish(
        self,
        job_id: str,
        run_id: int,
        attempt: int,
        started: datetime,
        error: BaseException | None,
        trace: str | None,
    ) -> None:
        """Record how a run ended, then count, resolve, alert or retry; yours.

        * Update the run: status ``success`` or ``failure``, ``finished_at`` now,
          ``duration_seconds`` = finished - started; for a failure ``error_type`` (the exception's
          class name), ``error_message`` (``str(error)``, first MAX_ERROR_MESSAGE characters) and
          ``traceback`` (last MAX_TRACEBACK characters); all three null on success
          (#run-fields). ``_clean_text`` truncates (and removes NUL characters).
        * Metrics: ``_runs_total{job_id, status}`` +1 exactly once per finished run
          (#metric-runs-total); the duration observed once in ``_duration`` (#metric-duration).
        * Success: ``stats`` becomes (this run, finished, old last_failure_at, 0); the pending
          retry is cancelled; an open ``failing`` alert resolves (``recovered``, one ``resolved``
          notification) (#failing-resolves-on-success).
        * Failure: ``stats`` (this run, old last_success_at, finished, failures + 1); then
          ``_evaluate_failing`` and ``_schedule_retry``.
        """
        finished = self.clock()
        duration = max(0.0, (finished - started).total_seconds())
        failed = error is not None
        status = "failure" if failed else "success"
        record = self.store.update_run(
            run_id,
            status=status,
            finished_at=finished,
            duration_seconds=duration,
            error_type=type(error).__name__ if failed else None,
            error_message=_clean_text(str(error), MAX_ERROR_MESSAGE, "head") if failed else None,
            traceback=_clean_text(trace or "", MAX_TRACEBACK, "tail") if failed else None,
        )
        state = self._jobs.get(job_id)
        if state is None:
            return
        self._runs_total.labels(job_id, status).inc()
        self._duration.labels(job_id).observe(duration)
        old = state.stats
        last = record if record is not None else old.last_run
        if not failed:
            state.stats = JobStats(last, finished, old.last_failure_at, 0)
            self._cancel_retry(state)
            alert_id = state.open_alerts.pop("failing", None)
            if alert_id is not None:
                self._resolve(alert_id, "recovered", finished)
            return
        state.stats = JobStats(last, old.last_success_at, finished, old.consecutive_failures + 1)
        logger.warning("job %s attempt %d failed: %s", job_id, attempt, type(error).__name__)
        self._evaluate_failing(job_id, finished)
        self._schedule_retry(job_id, attempt, finished)

    def _schedule_retry(self, job_id: str, attempt: int, now: datetime) -> None:
        """After attempt ``attempt`` failed at ``now``: schedule attempt ``attempt + 1``; yours.

        * Retry while ``attempt < spec.retry.max_attempts`` and the job is not paused: a job
          that always fails runs exactly ``max_attempts`` attempts per fire time, numbered 1 to
          max_attempts, the later ones with ``trigger == "retry"`` (#retry-attempts).
        * The retry is due ``backoff_delay(policy, attempt, self.rng())`` seconds after the failed
          attempt finished (one ``rng()`` draw per retry) (#retry-delays).
        * A retry due at or after the job's next scheduled run (``_upcoming``) is dropped: it
          would pile onto that run (#retry-before-next-run).
        * Schedule it as a one-off scheduler job: ``DateTrigger(run_date=due)``, an id starting
          with RETRY_PREFIX and new each time, ``misfire_grace_time=None``, ``kwargs``
          ``{"job_id", "trigger": "retry", "attempt": attempt + 1, "retry_id": that id}``; set the
          state's ``retry_at`` (the job view shows it) and ``retry_job_id``.
        """
        state = self._jobs.get(job_id)
        if state is None:
            return
        policy = state.spec.retry
        if attempt >= policy.max_attempts or self._paused(job_id):
            return
        due = now + timedelta(seconds=backoff_delay(policy, attempt, self.rng()))
        upcoming = self._upcoming(job_id, now)
        if upcoming is not None and due >= upcoming:
            logger.info("job %s: retry dropped, the next run at %s takes over", job_id, upcoming)
            return
        self._cancel_retry(state)
        retry_id = f"{RETRY_PREFIX}{job_id}:{next(self._retry_ids)}"
        self.scheduler.add_job(
            self._run,
            DateTrigger(run_date=due),
            id=retry_id,
            name=f"retry {attempt + 1} of {job_id}",
            misfire_grace_time=None,
            kwargs={"job_id": job_id, "trigger": "retry", "attempt": attempt + 1, "retry_id": retry_id},
        )
        state.retry_at, state.retry_job_id = due, retry_id

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
        """Open or resolve the job's ``late`` alert at ``now``; yours.

        Skip paused jobs and a scheduler that is not running. The job is late when the fire time
        it waits for (``pending_due``, set when a fire time was missed or skipped, else
        ``_upcoming``) lies more than ``late_after_seconds`` (``_policy``) before ``now``: then
        open one ``late`` alert (``_open``) if none is open; once a run starts again (or the job
        is no longer late) resolve it (``recovered``): a missed fire time gives one ``firing``
        and, when the next run starts, one ``resolved`` notification (#late-alert).
        """
        state = self._jobs.get(job_id)
        if state is None or self._paused(job_id) or self.scheduler.state != STATE_RUNNING:
            return
        _, grace = self._policy(state.spec)
        due = state.pending_due if state.pending_due is not None else self._upcoming(job_id, now)
        if due is not None and state.watch_from is not None and due < state.watch_from:
            due = None
        late = due is not None and now > due + timedelta(seconds=grace)
        open_id = state.open_alerts.get("late")
        if late and open_id is None:
            assert due is not None
            state.open_alerts["late"] = self._open(
                job_id, "late", f"job {job_id} has not started since {due.isoformat()}", now
            )
        elif not late and open_id is not None:
            del state.open_alerts["late"]
            self._resolve(open_id, "recovered", now)

    def _evaluate_failing(self, job_id: str, now: datetime) -> None:
        """Open the job's ``failing`` alert at ``now`` if due; yours.

        Once ``stats.consecutive_failures`` reaches the threshold (``_policy``: the job's
        ``failing_after`` or the settings' default), open one ``failing`` alert with ``_open``
        (one ``firing`` notification); further failures while it is open send nothing
        (#failing-opens-once). A paused job never alerts (#paused-no-alert).
        """
        state = self._jobs.get(job_id)
        if state is None or self._paused(job_id) or "failing" in state.open_alerts:
            return
        threshold, _ = self._policy(state.spec)
        failures = state.stats.consecutive_failures
        if failures >= threshold:
            state.open_alerts["failing"] = self._open(
                job_id, "failing", f"job {job_id} failed {failures} time(s) in a row", now
            )

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
        """Check a definition against this monitor; return its trigger; yours.

        * ``spec.task`` must name a task of ``self.tasks``; anything else, an import path such as
          ``os:system`` included, is ``InvalidJobError(("task",), ...)``: never import it
          (#registry-only).
        * ``spec.args``/``spec.kwargs`` must bind to the task's signature (``_check_arguments``)
          (#arguments-bind).
        * Then ``build_trigger(spec.trigger, self.timezone)``.
        """
        task = self.tasks.get(spec.task)
        if task is None:
            raise InvalidJobError(("task",), f"unknown task {spec.task!r}: see GET /api/tasks")
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
        """The gauges, computed from the monitor at scrape time; yours.

        Per live job (label ``job_id``): ``scheduler_job_last_success_timestamp_seconds`` and
        ``scheduler_job_last_failure_timestamp_seconds`` (epoch seconds of ``finished_at``; no
        sample before the first one), ``scheduler_job_next_run_timestamp_seconds`` (the
        ``next_run_time`` the API shows; no sample while paused),
        ``scheduler_job_consecutive_failures``, ``scheduler_job_running``,
        ``scheduler_job_paused`` (1 or 0); unlabelled ``scheduler_running`` (1 while the
        scheduler fires jobs); ``scheduler_alerts_open`` by ``kind`` (``failing`` and ``late``,
        both always present) (#metric-gauges). Deleted jobs have no samples. Build each with
        ``GaugeMetricFamily(name, doc, labels=[...])`` and ``add_metric``.
        """
        per_job = {
            "scheduler_job_last_success_timestamp_seconds": "Unix time of the last success's end.",
            "scheduler_job_last_failure_timestamp_seconds": "Unix time of the last failure's end.",
            "scheduler_job_next_run_timestamp_seconds": "Unix time of the next fire time.",
            "scheduler_job_consecutive_failures": "Failures since the last success.",
            "scheduler_job_running": "Runs of the job in progress.",
            "scheduler_job_paused": "Whether the job is paused (1) or not (0).",
        }
        families = {name: GaugeMetricFamily(name, doc, labels=["job_id"]) for name, doc in per_job.items()}
        kinds = {"failing": 0, "late": 0}
        with self._lock:
            for view in self.list_jobs(limit=len(self._jobs) or 1):
                labels = [view.id]
                for name, moment in (
                    ("scheduler_job_last_success_timestamp_seconds", view.last_success_at),
                    ("scheduler_job_last_failure_timestamp_seconds", view.last_failure_at),
                    ("scheduler_job_next_run_timestamp_seconds", view.next_run_time),
                ):
                    if moment is not None:
                        families[name].add_metric(labels, moment.timestamp())
                families["scheduler_job_consecutive_failures"].add_metric(labels, view.consecutive_failures)
                families["scheduler_job_running"].add_metric(labels, view.running)
                families["scheduler_job_paused"].add_metric(labels, float(view.state == "paused"))
                for kind in self._jobs[view.id].open_alerts:
                    kinds[kind] += 1
            firing = self._started and self.scheduler.state == STATE_RUNNING
        running = GaugeMetricFamily("scheduler_running", "Whether the scheduler fires jobs (1/0).", value=float(firing))
        opened = GaugeMetricFamily("scheduler_alerts_open", "Open alerts by kind.", labels=["kind"])
        for kind, number in kinds.items():
            opened.add_metric([kind], number)
        return [*families.values(), running, opened]


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
    """The role that an ``Authorization`` header proves, or None; yours.

    * ``Bearer <token>``: the role whose token equals the whole token: not a prefix, not
      another case, not with something appended; the admin token gives ``"admin"``, the
      viewer token ``"viewer"``, anything else, a missing header or an unset token None
      (#authenticate-exact). Schemes are case-insensitive.
    * ``Basic <base64(user:password)>``: the password is the token (the user name is not
      checked); malformed base64 or no ``:`` is None (#basic-auth).
    * Compare with ``hmac.compare_digest`` on bytes, and compare both tokens every time.
    """
    roles: list[tuple[Role, SecretStr | None]] = [
        ("admin", settings.admin_token),
        ("viewer", settings.viewer_token),
    ]
    presented = _presented_secret(authorization)
    if presented is None:
        return None
    found: Role | None = None
    for role, secret in roles:  # every token is compared, always
        expected = secret.get_secret_value().encode() if secret is not None else b"\x00" * 8
        same = hmac.compare_digest(presented, expected)
        if same and secret is not None and found is None:
            found = role
    return found


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
    """Authentication and authorization, before any route (so before the body is parsed); yours.

    * ``/healthz`` and ``/openapi.json`` are public; ``/metrics`` needs a token unless
      ``settings.metrics_public`` (#public-paths).
    * Every other path, unknown ones included, without a valid token (`authenticate`): 401,
      JSON ``{"detail": ...}``, header ``WWW-Authenticate: Bearer realm="cronkata", Basic
      realm="cronkata"``; nothing runs, a malformed body is never looked at, nothing changes
      (#auth-401-challenge).
    * ``/admin`` without a valid token: 401 with the login form as HTML
      (``_render_page(request, authenticated=False)``) and ``WWW-Authenticate: Bearer
      realm="cronkata"`` only (#admin-page-login).
    * GET, HEAD and OPTIONS need the viewer role (the admin has it too) (#viewer-reads);
      every other method needs the admin role: 403 for a viewer, nothing changed
      (#viewer-mutation-403); 403 for everyone when ``settings.read_only`` (#read-only-403);
      403 when an ``Origin`` header names another host than ``Host`` (#cross-origin-403).
    * Otherwise set ``request.state.role`` and ``return await call_next(request)``.
    """
    monitor: Monitor = request.app.state.monitor
    where = request.url.path
    public = where in PUBLIC_PATHS or (where == "/metrics" and monitor.settings.metrics_public)
    if public:
        return await call_next(request)
    role = authenticate(request.headers.get("Authorization"), monitor.settings)
    if role is None:
        return _unauthorized(request, page=where == "/admin")
    refusal = _refusal(request, role, monitor.settings)
    if refusal is not None:
        return JSONResponse({"detail": refusal}, status_code=403)
    request.state.role = role
    return await call_next(request)


_SCHEME = re.compile(r"^\s*(?P<scheme>[A-Za-z]+)\s+(?P<value>\S+)\s*$")


def _presented_secret(header: str | None) -> bytes | None:
    """The secret an Authorization header carries (Bearer token or Basic password)."""
    found = _SCHEME.match(header or "")
    if found is None:
        return None
    scheme, value = found["scheme"].lower(), found["value"]
    if scheme == "bearer":
        return value.encode()
    if scheme != "basic":
        return None
    try:
        pair = b64decode(value, validate=True)
    except ValueError:
        return None
    if b":" not in pair:
        return None
    return pair.split(b":", 1)[1] or None


def _unauthorized(request: Request, *, page: bool) -> Response:
    if page:
        return HTMLResponse(
            _render_page(request, authenticated=False),
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="%s"' % REALM},
        )
    challenge = ", ".join(f'{scheme} realm="{REALM}"' for scheme in ("Bearer", "Basic"))
    return JSONResponse(
        {"detail": "missing or invalid credentials"},
        status_code=401,
        headers={"WWW-Authenticate": challenge},
    )


def _refusal(request: Request, role: Role, settings: Settings) -> str | None:
    """Why a request must be refused with 403, or None."""
    if request.method in READ_METHODS:
        return None
    if role != "admin":
        return f"{request.method} needs the admin role"
    if settings.read_only:
        return "read-only mode: no changes"
    if not _same_origin(request):
        return "the Origin header names another host"
    return None


# -- HTTP: errors -------------------------------------------------------------------------


def _error_body(loc: Iterable[Any], message: str, kind: str) -> dict[str, Any]:
    return {"detail": [{"loc": list(loc), "msg": message, "type": kind}]}


async def _monitor_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, InvalidJobError):
        body = _error_body(("body", *exc.loc), exc.message, "value_error")
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


def _monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    monitor._require_started()
    return monitor


def _add_routes(app: FastAPI) -> None:
    """Add the admin API (under API_PREFIX) and ``/metrics`` to ``app``; yours.

    Each route calls the Monitor (``_monitor(request)``, which is 503 before the lifespan ran)
    and returns its models; errors are the given handlers' business: a MonitorError becomes
    its ``status_code`` (404, 409; InvalidJobError a 422 whose ``detail`` is a list of
    ``{loc, msg, type}``), and a body or query FastAPI rejects is a 422 too. Give every route
    ``dependencies=security`` (``[Depends(HTTPBearer(auto_error=False)),
    Depends(HTTPBasic(auto_error=False))]``: it documents the auth in the OpenAPI schema).

    | method, path (``/api`` +)   | answer                                                   |
    |-----------------------------|----------------------------------------------------------|
    | GET /scheduler              | 200 SchedulerView                                        |
    | POST /scheduler/pause, /resume | 200 SchedulerView (idempotent)                        |
    | GET /tasks                  | 200 [TaskView] sorted by name                            |
    | GET /jobs?state=&limit=&offset= | 200 [JobView]; limit 1..500 (default 100), offset >= 0 |
    | POST /jobs (JobCreate)      | 201 JobView, ``Location: /api/jobs/{id}`` (#create-201-location) |
    | GET /jobs/{id}              | 200 JobView                                              |
    | PATCH /jobs/{id} (JobPatch) | 200 JobView                                              |
    | DELETE /jobs/{id}           | 204, empty body (#delete-204)                            |
    | POST /jobs/{id}/pause, /resume | 200 JobView                                           |
    | POST /jobs/{id}/run         | 202 RunAccepted, ``Location: /api/runs/{run_id}`` (#run-now-202) |
    | GET /jobs/{id}/runs?status=&trigger=&since=&limit=&offset= | 200 [RunRecord] of that job |
    | GET /runs?job_id=&status=&trigger=&since=&limit=&offset=   | 200 [RunRecord]         |
    | GET /runs/{run_id}          | 200 RunRecord; run_id 1..2**63-1                         |
    | GET /alerts?state=&job_id=&limit=&offset= | 200 [AlertView]                            |
    | GET /metrics (at the root)  | 200 ``metrics_text()``, media type CONTENT_TYPE_LATEST   |

    An unknown job id is 404 on every ``/jobs/{id}...`` route, GETs and the runs list
    included, and an unknown run id on ``/runs/{run_id}``; nothing changes (#unknown-id-404).
A body the models reject (an unknown field, a wrong type, a value out of range, a
``date`` trigger, malformed JSON) is a 422 with ``detail`` a list, nothing changed
(#body-validated).
    Query values out of range or of the wrong kind are 422 (limit 0 or 501, a negative
    offset, an unknown status, trigger or job state, a ``since`` that is not an ISO
    datetime or has no offset (``_aware``), a run id 0) (#query-validated).
    """
    guard = [Depends(HTTPBearer(auto_error=False)), Depends(HTTPBasic(auto_error=False))]
    router = APIRouter(prefix=API_PREFIX)

    @router.get("/scheduler", dependencies=guard)
    def scheduler_state(request: Request) -> SchedulerView:
        return _monitor(request).scheduler_info()

    @router.post("/scheduler/pause", dependencies=guard)
    def scheduler_pause(request: Request) -> SchedulerView:
        return _monitor(request).pause_scheduler()

    @router.post("/scheduler/resume", dependencies=guard)
    def scheduler_resume(request: Request) -> SchedulerView:
        return _monitor(request).resume_scheduler()

    @router.get("/tasks", dependencies=guard)
    def tasks(request: Request) -> list[TaskView]:
        return [TaskView(name=t.name, description=t.description) for t in _monitor(request).tasks]

    @router.get("/jobs", dependencies=guard)
    def jobs(
        request: Request,
        state: Annotated[Literal["scheduled", "paused"] | None, Query()] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[JobView]:
        return _monitor(request).list_jobs(state, limit, offset)

    @router.post("/jobs", dependencies=guard, status_code=201)
    def new_job(request: Request, body: JobCreate) -> JSONResponse:
        view = _monitor(request).add_job(body)
        return JSONResponse(
            view.model_dump(mode="json"), status_code=201, headers={"Location": f"/api/jobs/{view.id}"}
        )

    @router.get("/jobs/{job_id}", dependencies=guard)
    def one_job(request: Request, job_id: str) -> JobView:
        return _monitor(request).get_job(job_id)

    @router.patch("/jobs/{job_id}", dependencies=guard)
    def edit_job(request: Request, job_id: str, body: JobPatch) -> JobView:
        return _monitor(request).update_job(job_id, body)

    @router.delete("/jobs/{job_id}", dependencies=guard, status_code=204, response_class=Response)
    def drop_job(request: Request, job_id: str) -> Response:
        _monitor(request).remove_job(job_id)
        return Response(status_code=204)

    def _job_action(name: str) -> Callable[..., JobView]:
        def act(request: Request, job_id: str) -> JobView:
            return getattr(_monitor(request), f"{name}_job")(job_id)
        act.__name__ = f"{name}_job"
        return act

    for _name in ("pause", "resume"):
        router.add_api_route(
            f"/jobs/{{job_id}}/{_name}", _job_action(_name), methods=["POST"], dependencies=guard,
            response_model=JobView,
        )

    @router.post("/jobs/{job_id}/run", dependencies=guard, status_code=202)
    def trigger_now(request: Request, job_id: str) -> JSONResponse:
        accepted = RunAccepted(run_id=_monitor(request).run_now(job_id), job_id=job_id)
        return JSONResponse(
            accepted.model_dump(), status_code=202, headers={"Location": f"/api/runs/{accepted.run_id}"}
        )

    @router.get("/jobs/{job_id}/runs", dependencies=guard)
    def runs_of_job(
        request: Request,
        job_id: str,
        status: RunStatus | None = None,
        trigger: RunTrigger | None = None,
        since: datetime | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> list[RunRecord]:
        monitor = _monitor(request)
        with monitor._lock:
            monitor._state(job_id)
        return monitor.list_runs(
            job_id=job_id, status=status, trigger=trigger, since=_aware(since), limit=limit, offset=offset
        )

    @router.get("/runs", dependencies=guard)
    def all_runs(
        request: Request,
        job_id: str | None = None,
        status: RunStatus | None = None,
        trigger: RunTrigger | None = None,
        since: datetime | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> list[RunRecord]:
        return _monitor(request).list_runs(
            job_id=job_id, status=status, trigger=trigger, since=_aware(since), limit=limit, offset=offset
        )

    @router.get("/runs/{run_id}", dependencies=guard)
    def one_run(request: Request, run_id: RunId) -> RunRecord:
        return _monitor(request).get_run(run_id)

    @router.get("/alerts", dependencies=guard)
    def alerts(
        request: Request,
        state: Literal["open", "resolved"] | None = None,
        job_id: str | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[AlertView]:
        return _monitor(request).list_alerts(state=state, job_id=job_id, limit=limit, offset=offset)

    app.include_router(router)

    @app.get("/metrics", dependencies=guard, response_class=Response)
    def prometheus(request: Request) -> Response:
        return Response(content=_monitor(request).metrics_text(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _add_ops_routes(app: FastAPI) -> None:
    """``/healthz`` and ``/admin`` (given)."""
    security = [Depends(HTTPBearer(auto_error=False)), Depends(HTTPBasic(auto_error=False))]

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
    _add_ops_routes(app)
    _add_routes(app)
    return app
