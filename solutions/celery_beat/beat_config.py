"""Level 3 reference solution: the beat schedule, the one source of truth for beat settings.

What it teaches (notes/07c_celery_beat_intro.md):
    * this is a Celery *configuration module*: Celery reads its lowercase names
      (``timezone``, ``enable_utc``, ``beat_schedule``) when tasks.py calls
      ``app.config_from_object(beat_config)``; the worker, beat and the web app all share it;
    * the zone is stated: crontab entries are wall-clock times in ``timezone``
      (without it, 08:00 means 08:00 UTC);
    * ``crontab(minute=..., hour=...)`` with keywords: positionally the order is
      minute, hour, day_of_week, ... (``crontab(8, 0)`` is 00:08, not 08:00);
    * an interval entry (a ``timedelta``) first runs one period after beat starts;
    * entries reference tasks by their explicit names ("cronkata.cleanup"), never by import;
    * ``options``: the queue the message goes to, and ``expires`` shorter than the period,
      so a backlog left while workers were down is dropped instead of run in a burst.

How to run (beat is a separate process; exactly one beat per schedule):
    cd solutions/celery_beat && ../../.venv/bin/celery -A tasks beat --loglevel=INFO \\
        -s /tmp/celerybeat-schedule

A short schedule for trying things out (the cleanup entry every 2 seconds):
    cd solutions/celery_beat && CELERY_BEAT_DEMO_SECONDS=2 ../../.venv/bin/celery -A tasks beat \\
        --loglevel=INFO -s /tmp/celerybeat-schedule

CELERY_BEAT_DEMO_SECONDS is a number of seconds from DEMO_MIN_SECONDS (0.5) to
DEMO_MAX_SECONDS (86400, a day); empty or unset means the normal schedule. Anything else
("1e-9" would flood the broker, "nan" and "inf" crash beat) makes importing this module
raise a ValueError naming the variable, so beat stops at start-up with that message.
Print the schedule beat would get (a bad value: one line, exit status 2):
    cd solutions/celery_beat && CELERY_BEAT_DEMO_SECONDS=2 ../../.venv/bin/python beat_config.py
"""

import logging
import math
import os
import sys
from datetime import timedelta
from typing import Any

from celery.schedules import crontab

TIMEZONE = "Asia/Shanghai"
DEMO_ENV = "CELERY_BEAT_DEMO_SECONDS"
DEMO_MIN_SECONDS = 0.5  # two sends a second at most: enough to watch, not a flood
DEMO_MAX_SECONDS = 86_400  # a day; far beyond it timedelta overflows
MAINTENANCE_QUEUE = "maintenance"

CLEANUP_ENTRY = "cleanup-every-10-minutes"
CLEANUP_EVERY_SECONDS = 600
REPORT_ENTRY = "daily-report-0800"
REPORT_HOUR = 8
REPORT_MINUTE = 0
PURGE_ENTRY = "weekday-purge-0300"
PURGE_HOUR = 3
PURGE_MAX_AGE_SECONDS = 600

logger = logging.getLogger(__name__)


def build_beat_schedule(demo_seconds: float | None = None) -> dict[str, dict[str, Any]]:
    """The beat schedule: three entries, each sending a task by name to the maintenance queue.

    ``demo_seconds`` (when given) makes the cleanup entry run that often instead of every
    CLEANUP_EVERY_SECONDS, for trying beat out by hand; the other entries are unchanged.
    """
    cleanup_every = float(demo_seconds) if demo_seconds else float(CLEANUP_EVERY_SECONDS)
    return {
        CLEANUP_ENTRY: {
            "task": "cronkata.cleanup",
            "schedule": timedelta(seconds=cleanup_every),
            # Half the period: a cleanup that waited that long is stale, the next one is due.
            "options": {"queue": MAINTENANCE_QUEUE, "expires": cleanup_every / 2},
        },
        REPORT_ENTRY: {
            "task": "cronkata.daily_report",
            "schedule": crontab(minute=REPORT_MINUTE, hour=REPORT_HOUR),
            "options": {"queue": MAINTENANCE_QUEUE, "expires": 3600},
        },
        PURGE_ENTRY: {
            "task": "cronkata.cleanup",
            "schedule": crontab(minute=0, hour=PURGE_HOUR, day_of_week="mon-fri"),
            "kwargs": {"max_age_seconds": PURGE_MAX_AGE_SECONDS},
            "options": {"queue": MAINTENANCE_QUEUE, "expires": 3600},
        },
    }


def _demo_seconds_from_env() -> float | None:
    """The DEMO_ENV value in seconds, or None when it is unset or empty (or blank).

    Anything but a number from DEMO_MIN_SECONDS to DEMO_MAX_SECONDS raises a one-line
    ValueError naming DEMO_ENV. ``isfinite`` says it outright: NaN fails every comparison,
    so a check written as ``seconds <= 0`` (or ``x < lo or x > hi``) lets it through.
    """
    raw = os.environ.get(DEMO_ENV, "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
        usable = math.isfinite(seconds) and DEMO_MIN_SECONDS <= seconds <= DEMO_MAX_SECONDS
    except ValueError:  # not a number at all ("2s", "ten")
        usable = False
    if not usable:
        raise ValueError(
            f"{DEMO_ENV} must be a number of seconds from {DEMO_MIN_SECONDS} to "
            f"{DEMO_MAX_SECONDS}, or empty for the normal schedule; got {raw!r}"
        )
    logger.warning("demo schedule: %s every %s s", CLEANUP_ENTRY, seconds)
    return seconds


def _show(schedule: dict[str, dict[str, Any]]) -> None:
    """Print each entry: name, task, schedule and options (``python beat_config.py``)."""
    for name, entry in schedule.items():
        print(f"{name}: {entry['task']} {entry['schedule']} {entry.get('options', {})}")


# -- the settings Celery reads (app.config_from_object(beat_config)) ---------------------------
timezone = TIMEZONE  # crontab hours are wall-clock hours in this zone
enable_utc = True  # messages and results carry UTC times; only the schedule is local
try:
    beat_schedule = build_beat_schedule(_demo_seconds_from_env())
except ValueError as error:
    if __name__ != "__main__":
        raise  # imported by Celery, tasks.py or the web app: the clear exception stops them
    print(f"beat_config.py: {error}", file=sys.stderr)  # run as a script: one line
    sys.exit(2)

if __name__ == "__main__":
    _show(beat_schedule)
