"""Hidden suite of `celery_tasks` (exercises/level3/celery_beat/tasks.py).

Tasks run "as a worker would" (`grader.sim_celery.run_like_worker`): retries happen at
once, their countdowns are recorded, and Celery's jitter is made deterministic. Redis is a
fresh fakeredis per test, handed out by the module's `get_redis()`; the delivery and the
alert are replaced through the module-level `deliver` and `send_alert`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from unittest import mock

import pytest

from grader.feedback import GradingFailure, expect, expect_equal
from grader.sim_celery import (
    TaskRun,
    controlled_jitter,
    fake_redis,
    jitter_max,
    jitter_min,
    queued_messages,
    run_like_worker,
    use_memory_transport,
)
from grader.targets import Target
from grader.testing import environment

NOTE_C = "07c_celery_beat_intro.md"
NOTE_D = "07d_celery_beat_advanced.md"
FILE = "celery_beat/tasks.py"
TEST_ENV = {
    "CELERY_BROKER_URL": "memory://",
    "CELERY_RESULT_BACKEND": "cache+memory://",
    "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there: no real Redis by accident
}


@pytest.fixture(autouse=True)
def _clean_environment() -> Iterator[None]:
    with environment(TEST_ENV):
        yield


@dataclass
class Provider:
    """Stands in for `deliver` and `send_alert`: fails as told, records what it was asked."""

    failures: list[BaseException] = field(default_factory=list)
    deliveries: list[tuple[Any, ...]] = field(default_factory=list)
    delivered: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)

    def deliver(self, *args: Any, **kwargs: Any) -> None:
        self.deliveries.append(args)
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(args)


@contextmanager
def _world(
    module: ModuleType, pick: Callable[[int], int] = jitter_max
) -> Iterator[tuple[Provider, Any, list[int]]]:
    provider = Provider()
    with ExitStack() as stack:
        redis = stack.enter_context(fake_redis(module))
        bounds = stack.enter_context(controlled_jitter(pick))
        stack.enter_context(mock.patch.object(module, "deliver", provider.deliver))
        stack.enter_context(mock.patch.object(module, "send_alert", provider.alerts.append))
        yield provider, redis, bounds


def _notify(module: ModuleType, notification_id: str = "n-1", **kwargs: Any) -> TaskRun:
    run = run_like_worker(module.notify, (notification_id, 42, "hello"), **kwargs)
    expected_errors = (module.TransientError, ValueError)  # what the fake provider raises
    if isinstance(run.result, BaseException) and not isinstance(run.result, expected_errors):
        raise run.result  # the learner's own error (NotImplementedError, a typo...): show it
    return run


def _always_transient(module: ModuleType, provider: Provider) -> None:
    provider.failures = [module.TransientError(f"provider timeout {i}") for i in range(50)]


# -- the app --------------------------------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_C}#hello-world",
    hint="broker_url=os.environ.get('CELERY_BROKER_URL', DEFAULT_BROKER_URL), and the same "
    "for result_backend with CELERY_RESULT_BACKEND.",
)
def test_app_defaults_to_redis(target: Target) -> None:
    with environment():  # no CELERY_* variable (Celery itself reads CELERY_BROKER_URL too)
        module = target.load(FILE)
        urls = (module.app.conf.broker_url, module.app.conf.result_backend)
    expect_equal(
        urls,
        (module.DEFAULT_BROKER_URL, module.DEFAULT_RESULT_BACKEND),
        "(broker_url, result_backend) with no CELERY_* variable set",
        "Celery's own default broker is RabbitMQ (amqp://) and there is no default backend.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_C}#beat-schedule",
    hint="import beat_config, then app.config_from_object(beat_config): the zone and the "
    "schedule have one home.",
)
def test_app_takes_beat_settings_from_beat_config(target: Target) -> None:
    module = target.load(FILE)
    beat_config = target.load("celery_beat/beat_config.py")
    expect_equal(
        str(module.app.conf.timezone),
        str(getattr(beat_config, "timezone", beat_config.TIMEZONE)),
        "app.conf.timezone of the tasks app",
        "tasks.py must load beat_config.py with app.config_from_object(beat_config).",
    )
    expect_equal(
        sorted(module.app.conf.beat_schedule or {}),
        sorted(getattr(beat_config, "beat_schedule", {}) or {}),
        "entries of app.conf.beat_schedule (they come from beat_config.beat_schedule)",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_C}#hello-world",
    hint="get_redis() reads os.environ['REDIS_URL'] (default DEFAULT_REDIS_URL) each time "
    "it is called and returns redis.Redis.from_url(url, decode_responses=True).",
)
def test_get_redis_reads_redis_url_when_called(target: Target) -> None:
    module = target.load(FILE)
    with environment({**TEST_ENV, "REDIS_URL": "redis://127.0.0.1:1/5"}):
        client = module.get_redis()
    kwargs = client.connection_pool.connection_kwargs
    expect_equal(
        (kwargs.get("port"), kwargs.get("db")),
        (1, 5),
        "(port, db) of get_redis()'s client with REDIS_URL=redis://127.0.0.1:1/5",
        "Read the variable inside get_redis(), not once at import: tests and deployments "
        "set it after the module is imported.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#canvas",
    hint="Each task has an explicit name: @app.task(name='cronkata.add').",
)
def test_tasks_are_registered_under_their_explicit_names(target: Target) -> None:
    module = target.load(FILE)
    names = {"cronkata.cleanup", "cronkata.daily_report", "cronkata.notify"}
    names |= {"cronkata.add", "cronkata.square", "cronkata.total"}
    missing = sorted(names - set(module.app.tasks))
    expect(not missing, f"Tasks missing from app.tasks: {missing}. Give each task name='...'.")
    results = (module.add(2, 3), module.square(4), module.total([1, 2, 3]))
    expect_equal(results, (5, 16, 6), "(add(2, 3), square(4), total([1, 2, 3]))")


# -- the periodic tasks ---------------------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_C}#hello-world",
    hint="zremrangebyscore(SESSIONS_KEY, '-inf', time.time() - max_age_seconds) returns "
    "the number removed.",
)
def test_cleanup_removes_only_expired_sessions(target: Target) -> None:
    module = target.load(FILE)
    now = time.time()
    with fake_redis(module) as redis:
        redis.zadd(module.SESSIONS_KEY, {"old": now - 7200, "older": now - 86400, "fresh": now - 5})
        removed = module.cleanup()
        left = redis.zrange(module.SESSIONS_KEY, 0, -1)
    expect_equal(removed, 2, "cleanup()'s return value (sessions idle for more than 1 h)")
    expect_equal(left, ["fresh"], "sessions left after cleanup()")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_C}#hello-world",
    hint="daily_report() returns {'sessions': zcard(SESSIONS_KEY), "
    "'notifications_sent': int(get(SENT_COUNTER_KEY) or 0)}.",
)
def test_daily_report_counts_sessions_and_notifications(target: Target) -> None:
    module = target.load(FILE)
    with fake_redis(module) as redis:
        redis.zadd(module.SESSIONS_KEY, {"a": time.time(), "b": time.time()})
        redis.set(module.SENT_COUNTER_KEY, 5)
        report = module.daily_report()
    expect_equal(report, {"sessions": 2, "notifications_sent": 5}, "daily_report()")


# -- retries --------------------------------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#retries",
    hint="@app.task(autoretry_for=(TransientError,), max_retries=NOTIFY_MAX_RETRIES, ...): "
    "max_retries counts retries, so there are max_retries + 1 attempts.",
)
def test_transient_errors_are_retried_max_retries_times(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, _redis, _bounds):
        _always_transient(module, provider)
        run = _notify(module)
    expect_equal(
        len(provider.deliveries),
        module.NOTIFY_MAX_RETRIES + 1,
        "attempts to deliver when the provider always times out (TransientError)",
        "The first attempt plus NOTIFY_MAX_RETRIES retries. 1 attempt means no retry happened: "
        "is TransientError in autoretry_for?",
    )
    expect_equal(run.state, "FAILURE", "the task's final state after the last retry failed")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#retries",
    hint="retry_backoff=NOTIFY_BACKOFF_FACTOR: countdown = factor * 2**retries (before jitter).",
)
def test_retry_countdowns_grow_exponentially(target: Target) -> None:
    module = target.load(FILE)
    with _world(module, jitter_max) as (provider, _redis, _bounds):
        _always_transient(module, provider)
        run = _notify(module)
    factor = module.NOTIFY_BACKOFF_FACTOR
    expected = [float(factor * 2**r) for r in range(4)]
    expect_equal(
        run.countdowns[:4],
        expected,
        "countdowns (s) of the first 4 retries, jitter at its maximum",
        "Without retry_backoff every retry waits default_retry_delay (180 s).",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#retries",
    hint="retry_backoff_max=NOTIFY_BACKOFF_MAX_SECONDS (Celery's default cap is 600 s).",
)
def test_retry_countdowns_are_capped(target: Target) -> None:
    module = target.load(FILE)
    with _world(module, jitter_max) as (provider, _redis, _bounds):
        _always_transient(module, provider)
        run = _notify(module)
    factor, cap = module.NOTIFY_BACKOFF_FACTOR, module.NOTIFY_BACKOFF_MAX_SECONDS
    expected = [float(min(cap, factor * 2**r)) for r in range(module.NOTIFY_MAX_RETRIES)]
    expect_equal(
        run.countdowns,
        expected,
        f"countdowns (s) of every retry, jitter at its maximum, capped at {cap} s",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#retries",
    hint="retry_jitter=True: Celery draws each countdown from 0..backoff, so a thousand "
    "failed tasks do not all retry in the same second.",
)
def test_retry_countdowns_are_jittered(target: Target) -> None:
    module = target.load(FILE)
    with _world(module, jitter_min) as (provider, _redis, _bounds):
        _always_transient(module, provider)
        run = _notify(module)
    expect(run.countdowns, "No retry happened at all: is TransientError in autoretry_for?")
    expect_equal(
        run.countdowns,
        [0.0] * len(run.countdowns),
        "countdowns when the jitter draws its minimum (0) every time",
        "Non-zero countdowns here mean Celery did not jitter them: retry_jitter=True.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#retries",
    hint="Retry only what can heal by itself: autoretry_for=(TransientError,), not Exception.",
)
def test_other_errors_are_not_retried(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, _redis, _bounds):
        provider.failures = [ValueError("user 42 has no address")] * 10
        run = _notify(module)
    expect_equal(
        (len(provider.deliveries), run.state),
        (1, "FAILURE"),
        "(attempts, final state) when deliver() raises ValueError",
        "A bug or bad data fails the same way every time: retrying only delays the alert.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#failure-handling",
    hint="A Task base class whose on_failure() calls send_alert(...): Celery calls it once, "
    "after the last attempt, never for a retry.",
)
def test_final_failure_raises_exactly_one_alert(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, _redis, _bounds):
        _always_transient(module, provider)
        _notify(module, "n-alert")
    expect_equal(
        len(provider.alerts),
        1,
        f"alerts sent for one notification that failed {module.NOTIFY_MAX_RETRIES + 1} times",
        f"Alerts seen: {provider.alerts!r}",
    )
    expect("n-alert" in provider.alerts[0], "The alert should name the notification (its args).")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#idempotency",
    hint="If deliver() raises, delete the idempotency key before re-raising, so the retry "
    "can claim it again.",
)
def test_recovered_notification_is_delivered_once_without_alert(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, redis, _bounds):
        provider.failures = [module.TransientError("timeout"), module.TransientError("timeout")]
        run = _notify(module, "n-flaky")
        sent = redis.get(module.SENT_COUNTER_KEY)
    expect_equal(
        (len(provider.deliveries), len(provider.delivered), run.state),
        (3, 1, "SUCCESS"),
        "(attempts, successful deliveries, final state) when the first two attempts time out",
        "Fewer attempts: the failed attempt left its idempotency key behind, so the retry "
        "thought the notification had been sent.",
    )
    expect_equal(str(sent), "1", f"the {module.SENT_COUNTER_KEY} counter")
    expect_equal(provider.alerts, [], "alerts for a notification that got through")


# -- idempotency ----------------------------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#idempotency",
    hint="Claim IDEMPOTENCY_KEY_PREFIX + notification_id with SET NX (and an expiry) "
    "before delivering; if the key exists, return 'duplicate'.",
)
def test_a_redelivered_message_has_one_effect(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, redis, _bounds):
        first = _notify(module, "n-twice", task_id="message-1")
        second = _notify(module, "n-twice", task_id="message-1")  # acks_late: redelivered
        sent = redis.get(module.SENT_COUNTER_KEY)
    expect_equal(
        len(provider.delivered),
        1,
        "deliveries after the same message was delivered twice",
        "With acks_late a message can run twice (worker crash, visibility timeout): "
        "the second run must find the idempotency key and do nothing.",
    )
    expect_equal((first.state, second.state), ("SUCCESS", "SUCCESS"), "states of both runs")
    expect_equal(str(sent), "1", f"the {module.SENT_COUNTER_KEY} counter")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#idempotency",
    hint="The key is per notification: IDEMPOTENCY_KEY_PREFIX + notification_id.",
)
def test_different_notifications_are_each_delivered(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, _redis, _bounds):
        for name in ("n-a", "n-b", "n-c"):
            _notify(module, name)
    expect_equal(len(provider.delivered), 3, "deliveries of three different notifications")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#idempotency",
    hint="client.set(key, ..., nx=True, ex=...) and, once delivered, keep the key for "
    "IDEMPOTENCY_TTL_SECONDS: a key without expiry grows Redis forever.",
)
def test_the_idempotency_key_expires(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (_provider, redis, _bounds):
        _notify(module, "n-ttl")
        ttl = redis.ttl(f"{module.IDEMPOTENCY_KEY_PREFIX}n-ttl")
    expect(
        0 < ttl <= module.IDEMPOTENCY_TTL_SECONDS,
        f"TTL of {module.IDEMPOTENCY_KEY_PREFIX}n-ttl after a delivery: {ttl} "
        f"(-2: no such key, -1: no expiry); expected 1..{module.IDEMPOTENCY_TTL_SECONDS}.",
    )


# -- time limits and eager mode --------------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#worker-settings",
    hint="@app.task(soft_time_limit=NOTIFY_SOFT_TIME_LIMIT, time_limit=NOTIFY_TIME_LIMIT).",
)
def test_notify_has_a_soft_limit_below_its_hard_limit(target: Target) -> None:
    module = target.load(FILE)
    task = module.app.tasks.get("cronkata.notify") or module.notify
    expect_equal(
        (task.soft_time_limit, task.time_limit),
        (module.NOTIFY_SOFT_TIME_LIMIT, module.NOTIFY_TIME_LIMIT),
        "(soft_time_limit, time_limit) of cronkata.notify",
        "The soft limit raises SoftTimeLimitExceeded inside the task (time to clean up); "
        "the hard limit kills the worker process.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#eager-mode",
    hint="Route with task_routes=TASK_ROUTES, and never task_always_eager in the app: "
    "delay() must send a message, not run the task in the caller.",
)
def test_delay_queues_a_message_on_the_notifications_queue(target: Target) -> None:
    module = target.load(FILE)
    use_memory_transport(module.app)
    with _world(module) as (provider, _redis, _bounds):
        provider.failures = [module.TransientError("timeout")]
        try:
            result = module.notify.delay("n-queued", 42, "hello")
        except Exception as error:  # the eager-propagation trap raises Retry right here
            raise GradingFailure(
                f"notify.delay() raised {type(error).__name__} in the caller: the task ran "
                "eagerly (task_always_eager) and its retry could not be scheduled."
            ) from None
        queued = queued_messages(module.app, ["celery", "notifications"])
    expect_equal(
        provider.deliveries,
        [],
        "deliver() calls made by notify.delay() in the calling process",
        "delay() ran the task right away: task_always_eager is on. Eager mode hides "
        "retries, countdowns and serialization; it is for tests, never for the app.",
    )
    expect_equal(
        [(m["queue"], m["id"]) for m in queued if m["task"] == "cronkata.notify"],
        [("notifications", result.id)],
        "(queue, id) of the cronkata.notify messages waiting after notify.delay()",
        "TASK_ROUTES sends notifications to their own queue: app.conf.task_routes = TASK_ROUTES.",
    )
