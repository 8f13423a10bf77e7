"""grader.sim_instances: several skewed instances, one fakeredis server, failures on cue."""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest
import redis

from grader import paths
from grader.sim_instances import Fleet, Instance, SkewedClock

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 3, 2, 12, 0, 3, tzinfo=UTC)
TICK = datetime(2026, 3, 2, 12, 0, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def solution() -> ModuleType:
    path = paths.SOLUTIONS_DIR / "level3_distributed_coordinator.py"
    spec = importlib.util.spec_from_file_location("sim_instances_solution", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_skewed_clock_moves_both_ways() -> None:
    with SkewedClock(T0) as clock:
        clock.set(T0 + timedelta(seconds=5))
        clock.set(T0 - timedelta(seconds=5))
        assert datetime.now(UTC) == T0 - timedelta(seconds=5)


def test_each_instance_fires_on_its_own_clock(solution: ModuleType) -> None:
    seen: list[tuple[str, datetime, datetime]] = []

    def body(fleet: Fleet, instance: Instance, tick: datetime, token: int) -> None:
        seen.append((instance.name, tick, datetime.now(UTC)))

    with Fleet(solution, T0, (3.0,), body=body) as fleet:
        fleet.run_for(10)
    name, tick, local_now = seen[0]
    assert (name, tick) == ("a", TICK)
    assert local_now == TICK  # its clock read the tick itself
    assert fleet.runs[0].started == TICK - timedelta(seconds=3)  # 3 s early in true time


def test_redis_keeps_true_time_whatever_the_instance_clock(solution: ModuleType) -> None:
    with Fleet(solution, T0, (5.0, -5.0), scheduler=False) as fleet:
        fast, slow = fleet.instances
        assert fast.client is not None and slow.client is not None
        fleet.clock.set(fast.local(fleet.true_now))
        fast.client.set("k", "v", px=1000)
        fleet.clock.set(slow.local(fleet.true_now))
        assert slow.client.pttl("k") == 1000  # no skew leaks into the server
        fleet.true_now += timedelta(seconds=1.5)
        assert slow.client.get("k") is None


def test_redis_down_window_refuses_commands(solution: ModuleType) -> None:
    with Fleet(solution, T0, (0.0,), scheduler=False) as fleet:
        client = fleet.client()
        fleet.redis_down(T0 + timedelta(seconds=1), T0 + timedelta(seconds=2))
        fleet.run_until(T0 + timedelta(seconds=1.5))
        with pytest.raises(redis.ConnectionError):
            client.get("x")
        fleet.run_until(T0 + timedelta(seconds=2.5))
        assert client.get("x") is None


def test_pipelines_and_lua_work_on_the_shared_server(solution: ModuleType) -> None:
    with Fleet(solution, T0, (0.0,), scheduler=False) as fleet:
        a, b = fleet.client(), fleet.client()
        with a.pipeline() as pipe:
            pipe.set("p", "1").incr("p").execute()
        assert b.get("p") == "2"
        assert b.eval("return redis.call('incr', KEYS[1])", 1, "p") == 3
        assert b.hgetall("none") == {}


def test_kill_stops_a_job_and_cuts_its_redis(solution: ModuleType) -> None:
    finished: list[str] = []

    def body(fleet: Fleet, instance: Instance, tick: datetime, token: int) -> None:
        fleet.spend(instance, 5)
        finished.append(instance.name)

    with Fleet(solution, T0, (1.0, 0.0), body=body) as fleet:
        fleet.kill("a", TICK)  # a started at 12:00:09 true
        fleet.run_for(15)
        a = fleet.instance("a")
        assert a.state == "killed"
        assert a.client is not None and not a.client.alive
    assert finished == []  # b lost the tick; a died before finishing


def test_pause_stretches_a_running_job(solution: ModuleType) -> None:
    ends: list[datetime] = []

    def body(fleet: Fleet, instance: Instance, tick: datetime, token: int) -> None:
        fleet.spend(instance, 2)
        ends.append(fleet.true_now)

    with Fleet(solution, T0, (0.0,), body=body) as fleet:
        fleet.pause("a", TICK + timedelta(seconds=1), 10)
        fleet.run_for(15)
    assert ends[0] == TICK + timedelta(seconds=11)


def test_restart_boots_a_fresh_coordinator(solution: ModuleType) -> None:
    with Fleet(solution, T0, (0.0,)) as fleet:
        before = fleet.instance("a").coordinator
        fleet.restart("a", T0 + timedelta(seconds=1))
        fleet.run_for(20)
        assert fleet.instance("a").coordinator is not before
        assert [r.tick for r in fleet.runs] == [TICK, TICK + timedelta(seconds=10)]


def test_timeline_marks_duplicates_and_gaps(solution: ModuleType) -> None:
    with Fleet(solution, T0, (0.0, 0.0), scheduler=False) as fleet:
        from grader.sim_instances import Run

        fleet.runs = [
            Run("a", TICK, 1, TICK),
            Run("b", TICK, 2, TICK),
        ]
        text = fleet.timeline([TICK, TICK + timedelta(seconds=10)])
    assert "DUP" in text and "GAP" in text and "a(fence 1" in text


def test_fast_mode_runs_every_instance_at_every_tick(solution: ModuleType) -> None:
    attempts: list[str] = []
    with Fleet(solution, T0, (2.0, -2.0, 0.0), scheduler=False) as fleet:
        for instance in fleet.instances:
            original = instance.coordinator.run_tick

            def spy(job_id, fire_time, func, _name=instance.name, _orig=original):  # type: ignore[no-untyped-def]
                attempts.append(_name)
                return _orig(job_id, fire_time, func)

            instance.coordinator.run_tick = spy
        fleet.run_ticks(3)
    assert attempts == ["a", "c", "b"] * 3  # fastest clock first
    assert [r.instance for r in fleet.runs] == ["a", "a", "a"]


@pytest.mark.timeout(600)
@pytest.mark.skipif(
    os.environ.get("CRONKATA_FULL_SCALE") != "1",
    reason="ten instances x 10,000 ticks takes about a minute (fakeredis EVAL costs "
    "0.25-0.5 ms); set CRONKATA_FULL_SCALE=1 to run it",
)
def test_full_scale_ten_instances_ten_thousand_ticks(solution: ModuleType) -> None:
    offsets = (4.5, -3.0, 0.0, 2.0, -5.0, 1.0, -1.5, 3.5, -4.0, 5.0)
    with Fleet(solution, T0, offsets, scheduler=False) as fleet:
        fleet.run_ticks(10_000)
        assert len(fleet.runs) == 10_000
        assert fleet.duplicates() == []
        tokens = [r.fencing_token for r in fleet.runs]
        assert tokens == sorted(set(tokens))
