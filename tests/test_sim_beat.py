"""Tests of the Celery drivers: `grader.sim_beat` (beat in virtual time) and `grader.sim_celery`."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from celery import Celery
from celery.beat import BeatLazyFunc
from celery.schedules import crontab

from grader import sandbox
from grader.sim_beat import BeatSimulationError, beat_app, simulate_beat
from grader.sim_celery import (
    Interleaved,
    controlled_jitter,
    fake_redis,
    in_process_worker,
    jitter_max,
    jitter_min,
    queued_messages,
    routed_queues,
    run_like_worker,
    use_memory_transport,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def _entry(schedule: Any, **extra: Any) -> dict[str, Any]:
    return {"task": "demo.task", "schedule": schedule, **extra}


# -- beat in virtual time ---------------------------------------------------------------------


def test_a_week_of_a_0300_crontab_in_shanghai_sends_7_times_at_0300_local() -> None:
    start = datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI).astimezone(UTC)
    settings = {"timezone": "Asia/Shanghai", "beat_schedule": {"night": _entry(crontab(0, 3))}}
    with simulate_beat(settings, start) as sim:
        sim.run_for(timedelta(days=7))
    times = sim.send_times("night", SHANGHAI)
    assert [t.strftime("%a %H:%M") for t in times] == [
        f"{day} 03:00" for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    ]
    assert times[0] == datetime(2026, 3, 2, 3, 0, tzinfo=SHANGHAI)
    assert sim.ticks < 3000  # beat sleeps at most beat_max_loop_interval (300 s) per tick


def test_an_interval_entry_first_sends_one_period_after_start() -> None:
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    settings = {"beat_schedule": {"often": _entry(timedelta(seconds=90))}}
    with simulate_beat(settings, start) as sim:
        sim.run_for(timedelta(minutes=6))
    assert sim.send_times("often") == [start + timedelta(seconds=90 * k) for k in range(1, 5)]


def test_the_horizon_is_inclusive_and_the_clock_ends_there() -> None:
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with simulate_beat({"beat_schedule": {"e": _entry(timedelta(minutes=5))}}, start) as sim:
        sim.run_until(start + timedelta(minutes=10))
        assert sim.clock.now() == start + timedelta(minutes=10)
        sim.run_for(timedelta(minutes=5))
    assert len(sim.send_times("e")) == 3


def test_fall_back_sends_the_repeated_0130_once_at_its_first_occurrence() -> None:
    """Celery 5.7: the 01:30 that happens twice on 2024-11-03 in New York is sent once (EDT)."""
    start = datetime(2024, 11, 2, 12, 0, tzinfo=UTC)
    settings = {"timezone": "America/New_York", "beat_schedule": {"e": _entry(crontab(30, 1))}}
    with simulate_beat(settings, start) as sim:
        sim.run_for(timedelta(days=2))
    assert sim.send_times("e") == [
        datetime(2024, 11, 3, 5, 30, tzinfo=UTC),  # 01:30 EDT (-04:00), the first 01:30
        datetime(2024, 11, 4, 6, 30, tzinfo=UTC),  # 01:30 EST (-05:00)
    ]


def test_spring_forward_sends_the_missing_0230_at_0330_edt() -> None:
    """Celery 5.7: 02:30 does not exist on 2024-03-10 in New York; it is sent at 03:30 EDT."""
    start = datetime(2024, 3, 9, 12, 0, tzinfo=UTC)
    settings = {"timezone": "America/New_York", "beat_schedule": {"e": _entry(crontab(30, 2))}}
    with simulate_beat(settings, start) as sim:
        sim.run_for(timedelta(days=2))
    local = [t.astimezone(NEW_YORK).strftime("%m-%d %H:%M %z") for t in sim.send_times("e")]
    assert local == ["03-10 03:30 -0400", "03-11 02:30 -0400"]


def test_a_send_records_task_args_kwargs_and_options() -> None:
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    entry = _entry(
        timedelta(minutes=1),
        args=(1, BeatLazyFunc(lambda: "lazy")),
        kwargs={"x": 2},
        options={"queue": "maintenance", "expires": 30},
    )
    with simulate_beat({"beat_schedule": {"e": entry}}, start) as sim:
        sim.run_for(60)
    [send] = sim.sends
    assert (send.entry, send.task, send.args, send.kwargs) == (
        "e",
        "demo.task",
        (1, "lazy"),
        {"x": 2},
    )
    assert send.options == {"queue": "maintenance", "expires": 30}
    assert send.at == start + timedelta(minutes=1)


def test_only_the_configured_entries_are_simulated() -> None:
    """No celery.backend_cleanup entry, even with a backend that cannot expire results."""
    app = beat_app(result_expires=3600, beat_schedule={"e": _entry(timedelta(hours=1))})
    with simulate_beat(app, datetime(2026, 3, 2, tzinfo=UTC)) as sim:
        sim.run_for(timedelta(days=1))
    assert {send.entry for send in sim.sends} == {"e"}


def test_a_config_module_is_read_like_config_from_object() -> None:
    class Config:
        timezone = "Asia/Shanghai"
        beat_schedule = {"e": _entry(crontab(minute=0, hour=8))}  # noqa: RUF012

    app = beat_app(Config)
    assert str(app.conf.timezone) == "Asia/Shanghai" and app.conf.broker_url == "memory://"


def test_a_runaway_schedule_stops_with_an_error() -> None:
    settings = {"beat_schedule": {"e": _entry(timedelta(microseconds=1))}}
    with (
        simulate_beat(settings, datetime(2026, 3, 2, tzinfo=UTC), max_ticks=500) as sim,
        pytest.raises(BeatSimulationError),
    ):
        sim.run_for(60)


def test_a_week_of_three_entries_is_fast() -> None:
    schedule = {
        "a": _entry(crontab(0, 3)),
        "b": _entry(timedelta(minutes=10)),
        "c": _entry(crontab(30, 8, day_of_week="mon-fri")),
    }
    started = time.perf_counter()
    with simulate_beat({"beat_schedule": schedule}, datetime(2026, 3, 2, tzinfo=UTC)) as sim:
        sim.run_for(timedelta(days=7))
    assert len(sim.sends) == 7 + 1008 + 5
    assert time.perf_counter() - started < 2.0


def test_sleeping_until_the_next_due_entry_sends_what_default_beat_sends() -> None:
    """The suites set beat_max_loop_interval to a week: fewer ticks, the same sends."""
    start = datetime(2026, 3, 4, 13, 7, 41, tzinfo=SHANGHAI).astimezone(UTC)
    schedule = {
        "often": _entry(timedelta(seconds=600)),
        "daily": _entry(crontab(minute=0, hour=8)),
        "weekdays": _entry(crontab(minute=0, hour=3, day_of_week="mon-fri")),
    }
    runs = []
    for extra in ({}, {"beat_max_loop_interval": 7 * 24 * 3600}):
        settings = {"timezone": "Asia/Shanghai", "beat_schedule": schedule, **extra}
        with simulate_beat(settings, start) as sim:
            sim.run_for(timedelta(days=4))
        runs.append((sim.ticks, [(s.entry, s.at) for s in sim.sends]))
    (default_ticks, default_sends), (exact_ticks, exact_sends) = runs
    assert exact_sends == default_sends
    assert len(exact_sends) == 4 * 144 + 4 + 2  # Sat and Sun have no weekday send
    assert exact_ticks < default_ticks


# -- tasks as a worker runs them -------------------------------------------------------------


class Flaky(Exception):
    pass


def _retrying_app() -> tuple[Celery, list[int]]:
    app = use_memory_transport(Celery("sim-celery-test", set_as_current=False))
    attempts: list[int] = []

    @app.task(
        bind=True,
        shared=False,  # tasks are shared with every later app by default
        name="demo.flaky",
        autoretry_for=(Flaky,),
        retry_backoff=2,
        retry_backoff_max=10,
        max_retries=4,
    )
    def flaky(self: Any, fail_times: int) -> str:
        attempts.append(self.request.retries)
        if len(attempts) <= fail_times:
            raise Flaky("not yet")
        return "done"

    return app, attempts


def test_run_like_worker_retries_and_records_countdowns() -> None:
    app, attempts = _retrying_app()
    with controlled_jitter(jitter_max) as bounds:
        run = run_like_worker(app.tasks["demo.flaky"], (10,))
    assert (run.attempts, run.state, attempts) == (5, "FAILURE", [0, 1, 2, 3, 4])
    assert run.countdowns == [2.0, 4.0, 8.0, 10.0]
    assert bounds[:4] == [3, 5, 9, 11]  # randrange(countdown + 1)


def test_run_like_worker_stops_retrying_once_the_task_succeeds() -> None:
    app, _attempts = _retrying_app()
    with controlled_jitter(jitter_min):
        run = run_like_worker(app.tasks["demo.flaky"], (2,))
    assert (run.attempts, run.countdowns, run.state, run.result) == (
        3,
        [0.0, 0.0],
        "SUCCESS",
        "done",
    )


def test_fake_redis_replaces_get_redis_and_from_url() -> None:
    import types

    import redis

    module = types.ModuleType("fake_module")
    module.get_redis = lambda: None  # type: ignore[attr-defined]
    with fake_redis(module) as client:
        module.get_redis().set("k", "v")  # type: ignore[attr-defined]
        assert client.get("k") == "v"
        assert redis.Redis.from_url("redis://127.0.0.1:1/0").get("k") == b"v"
    with fake_redis() as fresh:
        assert fresh.get("k") is None  # a fresh server per use


def test_queued_messages_and_routes() -> None:
    app = use_memory_transport(Celery("sim-queue-test", set_as_current=False))
    app.conf.task_routes = {"demo.routed": {"queue": "special"}}
    assert routed_queues(app) == ["celery", "special"]

    @app.task(name="demo.routed", shared=False)
    def routed(x: int) -> int:
        return x

    result = routed.delay(7)
    assert queued_messages(app, ["celery", "special"]) == [
        {"queue": "special", "task": "demo.routed", "id": result.id, "args": [7], "kwargs": {}}
    ]


def test_in_process_worker_runs_a_chord_in_a_forked_child() -> None:
    def work() -> object:
        from celery import chord

        app = Celery("sim-worker-test", set_as_current=False)

        @app.task(name="demo.square", shared=False)
        def square(x: int) -> int:
            return x * x

        @app.task(name="demo.total", shared=False)
        def total(values: list[int]) -> int:
            return sum(values)

        started = time.perf_counter()
        in_process_worker(app)
        result = chord((square.s(n) for n in (1, 2, 3)), total.s()).delay()
        value = result.get(timeout=5, interval=0.01)
        return {"value": value, "seconds": time.perf_counter() - started, "pid": os.getpid()}

    outcome = sandbox.run_in_child(work, timeout=20)
    assert outcome.problem is None, outcome.problem
    assert isinstance(outcome.payload, dict)
    assert outcome.payload["value"] == 14
    assert outcome.payload["pid"] != os.getpid()
    assert outcome.payload["seconds"] < 3.0


def test_interleaved_runs_a_second_delivery_after_the_first_command_on_the_key() -> None:
    with fake_redis() as client:
        order: list[str] = []
        racing = Interleaved(client, "k", lambda: order.append("during"))
        racing.set("other", 1)
        assert order == []
        assert racing.exists("k") == 0
        order.append("after exists")
        racing.set("k", "x")
        assert order == ["during", "after exists"]  # once only
        assert racing.fired


def test_interleaved_counts_a_pipeline_as_one_command() -> None:
    with fake_redis() as client:
        order: list[str] = []
        racing = Interleaved(client, "k", lambda: order.append(f"during k={client.get('k')}"))
        with racing.pipeline() as pipe:
            pipe.set("k", "claimed", nx=True)
            pipe.expire("k", 30)
            order.append("queued")
            pipe.execute()
        assert order == ["queued", "during k=claimed"]


def test_interleaved_makes_check_then_set_deliver_twice_and_set_nx_once() -> None:
    def notify(client: Any, delivered: list[str], atomic: bool) -> str:
        if atomic:
            if not client.set("k", "claimed", nx=True, ex=30):
                return "duplicate"
        else:
            if client.exists("k"):
                return "duplicate"
            client.set("k", "claimed", ex=30)
        delivered.append("sent")
        return "sent"

    for atomic, expected in ((True, 1), (False, 2)):
        with fake_redis() as client:
            delivered: list[str] = []
            racing = Interleaved(client, "k", lambda: notify(client, delivered, atomic))  # noqa: B023
            notify(racing, delivered, atomic)
            assert len(delivered) == expected
