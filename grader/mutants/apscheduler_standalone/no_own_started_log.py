"""BUG: main must log its own INFO 'started' line; it relies on APScheduler's 'Scheduler started' record."""

import logging
import signal
import sys
import threading

from apscheduler.schedulers.base import BaseScheduler

from config import build_scheduler, load_settings

HEARTBEAT_JOB_ID = "heartbeat"
HEARTBEAT_SECONDS = 10

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    """Log exactly one INFO record whose message contains "heartbeat", with ``logger``."""
    logger.info("heartbeat")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add the heartbeat job to ``scheduler``; return nothing."""
    scheduler.add_job(
        heartbeat,
        "interval",
        seconds=HEARTBEAT_SECONDS,
        id=HEARTBEAT_JOB_ID,
        replace_existing=True,
    )


def main() -> int:
    """Run the scheduler until SIGTERM or SIGINT, stop it gracefully and return 0."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    scheduler = build_scheduler(load_settings())
    register_jobs(scheduler)

    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    scheduler.start()
    logger.info("scheduler running, waiting for SIGTERM/SIGINT")
    stop.wait()
    scheduler.shutdown(wait=True)
    logger.info("scheduler stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
