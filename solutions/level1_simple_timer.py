"""Level 1 reference solution: your first APScheduler timer.

What it teaches (notes/07a_ap_scheduler_intro.md):
    * a ``BackgroundScheduler`` runs jobs in worker threads while the main thread carries on;
    * an ``IntervalTrigger`` repeats every N seconds (its first run is now + N, not now);
    * a ``DateTrigger`` runs a job exactly once, at an aware datetime;
    * time zones: pass ``timezone=`` explicitly everywhere and never build a naive datetime.

How to run (with the course's venv: `python3 -m grader setup`, once, from the repository
root, creates .venv):
    cd solutions && ../.venv/bin/python level1_simple_timer.py

You see a "heartbeat" line every 5 s, one "one-shot" line after 10 s, and the program
stops on its own after 30 s. Ctrl+C or `kill -TERM <pid>` stops it earlier, cleanly: the
scheduler is shut down and a job still running finishes first.
"""

import logging
import queue
import signal
import time
from datetime import datetime, timedelta
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

TIMEZONE: str = "Asia/Shanghai"
HEARTBEAT_SECONDS: int = 5
ONE_SHOT_DELAY_SECONDS: int = 10
_WAIT_SLICE_SECONDS = 0.5  # how late main() may notice a stop request, at worst

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    """Log one INFO line showing that the scheduler is alive."""
    logger.info("heartbeat")


def one_shot() -> None:
    """Log one INFO line; this job is scheduled to run exactly once."""
    logger.info("one-shot job ran")


def build_scheduler() -> BackgroundScheduler:
    """Return a scheduler, not started yet, holding the "heartbeat" and "one_shot" jobs."""
    tz = ZoneInfo(TIMEZONE)
    scheduler = BackgroundScheduler(timezone=tz)
    scheduler.add_job(
        heartbeat,
        IntervalTrigger(seconds=HEARTBEAT_SECONDS, timezone=tz),
        id="heartbeat",
    )
    run_at = datetime.now(tz) + timedelta(seconds=ONE_SHOT_DELAY_SECONDS)
    scheduler.add_job(one_shot, DateTrigger(run_date=run_at, timezone=tz), id="one_shot")
    return scheduler


def main(run_seconds: float = 30.0) -> None:
    """Run the scheduler for ``run_seconds`` seconds, or until SIGTERM or SIGINT (Ctrl+C),
    then shut it down cleanly, letting a running job finish. Call it from the main thread."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The handler runs in the main thread, between two bytecodes of whatever it was doing:
    # it only hands the request over. SimpleQueue.put() may interrupt a get() safely; a
    # threading.Event would not do: set() takes a lock that the interrupted wait() can be
    # holding at that instant, and the process hangs for good.
    stop_requests: queue.SimpleQueue[int] = queue.SimpleQueue()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requests.put(signum)  # only this: main() shuts down once get() returns

    # Without a handler SIGTERM (kill, systemd, docker stop, Kubernetes) kills the process
    # at once: no shutdown, and a job still running is cut off half-way.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    scheduler = build_scheduler()
    scheduler.start()
    logger.info("scheduler started for %s s (stop it with Ctrl+C or SIGTERM)", run_seconds)
    deadline = time.monotonic() + run_seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                # In slices: a signal that lands just before get() starts to wait does not
                # interrupt it; its handler runs when this get() returns.
                signum = stop_requests.get(timeout=min(left, _WAIT_SLICE_SECONDS))
            except queue.Empty:
                continue
            logger.info("%s received, stopping early", signal.Signals(signum).name)
            break
    finally:
        scheduler.shutdown()  # waits for a job that is still running
    logger.info("scheduler stopped")


if __name__ == "__main__":
    main()
