"""simple_timer, correct implementation 2: scheduled_job decorators with trigger aliases
(inheriting the scheduler zone), functools.partial signal handler, deadline loop."""

import functools
import logging
import queue
import signal
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler

TIMEZONE: str = "Asia/Shanghai"
HEARTBEAT_SECONDS: int = 5
ONE_SHOT_DELAY_SECONDS: int = 10

logger = logging.getLogger(__name__)

_POLL = 0.5


def heartbeat() -> None:
    logger.log(logging.INFO, "tick - heartbeat")


def one_shot() -> None:
    logger.log(logging.INFO, "the one-shot job ran")


def build_scheduler() -> BackgroundScheduler:
    tz = ZoneInfo(TIMEZONE)
    sched = BackgroundScheduler(timezone=tz)
    # the aliases build IntervalTrigger / DateTrigger in the scheduler's zone
    sched.scheduled_job("interval", seconds=HEARTBEAT_SECONDS, id="heartbeat")(heartbeat)
    sched.scheduled_job(
        "date", run_date=datetime.now(tz) + timedelta(seconds=ONE_SHOT_DELAY_SECONDS), id="one_shot"
    )(one_shot)
    return sched


def _enqueue(box: "queue.SimpleQueue[int]", signum: int, _frame) -> None:
    box.put(signum)


def _wait_for_stop(box: "queue.SimpleQueue[int]", run_seconds: float) -> bool:
    end = time.monotonic() + run_seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        try:
            box.get(timeout=min(_POLL, left))
            return True
        except queue.Empty:
            continue


def main(run_seconds: float = 30.0) -> None:
    logging.basicConfig(level=logging.INFO)
    box: queue.SimpleQueue[int] = queue.SimpleQueue()
    handler = functools.partial(_enqueue, box)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    sched = build_scheduler()
    sched.start()
    try:
        early = _wait_for_stop(box, run_seconds)
        logger.info("stopping (%s)", "signal" if early else "time is up")
    finally:
        sched.shutdown(wait=True)


if __name__ == "__main__":
    main()
