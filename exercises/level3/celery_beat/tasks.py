"""Exercise celery_tasks (level 3): the Celery app and its tasks.

Read first: notes/07c_celery_beat_intro.md (section "Hello world") and
notes/07d_celery_beat_advanced.md (sections "Retries", "Failure handling", "Idempotency").

This module holds the one Celery app of the folder: the worker (standalone_worker.py),
beat and the web app (embedded_app.py) all import it. Its tasks:
    * cleanup and daily_report, sent by beat (see beat_config.py);
    * notify, which retries transient errors with backoff, alerts once when it finally
      fails, and does nothing the second time the same message is delivered;
    * add, square and total, the building blocks of the canvas workflows.

The app (configure it below ``app = Celery("cronkata")``):
    * it loads the beat settings: ``import beat_config`` and
      ``app.config_from_object(beat_config)`` (#app-loads-beat-config);
    * ``broker_url`` comes from the environment variable CELERY_BROKER_URL (default
      DEFAULT_BROKER_URL) and ``result_backend`` from CELERY_RESULT_BACKEND (default
      DEFAULT_RESULT_BACKEND), read when this module is imported
      (#broker-and-backend-from-env);
    * ``task_routes=TASK_ROUTES``, so every process sends each task to the same queue
      (#task-routes);
    * never ``task_always_eager``: ``delay()`` sends a message and runs nothing in the
      caller (#never-eager).

Rules the tests rely on:
    * every task has an explicit name (``@app.task(name="cronkata.add")``): beat and
      other processes refer to tasks by name (#explicit-task-names);
    * Redis is reached only through ``get_redis()``, called when a task runs (the tests
      replace it with an in-memory Redis); never create a client at import time
      (#no-redis-client-at-import);
    * the provider and the pager are reached only through the module-level ``deliver``
      and ``send_alert`` (the tests replace them).

Each promise the tests grade ends with a tag such as (#first-run-after-interval); a
failing test names its tag.

Keep the names, signatures and constants below exactly as they are: the hidden tests
import them. Replace each ``raise NotImplementedError(...)`` with your code.

Check your work:  python3 -m grader check celery_tasks   (from the repository root)
Try it by hand:   cd exercises/level3/celery_beat && ../../../.venv/bin/celery -A standalone_worker worker
                  (with the celery_worker exercise done: a worker on ``-A tasks`` consumes only
                  the default queue, and routed tasks such as notify wait forever)
"""

import logging
from typing import Any

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
# TODO: configure `app` as "The app" at the top says: config_from_object(beat_config)
# (import beat_config at the top of the file), broker_url and result_backend from the
# environment with the Redis defaults, task_routes=TASK_ROUTES. Never task_always_eager.


def get_redis() -> redis.Redis:
    """Return a client for the application's Redis, from the REDIS_URL environment variable
    (default DEFAULT_REDIS_URL), read at each call: ``redis.Redis.from_url(url,
    decode_responses=True)`` (#get-redis-reads-redis-url). Creating a client does not
    connect yet."""
    raise NotImplementedError("return redis.Redis.from_url(REDIS_URL or the default, ...)")


def deliver(user_id: int, message: str) -> None:
    """Hand one notification to the provider (a log line standing in for an HTTP call).

    Given: the tests replace it with a provider that fails as they tell it to.
    """
    logger.info("delivering to user %s: %s", user_id, message)


def send_alert(text: str) -> None:
    """Page a human (an ERROR log line standing in for a pager or a chat message).

    Given: the tests replace it and count the alerts.
    """
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
        """Call ``send_alert(text)`` once; ``text`` names the task (``self.name``) and
        contains its args (#alert-names-task-and-args).

        Celery calls on_failure once per task, after its last attempt failed, and never
        for an attempt that is retried. Use it as notify's base: ``base=AlertingTask``.
        """
        raise NotImplementedError("send_alert(...) with the task name, id, error and args")


