"""Bug: the purge entry passes kwargs {"max_age_seconds": PURGE_MAX_AGE_SECONDS}: the kwargs are left out (cleanup uses its 3600 s default)."""

import os
from datetime import timedelta
from typing import Any

from celery.schedules import crontab

TIMEZONE = "Asia/Shanghai"
DEMO_ENV = "CELERY_BEAT_DEMO_SECONDS"
MAINTENANCE_QUEUE = "maintenance"

CLEANUP_ENTRY = "cleanup-every-10-minutes"
CLEANUP_EVERY_SECONDS = 600
REPORT_ENTRY = "daily-report-0800"
REPORT_HOUR = 8
REPORT_MINUTE = 0
PURGE_ENTRY = "weekday-purge-0300"
PURGE_HOUR = 3
PURGE_MAX_AGE_SECONDS = 600

DAY_SECONDS = 24 * 60 * 60


def build_beat_schedule(demo_seconds: float | None = None) -> dict[str, dict[str, Any]]:
    """Return the beat schedule: a dict of three entries, keyed by the *_ENTRY names."""
    cleanup_seconds = CLEANUP_EVERY_SECONDS if demo_seconds is None else demo_seconds
    return {
        CLEANUP_ENTRY: {
            "task": "cronkata.cleanup",
            "schedule": timedelta(seconds=cleanup_seconds),
            "options": {"queue": MAINTENANCE_QUEUE, "expires": cleanup_seconds / 2},
        },
        REPORT_ENTRY: {
            "task": "cronkata.daily_report",
            "schedule": crontab(minute=REPORT_MINUTE, hour=REPORT_HOUR),
            "options": {"queue": MAINTENANCE_QUEUE, "expires": DAY_SECONDS / 2},
        },
        PURGE_ENTRY: {
            "task": "cronkata.cleanup",
            "schedule": crontab(minute=0, hour=PURGE_HOUR, day_of_week="mon-fri"),
            "options": {"queue": MAINTENANCE_QUEUE, "expires": DAY_SECONDS / 2},
        },
    }


# -- the settings Celery reads (app.config_from_object(beat_config)) ---------------------------
timezone = TIMEZONE  # crontab hours are wall-clock hours in this zone (without it: UTC)
enable_utc = True  # messages and results carry UTC times; only the schedule is local

_demo = os.environ.get(DEMO_ENV)
beat_schedule: dict[str, dict[str, Any]] = build_beat_schedule(float(_demo) if _demo else None)
