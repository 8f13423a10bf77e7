"""BUG: #main-waits-for-running-jobs - main shuts down with wait=False, so a job that is still running is cut off/left behind when main returns."""

import logging
import queue
import signal
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
    logger.info("heartbeat: timer is alive")


def one_shot() -> None:
    logger.info("one-shot: fired once")


def build_scheduler() -> BackgroundScheduler:
    zone = ZoneInfo(TIMEZONE)
    scheduler = BackgroundScheduler(timezone=zone)
    scheduler.add_job(
        func=heartbeat,
        trigger=IntervalTrigger(seconds=HEARTBEAT_SECONDS, timezone=zone),
        id="heartbeat",
        name="heartbeat",
    )
    fire_at = datetime.now(zone) + timedelta(seconds=ONE_SHOT_DELAY_SECONDS)
    scheduler.add_job(
        func=one_shot,
        trigger=DateTrigger(run_date=fire_at, timezone=zone),
        id="one_shot",
        name="one_shot",
    )
    return scheduler


class _StopRequests:
    """Collects stop requests from signal handlers; the main thread waits on it."""

    SLICE_SECONDS = 0.5

    def __init__(self) -> None:
        self._pending: queue.SimpleQueue[int] = queue.SimpleQueue()

    def __call__(self, signum, frame) -> None:  # the signal handler: hand over, nothing else
        self._pending.put(signum)

    def wait(self, seconds: float) -> int | None:
        """Return the signal number that asked to stop, or None when ``seconds`` ran out."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                return self._pending.get(timeout=min(self.SLICE_SECONDS, remaining))
            except queue.Empty:
                pass
        return None


def main(run_seconds: float = 30.0) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = _StopRequests()
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    scheduler = build_scheduler()
    try:
        scheduler.start()
        reason = stop.wait(run_seconds)
        if reason is not None:
            logger.info("got %s, stopping early", signal.Signals(reason).name)
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)  # don't hang on exit
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    logger.info("timer stopped")


if __name__ == "__main__":
    main()
