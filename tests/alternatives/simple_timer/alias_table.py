"""simple_timer, correct: string trigger aliases driven by a job table, %-style log args."""

import logging
import signal
from datetime import datetime, timedelta
from threading import Event
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

TIMEZONE: str = "Asia/Shanghai"
HEARTBEAT_SECONDS: int = 5
ONE_SHOT_DELAY_SECONDS: int = 10

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    logger.log(logging.INFO, "%s: still alive", "heartbeat")


def one_shot() -> None:
    logger.info("one-shot job ran at %s", datetime.now(ZoneInfo(TIMEZONE)).isoformat())


def _job_table(now: datetime) -> list[dict]:
    return [
        {"func": heartbeat, "trigger": "interval", "seconds": HEARTBEAT_SECONDS, "id": "heartbeat"},
        {
            "func": one_shot,
            "trigger": "date",
            "run_date": now + timedelta(seconds=ONE_SHOT_DELAY_SECONDS),
            "id": "one_shot",
        },
    ]


def build_scheduler() -> BackgroundScheduler:
    tz = ZoneInfo(TIMEZONE)
    scheduler = BackgroundScheduler(timezone=tz)
    for spec in _job_table(datetime.now(tz)):
        scheduler.add_job(**spec)
    return scheduler


def main(run_seconds: float = 30.0) -> None:
    logging.basicConfig(level=logging.INFO)
    stopping = Event()
    previous = {
        sig: signal.signal(sig, lambda signum, frame: stopping.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    scheduler = build_scheduler()
    scheduler.start()
    logger.info("timer running for %.1f s", run_seconds)
    try:
        if stopping.wait(timeout=run_seconds):
            logger.info("interrupted")
    finally:
        scheduler.shutdown()
        logger.info("timer stopped")
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    main()
