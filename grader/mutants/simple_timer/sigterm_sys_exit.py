"""BUG: SIGTERM's handler calls sys.exit(0) and main has no finally: the SystemExit skips the shutdown, the scheduler is left running while the process dies."""

import logging
import signal
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

TIMEZONE: str = "Asia/Shanghai"
HEARTBEAT_SECONDS: int = 5
ONE_SHOT_DELAY_SECONDS: int = 10

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    logger.info("heartbeat")


def one_shot() -> None:
    logger.info("one-shot fired")


def build_scheduler() -> BackgroundScheduler:
    tz = ZoneInfo(TIMEZONE)
    scheduler = BackgroundScheduler(timezone=tz)
    scheduler.add_job(
        heartbeat, IntervalTrigger(seconds=HEARTBEAT_SECONDS, timezone=tz), id="heartbeat"
    )
    run_date = datetime.now(tz) + timedelta(seconds=ONE_SHOT_DELAY_SECONDS)
    scheduler.add_job(one_shot, DateTrigger(run_date=run_date, timezone=tz), id="one_shot")
    return scheduler


def main(run_seconds: float = 30.0) -> None:
    logging.basicConfig(level=logging.INFO)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    scheduler = build_scheduler()
    scheduler.start()
    try:
        time.sleep(run_seconds)
    except KeyboardInterrupt:
        logger.info("Ctrl+C, stopping")
    scheduler.shutdown()


if __name__ == "__main__":
    main()