@app.task(name="cronkata.cleanup")
def cleanup(max_age_seconds: int = SESSION_MAX_AGE_SECONDS) -> int:
    """Remove the sessions idle for more than ``max_age_seconds``; return how many.

    Sessions live in the Redis sorted set SESSIONS_KEY, scored by their last activity
    (epoch seconds): remove the members scored before ``time.time() - max_age_seconds``
    and return how many were removed (#cleanup-removes-idle-sessions). (A member scored
    exactly at the cutoff may go either way.)
    """
    raise NotImplementedError("ZREMRANGEBYSCORE the sessions older than max_age_seconds")


@app.task(name="cronkata.daily_report")
def daily_report() -> dict[str, int]:
    """Return (and log) ``{"sessions": <members of SESSIONS_KEY>, "notifications_sent":
    <the SENT_COUNTER_KEY counter>}``, both ints (#daily-report-counts), the counter 0
    while it does not exist (#daily-report-counter-missing-is-0)."""
    raise NotImplementedError("count the sessions and read the sent counter")


@app.task(bind=True, name="cronkata.notify")  # TODO: add the options described below
def notify(self: Task, notification_id: str, user_id: int, message: str) -> str:
    """Deliver one notification with ``deliver(user_id, message)`` (in that order),
    at most once, and return "sent" (#deliver-user-and-message) (#returns-sent).

    Options (the task decorator's, or attributes of a base class):
      * retry TransientError only (``autoretry_for``) (#retry-transient-only), at most
        NOTIFY_MAX_RETRIES times, i.e. NOTIFY_MAX_RETRIES + 1 attempts (#max-retries);
      * exponential backoff: ``retry_backoff=NOTIFY_BACKOFF_FACTOR``, 2, 4, 8 ... s
        (#exponential-backoff), capped at NOTIFY_BACKOFF_MAX_SECONDS (#backoff-cap),
        with Celery's full jitter on: each countdown drawn from 0 to that (#full-jitter);
      * ``base=AlertingTask``, so that the final failure raises one alert, and a
        retried attempt none (#one-alert-on-final-failure);
      * soft and hard time limits: NOTIFY_SOFT_TIME_LIMIT and NOTIFY_TIME_LIMIT seconds
        (#time-limits).

    Idempotency: the same message may be delivered twice (acks_late), even at the same
    time by two workers. Claim the Redis key IDEMPOTENCY_KEY_PREFIX + notification_id
    (the notification, not the Celery task id) (#key-per-notification) atomically, in
    one SET NX command (#claim-atomically), with an expiry (#claim-expires), before
    delivering; if it was already claimed, return "duplicate" without delivering
    (#duplicate-not-delivered). The claim's value is a token unique to this attempt
    (``uuid.uuid4().hex``): a retry, or another notification, never claims with the
    same value (#claim-token). If deliver() raises (SoftTimeLimitExceeded included),
    release the claim before re-raising, so the retry can claim it
    (#release-claim-on-error). Release only this attempt's own claim: a slow delivery's
    claim can expire and be claimed by another delivery, so delete the key only if it
    still holds this attempt's token, in one atomic step (compare-and-delete: one Lua
    script, e.g. with ``client.register_script``); a GET followed by a DEL is two
    commands, and the key can change hands between them (#release-only-own-claim).
    After a delivery keep the key for IDEMPOTENCY_TTL_SECONDS (#key-kept-after-delivery)
    and increment SENT_COUNTER_KEY, once per delivery that succeeded
    (#count-deliveries).
    """
    raise NotImplementedError("claim the idempotency key, deliver, count, return 'sent'")


@app.task(name="cronkata.add")
def add(x: int, y: int) -> int:
    """Return ``x + y`` (a building block for chains) (#add)."""
    raise NotImplementedError("return x + y")


@app.task(name="cronkata.square")
def square(x: int) -> int:
    """Return ``x * x`` (a building block for groups and chords) (#square)."""
    raise NotImplementedError("return x * x")


@app.task(name="cronkata.total")
def total(values: list[int]) -> int:
    """Return the sum of ``values`` (a chord callback: it receives the group's
    results) (#total)."""
    raise NotImplementedError("return sum(values)")
