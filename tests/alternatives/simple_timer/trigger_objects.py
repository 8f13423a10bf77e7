"""simple_timer, correct: explicit trigger objects, small helpers, keyword arguments."""

import logging
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

logger = logging.getLogger(__name__)


def _zone() -> ZoneInfo:
    return ZoneInfo(TIMEZONE)


def heartbeat() -> None:
    """Log exactly one INFO record containing "heartbeat"."""
    logger.info("heartbeat")


def one_shot() -> None:
    """Log exactly one INFO record containing "one-shot"."""
    logger.info("one-shot: fired once")


def _heartbeat_trigger(zone: ZoneInfo) -> IntervalTrigger:
    return IntervalTrigger(seconds=HEARTBEAT_SECONDS, timezone=zone)


def _one_shot_trigger(zone: ZoneInfo) -> DateTrigger:
    when = datetime.now(tz=zone) + timedelta(seconds=ONE_SHOT_DELAY_SECONDS)
    return DateTrigger(run_date=when, timezone=zone)


def build_scheduler() -> BackgroundScheduler:
    """Return an unstarted scheduler with the "heartbeat" and "one_shot" jobs."""
    zone = _zone()
    scheduler = BackgroundScheduler(timezone=zone)
    scheduler.add_job(func=heartbeat, trigger=_heartbeat_trigger(zone), id="heartbeat", name="heartbeat")
    scheduler.add_job(func=one_shot, trigger=_one_shot_trigger(zone), id="one_shot", name="one_shot")
    return scheduler


class StopRequested(Exception):
    """Raised by the signal handler to end the sleep early."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def main(run_seconds: float = 30.0) -> None:
    """Run for run_seconds seconds (or until SIGTERM/SIGINT), always shutting down."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    scheduler = build_scheduler()
    try:
        signal.signal(signal.SIGTERM, _raise_stop)
        signal.signal(signal.SIGINT, _raise_stop)
        scheduler.start()
        time.sleep(run_seconds)
    except StopRequested as stop:
        logger.info("%s received, shutting down", stop)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the shutdown
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if scheduler.running:
            scheduler.shutdown(wait=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)


if __name__ == "__main__":
    main()
