"""Exercise apscheduler_standalone (level 1): the scheduler as its own process.

Read first: notes/07a_ap_scheduler_intro.md (section "Standalone process").
Do the apscheduler_config exercise first: this file uses its ``build_scheduler`` and
``load_settings`` (``from config import ...`` finds config.py next to this file).

Build a program that runs the scheduler until it is asked to stop - by SIGTERM (what
``docker stop``, Kubernetes and systemd send) or SIGINT (Ctrl+C) - and then stops
gracefully: jobs that are running finish, the process logs that it stopped and exits
with status 0.

Each promise the tests grade ends with a tag such as (#first-run-after-interval); a
failing test names its tag.

Keep the names and signatures below exactly as they are: the hidden tests import them
and also run this file as a real process. Replace each ``raise NotImplementedError(...)``.

Check your work:  python3 -m grader check apscheduler_standalone   (from the repository root)
Try it by hand:   cd exercises/level1/apscheduler && ../../../.venv/bin/python standalone_app.py
                  (stop it with Ctrl+C, or `kill -TERM <pid>` from another terminal;
                  `python3 -m grader setup`, once, from the repository root, creates .venv)
"""

import logging
import sys

from apscheduler.schedulers.base import BaseScheduler

HEARTBEAT_JOB_ID = "heartbeat"
HEARTBEAT_SECONDS = 10

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    """Log exactly one INFO record whose message contains "heartbeat", with ``logger``, and
    return nothing (#heartbeat-logs-one-info-record)."""
    raise NotImplementedError("log one INFO line containing 'heartbeat'")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add the heartbeat job to ``scheduler``; return nothing.

    The job calls the module-level function ``heartbeat`` every HEARTBEAT_SECONDS seconds
    (#heartbeat-every-10-seconds), in the scheduler's time zone
    (#trigger-in-scheduler-zone), under the fixed id HEARTBEAT_JOB_ID. Calling this twice
    must still leave exactly one job with that id (the second call replaces the first)
    (#register-twice-keeps-one-job).
    """
    raise NotImplementedError("add the heartbeat job with a fixed id so that re-adding replaces it")


def main() -> int:
    """Run the scheduler until SIGTERM or SIGINT, stop it gracefully and return 0.

    In this order:
      1. configure logging at INFO level, to stderr: the root logger, so APScheduler's own
         INFO lines show too (``logging.basicConfig``) (#logging-info-to-stderr);
      2. build the scheduler with ``build_scheduler(load_settings())`` (import both from
         config) and register the jobs (#builds-and-registers);
      3. install one handler for SIGTERM and SIGINT (#handlers-before-start) that only hands
         the request to the main thread - ``requests.put(signum)`` on a
         ``queue.SimpleQueue``; no shutdown, no ``sys.exit`` in it (a handler runs in the
         main thread, between two lines of your code: keep it tiny; ``Event.set()`` there
         can deadlock, see the note) (#handler-only-sets-event);
      4. start the scheduler, then log, with the module's ``logger``, an INFO line
         containing "started" (APScheduler's own "Scheduler started" does not count)
         (#started-logged-after-start);
      5. wait for that request (``requests.get(timeout=0.5)`` in a loop), so that a signal
         stops the process at once, not after a long sleep (#waits-on-event);
      6. shut the scheduler down, waiting for running jobs to finish
         (#shutdown-waits-for-jobs);
      7. log an INFO line containing "stopped" (#stopped-logged) and return 0
         (#returns-0).

    The tests start ``python standalone_app.py``, wait for your "started" line, send
    SIGTERM (#sigterm-graceful) (then, in another run, SIGINT (#sigint-graceful)) and
    expect: exit status 0 within a second or two, a "stopped" line on stderr, and a job
    that was running at that moment completed, not cut off.
    """
    raise NotImplementedError("run until SIGTERM/SIGINT arrives, then shut down and return 0")


if __name__ == "__main__":
    sys.exit(main())
