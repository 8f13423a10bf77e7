"""Correct: a small GracefulStopper class as the signal handler, logging via dictConfig."""

import logging
import logging.config
import os
import signal
import sys
import threading

from apscheduler.schedulers.base import BaseScheduler

from config import build_scheduler, load_settings

HEARTBEAT_JOB_ID = "heartbeat"
HEARTBEAT_SECONDS = 10

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def heartbeat() -> None:
    """Log exactly one INFO record whose message contains "heartbeat", with ``logger``."""
    logger.info("standalone heartbeat")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add the heartbeat job to ``scheduler``; return nothing."""
    scheduler.add_job(
        heartbeat,
        trigger="interval",
        seconds=HEARTBEAT_SECONDS,
        id=HEARTBEAT_JOB_ID,
        replace_existing=True,
    )


class GracefulStopper:
    """Callable signal handler: it only flips a threading.Event."""

    def __init__(self) -> None:
        self.requested = threading.Event()

    def __call__(self, signum: int, frame: object) -> None:
        self.requested.set()

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self)

    def wait(self) -> None:
        self.requested.wait()


def _configure_logging() -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "[%(levelname)s] %(name)s | %(message)s"}},
            "handlers": {
                "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                           "formatter": "plain"}
            },
            "root": {"level": "INFO", "handlers": ["stderr"]},
        }
    )


def main() -> int:
    """Run the scheduler until SIGTERM or SIGINT, stop it gracefully and return 0."""
    _configure_logging()
    scheduler = build_scheduler(load_settings())
    register_jobs(scheduler)

    stopper = GracefulStopper()
    stopper.install()

    scheduler.start()
    logger.info("ready: scheduler started in pid %d, waiting for SIGTERM/SIGINT", os.getpid())
    stopper.wait()

    logger.info("stop requested, finishing running jobs")
    scheduler.shutdown(wait=True)
    logger.info("all jobs done, scheduler stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
