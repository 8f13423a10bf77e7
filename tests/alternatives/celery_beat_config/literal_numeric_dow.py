"""Correct: one dict literal; numeric day_of_week "1-5"; expires a fixed margin below each period."""

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

ONE_DAY = timedelta(days=1)


def build_beat_schedule(demo_seconds: float | None = None) -> dict[str, dict[str, Any]]:
    """Return the beat schedule: a dict of three entries, keyed by the *_ENTRY names."""
    cleanup_period = timedelta(
        seconds=demo_seconds if demo_seconds is not None else CLEANUP_EVERY_SECONDS
    )
    return {
        CLEANUP_ENTRY: {
            "task": "cronkata.cleanup",
            "schedule": cleanup_period,
            "options": {
                "queue": MAINTENANCE_QUEUE,
                "expires": cleanup_period.total_seconds() * 0.9,
            },
        },
        REPORT_ENTRY: {
            "task": "cronkata.daily_report",
            "schedule": crontab(hour=REPORT_HOUR, minute=REPORT_MINUTE),
            "options": {"queue": MAINTENANCE_QUEUE, "expires": ONE_DAY.total_seconds() - 3600},
        },
        PURGE_ENTRY: {
            "task": "cronkata.cleanup",
            "schedule": crontab(minute=0, hour=PURGE_HOUR, day_of_week="1-5"),
            "args": (),
            "kwargs": {"max_age_seconds": PURGE_MAX_AGE_SECONDS},
            "options": {"queue": MAINTENANCE_QUEUE, "expires": ONE_DAY.total_seconds() - 3600},
        },
    }


# -- the settings Celery reads (app.config_from_object(beat_config)) ---------------------------
timezone = TIMEZONE  # crontab hours are wall-clock hours in this zone (without it: UTC)
enable_utc = True  # messages and results carry UTC times; only the schedule is local



def _demo_from_env() -> float | None:
    raw = os.environ.get(DEMO_ENV) or None
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    # a chained comparison is False for NaN, and inf is above the maximum
    if not DEMO_MIN_SECONDS <= seconds <= DEMO_MAX_SECONDS:
        raise ValueError(f"bad {DEMO_ENV}={raw!r}: want seconds in [0.5, 86400]")
    return seconds


beat_schedule: dict[str, dict[str, Any]] = build_beat_schedule(_demo_from_env())
