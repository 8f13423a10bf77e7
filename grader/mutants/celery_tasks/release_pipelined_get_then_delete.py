"""Bug: the failed attempt reads its claim in a MULTI/EXEC pipeline, then DELs it: the DEL is a second command, so a claim that changes hands in between is freed although it is another delivery's."""

import logging
import os
import time
import uuid
from typing import Any

import beat_config
import redis
from celery import Celery, Task

DEFAULT_BROKER_URL = "redis://localhost:6379/0"
DEFAULT_RESULT_BACKEND = "redis://localhost:6379/1"
DEFAULT_REDIS_URL = "redis://localhost:6379/2"
TASK_ROUTES = {
    "cronkata.notify": {"queue": "notifications"},
    "cronkata.cleanup": {"queue": "maintenance"},
    "cronkata.daily_report": {"queue": "maintenance"},
}

SESSIONS_KEY = "cronkata:sessions"
SESSION_MAX_AGE_SECONDS = 3600
SENT_COUNTER_KEY = "cronkata:notifications:sent"
IDEMPOTENCY_KEY_PREFIX = "cronkata:notify:"
IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600

NOTIFY_MAX_RETRIES = 6
NOTIFY_BACKOFF_FACTOR = 2
NOTIFY_BACKOFF_MAX_SECONDS = 30
NOTIFY_SOFT_TIME_LIMIT = 20
NOTIFY_TIME_LIMIT = 30

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying: the provider timed out, was rate-limited, was unreachable."""


app = Celery("cronkata")
app.config_from_object(beat_config)  # timezone and beat_schedule: one source of truth
app.conf.update(
    broker_url=os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL),
    result_backend=os.environ.get("CELERY_RESULT_BACKEND", DEFAULT_RESULT_BACKEND),
    task_routes=TASK_ROUTES,
    result_expires=24 * 3600,
)


def get_redis() -> redis.Redis:
    """A client for the application's Redis (REDIS_URL, read at call time)."""
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    return redis.Redis.from_url(url, decode_responses=True)


def deliver(user_id: int, message: str) -> None:
    """Hand one notification to the provider (here: a log line standing in for an HTTP call)."""
    logger.info("delivering to user %s: %s", user_id, message)


def send_alert(text: str) -> None:
    """Page a human (here: an ERROR log line standing in for a pager or a chat message)."""
    logger.error("ALERT: %s", text)


class AlertingTask(Task):
    """A task base class that raises an alert when a task fails for good."""

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Called once per task, after the last attempt failed (never for a retry)."""
        send_alert(
            f"{self.name}[{task_id}] failed after {self.request.retries} retries: {exc!r} "
            f"(args={args!r}, kwargs={kwargs!r})"
        )


@app.task(name="cronkata.cleanup")
def cleanup(max_age_seconds: int = SESSION_MAX_AGE_SECONDS) -> int:
    """Remove sessions idle for more than ``max_age_seconds``; return how many were removed."""
    cutoff = time.time() - max_age_seconds
    removed = int(get_redis().zremrangebyscore(SESSIONS_KEY, "-inf", f"({cutoff}"))
    logger.info("cleanup removed %d session(s) idle for more than %d s", removed, max_age_seconds)
    return removed


@app.task(name="cronkata.daily_report")
def daily_report() -> dict[str, int]:
    """Count the live sessions and the notifications sent so far; log and return them."""
    client = get_redis()
    report = {
        "sessions": int(client.zcard(SESSIONS_KEY)),
        "notifications_sent": int(client.get(SENT_COUNTER_KEY) or 0),
    }
    logger.info("daily report: %s", report)
    return report


@app.task(
    bind=True,
    base=AlertingTask,
    name="cronkata.notify",
    autoretry_for=(TransientError,),
    retry_backoff=NOTIFY_BACKOFF_FACTOR,
    retry_backoff_max=NOTIFY_BACKOFF_MAX_SECONDS,
    retry_jitter=True,
    max_retries=NOTIFY_MAX_RETRIES,
    soft_time_limit=NOTIFY_SOFT_TIME_LIMIT,
    time_limit=NOTIFY_TIME_LIMIT,
)
def notify(self: Task, notification_id: str, user_id: int, message: str) -> str:
    """Deliver one notification at most once; return "sent", or "duplicate" if already done."""
    client = get_redis()
    key = f"{IDEMPOTENCY_KEY_PREFIX}{notification_id}"
    # Claim the key atomically: a second delivery of the same message finds it taken. The
    # claim lives as long as the hard time limit: if this worker dies mid-delivery, a
    # redelivery (after the visibility timeout, which is longer) can claim it again. Its
    # value is a token of this attempt alone, so that only this attempt can free it.
    token = uuid.uuid4().hex
    if not client.set(key, token, nx=True, ex=NOTIFY_TIME_LIMIT):
        logger.info("notification %s already handled, skipping", notification_id)
        return "duplicate"
    try:
        deliver(user_id, message)
    except BaseException:
        # Not delivered: free the claim so the retry can deliver it, unless it expired
        # meanwhile and is another delivery's now.
        with client.pipeline() as pipe:  # MULTI/EXEC: read the claim atomically
            pipe.get(key)
            (holder,) = pipe.execute()
        if holder == token:  # still ours: free it so the retry can deliver it
            client.delete(key)
        else:
            logger.warning("claim of notification %s expired during delivery", notification_id)
        raise
    client.set(key, "sent", ex=IDEMPOTENCY_TTL_SECONDS)  # remember it for a week
    client.incr(SENT_COUNTER_KEY)
    logger.info("notification %s sent (attempt %d)", notification_id, self.request.retries + 1)
    return "sent"


@app.task(name="cronkata.add")
def add(x: int, y: int) -> int:
    """Return ``x + y`` (a building block for chains)."""
    return x + y


@app.task(name="cronkata.square")
def square(x: int) -> int:
    """Return ``x * x`` (a building block for groups and chords)."""
    return x * x


@app.task(name="cronkata.total")
def total(values: list[int]) -> int:
    """Return the sum of ``values`` (a chord callback: it receives the group's results)."""
    return sum(values)
