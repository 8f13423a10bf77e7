"""Hidden suite of `celery_tasks` (exercises/level3/celery_beat/tasks.py).

Tasks run "as a worker would" (`grader.sim_celery.run_like_worker`): retries happen at
once, their countdowns are recorded, and Celery's jitter is made deterministic. Redis is a
fresh fakeredis per test, handed out by the module's `get_redis()`; the delivery and the
alert are replaced through the module-level `deliver` and `send_alert`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
import redis as redis_library
from billiard.exceptions import SoftTimeLimitExceeded
from hypothesis import example, given
from hypothesis import strategies as st

from grader.clock import VirtualClock
from grader.drawing import deterministic
from grader.feedback import GradingFailure, expect, expect_equal
from grader.sim_celery import (
    Interleaved,
    ReclaimedAfterGet,
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
DRAWN = deterministic(max_examples=8)
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TEST_ENV = {
    "CELERY_BROKER_URL": "memory://",
    "CELERY_RESULT_BACKEND": "cache+memory://",
    "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there: no real Redis by accident
}


@contextmanager
def grading_conditions() -> Iterator[None]:
    """Every test (and the import of the file): the in-memory broker and backend."""
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
    expected_errors = (module.TransientError, ValueError, SoftTimeLimitExceeded)  # the fakes
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
    timeout=10,
    spec=("broker-and-backend-from-env",),
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
    timeout=10,
    spec=("app-loads-beat-config",),
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
    note=f"{NOTE_D}#exercises",
    hint="get_redis() reads os.environ['REDIS_URL'] (default DEFAULT_REDIS_URL) each time "
    "it is called and returns redis.Redis.from_url(url, decode_responses=True).",
    timeout=10,
    spec=("get-redis-reads-redis-url",),
)
def test_get_redis_reads_redis_url_when_called(target: Target) -> None:
    module = target.load(FILE)
    seen = []
    for db in (5, 11):
        with environment({**TEST_ENV, "REDIS_URL": f"redis://127.0.0.1:1/{db}"}):
            kwargs = module.get_redis().connection_pool.connection_kwargs
        seen.append((kwargs.get("port"), kwargs.get("db")))
    with environment({k: v for k, v in TEST_ENV.items() if k != "REDIS_URL"}):
        kwargs = module.get_redis().connection_pool.connection_kwargs
    default = redis_library.Redis.from_url(module.DEFAULT_REDIS_URL).connection_pool
    seen.append((kwargs.get("port"), kwargs.get("db")))
    expected_default = (default.connection_kwargs.get("port"), default.connection_kwargs.get("db"))
    expect_equal(
        seen,
        [(1, 5), (1, 11), expected_default],
        "(port, db) of get_redis()'s client with REDIS_URL=redis://127.0.0.1:1/5, then .../11, "
        "then unset (DEFAULT_REDIS_URL)",
        "Read the variable inside get_redis(), at each call, not once at import: tests and "
        "deployments set it after the module is imported.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#exercises",
    hint="Build clients only inside get_redis(): a module-level redis.Redis(...) connects "
    "with the URL of import time and is shared by every forked worker process.",
    timeout=10,
    spec=("no-redis-client-at-import", "get-redis-reads-redis-url"),
)
def test_redis_clients_are_created_only_by_get_redis(target: Target) -> None:
    created: list[str] = []
    real_init = redis_library.Redis.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        created.append(f"Redis({', '.join(map(repr, args))}{', ...' if kwargs else ''})")
        real_init(self, *args, **kwargs)

    with mock.patch.object(redis_library.Redis, "__init__", counting_init):
        module = target.load(FILE)
        at_import = list(created)
        module.get_redis()
    expect_equal(at_import, [], "Redis clients created while tasks.py was imported")
    expect(
        len(created) > len(at_import),
        "get_redis() returned no new client: build one at each call with "
        "redis.Redis.from_url(url, decode_responses=True).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_C}#architecture",
    hint="Each task has an explicit name: @app.task(name='cronkata.add').",
    timeout=10,
    spec=("explicit-task-names",),
)
def test_tasks_are_registered_under_their_explicit_names(target: Target) -> None:
    module = target.load(FILE)
    names = {"cronkata.cleanup", "cronkata.daily_report", "cronkata.notify"}
    names |= {"cronkata.add", "cronkata.square", "cronkata.total"}
    missing = sorted(names - set(module.app.tasks))
    generated = sorted(n for n in module.app.tasks if not n.startswith(("celery.", "cronkata.")))
    expect(
        not missing,
        f"Tasks missing from app.tasks: {missing} (registered under generated names: "
        f"{generated}). Give each task name='cronkata.<function>': beat entries and other "
        "processes send tasks by name, and a generated name changes with how the module "
        "was imported.",
    )
    by_name = [
        module.app.signature(name, args).apply().get(propagate=True)
        for name, args in (("cronkata.add", (2, 3)), ("cronkata.square", (4,)))
    ]
    expect_equal(
        by_name, [5, 16], "results of messages naming cronkata.add(2, 3), cronkata.square(4)"
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#canvas",
    hint="add returns x + y, square x * x, total sum(values).",
    timeout=20,
    spec=("add", "square", "total"),
)
@DRAWN
@given(
    x=st.integers(-1000, 1000),
    y=st.integers(-1000, 1000),
    values=st.lists(st.integers(-99, 99), max_size=8),
)
@example(x=2, y=3, values=[])
def test_building_blocks_add_square_and_total(
    target: Target, x: int, y: int, values: list[int]
) -> None:
    module = target.load(FILE)
    expect_equal(
        (module.add(x, y), module.square(x), module.total(values)),
        (x + y, x * x, sum(values)),
        f"(add({x}, {y}), square({x}), total({values}))",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#distributed",
    hint="app.conf.task_routes = TASK_ROUTES: every process then sends each task to the "
    "same queue.",
    timeout=10,
    spec=("task-routes",),
)
def test_every_task_is_routed_by_task_routes(target: Target) -> None:
    module = target.load(FILE)
    router = module.app.amqp.router
    routed = {}
    for name in module.TASK_ROUTES:
        queue = router.route({}, name).get("queue")
        routed[name] = getattr(queue, "name", queue)
    expect_equal(
        routed,
        {name: route["queue"] for name, route in module.TASK_ROUTES.items()},
        "queue the app routes each task of TASK_ROUTES to",
        "Without task_routes every task goes to the default queue 'celery'.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#eager-mode",
    hint="Never task_always_eager in the app: delay() must send a message, not run the "
    "task in the caller.",
    timeout=10,
    spec=("never-eager",),
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


# -- the periodic tasks ---------------------------------------------------------------------------

IDLE = st.integers(min_value=0, max_value=20_000)


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#exercises",
    hint="zremrangebyscore(SESSIONS_KEY, '-inf', time.time() - max_age_seconds) removes the "
    "sessions idle for longer and returns how many it removed.",
    timeout=20,
    spec=("cleanup-removes-idle-sessions",),
)
@DRAWN
@given(
    idle=st.dictionaries(st.text("abcdef", min_size=1, max_size=4), IDLE, max_size=8),
    max_age=st.one_of(st.none(), st.integers(min_value=1, max_value=20_000)),
)
@example(idle={"old": 7200, "older": 86400, "fresh": 5}, max_age=None)
def test_cleanup_removes_only_idle_sessions(
    target: Target, idle: dict[str, int], max_age: int | None
) -> None:
    module = target.load(FILE)
    limit = module.SESSION_MAX_AGE_SECONDS if max_age is None else max_age
    idle = {member: age for member, age in idle.items() if age != limit}  # the edge: unspecified
    with VirtualClock(NOW), fake_redis(module) as redis:
        now = time.time()
        if idle:
            redis.zadd(module.SESSIONS_KEY, {m: now - age for m, age in idle.items()})
        removed = module.cleanup() if max_age is None else module.cleanup(max_age)
        left = sorted(redis.zrange(module.SESSIONS_KEY, 0, -1))
    call = "cleanup()" if max_age is None else f"cleanup({max_age})"
    expect_equal(
        (removed, left),
        (
            sum(age > limit for age in idle.values()),
            sorted(m for m, a in idle.items() if a < limit),
        ),
        f"({call}'s return value, sessions left) with sessions idle for {idle} s",
        f"Sessions idle for more than {limit} s go; the others stay. Scores are epoch seconds "
        "of the last activity, so the cutoff is time.time() - max_age_seconds.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#exercises",
    hint="daily_report() returns {'sessions': zcard(SESSIONS_KEY), "
    "'notifications_sent': int(get(SENT_COUNTER_KEY) or 0)}.",
    timeout=10,
    spec=("daily-report-counts",),
)
def test_daily_report_counts_sessions_and_notifications(target: Target) -> None:
    module = target.load(FILE)
    with fake_redis(module) as redis:
        redis.zadd(module.SESSIONS_KEY, {"a": time.time(), "b": time.time()})
        redis.set(module.SENT_COUNTER_KEY, 5)
        report = module.daily_report()
    expect_equal(report, {"sessions": 2, "notifications_sent": 5}, "daily_report()")
    expect(
        all(type(v) is int for v in report.values()),
        f"daily_report()'s values must be ints; got {report!r}: Redis answers strings "
        "(decode_responses=True), so convert the counter with int().",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#exercises",
    hint="int(client.get(SENT_COUNTER_KEY) or 0): before the first notification the counter "
    "does not exist.",
    timeout=10,
    spec=("daily-report-counter-missing-is-0",),
)
def test_daily_report_counts_0_before_any_notification(target: Target) -> None:
    module = target.load(FILE)
    with fake_redis(module):
        report = module.daily_report()
    expect_equal(
        report, {"sessions": 0, "notifications_sent": 0}, "daily_report() on an empty Redis"
    )


# -- retries --------------------------------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#retries",
    hint="@app.task(autoretry_for=(TransientError,), max_retries=NOTIFY_MAX_RETRIES, ...): "
    "max_retries counts retries, so there are max_retries + 1 attempts.",
    timeout=10,
    spec=("max-retries",),
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
    hint="retry_backoff=NOTIFY_BACKOFF_FACTOR: countdown = factor * 2**retries (before jitter); "
    "retry_backoff=True means factor 1.",
    timeout=10,
    spec=("exponential-backoff",),
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
    timeout=10,
    spec=("backoff-cap",),
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
    timeout=10,
    spec=("full-jitter",),
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


class _Draws:
    """Celery's jitter draws: the k-th draw takes fraction k of its range."""

    def __init__(self, fractions: Sequence[float]) -> None:
        self.fractions = list(fractions)
        self.calls = 0

    def __call__(self, bound: int) -> int:
        fraction = self.fractions[self.calls % len(self.fractions)]
        self.calls += 1
        return round(fraction * (bound - 1))


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#retries",
    hint="retry_backoff, retry_backoff_max and retry_jitter=True together: each countdown is "
    "drawn from 0..min(cap, factor * 2**retries).",
    timeout=20,
    spec=("full-jitter", "exponential-backoff", "backoff-cap"),
)
@DRAWN
@given(fractions=st.lists(st.floats(0, 1), min_size=6, max_size=6))
@example(fractions=[0.5] * 6)
def test_retry_countdowns_follow_full_jitter_for_any_draw(
    target: Target, fractions: list[float]
) -> None:
    module = target.load(FILE)
    draws = _Draws(fractions)
    with _world(module, draws) as (provider, _redis, _bounds):
        _always_transient(module, provider)
        run = _notify(module)
    factor, cap = module.NOTIFY_BACKOFF_FACTOR, module.NOTIFY_BACKOFF_MAX_SECONDS
    expected = [
        float(round(fractions[r] * min(cap, factor * 2**r)))
        for r in range(module.NOTIFY_MAX_RETRIES)
    ]
    expect_equal(
        run.countdowns,
        expected,
        f"countdowns (s) when the jitter draws these fractions of its range: {fractions}",
        "Full jitter: a random countdown between 0 and the capped exponential backoff.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#retries",
    hint="Retry only what can heal by itself: autoretry_for=(TransientError,), not Exception.",
    timeout=10,
    spec=("retry-transient-only",),
)
def test_other_errors_are_not_retried(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, _redis, _bounds):
        provider.failures = [ValueError("user 42 has no address")] * 10
        run = _notify(module)
    expect_equal(
        (len(provider.deliveries), run.state, len(provider.alerts)),
        (1, "FAILURE", 1),
        "(attempts, final state, alerts) when deliver() raises ValueError",
        "A bug or bad data fails the same way every time: retrying only delays the alert.",
    )


