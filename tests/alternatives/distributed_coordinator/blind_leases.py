"""Correct: a class-based lease manager with register_script, token_urlsafe and one hash per tick."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

import redis
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

logger = logging.getLogger("cronkata.coordinator")

KEY_PREFIX = "cronkata"
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)  # the start_date every instance's trigger shares
LEASE_SECONDS = 30.0  # longer than the tick window below
MAX_CLOCK_SKEW_SECONDS = 5.0
MISFIRE_GRACE_SECONDS = 10
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

JobFunc = Callable[[datetime, int], object]

_TICK_WINDOW = timedelta(seconds=2 * MAX_CLOCK_SKEW_SECONDS + MISFIRE_GRACE_SECONDS)


def _ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, computed without float rounding."""
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _moment(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def _lease_ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class _Keys:
    """Every Redis key this module writes, in one place."""

    @staticmethod
    def claim(job_id: str, ms: int) -> str:
        return f"{KEY_PREFIX}:claim:{job_id}:{ms}"

    @staticmethod
    def fence(job_id: str) -> str:
        return f"{KEY_PREFIX}:fence:{job_id}"

    @staticmethod
    def tick(job_id: str, ms: int) -> str:
        return f"{KEY_PREFIX}:tick:{job_id}:{ms}"

    @staticmethod
    def tick_index(job_id: str) -> str:
        return f"{KEY_PREFIX}:tick-index:{job_id}"

    @staticmethod
    def store(name: str, resource: str) -> str:
        return f"{KEY_PREFIX}:fenced:{name}:{resource}"


class _Scripts:
    """Lua scripts registered once per client (redis-py caches them by SHA)."""

    EXTEND = """
    if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
    """
    DROP = """
    if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
    redis.call('DEL', KEYS[1])
    return 1
    """
    FENCED = """
    local accepted = tonumber(redis.call('HGET', KEYS[1], 'fencing_token') or '-inf')
    local offered = tonumber(ARGV[1])
    if accepted ~= nil and offered < accepted then return 0 end
    redis.call('HSET', KEYS[1], 'fencing_token', ARGV[1], 'value', ARGV[2])
    return 1
    """
    SKIP = """
    redis.call('SADD', KEYS[2], ARGV[1])
    return redis.call('HSETNX', KEYS[1], 'status', 'skipped')
    """

    def __init__(self, client: redis.Redis) -> None:
        self.extend = client.register_script(self.EXTEND)
        self.drop = client.register_script(self.DROP)
        self.fenced = client.register_script(self.FENCED)
        self.skip = client.register_script(self.SKIP)


_script_cache: dict[int, tuple[redis.Redis, _Scripts]] = {}
_script_lock = threading.Lock()


def _scripts(client: redis.Redis) -> _Scripts:
    with _script_lock:
        cached = _script_cache.get(id(client))
        if cached is None or cached[0] is not client:
            cached = (client, _Scripts(client))
            _script_cache[id(client)] = cached
        return cached[1]


def fire_time_at(now: datetime, interval_seconds: float, anchor: datetime = ANCHOR) -> datetime:
    """The tick an instance is running: the trigger's latest fire time at or before ``now``.

    The schedule fires at ``anchor + k * interval_seconds`` for every integer k; return that
    fire time (aware, UTC) for the largest k not after ``now``, however late ``now`` is
    within the interval. Never round ``now()`` (#fire-time-from-trigger).
    Raise ValueError when ``interval_seconds`` is not positive.
    """
    if interval_seconds <= 0:
        raise ValueError("interval_seconds must be > 0")
    interval = timedelta(seconds=interval_seconds)
    elapsed = now - anchor
    periods = elapsed // interval  # floor, also for instants before the anchor
    return (anchor + periods * interval).astimezone(UTC)


def claim_key(job_id: str, fire_time: datetime) -> str:
    """The Redis key of the claim on one tick.

    It depends on the job id and the fire *instant* only: the same instant written in any
    zone gives the same key, another job or another fire time (even 1 ms apart) another
    key (#claim-key-per-tick). Start it with KEY_PREFIX.
    """
    return _Keys.claim(job_id, _ms(fire_time))


@dataclass(frozen=True)
class Claim:
    """A claim on one tick, owned by whoever holds its random ``token``."""

    job_id: str
    fire_time: datetime
    key: str  # claim_key(job_id, fire_time)
    token: str
    fencing_token: int


class LeaseManager:
    """Acquire, extend and drop tick leases on one Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.scripts = _scripts(client)

    def acquire(self, job_id: str, fire_time: datetime, seconds: float, holder: str) -> Claim | None:
        key = claim_key(job_id, fire_time)
        token = secrets.token_urlsafe(24)
        won = self.client.set(key, token, px=_lease_ms(seconds), nx=True)
        if not won:
            return None
        fence = self.client.incr(_Keys.fence(job_id))
        ms = _ms(fire_time)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(_Keys.tick(job_id, ms), mapping={"status": "running", "holder": holder})
        pipe.sadd(_Keys.tick_index(job_id), ms)
        pipe.execute()
        return Claim(job_id=job_id, fire_time=fire_time, key=key, token=token, fencing_token=fence)

    def extend(self, claim: Claim, seconds: float) -> bool:
        return self.scripts.extend(keys=[claim.key], args=[claim.token, _lease_ms(seconds)]) == 1

    def drop(self, claim: Claim) -> bool:
        return self.scripts.drop(keys=[claim.key], args=[claim.token]) == 1

    def finish(self, claim: Claim) -> None:
        ms = _ms(claim.fire_time)
        self.client.hset(_Keys.tick(claim.job_id, ms), "status", "done")

    def record_skip(self, job_id: str, fire_time: datetime) -> None:
        ms = _ms(fire_time)
        self.scripts.skip(keys=[_Keys.tick(job_id, ms), _Keys.tick_index(job_id)], args=[ms])


def try_claim(
    client: redis.Redis,
    job_id: str,
    fire_time: datetime,
    lease_seconds: float = LEASE_SECONDS,
    instance: str = "",
) -> Claim | None:
    """Claim one tick for ``lease_seconds``, or return None when it is taken.

    * One atomic command, ``SET claim_key token NX PX lease``; the key's value is the token
      and its TTL the lease (#claim-set-nx-px); while the key exists, every further
      try_claim of that tick returns None (#claim-returns-none-when-taken).
    * The token is random, unguessable (16+ characters) and new for every claim (#random-token).
    * A successful claim gets a fencing token from a per-job ``INCR``: larger than every
      earlier claim's of that job (#fencing-token-increases).
    * Record the tick as "running" for `tick_report` (``instance`` names the holder).
    """
    return LeaseManager(client).acquire(job_id, fire_time, lease_seconds, instance)


def renew(client: redis.Redis, claim: Claim, lease_seconds: float) -> bool:
    """Set the claim's TTL to ``lease_seconds`` if it is still ours; True if it was.

    Compare-and-extend in one Lua script: a claim that now holds another token is left
    untouched and renew returns False (#renew-own-claim).
    """
    return LeaseManager(client).extend(claim, lease_seconds)


def release(client: redis.Redis, claim: Claim) -> bool:
    """Delete the claim if it is still ours; True if deleted, False otherwise.

    Compare-and-delete in one Lua script: never delete a claim that someone else took
    after ours expired (#release-own-claim).
    """
    return LeaseManager(client).drop(claim)


class FencedStore:
    """A Redis-backed store whose writes carry fencing tokens.

    ``write(resource, value, fencing_token)`` stores the value and returns True unless a
    write with a higher fencing token was accepted for that resource before; then it
    changes nothing and returns False (an equal token is accepted). ``read(resource)``
    returns the last accepted value, or None (#fenced-store-rejects-older). Two
    FencedStore objects with the same name share their data. Check and write atomically.
    """

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.name = name

    def write(self, resource: str, value: str, fencing_token: int) -> bool:
        """Store ``value`` unless a higher fencing token was accepted already."""
        result = _scripts(self.client).fenced(
            keys=[_Keys.store(self.name, resource)], args=[int(fencing_token), value]
        )
        return result == 1

    def read(self, resource: str) -> str | None:
        """The last accepted value of ``resource``, or None."""
        return self.client.hget(_Keys.store(self.name, resource), "value")


def tick_report(client: redis.Redis, job_id: str) -> dict[datetime, str]:
    """Every recorded tick of a job (aware fire time) with its status.

    "done" (it ran to the end), "running" (claimed, not finished, claim still held),
    "abandoned" (claimed, never finished, and its claim is gone: the holder crashed; alert
    on it) (#abandoned-reported), "skipped" (no instance ran it because Redis was
    unreachable; written once Redis is back, never over a "done") (#skips-recorded).
    """
    stamps = sorted(int(ms) for ms in client.smembers(_Keys.tick_index(job_id)))
    report: dict[datetime, str] = {}
    for ms in stamps:
        status = client.hget(_Keys.tick(job_id, ms), "status")
        if status is None:
            continue
        if status == "running" and client.exists(_Keys.claim(job_id, ms)) == 0:
            status = "abandoned"
        report[_moment(ms)] = status
    return report


class _Renewer(threading.Thread):
    def __init__(self, coordinator: Coordinator) -> None:
        super().__init__(name=f"lease-renewer[{coordinator.instance}]", daemon=True)
        self.coordinator = coordinator
        self.stopped = threading.Event()

    def run(self) -> None:
        period = self.coordinator.lease_seconds / 3
        while not self.stopped.wait(period):
            self.coordinator.heartbeat()


class _ScheduledTick:
    """The callable APScheduler runs: names its tick from the trigger, then runs it."""

    def __init__(self, coordinator: Coordinator, job_id: str, func: JobFunc,
                 interval_seconds: float, anchor: datetime) -> None:
        self.coordinator = coordinator
        self.job_id = job_id
        self.func = func
        self.interval_seconds = interval_seconds
        self.anchor = anchor

    def __call__(self) -> bool:
        tick = fire_time_at(datetime.now(tz=UTC), self.interval_seconds, self.anchor)
        return self.coordinator.run_tick(self.job_id, tick, self.func)


class Coordinator:
    """One instance's side of the protocol: claim, run, renew, keep, report.

    ``skipped`` lists ``(job_id, fire_time)`` of each tick this instance skipped because
    Redis was unreachable, each logged as a warning (#skips-reported).
    """

    def __init__(
        self,
        client: redis.Redis,
        instance: str,
        *,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.client = client
        self.instance = instance
        self.lease_seconds = lease_seconds
        self.skipped: list[tuple[str, datetime]] = []
        self._leases = LeaseManager(client)
        self._active: set[Claim] = set()
        self._active_lock = threading.RLock()
        self._pending_skips: list[tuple[str, datetime]] = []
        self._renewer: _Renewer | None = None

    def _record_pending_skips(self) -> None:
        while self._pending_skips:
            job_id, fire_time = self._pending_skips[0]
            self._leases.record_skip(job_id, fire_time)
            del self._pending_skips[0]

    def run_tick(self, job_id: str, fire_time: datetime, func: JobFunc) -> bool:
        """Run ``func(fire_time, fencing_token)`` if this instance wins the tick; True if it ran."""
        try:
            self._record_pending_skips()
            claim = self._leases.acquire(job_id, fire_time, self.lease_seconds, self.instance)
        except redis.RedisError as error:
            self.skipped.append((job_id, fire_time))
            self._pending_skips.append((job_id, fire_time))
            logger.warning(
                "[%s] skipped tick %s of %r: Redis unreachable (%s)",
                self.instance, fire_time, job_id, error,
            )
            return False
        if claim is None:
            logger.debug("[%s] tick %s of %r taken by another instance", self.instance, fire_time, job_id)
            return False

        with self._active_lock:
            self._active.add(claim)
        finished = False
        try:
            func(fire_time, claim.fencing_token)
            finished = True
        finally:
            # stop renewing either way; a failed/crashed run keeps its lease until it expires
            with self._active_lock:
                self._active.discard(claim)
        if finished:
            self._keep_past_tick(claim)
        return True

    def _keep_past_tick(self, claim: Claim) -> None:
        left = (claim.fire_time + _TICK_WINDOW - datetime.now(tz=UTC)).total_seconds()
        try:
            still_ours = self._leases.extend(claim, left) if left > 0 else self._leases.drop(claim)
            if not still_ours:
                logger.error("[%s] claim %s was lost during the run", self.instance, claim.key)
            self._leases.finish(claim)
        except redis.RedisError as error:
            logger.error("[%s] could not finish %s: %s", self.instance, claim.key, error)

    def heartbeat(self) -> None:
        """Renew (with `renew`, for ``lease_seconds``) the claim of every tick this instance
        is running right now, so a job longer than the lease is never started twice
        (#heartbeat-renews). Log a lost claim; never raise on a Redis error.
        """
        with self._active_lock:
            claims = list(self._active)
        for claim in claims:
            try:
                ok = renew(self.client, claim, self.lease_seconds)
            except redis.RedisError as error:
                logger.warning("[%s] renewal of %s failed: %s", self.instance, claim.key, error)
                continue
            if not ok:
                logger.error("[%s] lost claim %s: another instance may run it", self.instance, claim.key)
        try:
            self._record_pending_skips()
        except redis.RedisError:
            pass

    def start_renewer(self) -> None:
        """Call `heartbeat` every ``lease_seconds / 3`` from a daemon thread."""
        if self._renewer is not None and self._renewer.is_alive():
            return
        self._renewer = _Renewer(self)
        self._renewer.start()

    def stop_renewer(self) -> None:
        """Stop the renewal thread."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.stopped.set()
            renewer.join()

    def add_job(
        self,
        scheduler: BaseScheduler,
        func: JobFunc,
        *,
        job_id: str,
        interval_seconds: float,
        anchor: datetime = ANCHOR,
    ) -> Job:
        """Schedule ``func`` on ``scheduler`` every ``interval_seconds``, once per tick.

        Use ``IntervalTrigger(seconds=interval_seconds, start_date=anchor, timezone=UTC)``
        so every instance's trigger names the same fire times (#aligned-interval), with
        ``misfire_grace_time=MISFIRE_GRACE_SECONDS``, ``coalesce=True``, ``max_instances=1``,
        id ``job_id``, ``replace_existing=True``. The scheduled callable computes its tick
        with `fire_time_at` and calls `run_tick`. Return the Job.
        """
        trigger = IntervalTrigger(seconds=interval_seconds, start_date=anchor, timezone=UTC)
        options = {
            "id": job_id,
            "name": job_id,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            "coalesce": True,
            "max_instances": 1,
            "replace_existing": True,
        }
        runner = _ScheduledTick(self, job_id, func, interval_seconds, anchor)
        return scheduler.add_job(runner, trigger, **options)


def main(argv: list[str] | None = None) -> int:
    """Run one instance of a demo schedule (every 5 s) until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description="one instance of the coordinated schedule")
    parser.add_argument("--instance", default=f"{socket.gethostname()}-{os.getpid()}")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    client = redis.Redis.from_url(
        os.environ.get("REDIS_URL", DEFAULT_REDIS_URL), decode_responses=True
    )
    coordinator = Coordinator(client, options.instance)
    scheduler = BackgroundScheduler(timezone=UTC)

    def demo(fire_time: datetime, fencing_token: int) -> None:
        ok = FencedStore(client, "demo").write("last-tick", fire_time.isoformat(), fencing_token)
        logger.info(
            "%s ran %s (fence %d, accepted: %s)", options.instance, fire_time, fencing_token, ok
        )

    coordinator.add_job(scheduler, demo, job_id="demo", interval_seconds=5)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    coordinator.start_renewer()
    scheduler.start()
    stop.wait()
    scheduler.shutdown(wait=True)
    coordinator.stop_renewer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
