"""Correct: the three entries built from a small table; crontab fields given as strings."""

import math
import os
from datetime import timedelta
from typing import Any

from celery.schedules import crontab

TIMEZONE = "Asia/Shanghai"
DEMO_ENV = "CELERY_BEAT_DEMO_SECONDS"
DEMO_MIN_SECONDS = 0.5
DEMO_MAX_SECONDS = 86_400
MAINTENANCE_QUEUE = "maintenance"

CLEANUP_ENTRY = "cleanup-every-10-minutes"
CLEANUP_EVERY_SECONDS = 600
REPORT_ENTRY = "daily-report-0800"
REPORT_HOUR = 8
REPORT_MINUTE = 0
PURGE_ENTRY = "weekday-purge-0300"
PURGE_HOUR = 3
PURGE_MAX_AGE_SECONDS = 600

_DAY = 24 * 3600


def _options(period_seconds: float) -> dict[str, Any]:
    # half a period: stale well before the next send, and never below a tiny positive value
    return {"queue": MAINTENANCE_QUEUE, "expires": max(period_seconds / 2, 0.001)}


def build_beat_schedule(demo_seconds: float | None = None) -> dict[str, dict[str, Any]]:
    """Return the beat schedule: a dict of three entries, keyed by the *_ENTRY names."""
    every = CLEANUP_EVERY_SECONDS if demo_seconds is None else demo_seconds
    table = [
        # name, task, schedule, kwargs, period (s)
        (CLEANUP_ENTRY, "cronkata.cleanup", timedelta(seconds=every), None, every),
        (
            REPORT_ENTRY,
            "cronkata.daily_report",
            crontab(minute=str(REPORT_MINUTE), hour=str(REPORT_HOUR)),
            None,
            _DAY,
        ),
        (
            PURGE_ENTRY,
            "cronkata.cleanup",
            crontab(minute="0", hour=str(PURGE_HOUR), day_of_week="mon,tue,wed,thu,fri"),
            {"max_age_seconds": PURGE_MAX_AGE_SECONDS},
            _DAY,
        ),
    ]
    schedule: dict[str, dict[str, Any]] = {}
    for name, task, when, kwargs, period in table:
        entry: dict[str, Any] = {"task": task, "schedule": when, "options": _options(period)}
        if kwargs is not None:
            entry["kwargs"] = kwargs
        schedule[name] = entry
    return schedule


def _demo_seconds_from_env() -> float | None:
    raw = os.environ.get(DEMO_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{DEMO_ENV} is not a number: {raw!r}") from exc
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{DEMO_ENV} must be finite, got {raw!r}")
    if value < DEMO_MIN_SECONDS or value > DEMO_MAX_SECONDS:
        raise ValueError(f"{DEMO_ENV}={value} is outside {DEMO_MIN_SECONDS}..{DEMO_MAX_SECONDS}")
    return value


# -- the settings Celery reads (app.config_from_object(beat_config)) ---------------------------
timezone = TIMEZONE  # crontab hours are wall-clock hours in this zone (without it: UTC)
enable_utc = True  # messages and results carry UTC times; only the schedule is local

beat_schedule: dict[str, dict[str, Any]] = build_beat_schedule(_demo_seconds_from_env())
