"""Exercise simple_timer (level 1): your first APScheduler timer.

Read first: notes/07a_ap_scheduler_intro.md (section "Hello world").

Build a program that, for half a minute, logs "heartbeat" every 5 seconds and, once,
10 seconds after start, logs "one-shot". You will use:
    * ``apscheduler.schedulers.background.BackgroundScheduler`` (jobs run in threads);
    * ``apscheduler.triggers.interval.IntervalTrigger`` for the repeating job;
    * ``apscheduler.triggers.date.DateTrigger`` for the one-off job;
    * ``zoneinfo.ZoneInfo`` for the time zone (never pytz, never a naive datetime).

Keep the names, signatures and constants below exactly as they are: the hidden tests
import them. Replace each ``raise NotImplementedError(...)`` with your code.

Each promise the tests grade ends with a tag such as (#first-run-after-interval); a
failing test names its tag.

Check your work:  pytest exercises/level1 -k simple_timer
Try it by hand:   cd exercises/level1 && python level1_simple_timer.py
"""

import logging

from apscheduler.schedulers.background import BackgroundScheduler

TIMEZONE: str = "Asia/Shanghai"
HEARTBEAT_SECONDS: int = 5
ONE_SHOT_DELAY_SECONDS: int = 10

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    """Log exactly one INFO record whose message contains the word "heartbeat"; return
    nothing (#heartbeat-logs-one-info-record).

    Use the module's ``logger``, not print and not the root logger
    (``logging.info``) (#heartbeat-uses-module-logger).
    """
    raise NotImplementedError("log one INFO line containing 'heartbeat'")


def one_shot() -> None:
    """Log exactly one INFO record whose message contains "one-shot"; return nothing
    (#one-shot-logs-one-info-record).

    Use the module's ``logger``, not print and not the root logger
    (``logging.info``) (#one-shot-uses-module-logger).
    """
    raise NotImplementedError("log one INFO line containing 'one-shot'")


def build_scheduler() -> BackgroundScheduler:
    """Create and return a BackgroundScheduler holding two jobs. Do NOT start it.

    The tests check that:
      * the scheduler is not running when it is returned (``scheduler.running`` is False)
        (#not-started);
      * its time zone is ``ZoneInfo(TIMEZONE)``, passed explicitly as ``timezone=``
        (without it APScheduler silently uses the machine's local zone) (#scheduler-zone);
      * ``scheduler.get_jobs()`` returns exactly two jobs, with the ids "heartbeat" and
        "one_shot", calling the module's functions ``heartbeat`` and ``one_shot``
        (#two-jobs-by-id):
          - "heartbeat": an interval trigger of exactly HEARTBEAT_SECONDS seconds (seconds,
            not minutes; no jitter) (#heartbeat-every-5-seconds), in the TIMEZONE zone
            (#heartbeat-trigger-zone); its first run is one interval after now, not
            immediately (#first-run-after-interval);
          - "one_shot": runs once, ONE_SHOT_DELAY_SECONDS seconds from now (from the call
            to ``build_scheduler``, not from import time) (#one-shot-after-delay), with a
            date trigger whose run date is an AWARE datetime in the TIMEZONE zone
            (#one-shot-aware-run-date).
    """
    raise NotImplementedError(
        "create a BackgroundScheduler in ZoneInfo(TIMEZONE), add the two jobs, return it unstarted"
    )


def main(run_seconds: float = 30.0) -> None:
    """Run the timer for ``run_seconds`` seconds, then stop it cleanly.

    Steps: configure logging at INFO level (``logging.basicConfig``) (#main-logging-info),
    build the scheduler with ``build_scheduler()``, start it and sleep ``run_seconds``
    seconds, a float such as 0.5 (#main-sleeps-run-seconds); then shut the scheduler down,
    waiting for a job that is still running (``shutdown()`` waits by default, ``wait=False``
    cuts it off) (#main-waits-for-running-jobs). When ``main`` returns, the scheduler is no
    longer running (#main-stops-scheduler), even if the sleep was interrupted (Ctrl+C):
    shut down in a ``finally`` block (#main-stops-when-interrupted). The tests call it with
    a small ``run_seconds``.
    """
    raise NotImplementedError(
        "build, start, sleep run_seconds, then always shut the scheduler down"
    )


if __name__ == "__main__":
    main()
