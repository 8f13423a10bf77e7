"""Exercise celery_beat_config (level 3): the beat schedule, in one configuration module.

Read first: notes/07c_celery_beat_intro.md (sections "beat_schedule", "Schedules",
"crontab" and "Entry options").

This file is a Celery *configuration module*: tasks.py loads it with
``app.config_from_object(beat_config)``, and Celery then reads its lowercase names
(``timezone``, ``enable_utc``, ``beat_schedule``): at the bottom, ``beat_schedule`` is
``build_beat_schedule(...)``'s result (#celery-reads-module-settings). The worker, beat
and the web app all share the one app, so this file is the one source of truth for beat
settings.

You will use ``datetime.timedelta`` for an interval entry and
``celery.schedules.crontab`` for calendar entries. Refer to tasks by their registered
names ("cronkata.cleanup"), never by importing them (#tasks-by-name).

The demo variable: ``beat_schedule`` is built with ``demo_seconds`` = the value of the
environment variable DEMO_ENV read as a float ("2.5" means 2.5 s) when it is set
(#demo-env-float), and None when it is unset or empty (#demo-env-empty-is-unset).
Any other value than a number from DEMO_MIN_SECONDS to DEMO_MAX_SECONDS (both accepted)
makes importing the module raise a ``ValueError`` whose message names DEMO_ENV: not a
number ("2s"), not finite ("nan", "inf": beat would crash) or out of range ("1e-9", "0":
beat would flood the broker) (#demo-env-validated).

Each promise the tests grade ends with a tag such as (#first-run-after-interval); a
failing test names its tag.

Keep the names, signatures and constants below exactly as they are: the hidden tests
import them. Replace each ``raise NotImplementedError(...)`` with your code.

Check your work:  python3 -m grader check celery_beat_config   (from the repository root)
Try it by hand:   cd exercises/level3/celery_beat
                  CELERY_BEAT_DEMO_SECONDS=2 ../../../.venv/bin/celery -A tasks beat -l INFO \\
                      -s /tmp/beat-schedule
"""

from typing import Any

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


def build_beat_schedule(demo_seconds: float | None = None) -> dict[str, dict[str, Any]]:
    """Return the beat schedule: a dict of three entries, keyed by the *_ENTRY names
    (#three-entries).

    Each entry is a dict with "task" (a task name), "schedule", optional "args" /
    "kwargs", and "options":

      * CLEANUP_ENTRY: task "cronkata.cleanup" every CLEANUP_EVERY_SECONDS seconds (an
        interval: a ``timedelta``; its first send is one period after beat starts,
        whatever the hour it starts at) (#cleanup-interval);
      * REPORT_ENTRY: task "cronkata.daily_report" every day at REPORT_HOUR:REPORT_MINUTE
        (08:00) wall-clock time in TIMEZONE (a ``crontab``; mind the order of its
        arguments) (#report-daily-0800);
      * PURGE_ENTRY: task "cronkata.cleanup" with kwargs
        {"max_age_seconds": PURGE_MAX_AGE_SECONDS} (#purge-kwargs), once a day at
        PURGE_HOUR:00, Monday to Friday only (#purge-weekdays-0300).

    Every entry's own "options" send it to the MAINTENANCE_QUEUE queue ("queue"; do not
    rely on the tasks app's task_routes) (#maintenance-queue) and make the message
    expire ("expires", in seconds) strictly before the entry's next send: a message that
    waited one period is stale, and is dropped instead of run late
    (#expires-before-next-send).

    ``demo_seconds`` (an int or a float), when given, replaces CLEANUP_EVERY_SECONDS as
    the cleanup entry's period, the other entries unchanged; use the argument, not the
    environment (#demo-seconds-period). The cleanup entry's expires then stays shorter
    than ``demo_seconds`` (#demo-expires-shorter). That way beat can be watched by hand.
    """
    raise NotImplementedError("return the three entries: task, schedule and options each")


# -- the settings Celery reads (app.config_from_object(beat_config)) ---------------------------
timezone = TIMEZONE  # crontab hours are wall-clock hours in this zone (without it: UTC)
enable_utc = True  # messages and results carry UTC times; only the schedule is local

# TODO: beat_schedule = build_beat_schedule(seconds), where seconds is the value of the
# environment variable DEMO_ENV as a float when it is set (and not empty), else None; a
# value out of DEMO_MIN_SECONDS..DEMO_MAX_SECONDS raises ValueError (see "The demo
# variable" at the top).
beat_schedule: dict[str, dict[str, Any]] = {}
