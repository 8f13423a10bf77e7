"""Correct: notify's retry/alert/time-limit options live as class attributes of a Task subclass;
the claim is a secrets token, released by EVAL of an inline Lua compare-and-delete."""

import logging
import os
import secrets
import time
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


app = Celery(
    "cronkata",
    broker=os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL),
    backend=os.environ.get("CELERY_RESULT_BACKEND", DEFAULT_RESULT_BACKEND),
)
app.config_from_object(beat_config)
app.conf.task_routes = TASK_ROUTES


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

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        einfo: Any,
    ) -> None:
        """Call ``send_alert(text)`` once; ``text`` names the task and contains its args."""
        send_alert(
            "task {name} (id {id}) gave up with {err}; args={args} kwargs={kwargs}".format(
                name=self.name, id=task_id, err=repr(exc), args=list(args), kwargs=kwargs
            )
        )


class NotifyTask(AlertingTask):
    """AlertingTask plus notify's retry policy and time limits, declared once as attributes."""

    autoretry_for = (TransientError,)
    max_retries = NOTIFY_MAX_RETRIES
    retry_backoff = NOTIFY_BACKOFF_FACTOR
    retry_backoff_max = NOTIFY_BACKOFF_MAX_SECONDS
    retry_jitter = True
    soft_time_limit = NOTIFY_SOFT_TIME_LIMIT
    time_limit = NOTIFY_TIME_LIMIT


@app.task(name="cronkata.cleanup")
def cleanup(max_age_seconds: int = SESSION_MAX_AGE_SECONDS) -> int:
    """Remove the sessions idle for more than ``max_age_seconds``; return how many."""
    oldest_allowed = time.time() - max_age_seconds
    removed = get_redis().zremrangebyscore(SESSIONS_KEY, "-inf", f"({oldest_allowed}")
    logger.info("cleanup: %d idle session(s) removed", removed)
    return int(removed)


@app.task(name="cronkata.daily_report")
def daily_report() -> dict[str, int]:
    """Return (and log) the session count and the sent counter."""
    client = get_redis()
    with client.pipeline() as pipe:
        pipe.zcard(SESSIONS_KEY)
        pipe.get(SENT_COUNTER_KEY)
        sessions, sent = pipe.execute()
    report = {"sessions": int(sessions), "notifications_sent": int(sent) if sent else 0}
    logger.info("daily report %s", report)
    return report


@app.task(bind=True, base=NotifyTask, name="cronkata.notify")
def notify(self: Task, notification_id: str, user_id: int, message: str) -> str:
    """Deliver one notification with ``deliver(user_id, message)``, at most once."""
    client = get_redis()
    key = IDEMPOTENCY_KEY_PREFIX + notification_id
    mine = secrets.token_urlsafe(18)
    claimed = client.set(key, mine, nx=True, ex=NOTIFY_TIME_LIMIT)
    if not claimed:
        logger.info("notification %s already handled: skipped", notification_id)
        return "duplicate"
    try:
        deliver(user_id, message)
    except BaseException:
        # one EVAL: Redis runs the script without interleaving another client's command
        client.eval(
            "local v = redis.call('GET', KEYS[1]) "
            "if v == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 else return 0 end",
            1,
            key,
            mine,
        )
        raise
    client.set(key, "sent", ex=IDEMPOTENCY_TTL_SECONDS)
    client.incr(SENT_COUNTER_KEY)
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
