"""Level 3 reference solution: the Celery app and its tasks.

What it teaches (notes/07c_celery_beat_intro.md, notes/07d_celery_beat_advanced.md):
    * one app, configured from the environment (CELERY_BROKER_URL, CELERY_RESULT_BACKEND,
      REDIS_URL) with Redis as the default, and from beat_config.py for beat settings;
    * every task has an explicit ``name=``: beat entries and other processes refer to
      tasks by name, and the name must not depend on how the module was imported;
    * ``notify`` retries transient errors only (``autoretry_for``), with exponential
      backoff, a cap and full jitter, at most NOTIFY_MAX_RETRIES times; its final failure
      is reported once, by ``AlertingTask.on_failure``;
    * ``notify`` is idempotent: with ``acks_late`` a message can be delivered twice (a
      worker crash, the visibility timeout), so an idempotency key in Redis, claimed with
      SET NX before delivering, makes the second delivery a no-op; the claim's value is a
      random token of this attempt, and a failed attempt frees the key only while it still
      holds that token (compare-and-delete in one Lua script, the lock rule of
      notes/07e_best_practices.md): a slow attempt whose claim expired never frees the
      claim another delivery took since;
    * soft and hard time limits: the soft one raises SoftTimeLimitExceeded inside the task,
      the hard one kills the worker process.

How to run (Redis on localhost:6379, or set the variables above), with the venv's commands:
    cd solutions/celery_beat && ../../.venv/bin/celery -A standalone_worker worker --loglevel=INFO
    # in another shell:
    cd solutions/celery_beat && ../../.venv/bin/python -c \
        "from tasks import notify; print(notify.delay('n-1', 7, 'hi').get(10))"
Start workers through standalone_worker.py, never with ``-A tasks``: importing it applies the
worker settings (acks_late, time limits) and declares every routed queue, so the worker
consumes ``notifications`` and ``maintenance`` too. A worker on ``-A tasks`` would consume only
the default ``celery`` queue: routed tasks would wait forever.
"""

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

# Compare-and-delete: free the idempotency claim only if it still holds this attempt's
# token, in one step inside Redis. A GET, a comparison in Python, then a DEL is not
# enough: they are two commands, and between them the claim can expire and another
# delivery claim the key; the DEL would then free *its* claim, and a third delivery could
# run too. A Lua script runs atomically: no other command runs between its GET and its DEL.
_RELEASE_CLAIM_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


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


def _release_claim(client: redis.Redis, key: str, token: str) -> bool:
    """Delete ``key`` if it still holds ``token`` (atomically); True if it was deleted."""
    release = client.register_script(_RELEASE_CLAIM_LUA)  # EVALSHA, EVAL if not cached
    return bool(release(keys=[key], args=[token]))


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
        # meanwhile and is another delivery's now (compare-and-delete, see above).
        if not _release_claim(client, key, token):
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
