"""Correct: functools.partial handler, explicit stderr handler, Event polled with a short timeout."""

import functools
import logging
import signal
import sys
import threading
from types import FrameType

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from config import build_scheduler, load_settings

HEARTBEAT_JOB_ID = "heartbeat"
HEARTBEAT_SECONDS = 10

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    """Log exactly one INFO record whose message contains "heartbeat", with ``logger``."""
    logger.info("heartbeat (standalone scheduler process)")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add the heartbeat job to ``scheduler``; return nothing."""
    every = IntervalTrigger(seconds=HEARTBEAT_SECONDS, timezone=scheduler.timezone)
    scheduler.add_job(heartbeat, every, id=HEARTBEAT_JOB_ID, replace_existing=True)


def _request_stop(event: threading.Event, signum: int, frame: FrameType | None) -> None:
    event.set()


def _setup_logging() -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if not any(getattr(h, "_cronkata", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler._cronkata = True
        root.addHandler(handler)


def main() -> int:
    """Run the scheduler until SIGTERM or SIGINT, stop it gracefully and return 0."""
    _setup_logging()
    scheduler = build_scheduler(load_settings())
    register_jobs(scheduler)

    shutdown_requested = threading.Event()
    handler = functools.partial(_request_stop, shutdown_requested)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)

    scheduler.start()
    logger.info("Standalone scheduler started; send SIGTERM or press Ctrl+C to stop")
    try:
        while not shutdown_requested.wait(timeout=0.5):
            pass
    finally:
        scheduler.shutdown(wait=True)
    logger.info("Standalone scheduler stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
