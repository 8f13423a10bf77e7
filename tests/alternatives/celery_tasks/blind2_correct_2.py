"""Exercise celery_tasks (level 3): the Celery app and its tasks (correct version 2).

Dict-based configuration, options passed as a dict, EVAL for the release, a pipeline.
"""

import logging
import os
import time
import uuid
from functools import partial
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


def _settings_from_environment() -> dict[str, Any]:
    env = os.environ
    return {
        "broker_url": env.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL),
        "result_backend": env.get("CELERY_RESULT_BACKEND", DEFAULT_RESULT_BACKEND),
        "task_routes": dict(TASK_ROUTES),
    }


app = Celery("cronkata")
app.config_from_object(beat_config)
app.conf.update(**_settings_from_environment())

COMPARE_AND_DELETE = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('DEL', KEYS[1]) else return 0 end"
)


def get_redis() -> redis.Redis:
    """Return a client for the application's Redis (REDIS_URL, read at each call)."""
    return redis.Redis.from_url(
        os.getenv("REDIS_URL", DEFAULT_REDIS_URL) or DEFAULT_REDIS_URL,
        decode_responses=True,
    )


def deliver(user_id: int, message: str) -> None:
    """Hand one notification to the provider (a log line standing in for an HTTP call)."""
    logger.info("delivering to user %s: %s", user_id, message)


def send_alert(text: str) -> None:
    """Page a human (an ERROR log line standing in for a pager or a chat message)."""
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
        parts = [f"{self.name} gave up (id {task_id})", f"error {type(exc).__name__}: {exc}"]
        parts.append(f"args {list(args)}")
        if kwargs:
            parts.append(f"kwargs {kwargs}")
        send_alert(" | ".join(parts))


@app.task(name="cronkata.cleanup")
def cleanup(max_age_seconds: int = SESSION_MAX_AGE_SECONDS) -> int:
    """Remove the sessions idle for more than ``max_age_seconds``; return how many."""
    oldest_allowed = time.time() - max_age_seconds
    count = get_redis().zremrangebyscore(name=SESSIONS_KEY, min=float("-inf"), max=oldest_allowed)
    return int(count)


@app.task(name="cronkata.daily_report")
def daily_report() -> dict[str, int]:
    """Return (and log) the session count and the sent counter."""
    r = get_redis()
    raw_counter = r.get(SENT_COUNTER_KEY)
    numbers = {"sessions": r.zcard(SESSIONS_KEY), "notifications_sent": int(raw_counter or "0")}
    numbers = {name: int(value) for name, value in numbers.items()}
    logger.info("report sessions=%(sessions)d sent=%(notifications_sent)d", numbers)
    return numbers


NOTIFY_OPTIONS: dict[str, Any] = {
    "bind": True,
    "name": "cronkata.notify",
    "base": AlertingTask,
    "autoretry_for": (TransientError,),
    "retry_kwargs": {"max_retries": NOTIFY_MAX_RETRIES},
    "max_retries": NOTIFY_MAX_RETRIES,
    "retry_backoff": NOTIFY_BACKOFF_FACTOR,
    "retry_backoff_max": NOTIFY_BACKOFF_MAX_SECONDS,
    "retry_jitter": True,
    "soft_time_limit": NOTIFY_SOFT_TIME_LIMIT,
    "time_limit": NOTIFY_TIME_LIMIT,
}


def _key_for(notification_id: str) -> str:
    return f"{IDEMPOTENCY_KEY_PREFIX}{notification_id}"


@app.task(**NOTIFY_OPTIONS)
def notify(self: Task, notification_id: str, user_id: int, message: str) -> str:
    """Deliver one notification at most once and return "sent" (or "duplicate")."""
    r = get_redis()
    key = _key_for(notification_id)
    mine = uuid.uuid4().hex
    claimed = r.set(name=key, value=mine, ex=NOTIFY_TIME_LIMIT, nx=True)
    if not claimed:
        return "duplicate"
    give_back = partial(r.eval, COMPARE_AND_DELETE, 1, key, mine)
    try:
        deliver(user_id, message)
    except BaseException as error:  # SoftTimeLimitExceeded too
        give_back()
        logger.warning("notification %s not delivered (%s); claim released", key, error)
        raise
    with r.pipeline(transaction=True) as pipe:
        pipe.set(key, f"sent:{mine}", ex=IDEMPOTENCY_TTL_SECONDS)
        pipe.incr(SENT_COUNTER_KEY, 1)
        pipe.execute()
    return "sent"


@app.task(name="cronkata.add")
def add(x: int, y: int) -> int:
    """Return ``x + y``."""
    return int(x) + int(y)


@app.task(name="cronkata.square")
def square(x: int) -> int:
    """Return ``x * x``."""
    return x**2


@app.task(name="cronkata.total")
def total(values: list[int]) -> int:
    """Return the sum of ``values``."""
    result = 0
    for value in values:
        result += value
    return result