# -- failure handling -----------------------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#failure-handling",
    hint="A Task base class whose on_failure() calls send_alert(...): Celery calls it once, "
    "after the last attempt, never for a retry.",
    timeout=10,
    spec=("one-alert-on-final-failure",),
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


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#failure-handling",
    hint="on_failure(self, exc, task_id, args, kwargs, einfo): put self.name and the args "
    "in the text, so whoever is paged knows what failed for whom.",
    timeout=10,
    spec=("alert-names-task-and-args",),
)
def test_the_alert_names_the_task_and_its_args(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, _redis, _bounds):
        provider.failures = [ValueError("no address")]
        run_like_worker(module.notify, ("n-7741", 90817, "your parcel is late"))
    expect_equal(len(provider.alerts), 1, "alerts for one failed notification")
    text = str(provider.alerts[0])
    missing = [
        p for p in ("cronkata.notify", "n-7741", "90817", "your parcel is late") if p not in text
    ]
    expect(
        not missing,
        f"The alert {text!r} lacks {missing}: it must name the task (cronkata.notify) and "
        "contain its args (notification_id, user_id, message).",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#idempotency",
    hint="If deliver() raises, release the claim (delete the key if it still holds this "
    "attempt's token) before re-raising, so the retry can claim it again.",
    timeout=10,
    spec=("release-claim-on-error",),
)
def test_recovered_notification_is_delivered_once_without_alert(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, redis, _bounds):
        provider.failures = [module.TransientError("timeout"), module.TransientError("timeout")]
        run = _notify(module, "n-flaky")
        sent = redis.get(module.SENT_COUNTER_KEY)
    expect_equal(
        (len(provider.deliveries), len(provider.delivered), run.state, run.result),
        (3, 1, "SUCCESS", "sent"),
        "(attempts, successful deliveries, final state, result) when the first two attempts "
        "time out",
        "Fewer attempts, or 'duplicate': the failed attempt left its idempotency key behind, "
        "so the retry thought the notification had been sent.",
    )
    expect_equal(str(sent), "1", f"the {module.SENT_COUNTER_KEY} counter")
    expect_equal(provider.alerts, [], "alerts for a notification that got through")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#failure-handling",
    hint="SoftTimeLimitExceeded is raised inside deliver(): free the claim and re-raise it "
    "(except BaseException / except Exception: ...; raise), never swallow it.",
    timeout=10,
    spec=("release-claim-on-error",),
)
def test_a_soft_time_limit_fails_the_task_and_frees_the_claim(target: Target) -> None:
    module = target.load(FILE)
    key = f"{module.IDEMPOTENCY_KEY_PREFIX}n-slow"
    with _world(module) as (provider, redis, _bounds):
        provider.failures = [SoftTimeLimitExceeded()]
        run = _notify(module, "n-slow")
        left = redis.exists(key)
        sent = redis.get(module.SENT_COUNTER_KEY)
    expect_equal(
        (run.state, left, sent, len(provider.alerts)),
        ("FAILURE", 0, None, 1),
        "(final state, idempotency key left, sent counter, alerts) when the soft time limit "
        "interrupts deliver()",
        "A swallowed SoftTimeLimitExceeded turns a delivery that never happened into "
        "'sent'; a claim left behind blocks every later delivery of it.",
    )


