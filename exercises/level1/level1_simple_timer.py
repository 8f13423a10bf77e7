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
    """Log exactly one INFO record whose message contains the word "heartbeat".

    Use the module's ``logger`` (not print). It returns nothing.
    """
    raise NotImplementedError("log one INFO line containing 'heartbeat'")


def one_shot() -> None:
    """Log exactly one INFO record whose message contains "one-shot".

    Use the module's ``logger`` (not print). It returns nothing.
    """
    raise NotImplementedError("log one INFO line containing 'one-shot'")


def build_scheduler() -> BackgroundScheduler:
    """Create and return a BackgroundScheduler holding two jobs. Do NOT start it.

    The tests check that:
      * the scheduler is not running when it is returned (``scheduler.running`` is False);
      * its time zone is ``ZoneInfo(TIMEZONE)``, passed explicitly as ``timezone=``
        (without it APScheduler silently uses the machine's local zone);
      * ``scheduler.get_jobs()`` returns exactly two jobs:
          - id "heartbeat": calls ``heartbeat`` with an interval trigger of
            HEARTBEAT_SECONDS seconds (seconds, not minutes), in the TIMEZONE zone; its
            first run is one interval after now, not immediately;
          - id "one_shot": calls ``one_shot`` once, with a date trigger whose run date is an
            AWARE datetime in the TIMEZONE zone, ONE_SHOT_DELAY_SECONDS seconds from now.
    """
    raise NotImplementedError(
        "create a BackgroundScheduler in ZoneInfo(TIMEZONE), add the two jobs, return it unstarted"
    )


def main(run_seconds: float = 30.0) -> None:
    """Run the timer for ``run_seconds`` seconds, then stop it cleanly.

    Steps: configure logging at INFO level (``logging.basicConfig``), build the scheduler
    with ``build_scheduler()``, start it, sleep ``run_seconds`` seconds, then shut the
    scheduler down even if the sleep was interrupted (Ctrl+C). When ``main`` returns, the
    scheduler is no longer running. The tests call it with a small ``run_seconds``.
    """
    raise NotImplementedError(
        "build, start, sleep run_seconds, then always shut the scheduler down"
    )


if __name__ == "__main__":
    main()
