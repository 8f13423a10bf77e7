"""Level 1 reference solution: your first APScheduler timer.

What it teaches (notes/07a_ap_scheduler_intro.md):
    * a ``BackgroundScheduler`` runs jobs in worker threads while the main thread carries on;
    * an ``IntervalTrigger`` repeats every N seconds (its first run is now + N, not now);
    * a ``DateTrigger`` runs a job exactly once, at an aware datetime;
    * time zones: pass ``timezone=`` explicitly everywhere and never build a naive datetime.

How to run:
    cd solutions && python level1_simple_timer.py

You see a "heartbeat" line every 5 s, one "one-shot" line after 10 s, and the program
stops on its own after 30 s (Ctrl+C stops it earlier).
"""

import logging
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
    """Run the scheduler for ``run_seconds`` seconds, then shut it down cleanly."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    scheduler = build_scheduler()
    scheduler.start()
    logger.info("scheduler started, running for %s s", run_seconds)
    try:
        time.sleep(run_seconds)
    except KeyboardInterrupt:
        logger.info("interrupted, stopping early")
    finally:
        scheduler.shutdown()  # waits for a job that is still running
    logger.info("scheduler stopped")


if __name__ == "__main__":
    main()
