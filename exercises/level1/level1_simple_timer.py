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

Check your work:  python3 -m grader check simple_timer   (from the repository root)
Try it by hand:   cd exercises/level1 && ../../.venv/bin/python level1_simple_timer.py
                  (stop it with Ctrl+C or `kill -TERM <pid>`; `python3 -m grader setup`,
                  once, from the repository root, creates .venv)
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
    build the scheduler with ``build_scheduler()``, start it and wait ``run_seconds``
    seconds, a float such as 0.5 (#main-sleeps-run-seconds); then shut the scheduler down,
    waiting for a job that is still running (``shutdown()`` waits by default, ``wait=False``
    cuts it off) (#main-waits-for-running-jobs). When ``main`` returns, the scheduler is no
    longer running (#main-stops-scheduler), even if the wait was interrupted by an
    exception (a KeyboardInterrupt from Ctrl+C, when no handler catches SIGINT): shut down
    in a ``finally`` block (#main-stops-when-interrupted). The tests call it with a small
    ``run_seconds``.

    SIGTERM (what ``kill``, systemd, ``docker stop`` and Kubernetes send) and SIGINT
    (Ctrl+C) end the run early and cleanly: the scheduler is shut down as above, waiting
    for a running job, and ``main`` returns normally, without an exception, as soon as
    that job is done, not when ``run_seconds`` are over (#main-stops-on-signal). Without a handler, SIGTERM kills
    the process on the spot: no shutdown, a running job cut off. Install handlers for both
    (``signal.signal``, from the main thread) that only hand the request to the main thread,
    and wait for it instead of sleeping: ``requests = queue.SimpleQueue()``, the handler
    does ``requests.put(signum)``, ``main`` waits with ``requests.get(timeout=...)``
    (``queue.Empty`` when the time is up), best in slices of half a second until
    ``run_seconds`` are over: a signal that lands just before ``get()`` starts to wait only
    has its handler run when that ``get()`` returns. A handler that calls ``shutdown()``
    itself leaves ``main`` sleeping out the rest of ``run_seconds``. (A ``threading.Event``
    works nearly always, but its ``set()`` takes a lock that the interrupted ``wait()`` may
    be holding at that instant: then the process hangs. ``SimpleQueue.put`` is safe there.)
    """
    raise NotImplementedError(
        "handle SIGTERM/SIGINT, build, start, wait run_seconds, then always shut down"
    )


if __name__ == "__main__":
    main()
