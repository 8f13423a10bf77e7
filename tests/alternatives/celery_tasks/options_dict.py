"""Correct: settings and notify's decorator options gathered in dicts; claim kept with EXPIRE;
the claim released by an optimistic WATCH/MULTI transaction."""

import logging
import os
import time
from typing import Any
from uuid import uuid4

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
_SETTINGS: dict[str, Any] = {
    "broker_url": os.getenv("CELERY_BROKER_URL", DEFAULT_BROKER_URL),
    "result_backend": os.getenv("CELERY_RESULT_BACKEND", DEFAULT_RESULT_BACKEND),
    "task_routes": TASK_ROUTES,
}
app.conf.update(_SETTINGS)

_NOTIFY_OPTIONS: dict[str, Any] = {
    "autoretry_for": (TransientError,),
    "max_retries": NOTIFY_MAX_RETRIES,
    "retry_backoff": NOTIFY_BACKOFF_FACTOR,
    "retry_backoff_max": NOTIFY_BACKOFF_MAX_SECONDS,
    "retry_jitter": True,
    "soft_time_limit": NOTIFY_SOFT_TIME_LIMIT,
    "time_limit": NOTIFY_TIME_LIMIT,
}


def get_redis() -> redis.Redis:
    """Return a client for the application's Redis (REDIS_URL, read at each call)."""
    return redis.Redis.from_url(os.getenv("REDIS_URL", DEFAULT_REDIS_URL), decode_responses=True)


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
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        send_alert(f"{self.name}({shown}) failed for good [{task_id}]: {type(exc).__name__}: {exc}")


@app.task(name="cronkata.cleanup")
def cleanup(max_age_seconds: int = SESSION_MAX_AGE_SECONDS) -> int:
    """Remove the sessions idle for more than ``max_age_seconds``; return how many."""
    cutoff = time.time() - max_age_seconds
    return get_redis().zremrangebyscore(SESSIONS_KEY, min="-inf", max=cutoff)


@app.task(name="cronkata.daily_report")
def daily_report() -> dict[str, int]:
    """Return (and log) the session count and the sent counter."""
    client = get_redis()
    stats = {
        "sessions": client.zcard(SESSIONS_KEY),
        "notifications_sent": int(client.get(SENT_COUNTER_KEY) or 0),
    }
    logger.info("report: sessions=%(sessions)d sent=%(notifications_sent)d", stats)
    return stats


def _drop_if_mine(r: redis.Redis, claim: str, token: str) -> None:
    """DEL ``claim`` only while it holds ``token``: WATCH, compare, then MULTI/DEL/EXEC.

    If the claim changes between the GET and EXEC, EXEC aborts (WatchError): look again.
    """
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(claim)
                if pipe.get(claim) != token:
                    pipe.unwatch()
                    return
                pipe.multi()
                pipe.delete(claim)
                pipe.execute()
                return
            except redis.WatchError:
                continue


@app.task(bind=True, base=AlertingTask, name="cronkata.notify", **_NOTIFY_OPTIONS)
def notify(self: Task, notification_id: str, user_id: int, message: str) -> str:
    """Deliver one notification with ``deliver(user_id, message)``, at most once."""
    r = get_redis()
    claim = f"{IDEMPOTENCY_KEY_PREFIX}{notification_id}"
    token = str(uuid4())
    if r.set(claim, token, ex=NOTIFY_TIME_LIMIT, nx=True) is None:
        return "duplicate"
    try:
        deliver(user_id, message)
    except Exception:
        _drop_if_mine(r, claim, token)
        raise
    pipe = r.pipeline(transaction=True)
    pipe.expire(claim, IDEMPOTENCY_TTL_SECONDS)
    pipe.incr(SENT_COUNTER_KEY)
    pipe.execute()
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
