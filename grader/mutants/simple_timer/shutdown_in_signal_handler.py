"""BUG: the SIGTERM/SIGINT handler shuts the scheduler down itself; time.sleep then carries on, so the process lingers for the rest of run_seconds with a dead scheduler."""

import logging
import signal
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

TIMEZONE: str = "Asia/Shanghai"
HEARTBEAT_SECONDS: int = 5
ONE_SHOT_DELAY_SECONDS: int = 10

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    logger.info("heartbeat")


def one_shot() -> None:
    logger.info("one-shot done")


def build_scheduler() -> BackgroundScheduler:
    tz = ZoneInfo(TIMEZONE)
    scheduler = BackgroundScheduler(timezone=tz)
    scheduler.add_job(heartbeat, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat")
    when = datetime.now(tz) + timedelta(seconds=ONE_SHOT_DELAY_SECONDS)
    scheduler.add_job(one_shot, "date", run_date=when, id="one_shot")
    return scheduler


def main(run_seconds: float = 30.0) -> None:
    logging.basicConfig(level=logging.INFO)
    scheduler = build_scheduler()

    def graceful_exit(signum, frame):
        logger.info("got signal %s, shutting down", signum)
        if scheduler.running:
            scheduler.shutdown()  # waits for running jobs

    signal.signal(signal.SIGTERM, graceful_exit)
    signal.signal(signal.SIGINT, graceful_exit)
    scheduler.start()
    try:
        time.sleep(run_seconds)
    finally:
        if scheduler.running:
            scheduler.shutdown()


if __name__ == "__main__":
    main()
