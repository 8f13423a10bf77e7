"""Level 1 reference solution: the scheduler as its own process, with a graceful shutdown.

What it teaches (notes/07a_ap_scheduler_intro.md):
    * one scheduler process, whatever the number of web workers: jobs run once per tick;
    * SIGTERM (``docker stop``, Kubernetes, systemd) and SIGINT (Ctrl+C) only hand the
      request to the main thread (a ``queue.SimpleQueue``, safe inside a signal handler);
      the main thread then calls ``shutdown(wait=True)`` so a running job finishes instead
      of dying half-way;
    * the process exits with status 0 after a requested stop, and logs "started"/"stopped";
      it does not start with bad settings or an unreachable job store database: one ERROR
      line naming the variable, exit status 2.

How to run:
    cd solutions/apscheduler && ../../.venv/bin/python standalone_app.py
    (stop it with Ctrl+C, or `kill -TERM <pid>` from another terminal)

Settings come from SCHEDULER_* variables (see config.py). Jobs kept in PostgreSQL survive a
restart; its driver is the project's ``postgres`` extra (in the course's .venv; elsewhere
``pip install -e ".[postgres]"`` from the repository root). With the local server:
    createdb -h 127.0.0.1 -U postgres cronkata    # once
    cd solutions/apscheduler
    SCHEDULER_JOBSTORE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/cronkata \\
        ../../.venv/bin/python standalone_app.py
"""

import logging
import os
import queue
import signal
import sys
from types import FrameType

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger
from config import _check_jobstore, _error_line, build_scheduler, load_settings
from sqlalchemy.exc import SQLAlchemyError

HEARTBEAT_JOB_ID = "heartbeat"
HEARTBEAT_SECONDS = 10
_EXIT_BAD_SETTINGS = 2  # could not start: a setting or the job store's database is wrong

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    """Log one INFO line showing that the scheduler is alive."""
    logger.info("heartbeat")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add the heartbeat job (every 10 s); safe to call again, it replaces the old one."""
    scheduler.add_job(
        heartbeat,
        IntervalTrigger(seconds=HEARTBEAT_SECONDS, timezone=scheduler.timezone),
        id=HEARTBEAT_JOB_ID,
        name="heartbeat",
        replace_existing=True,
    )


def main() -> int:
    """Run the scheduler until SIGTERM or SIGINT, then stop it gracefully; return 0.

    Bad settings or a job store that cannot be opened: one ERROR line, return 2.
    """
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings()
        _check_jobstore(settings)  # a wrong host, port or password: fail before anything else
        scheduler = build_scheduler(settings)
    except (ValueError, ImportError, SQLAlchemyError) as error:  # names the bad variable
        logger.error("cannot start: %s", _error_line(error))
        return _EXIT_BAD_SETTINGS
    register_jobs(scheduler)

    # The handler runs in the main thread between two bytecodes: it only hands the request
    # over. SimpleQueue.put() may interrupt the main thread's get() safely; Event.set()
    # takes a lock that an interrupted Event.wait() can be holding, and would hang for good.
    stop_requests: queue.SimpleQueue[int] = queue.SimpleQueue()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requests.put(signum)

    handled = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, request_stop) for sig in handled}
    try:
        try:
            scheduler.start()  # opens the job store (creates its table): may still fail
        except SQLAlchemyError as error:
            logger.error("cannot start: %s", _error_line(error))
            return _EXIT_BAD_SETTINGS
        logger.info("scheduler started (pid %d); stop with SIGTERM or Ctrl+C", os.getpid())
        while True:
            try:  # in slices: a signal just before get() starts waiting runs after it returns
                signum = stop_requests.get(timeout=0.5)
                break
            except queue.Empty:
                continue
        logger.info("%s received, waiting for running jobs to finish", signal.Signals(signum).name)
        scheduler.shutdown(wait=True)
    finally:
        for sig, handler in previous.items():  # leave the process as we found it
            signal.signal(sig, handler)
    logger.info("scheduler stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
