"""BUG: also alerts on every retried attempt, through on_retry (#one-alert-on-final-failure: 'the final failure raises one alert, and a retried attempt none')."""

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
app.config_from_object(beat_config)
app.conf.update(
    broker_url=os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL),
    result_backend=os.environ.get("CELERY_RESULT_BACKEND", DEFAULT_RESULT_BACKEND),
    task_routes=TASK_ROUTES,
)

_RELEASE_IF_MINE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def get_redis() -> redis.Redis:
    """Return a client for the application's Redis (REDIS_URL, read at each call)."""
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    return redis.Redis.from_url(url, decode_responses=True)


def deliver(user_id: int, message: str) -> None:
    """Hand one notification to the provider (a log line standing in for an HTTP call)."""
    logger.info("delivering to user %s: %s", user_id, message)


def send_alert(text: str) -> None:
    """Page a human (an ERROR log line standing in for a pager or a chat message)."""
    logger.error("ALERT: %s", text)


class AlertingTask(Task):
    """A task base class that raises an alert when a task fails for good."""

    def on_retry(self, exc, task_id, args, kwargs, einfo):  # type: ignore[no-untyped-def]
        send_alert(f"task {self.name}[{task_id}] is retrying after {exc!r}; args={args!r}")

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        send_alert(
            f"task {self.name}[{task_id}] failed for good: {exc!r}; "
            f"args={args!r} kwargs={kwargs!r}"
        )


@app.task(name="cronkata.cleanup")
def cleanup(max_age_seconds: int = SESSION_MAX_AGE_SECONDS) -> int:
    """Remove the sessions idle for more than ``max_age_seconds``; return how many."""
    cutoff = time.time() - max_age_seconds
    removed = get_redis().zremrangebyscore(SESSIONS_KEY, "-inf", f"({cutoff}")
    logger.info("cleanup removed %d idle sessions", removed)
    return int(removed)


@app.task(name="cronkata.daily_report")
def daily_report() -> dict[str, int]:
    """Return (and log) the session count and the sent counter."""
    client = get_redis()
    report = {
        "sessions": int(client.zcard(SESSIONS_KEY)),
        "notifications_sent": int(client.get(SENT_COUNTER_KEY) or 0),
    }
    logger.info("daily report: %s", report)
    return report


class _Claim:
    """One attempt's claim on a notification's idempotency key."""

    def __init__(self, client: redis.Redis, notification_id: str) -> None:
        self.client = client
        self.key = IDEMPOTENCY_KEY_PREFIX + notification_id
        self.token = uuid.uuid4().hex

    def take(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, ex=NOTIFY_TIME_LIMIT))

    def release(self) -> None:
        self.client.register_script(_RELEASE_IF_MINE)(keys=[self.key], args=[self.token])

    def mark_sent(self) -> None:
        self.client.set(self.key, "sent", ex=IDEMPOTENCY_TTL_SECONDS)
        self.client.incr(SENT_COUNTER_KEY)


@app.task(
    bind=True,
    name="cronkata.notify",
    base=AlertingTask,
    autoretry_for=(TransientError,),
    max_retries=NOTIFY_MAX_RETRIES,
    retry_backoff=NOTIFY_BACKOFF_FACTOR,
    retry_backoff_max=NOTIFY_BACKOFF_MAX_SECONDS,
    retry_jitter=True,
    soft_time_limit=NOTIFY_SOFT_TIME_LIMIT,
    time_limit=NOTIFY_TIME_LIMIT,
)
def notify(self: Task, notification_id: str, user_id: int, message: str) -> str:
    """Deliver one notification at most once and return "sent" (or "duplicate")."""
    claim = _Claim(get_redis(), notification_id)
    if not claim.take():
        logger.info("notification %s already claimed: duplicate", notification_id)
        return "duplicate"
    try:
        deliver(user_id, message)
    except BaseException:
        claim.release()
        raise
    claim.mark_sent()
    return "sent"


@app.task(name="cronkata.add")
def add(x: int, y: int) -> int:
    """Return ``x + y``."""
    return x + y


@app.task(name="cronkata.square")
def square(x: int) -> int:
    """Return ``x * x``."""
    return x * x


@app.task(name="cronkata.total")
def total(values: list[int]) -> int:
    """Return the sum of ``values``."""
    return sum(values)
