"""Hidden suite of `distributed_coordinator` (exercises/level3/level3_distributed_coordinator.py).

Several instances of one coordinated interval job step through one virtual timeline
(`grader.sim_instances.Fleet`), each with its own clock offset, sharing one fakeredis[lua]
server that keeps true time. The suite uses only the stub's public API: `fire_time_at`,
`claim_key`, `try_claim`, `renew`, `release`, `FencedStore`, `tick_report` and
`Coordinator` (`run_tick`, `heartbeat`, `add_job`, `skipped`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from grader.clock import as_utc
from grader.drawing import deterministic
from grader.feedback import expect, expect_equal, fail
from grader.sim_instances import Fleet, Instance
from grader.targets import Target

FILE = "level3_distributed_coordinator.py"
NOTE = "07e_best_practices.md"
T0 = datetime(2026, 3, 2, 12, 0, 3, tzinfo=UTC)  # ticks fall on :x0, the first at 12:00:10
TICK = datetime(2026, 3, 2, 12, 0, 10, tzinfo=UTC)
JOB = "report"


def _load(target: Target) -> ModuleType:
    return target.load(FILE)


def _no_duplicates(
    fleet: Fleet, ticks: list[datetime], why: str, gaps_ok: tuple[datetime, ...] = ()
) -> None:
    duplicates = fleet.duplicates()
    gaps = [t for t in fleet.gaps(ticks) if t not in gaps_ok]
    if duplicates or gaps:
        head = []
        if duplicates:
            head.append(f"{len(duplicates)} tick(s) ran more than once (DUP)")
        if gaps:
            head.append(f"{len(gaps)} tick(s) never ran (GAP)")
        fail("; ".join(head) + "\n" + fleet.timeline(ticks, expected_gaps=gaps_ok) + "\n" + why)


# -- the pieces -----------------------------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#clock-skew",
    hint="ticks = (now - anchor) // interval; return anchor + ticks * interval. Never round now().",
    spec=("fire-time-from-trigger",),
)
def test_fire_time_is_the_latest_trigger_time_at_or_before_now(target: Target) -> None:
    module = _load(target)

    @deterministic(max_examples=60)
    @given(
        k=st.integers(-1000, 100_000),
        interval=st.sampled_from([1, 5, 7, 10, 60, 90, 3600]),
        into=st.floats(0, 0.999),
        anchor_shift=st.integers(0, 59),
    )
    def check(k: int, interval: int, into: float, anchor_shift: int) -> None:
        anchor = module.ANCHOR + timedelta(seconds=anchor_shift)
        tick = anchor + timedelta(seconds=k * interval)
        now = tick + timedelta(seconds=interval * into)
        got = module.fire_time_at(now, interval, anchor)
        expect_equal(
            got,
            tick,
            f"fire_time_at({now.isoformat()}, {interval}, anchor={anchor.isoformat()})",
            "The tick is the trigger's latest fire time at or before now, counted from the "
            "anchor: instances that fire late (a pause, a slow start) still name their tick.",
        )

    check()


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#clock-skew",
    hint="if interval_seconds <= 0: raise ValueError(...)",
    spec=("interval-positive",),
)
def test_fire_time_rejects_a_non_positive_interval(target: Target) -> None:
    module = _load(target)
    for interval in (0, -10, -0.5):
        try:
            got = module.fire_time_at(TICK, interval)
        except ValueError:
            continue
        except Exception as error:
            fail(
                f"fire_time_at(now, {interval}) raised {type(error).__name__}: {error}; "
                "a non-positive interval must raise ValueError."
            )
        fail(f"fire_time_at(now, {interval}) returned {got!r}; it must raise ValueError.")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#redis-lock",
    hint="Build the key from the job id and the fire instant in UTC (e.g. epoch milliseconds).",
    spec=("claim-key-per-tick",),
)
def test_claim_key_names_the_job_and_the_instant(target: Target) -> None:
    module = _load(target)
    shanghai = TICK.astimezone(ZoneInfo("Asia/Shanghai"))
    expect_equal(
        module.claim_key(JOB, shanghai),
        module.claim_key(JOB, TICK),
        "claim_key of one instant written in Asia/Shanghai vs in UTC",
        "Instances in different zones must name the same tick.",
    )
    keys = {
        module.claim_key(JOB, TICK),
        module.claim_key(JOB, TICK + timedelta(seconds=10)),
        module.claim_key("other", TICK),
        module.claim_key(JOB, TICK + timedelta(milliseconds=1)),
    }
    expect(len(keys) == 4, f"claim_key must differ per job and per fire time; got {sorted(keys)}")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#redis-lock",
    hint="client.set(key, token, nx=True, px=lease_ms): one atomic command, never GET then SET.",
    spec=("claim-set-nx-px", "claim-returns-none-when-taken"),
)
def test_claim_is_atomic_and_has_a_lease(target: Target) -> None:
    module = _load(target)
    with Fleet(module, T0, (0.0,), scheduler=False) as fleet:
        client = fleet.client()
        first = module.try_claim(client, JOB, TICK, 12.0)
        expect(first is not None, "try_claim on a free tick returned None")
        second = module.try_claim(fleet.client(), JOB, TICK, 12.0)
        expect(second is None, f"a second try_claim on the same tick returned {second!r}, not None")
        ttl = client.pttl(module.claim_key(JOB, TICK))
        expect(
            9_000 <= ttl <= 12_000,
            f"the claim's PTTL is {ttl} ms, expected about 12000 (the lease): a claim without "
            "a TTL wedges the job forever once its holder crashes",
        )
        expect_equal(
            client.get(module.claim_key(JOB, TICK)),
            first.token,
            "value stored under claim_key(job, fire time)",
            "The claim's value is its token: release and renew compare against it.",
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#redis-lock",
    hint="Check and set in one command (SET ... NX PX) or one Lua script: between a GET and a "
    "SET another instance can claim the tick.",
    spec=("claim-set-nx-px",),
)
def test_claim_race_has_one_winner(target: Target) -> None:
    module = _load(target)
    with Fleet(module, T0, (0.0,), scheduler=False) as fleet:
        mine, rival = fleet.client(), fleet.client()
        rival_claims: list[Any] = []
        seen: list[tuple[Any, ...]] = []

        def rival_claims_first(args: tuple[Any, ...]) -> None:
            # the rival acts between this instance's first and second command on the key
            if any(module.claim_key(JOB, TICK) == str(a) for a in args[1:]):
                seen.append(args)
                if len(seen) == 2 and not rival_claims:
                    rival_claims.append(module.try_claim(rival, JOB, TICK, 30.0))

        mine.before_command = rival_claims_first
        ours = module.try_claim(mine, JOB, TICK, 30.0)
        mine.before_command = None
        theirs = rival_claims[0] if rival_claims else None
        holder = rival.get(module.claim_key(JOB, TICK))
    winners = [c for c in (ours, theirs) if c is not None]
    expect(
        len(winners) == 1,
        f"two instances raced for one tick and {len(winners)} won it (the key now holds "
        f"{holder!r}): a GET then SET lets both pass; SET NX decides in one step",
    )
    expect(holder == winners[0].token, "the key does not hold the winner's token")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#tokens-and-release",
    hint="secrets.token_hex(16) per claim; never the instance name or the time.",
    spec=("random-token",),
)
def test_claim_tokens_are_random_and_unique(target: Target) -> None:
    module = _load(target)
    with Fleet(module, T0, (0.0,), scheduler=False) as fleet:
        client = fleet.client()
        tokens = [
            module.try_claim(client, JOB, TICK + timedelta(seconds=10 * k), 5.0).token
            for k in range(20)
        ]
    expect(
        len(set(tokens)) == 20, f"20 claims got {len(set(tokens))} distinct tokens: {tokens[:4]}..."
    )
    expect(
        all(len(str(t)) >= 16 for t in tokens),
        f"tokens must be unguessable (16+ random characters), got {tokens[0]!r}",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fencing",
    hint="fencing_token = client.incr(a per-job counter key) once the SET NX succeeded.",
    spec=("fencing-token-increases",),
)
def test_fencing_tokens_increase_with_every_claim(target: Target) -> None:
    module = _load(target)
    with Fleet(module, T0, (0.0,), scheduler=False) as fleet:
        tokens = [
            module.try_claim(
                fleet.client(), JOB, TICK + timedelta(seconds=10 * k), 5.0
            ).fencing_token
            for k in range(6)
        ]
    expect(
        all(b > a for a, b in pairwise(tokens)),
        f"fencing tokens of six successive claims: {tokens}; each must be larger than the last",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#tokens-and-release",
    hint="Release with one Lua script: if GET key == token then DEL key; a bare DEL deletes "
    "whoever holds the lock now.",
    spec=("release-own-claim",),
)
def test_release_never_deletes_someone_elses_claim(target: Target) -> None:
    module = _load(target)
    with Fleet(module, T0, (0.0,), scheduler=False) as fleet:
        a, b = fleet.client(), fleet.client()
        old = module.try_claim(a, JOB, TICK, 2.0)
        fleet.true_now += timedelta(seconds=3)  # A's lease expired (a pause, a slow job)
        new = module.try_claim(b, JOB, TICK, 30.0)
        expect(
            new is not None, "after the first lease expired, the tick could not be claimed again"
        )
        released = module.release(a, old)
        key = module.claim_key(JOB, TICK)
        expect(
            b.get(key) == new.token,
            f"release() with the expired claim's token deleted the new holder's claim "
            f"(returned {released!r})",
        )
        expect(
            released is False,
            f"release() of a claim held by someone else returned {released!r}, not False",
        )
        expect(
            module.release(b, new) is True,
            "release() by the holder returned something else than True",
        )
        expect(b.get(key) is None, "the holder's release() left the key in place")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#lease-renewal",
    hint="Compare-and-extend in Lua: if GET key == token then PEXPIRE key ms.",
    spec=("renew-own-claim",),
)
def test_renew_extends_only_your_own_claim(target: Target) -> None:
    module = _load(target)
    with Fleet(module, T0, (0.0,), scheduler=False) as fleet:
        a, b = fleet.client(), fleet.client()
        mine = module.try_claim(a, JOB, TICK, 2.0)
        expect(module.renew(a, mine, 20.0) is True, "renew() of a claim still held returned False")
        ttl = a.pttl(mine.key)
        expect(
            15_000 <= ttl <= 20_000,
            f"after renew(..., 20.0) the PTTL is {ttl} ms, expected about 20000",
        )
        fleet.true_now += timedelta(seconds=21)
        theirs = module.try_claim(b, JOB, TICK, 5.0)
        expect(
            module.renew(a, mine, 60.0) is False,
            "renew() of a claim someone else holds returned True",
        )
        expect(
            b.pttl(theirs.key) <= 5_000,
            "renew() extended the lease of another holder's claim: it must compare tokens first",
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fencing",
    hint="In one Lua script: read the last accepted token; reject a lower one; else store both.",
    spec=("fenced-store-rejects-older",),
)
def test_fenced_store_rejects_older_tokens(target: Target) -> None:
    module = _load(target)
    with Fleet(module, T0, (0.0,), scheduler=False) as fleet:
        store = module.FencedStore(fleet.client(), "reports")
        other = module.FencedStore(fleet.client(), "reports")
        steps = [
            (store, "daily", "v5", 5, True),
            (other, "daily", "v3", 3, False),
            (store, "daily", "v5b", 5, True),
            (other, "daily", "v7", 7, True),
            (store, "daily", "v6", 6, False),
            (store, "weekly", "w1", 1, True),
        ]
        for who, resource, value, token, want in steps:
            got = who.write(resource, value, token)
            expect_equal(got, want, f"write({resource!r}, {value!r}, fencing_token={token})")
        expect_equal(store.read("daily"), "v7", "read('daily') after those writes")
        expect_equal(store.read("weekly"), "w1", "read('weekly') (fencing is per resource)")
        expect(store.read("never") is None, "read() of a resource never written must be None")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fencing",
    hint="Compare tokens as numbers (tonumber() in Lua): as text, '10' sorts before '9'.",
    spec=("fenced-store-rejects-older",),
)
def test_fenced_store_compares_tokens_as_numbers(target: Target) -> None:
    module = _load(target)
    with Fleet(module, T0, (0.0,), scheduler=False) as fleet:
        store = module.FencedStore(fleet.client(), "reports")
        names = iter(range(10_000))

        @deterministic(max_examples=40)
        @given(tokens=st.lists(st.integers(1, 2_000), min_size=2, max_size=8))
        @example(tokens=[9, 10, 8])
        @example(tokens=[99, 100, 100, 7])
        def check(tokens: list[int]) -> None:
            resource = f"r{next(names)}"
            highest = 0
            for number, token in enumerate(tokens):
                want = token >= highest
                got = store.write(resource, f"v{number}", token)
                expect_equal(
                    got,
                    want,
                    f"write #{number + 1} with fencing token {token} (tokens so far {tokens})",
                    "A write is rejected only when a higher token was accepted before.",
                )
                highest = max(highest, token) if want else highest

        check()


# -- many instances -------------------------------------------------------------------------------


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#redis-lock",
    hint="run_tick: try_claim; if None, return False; else run func(fire_time, fencing_token).",
    spec=("one-run-per-tick", "run-tick-passes-fence"),
    timeout=30,
)
def test_ten_instances_run_each_tick_exactly_once(target: Target) -> None:
    module = _load(target)
    offsets = (4.5, -3.0, 0.0, 2.0, -5.0, 1.0, -1.5, 3.5, -4.0, 5.0)
    tokens: list[int] = []
    with Fleet(module, T0, offsets, scheduler=False, interval_seconds=10) as fleet:
        fleet.run_ticks(200, lambda inst, tick, token: tokens.append(token))
        ticks = sorted(
            {r.tick for r in fleet.runs}
            | set(fleet.ticks_between(TICK, TICK + timedelta(seconds=1990)))
        )
        _no_duplicates(fleet, ticks, "Ten instances tried every tick; exactly one may run it.")
    expect(
        all(b > a for a, b in pairwise(tokens)),
        f"the fencing tokens handed to the job must increase from run to run: {tokens[:6]}...",
    )


def _quick_job() -> Any:
    """A job body that finishes at once (the default when a fleet has no body)."""

    def body(fleet: Fleet, instance: Instance, tick: datetime, token: int) -> None:
        return None

    return body


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#claim-outlives-tick",
    hint="After the run, do not delete the claim: keep it (compare-and-extend) until "
    "fire_time + 2*MAX_CLOCK_SKEW_SECONDS + MISFIRE_GRACE_SECONDS.",
    spec=("claim-outlives-tick",),
)
def test_claim_outlives_the_tick(target: Target) -> None:
    module = _load(target)
    # a's clock is 5 s fast, c's 5 s slow: c reaches each tick 10 s after a did; a short lease
    with Fleet(module, T0, (5.0, 0.0, -5.0), lease_seconds=1.0, body=_quick_job()) as fleet:
        fleet.run_for(120)
        ticks = fleet.ticks_between(TICK, T0 + timedelta(seconds=110))
        _no_duplicates(
            fleet,
            ticks,
            "The fast instance ran each tick, then the slow ones reached the same tick later: "
            "a claim deleted (or let expire) right after the run lets them run it again.",
        )


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#lease-renewal",
    hint="Keep the claims being run in the coordinator; heartbeat() renews each with renew().",
    spec=("heartbeat-renews",),
)
def test_job_longer_than_the_lease_is_not_run_twice(target: Target) -> None:
    module = _load(target)

    def long_job(fleet: Fleet, instance: Instance, tick: datetime, token: int) -> None:
        fleet.spend(instance, 25)  # five times the lease

    with Fleet(
        module, T0, (5.0, -5.0, 0.0), lease_seconds=5.0, body=long_job, interval_seconds=60
    ) as fleet:
        fleet.run_for(200)
        ticks = fleet.ticks_between(TICK, T0 + timedelta(seconds=190))
        _no_duplicates(
            fleet,
            ticks,
            "Each run takes 25 s with a 5 s lease: the holder's heartbeat() must renew its "
            "claim, or the lease ends mid-run and a late instance starts the same tick.",
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#lease-renewal",
    hint="Wrap each renew() in heartbeat with except redis.RedisError: log it and go on.",
    spec=("heartbeat-never-raises",),
)
def test_heartbeat_never_raises_when_redis_is_unreachable(target: Target) -> None:
    module = _load(target)
    errors: list[BaseException] = []
    with Fleet(module, T0, (0.0,), scheduler=False) as fleet:
        coordinator = fleet.instances[0].coordinator

        def job(instance: Instance, tick: datetime, token: int) -> None:
            fleet.server.connected = False  # Redis goes away while the job runs
            try:
                coordinator.heartbeat()
            except Exception as error:
                errors.append(error)
            finally:
                fleet.server.connected = True

        fleet.run_ticks(1, job)
    expect(
        not errors,
        f"heartbeat() raised {errors[0]!r} while Redis was unreachable; it runs on the "
        "renewer thread, which would die with it: log the error and keep going."
        if errors
        else "",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#claim-outlives-tick",
    hint="Keep the claim until fire_time + 2*MAX_CLOCK_SKEW_SECONDS + MISFIRE_GRACE_SECONDS: "
    "a slow instance may still run the tick that late, within its misfire grace.",
    spec=("claim-outlives-tick",),
)
def test_claim_outlives_a_late_run_within_the_misfire_grace(target: Target) -> None:
    module = _load(target)
    # a is 5 s fast and runs 12:00:10 at true 12:00:05; c is 5 s slow and paused around its
    # fire time, so it runs 12:00:10 8 s late (within the 10 s grace) at true 12:00:23.
    with Fleet(module, T0, (5.0, 0.0, -5.0), lease_seconds=1.0, body=_quick_job()) as fleet:
        fleet.pause("c", datetime(2026, 3, 2, 12, 0, 14, 500_000, tzinfo=UTC), 8.5)
        fleet.run_for(60)
        ticks = fleet.ticks_between(TICK, T0 + timedelta(seconds=50))
        _no_duplicates(
            fleet,
            ticks,
            "The slow instance ran 12:00:10 late but within its misfire grace: the claim must "
            "still be there (2 skews + grace after the fire time, on the holder's clock).",
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#crashed-holder",
    hint="Keep the claim in a finally: after the run, whether func returned or raised.",
    spec=("failed-run-keeps-claim",),
)
def test_a_tick_whose_job_raised_is_not_run_again(target: Target) -> None:
    module = _load(target)
    failing = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)

    def job(fleet: Fleet, instance: Instance, tick: datetime, token: int) -> None:
        if as_utc(tick) == failing:
            raise RuntimeError("the report service answered 500")

    with Fleet(module, T0, (3.0, 0.0, -3.0), body=job) as fleet:
        fleet.run_for(80)
        ticks = fleet.ticks_between(TICK, T0 + timedelta(seconds=75))
        _no_duplicates(
            fleet,
            ticks,
            "The job raised on 12:00:30; the slower instances must not run that tick again "
            "(a released claim turns one failure into a duplicate).",
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#redis-down",
    hint="logger.warning(...) for each skipped tick: an outage must be visible in the logs.",
    spec=("skips-reported",),
)
def test_each_skipped_tick_is_logged_as_a_warning(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    module = _load(target)
    caplog.set_level(logging.DEBUG)
    with _redis_down_fleet(module) as fleet:
        fleet.run_for(120)
        skips = sum(len(i.coordinator.skipped) for i in fleet.instances)
    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and not r.name.startswith("apscheduler")
    ]
    expect(
        skips and len(warnings) >= skips,
        f"{skips} ticks were skipped while Redis was down, but only {len(warnings)} "
        "WARNING (or higher) records were logged: log each skip as a warning.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#redis-down",
    hint="Write the skip with HSETNX: a tick another instance ran stays 'done'.",
    spec=("skips-recorded",),
)
def test_a_late_skip_never_overwrites_a_done_tick(target: Target) -> None:
    module = _load(target)
    with Fleet(module, T0, (0.0, 0.0), scheduler=False) as fleet:
        a, b = fleet.instances
        b_client = b.client
        assert b_client is not None
        for tick in (TICK, TICK + timedelta(seconds=10)):
            fleet.true_now = tick
            fleet.clock.set(tick)
            a.coordinator.run_tick(JOB, tick, lambda fire_time, token: None)
            if tick == TICK:
                b_client.alive = False  # b cannot reach Redis for this tick only
                b.coordinator.run_tick(JOB, tick, lambda fire_time, token: None)
                b_client.alive = True
            else:  # Redis is back for b: it writes its skip now
                b.coordinator.run_tick(JOB, tick, lambda fire_time, token: None)
        report = {
            t.astimezone(UTC): st for t, st in module.tick_report(fleet.client(), JOB).items()
        }
    expect_equal(
        report.get(TICK),
        "done",
        "tick_report()[12:00:10]: a ran it; b could not reach Redis and wrote its skip later",
        "A skip is written once Redis is back, but never over a tick another instance ran.",
    )


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#fencing",
    hint="Pass claim.fencing_token to func; the job writes through FencedStore.write(..., token).",
    spec=("run-tick-passes-fence", "fenced-store-rejects-older"),
)
def test_paused_holders_late_write_is_rejected(target: Target) -> None:
    module = _load(target)
    written: list[tuple[str, datetime, bool]] = []

    def job(fleet: Fleet, instance: Instance, tick: datetime, token: int) -> None:
        fleet.spend(instance, 2)
        assert instance.client is not None
        store = module.FencedStore(instance.client, "reports")
        ok = store.write("latest", tick.isoformat(), token)
        written.append((instance.name, tick, ok))
        fleet.record(instance, tick, token, "accepted" if ok else "rejected")

    with Fleet(module, T0, (1.0, 0.0), lease_seconds=3.0, body=job) as fleet:
        # a takes the tick at 12:00:10 (its clock is 1 s fast), then freezes for 40 s mid-job
        fleet.pause("a", TICK - timedelta(seconds=0.5), 40)
        fleet.run_for(80)
        reader = module.FencedStore(fleet.client(), "reports")
        latest = reader.read("latest")
        timeline = fleet.timeline(fleet.ticks_between(TICK, T0 + timedelta(seconds=70)))
    late = [w for w in written if w[0] == "a" and w[1] == TICK]
    expect(
        late, "instance a never finished its paused run; the simulation expected it to\n" + timeline
    )
    expect(
        late[0][2] is False,
        "instance a, paused past its lease, wrote its stale result after newer runs and the "
        "store accepted it: the job must pass its fencing token to the store, which rejects "
        f"tokens older than the last accepted one.\n{timeline}",
    )
    newest = max((w for w in written if w[2]), key=lambda w: w[1], default=None)
    expect(
        newest is not None and latest == newest[1].isoformat(),
        f"the store holds {latest!r}, expected the newest accepted tick {newest}\n{timeline}",
    )


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#clock-skew",
    hint="add_job: IntervalTrigger(seconds=..., start_date=anchor, timezone=UTC); the tick is "
    "fire_time_at(now, interval, anchor).",
    spec=("aligned-interval", "one-run-per-tick"),
    timeout=20,
)
def test_clock_skew_of_five_seconds_names_the_same_tick(target: Target) -> None:
    module = _load(target)

    @deterministic(max_examples=12)
    @given(
        offsets=st.lists(st.floats(-5, 5).map(lambda x: round(x, 3)), min_size=2, max_size=4),
        start_shift=st.floats(0, 9.9),
    )
    def check(offsets: list[float], start_shift: float) -> None:
        start = T0 + timedelta(seconds=start_shift)
        with Fleet(module, start, tuple(offsets)) as fleet:
            fleet.run_for(60)
            ticks = fleet.ticks_between(start + timedelta(seconds=6), start + timedelta(seconds=50))
            _no_duplicates(
                fleet,
                ticks,
                "Clocks disagree by up to ±5 s: every instance must name a tick by the "
                "trigger's fire time (aligned start_date), and the claim must still be there "
                "when the slowest clock gets to it.",
            )
            late = [r for r in fleet.runs if abs(r.started - r.tick) > timedelta(seconds=5.01)]
            expect(
                not late,
                f"run(s) started far from their tick: {late[:3]}: every instance's trigger must "
                "start on the shared anchor (start_date=anchor), so it fires at the tick itself\n"
                + fleet.timeline(ticks),
            )

    check()


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#clock-skew",
    hint="An instance that fires late (a pause) still computes its tick with fire_time_at.",
    spec=("fire-time-from-trigger", "one-run-per-tick"),
)
def test_late_instance_names_its_own_tick(target: Target) -> None:
    module = _load(target)
    with Fleet(module, T0, (0.0, -2.0), body=_quick_job()) as fleet:
        # b freezes just before 12:00:30 and resumes 6 s later: it runs that tick late
        fleet.pause("b", datetime(2026, 3, 2, 12, 0, 31, tzinfo=UTC), 6)
        fleet.pause("a", datetime(2026, 3, 2, 12, 0, 29, tzinfo=UTC), 15)
        fleet.run_for(100)
        ticks = fleet.ticks_between(TICK, T0 + timedelta(seconds=95))
        late = [
            r
            for r in fleet.runs
            if r.instance == "b" and r.tick == datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
        ]
        _no_duplicates(
            fleet, ticks, "A late run must claim the tick it belongs to, not the nearest one."
        )
        expect(
            late,
            "b ran 12:00:30 late (a was frozen) and should have claimed that tick\n"
            + fleet.timeline(ticks),
        )


# -- failures -------------------------------------------------------------------------------------

WINDOW = (datetime(2026, 3, 2, 12, 0, 25, tzinfo=UTC), datetime(2026, 3, 2, 12, 1, 5, tzinfo=UTC))
DOWN_TICKS = tuple(
    datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC) + timedelta(seconds=10 * k) for k in range(4)
)


def _redis_down_fleet(module: ModuleType) -> Fleet:
    fleet = Fleet(module, T0, (2.0, 0.0, -2.0), body=_quick_job())
    fleet.redis_down(*WINDOW)
    return fleet


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#redis-down",
    hint="Catch redis.RedisError around the claim: no claim, no run.",
    spec=("redis-down-no-run",),
)
def test_redis_down_means_no_unguarded_runs(target: Target) -> None:
    module = _load(target)
    with _redis_down_fleet(module) as fleet:
        fleet.run_for(120)
        ticks = fleet.ticks_between(TICK, T0 + timedelta(seconds=110))
        ran = sorted({r.tick for r in fleet.runs} & set(DOWN_TICKS))
        expect(
            not ran,
            f"Redis was down from {WINDOW[0]:%H:%M:%S} to {WINDOW[1]:%H:%M:%S}, yet tick(s) "
            f"{[f'{t:%H:%M:%S}' for t in ran]} ran: without a claim nothing may run.\n"
            + fleet.timeline(ticks, expected_gaps=DOWN_TICKS),
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#redis-down",
    hint="Append (job_id, fire_time) to coordinator.skipped and log a warning; once Redis is "
    "back, HSETNX the tick as skipped in the tick record.",
    spec=("skips-reported", "skips-recorded"),
)
def test_redis_down_skips_are_reported(target: Target) -> None:
    module = _load(target)
    with _redis_down_fleet(module) as fleet:
        fleet.run_for(120)
        for instance in fleet.instances:
            skipped = sorted(
                t.astimezone(UTC) for job, t in instance.coordinator.skipped if job == JOB
            )
            expect_equal(
                skipped,
                list(DOWN_TICKS),
                f"instance {instance.name}: coordinator.skipped (ticks of {JOB!r})",
                "Each instance reports every tick it could not claim because Redis was down.",
            )
        report = module.tick_report(fleet.client(), JOB)
        statuses = {t.astimezone(UTC): s for t, s in report.items()}
        expect_equal(
            [statuses.get(t) for t in DOWN_TICKS],
            ["skipped"] * len(DOWN_TICKS),
            "tick_report() of the ticks while Redis was down (written after it came back)",
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#redis-down",
    hint="Nothing to remember across the outage: the next tick simply claims again.",
    spec=("redis-recovery",),
)
def test_runs_resume_once_redis_is_back(target: Target) -> None:
    module = _load(target)
    with _redis_down_fleet(module) as fleet:
        fleet.run_for(120)
        ticks = fleet.ticks_between(TICK, T0 + timedelta(seconds=110))
        _no_duplicates(
            fleet, ticks, "After the outage every tick runs once again.", gaps_ok=DOWN_TICKS
        )
        report = module.tick_report(fleet.client(), JOB)
        done = sorted(t.astimezone(UTC) for t, s in report.items() if s == "done")
        after = [t for t in ticks if t > WINDOW[1]]
        expect(
            set(after) <= set(done),
            f"tick_report() must show the ticks after the outage as done: {after} vs {done}",
        )


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#crashed-holder",
    hint="A crash runs no clean-up: the claim stays until its lease ends, longer than the "
    "window in which the others reach that tick.",
    spec=("crashed-holder-abandoned", "abandoned-reported"),
)
def test_crashed_holder_tick_is_abandoned_not_rerun(target: Target) -> None:
    module = _load(target)

    def job(fleet: Fleet, instance: Instance, tick: datetime, token: int) -> None:
        fleet.spend(instance, 3)

    with Fleet(module, T0, (3.0, 0.0, -3.0), body=job) as fleet:
        fleet.kill("a", datetime(2026, 3, 2, 12, 0, 28, tzinfo=UTC))  # a runs 12:00:30 from :27
        fleet.run_for(100)
        ticks = fleet.ticks_between(TICK, T0 + timedelta(seconds=95))
        crashed = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
        _no_duplicates(
            fleet,
            ticks,
            "The holder of 12:00:30 crashed mid-run; that tick may not run again (its claim "
            "outlives the tick), and the survivors run every later tick.",
        )
        report = {t.astimezone(UTC): s for t, s in module.tick_report(fleet.client(), JOB).items()}
        fleet.run_for(60)  # past the lease
        later = {t.astimezone(UTC): s for t, s in module.tick_report(fleet.client(), JOB).items()}
    expect(
        report.get(crashed) in {"running", "abandoned"},
        f"tick_report()[12:00:30] right after the crash is {report.get(crashed)!r}, "
        "expected 'running' (its holder's lease still runs)",
    )
    expect_equal(
        later.get(crashed),
        "abandoned",
        "tick_report()[12:00:30] once the crashed holder's lease has ended",
        "A tick that started and never finished must be visible: alert on 'abandoned'.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#crashed-holder",
    hint="Every decision lives in Redis, none in process memory: a restarted instance "
    "finds the claims its predecessors left.",
    spec=("restart-safe",),
)
def test_restart_of_all_instances_runs_no_tick_twice(target: Target) -> None:
    module = _load(target)
    with Fleet(module, T0, (4.0, 0.0, -4.0), body=_quick_job()) as fleet:
        moment = datetime(2026, 3, 2, 12, 0, 31, tzinfo=UTC)  # a and b ran 12:00:30; c has not
        for name in "abc":
            fleet.kill(name, moment)
            fleet.restart(name, moment + timedelta(seconds=1))
        fleet.run_for(100)
        ticks = fleet.ticks_between(TICK, T0 + timedelta(seconds=95))
        _no_duplicates(
            fleet,
            ticks,
            "All instances restarted at 12:00:32; the slow one (clock -4 s) reaches 12:00:30 "
            "again after its restart and must find the claim.",
        )