# -- idempotency ----------------------------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#idempotency",
    hint="deliver(user_id, message): in that order, then return 'sent'.",
    timeout=10,
    spec=("deliver-user-and-message", "returns-sent"),
)
def test_notify_delivers_user_id_and_message_and_returns_sent(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, _redis, _bounds):
        run = _notify(module, "n-args")
    expect_equal(
        (provider.delivered, run.state, run.result),
        ([(42, "hello")], "SUCCESS", "sent"),
        "(deliver() calls, state, result) of notify('n-args', 42, 'hello')",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#idempotency",
    hint="Claim IDEMPOTENCY_KEY_PREFIX + notification_id with SET NX (and an expiry) "
    "before delivering; if the key exists, return 'duplicate'.",
    timeout=10,
    spec=("duplicate-not-delivered",),
)
def test_a_redelivered_message_has_one_effect(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, redis, _bounds):
        first = _notify(module, "n-twice", task_id="message-1")
        second = _notify(module, "n-twice", task_id="message-1")  # acks_late: redelivered
        sent = redis.get(module.SENT_COUNTER_KEY)
    expect_equal(
        (len(provider.delivered), first.result, second.result),
        (1, "sent", "duplicate"),
        "(deliveries, first result, second result) after the same message ran twice",
        "With acks_late a message can run twice (worker crash, visibility timeout): "
        "the second run must find the idempotency key and return 'duplicate'.",
    )
    expect_equal((first.state, second.state), ("SUCCESS", "SUCCESS"), "states of both runs")
    expect_equal(str(sent), "1", f"the {module.SENT_COUNTER_KEY} counter")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#idempotency",
    hint="Check and claim in ONE command: client.set(key, ..., nx=True, ex=...). EXISTS (or "
    "GET) then SET lets a second delivery slip in between.",
    timeout=10,
    spec=("claim-atomically",),
)
def test_a_concurrent_redelivery_delivers_once(target: Target) -> None:
    module = target.load(FILE)
    key = f"{module.IDEMPOTENCY_KEY_PREFIX}n-race"
    with _world(module) as (provider, redis, _bounds):
        inner: list[TaskRun] = []
        racing = Interleaved(
            redis, key, lambda: inner.append(_notify(module, "n-race", task_id="message-r"))
        )
        with mock.patch.object(module, "get_redis", lambda: racing):
            outer = _notify(module, "n-race", task_id="message-r")
    expect(racing.fired, f"notify never touched the key {key!r} through get_redis().")
    results = sorted(str(r.result) for r in (outer, *inner))
    expect_equal(
        (len(provider.delivered), results),
        (1, ["duplicate", "sent"]),
        "(deliveries, results) when a redelivery of the same message runs right after the "
        "first delivery's first Redis command on its key",
        "Two workers can run the same message at once (acks_late, the visibility timeout): "
        "the check and the claim must be one atomic command, SET NX.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#idempotency",
    hint="client.set(key, token, nx=True, ex=NOTIFY_TIME_LIMIT): if the worker is killed "
    "mid-delivery, the claim expires and a redelivery can claim it.",
    timeout=10,
    spec=("claim-expires",),
)
def test_the_claim_has_an_expiry_while_delivering(target: Target) -> None:
    module = target.load(FILE)
    key = f"{module.IDEMPOTENCY_KEY_PREFIX}n-claim"
    with _world(module) as (provider, redis, _bounds):
        ttls: list[int] = []
        record = provider.deliver

        def deliver(*args: Any, **kwargs: Any) -> None:
            ttls.append(int(redis.ttl(key)))
            record(*args, **kwargs)

        with mock.patch.object(module, "deliver", deliver):
            _notify(module, "n-claim")
    expect_equal(len(ttls), 1, "deliver() calls")
    expect(
        ttls[0] > 0,
        f"TTL of {key} while deliver() runs: {ttls[0]} (-2: no such key, -1: no expiry). A "
        "claim without expiry outlives a worker killed by the hard time limit (no `finally` "
        "runs): the notification is then blocked for ever.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#idempotency-token",
    hint="token = uuid.uuid4().hex, drawn in each run of notify, then client.set(key, token, "
    "nx=True, ex=NOTIFY_TIME_LIMIT): never a constant like 'in-progress', never the task id "
    "(a retry keeps it).",
    timeout=10,
    spec=("claim-token",),
)
def test_each_attempt_claims_with_its_own_token(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, redis, _bounds):
        claims: list[str | None] = []
        keys: list[str] = []
        record = provider.deliver

        def deliver(*args: Any, **kwargs: Any) -> None:
            claims.append(redis.get(keys[-1]))
            record(*args, **kwargs)

        with mock.patch.object(module, "deliver", deliver):
            provider.failures = [module.TransientError("timeout")]
            for notification in ("n-token-a", "n-token-b"):
                keys.append(f"{module.IDEMPOTENCY_KEY_PREFIX}{notification}")
                _notify(module, notification)
    expect_equal(len(claims), 3, "deliver() calls (n-token-a twice: it is retried once)")
    expect(
        None not in claims and len(set(claims)) == len(claims),
        f"Values of the idempotency key while deliver() ran: {claims} (n-token-a's first "
        "attempt, its retry, then n-token-b). Each attempt must claim with a token of its own, "
        "drawn when it runs (uuid.uuid4().hex): with a constant ('in-progress'), or a value "
        "made from the task id (a retry keeps it), nothing tells this attempt's claim from "
        "another delivery's, so a release can free a claim that is not its own.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#idempotency-token",
    hint="On error, delete the key only if it still holds this attempt's token: a Lua "
    "compare-and-delete (client.register_script(...)(keys=[key], args=[token])). A plain "
    "DELETE frees whatever claim is there.",
    timeout=10,
    spec=("release-only-own-claim",),
)
def test_a_failed_attempt_leaves_a_newer_claim_alone(target: Target) -> None:
    module = target.load(FILE)
    key = f"{module.IDEMPOTENCY_KEY_PREFIX}n-expired"
    other = "token-of-another-delivery"
    with _world(module) as (provider, redis, _bounds):

        def slow_deliver(*args: Any, **kwargs: Any) -> None:
            provider.deliveries.append(args)
            # This attempt was slower than its claim: the claim expired, a redelivery of the
            # same notification claimed the key and is delivering now; then this one fails.
            redis.delete(key)
            redis.set(key, other, ex=module.NOTIFY_TIME_LIMIT)
            raise ValueError("provider rejected the message")

        with mock.patch.object(module, "deliver", slow_deliver):
            run = _notify(module, "n-expired")
        left, ttl = redis.get(key), redis.ttl(key)
    expect_equal(len(provider.deliveries), 1, "deliver() calls (ValueError is not retried)")
    expect_equal(
        (run.state, left, ttl > 0),
        ("FAILURE", other, True),
        "(final state, value of the key, key still expires) after an attempt whose claim "
        "expired during deliver() and was claimed by another delivery, then deliver() raised",
        "The failed attempt freed the other delivery's claim: a third delivery of the same "
        "notification can now claim the key and send it again. Release with compare-and-"
        "delete: delete the key only if it still holds this attempt's token.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE_D}#idempotency-token",
    hint="GET, compare, then DEL is two commands: the claim can expire and be taken in "
    "between. Compare and delete in one Lua script: if redis.call('get', KEYS[1]) == "
    "ARGV[1] then return redis.call('del', KEYS[1]) end return 0.",
    timeout=10,
    spec=("release-only-own-claim",),
)
def test_the_release_compares_and_deletes_in_one_step(target: Target) -> None:
    module = target.load(FILE)
    key = f"{module.IDEMPOTENCY_KEY_PREFIX}n-between"
    other = "token-of-another-delivery"
    with _world(module) as (provider, redis, _bounds):
        racing = ReclaimedAfterGet(redis, key, other, module.NOTIFY_TIME_LIMIT)

        def failing_deliver(*args: Any, **kwargs: Any) -> None:
            provider.deliveries.append(args)
            racing.armed = True  # from here on, a GET of the key lets another delivery in
            raise ValueError("provider rejected the message")

        with (
            mock.patch.object(module, "get_redis", lambda: racing),
            mock.patch.object(module, "deliver", failing_deliver),
        ):
            run = _notify(module, "n-between")
        left = redis.get(key)
    expect_equal(len(provider.deliveries), 1, "deliver() calls (ValueError is not retried)")
    if racing.swapped:
        expect_equal(
            (run.state, left),
            ("FAILURE", other),
            "(final state, value of the key) when the claim expires and another delivery "
            "claims the key right after the failed attempt's GET of it",
            "The release read the key (GET), found its own token, and deleted the key in a "
            "second command; in between, the claim changed hands, so the DEL freed another "
            "delivery's claim. Compare and delete in one step: a Lua script "
            "(client.register_script(...) or client.eval(...)).",
        )
    else:
        expect_equal(
            (run.state, left),
            ("FAILURE", None),
            "(final state, value of the key) after deliver() raised",
            "The failed attempt must release its own claim (compare-and-delete), so the "
            "retry or a redelivery can claim the key.",
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#idempotency",
    hint="The key is IDEMPOTENCY_KEY_PREFIX + notification_id, not the Celery task id: the "
    "same notification can come back in a new message.",
    timeout=10,
    spec=("key-per-notification",),
)
def test_the_key_is_the_notification_not_the_message(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, redis, _bounds):
        results = [
            _notify(module, notification, task_id=message).result
            for notification, message in (("n-a", "m-1"), ("n-a", "m-2"), ("n-b", "m-3"))
        ]
        keys = sorted(redis.scan_iter(f"{module.IDEMPOTENCY_KEY_PREFIX}*"))
    expect_equal(
        (results, len(provider.delivered), keys),
        (
            ["sent", "duplicate", "sent"],
            2,
            [f"{module.IDEMPOTENCY_KEY_PREFIX}n-a", f"{module.IDEMPOTENCY_KEY_PREFIX}n-b"],
        ),
        "(results, deliveries, idempotency keys) for n-a in message m-1, n-a again in m-2, "
        "n-b in m-3",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#idempotency",
    hint="After delivering, client.set(key, 'sent', ex=IDEMPOTENCY_TTL_SECONDS) (a plain SET "
    "drops the expiry): long enough to catch a late redelivery, short enough to not grow "
    "Redis for ever.",
    timeout=10,
    spec=("key-kept-after-delivery",),
)
def test_the_key_is_kept_for_a_week_after_delivery(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (_provider, redis, _bounds):
        _notify(module, "n-ttl")
        ttl = redis.ttl(f"{module.IDEMPOTENCY_KEY_PREFIX}n-ttl")
    week = module.IDEMPOTENCY_TTL_SECONDS
    expect(
        week - 60 <= ttl <= week,
        f"TTL of {module.IDEMPOTENCY_KEY_PREFIX}n-ttl after a delivery: {ttl} "
        f"(-2: no such key, -1: no expiry); expected IDEMPOTENCY_TTL_SECONDS ({week}).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#idempotency",
    hint="client.incr(SENT_COUNTER_KEY) after deliver() returned, never before it.",
    timeout=10,
    spec=("count-deliveries",),
)
def test_failed_attempts_are_not_counted_as_sent(target: Target) -> None:
    module = target.load(FILE)
    with _world(module) as (provider, redis, _bounds):
        _always_transient(module, provider)
        _notify(module, "n-down")
        after_failure = redis.get(module.SENT_COUNTER_KEY)
        provider.failures = []
        _notify(module, "n-up")
        after_success = redis.get(module.SENT_COUNTER_KEY)
    expect_equal(
        (int(after_failure or 0), int(after_success or 0)),
        (0, 1),
        f"{module.SENT_COUNTER_KEY} after a notification that failed "
        f"{module.NOTIFY_MAX_RETRIES + 1} times, then after one that got through",
    )


# -- time limits ----------------------------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE_D}#worker-settings",
    hint="@app.task(soft_time_limit=NOTIFY_SOFT_TIME_LIMIT, time_limit=NOTIFY_TIME_LIMIT).",
    timeout=10,
    spec=("time-limits",),
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
