"""Heartbeat given next_run_time=now so it "starts right away": the stub says its first run is one interval after now.

Written from the stub alone, in the string-alias style ("interval", "date") a learner
finds in blog posts, unlike the reference solution's trigger objects.
"""

import logging
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
    logger.info("one-shot fired")


def build_scheduler() -> BackgroundScheduler:
    zone = ZoneInfo(TIMEZONE)
    now = datetime.now(zone)
    scheduler = BackgroundScheduler(timezone=zone)
    scheduler.add_job(
        heartbeat,
        "interval",
        seconds=HEARTBEAT_SECONDS,
        id="heartbeat",
        next_run_time=now,  # the bug: the first beat is now, not now + 5 s
    )
    scheduler.add_job(
        one_shot, "date", run_date=now + timedelta(seconds=ONE_SHOT_DELAY_SECONDS), id="one_shot"
    )
    return scheduler


def main(run_seconds: float = 30.0) -> None:
    logging.basicConfig(level=logging.INFO)
    scheduler = build_scheduler()
    scheduler.start()
    try:
        time.sleep(run_seconds)
    finally:
        scheduler.shutdown()


if __name__ == "__main__":
    main()
