"""Correct, in another style: string trigger aliases, one shared `now`, a module-level zone.

Written from the stub alone: add_job(func, "interval", seconds=...) and "date" aliases
inherit the scheduler's zone, so no trigger object is built by hand.
"""

import logging
import signal
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

TIMEZONE: str = "Asia/Shanghai"
HEARTBEAT_SECONDS: int = 5
ONE_SHOT_DELAY_SECONDS: int = 10

ZONE = ZoneInfo(TIMEZONE)
logger = logging.getLogger(__name__)


def heartbeat() -> None:
    logger.info("heartbeat: still alive")


def one_shot() -> None:
    logger.info("one-shot: this runs once")


def build_scheduler() -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=ZONE)
    now = datetime.now(ZONE)
    scheduler.add_job(heartbeat, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat")
    scheduler.add_job(
        one_shot,
        "date",
        run_date=now + timedelta(seconds=ONE_SHOT_DELAY_SECONDS),
        id="one_shot",
    )
    return scheduler


def main(run_seconds: float = 30.0) -> None:
    logging.basicConfig(level=logging.INFO)
    # kill / docker stop send SIGTERM: treat it like Ctrl+C, which Python turns into a
    # KeyboardInterrupt, so both end the sleep through the same except/finally.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    scheduler = build_scheduler()
    scheduler.start()
    try:
        time.sleep(run_seconds)
    except KeyboardInterrupt:
        logger.info("stopping early")
    finally:
        scheduler.shutdown()


if __name__ == "__main__":
    main()
