"""Correct: one Lua script per protocol step via client.eval (claim+fence+record atomically), uuid4 tokens."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
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

# KEYS[1] claim key, KEYS[2] fence counter, KEYS[3] tick statuses, KEYS[4] tick holders
# ARGV[1] token, ARGV[2] lease ms, ARGV[3] tick field, ARGV[4] holder
CLAIM = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
local fence = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], ARGV[3], 'running')
redis.call('HSET', KEYS[4], ARGV[3], ARGV[4])
return fence
"""

# ARGV[1] token, ARGV[2] ttl ms
EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# keep the claim (if still ours) for ARGV[2] ms, or drop it when ARGV[2] <= 0; mark done
FINISH = """
local ours = redis.call('GET', KEYS[1]) == ARGV[1]
if ours then
  if tonumber(ARGV[2]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  else
    redis.call('DEL', KEYS[1])
  end
end
redis.call('HSET', KEYS[2], ARGV[3], 'done')
if ours then return 1 end
return 0
"""

# KEYS[1] values hash, KEYS[2] fences hash; ARGV resource, fence, value
FENCED_WRITE = """
local seen = redis.call('HGET', KEYS[2], ARGV[1])
if seen and tonumber(seen) > tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


def _stamp(moment: datetime) -> int:
    """Epoch milliseconds (floor) of an aware instant."""
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def _ttl_ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _statuses(job_id: str) -> str:
    return f"{KEY_PREFIX}:ticks:{job_id}"


def _holders(job_id: str) -> str:
    return f"{KEY_PREFIX}:tick-holders:{job_id}"


def fire_time_at(now: datetime, interval_seconds: float, anchor: datetime = ANCHOR) -> datetime:
    """The tick an instance is running: the trigger's latest fire time at or before ``now``.

    The schedule fires at ``anchor + k * interval_seconds`` for every integer k; return that
    fire time (aware, UTC) for the largest k not after ``now``, however late ``now`` is
    within the interval. Never round ``now()`` (#fire-time-from-trigger).
    Raise ValueError when ``interval_seconds`` is not positive.
    """
    if not (interval_seconds > 0):
        raise ValueError("the interval must be a positive number of seconds")
    step_us = round(interval_seconds * 1_000_000)
    if step_us <= 0:
        raise ValueError("the interval is shorter than a microsecond")
    elapsed_us = (now - anchor) // timedelta(microseconds=1)
    k = elapsed_us // step_us
    return (anchor + timedelta(microseconds=k * step_us)).astimezone(timezone.utc)


def claim_key(job_id: str, fire_time: datetime) -> str:
    """The Redis key of the claim on one tick.

    It depends on the job id and the fire *instant* only: the same instant written in any
    zone gives the same key, another job or another fire time (even 1 ms apart) another
    key (#claim-key-per-tick). Start it with KEY_PREFIX.
    """
    return ":".join((KEY_PREFIX, "claim", job_id, str(_stamp(fire_time))))


@dataclass(frozen=True)
class Claim:
    """A claim on one tick, owned by whoever holds its random ``token``."""

    job_id: str
    fire_time: datetime
    key: str  # claim_key(job_id, fire_time)
    token: str
    fencing_token: int


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
    key = claim_key(job_id, fire_time)
    token = uuid.uuid4().hex
    fence = client.eval(
        CLAIM, 4, key, f"{KEY_PREFIX}:fence:{job_id}", _statuses(job_id), _holders(job_id),
        token, _ttl_ms(lease_seconds), _stamp(fire_time), instance,
    )
    if fence is None:
        return None
    return Claim(job_id=job_id, fire_time=fire_time, key=key, token=token, fencing_token=int(fence))


def renew(client: redis.Redis, claim: Claim, lease_seconds: float) -> bool:
    """Set the claim's TTL to ``lease_seconds`` if it is still ours; True if it was.

    Compare-and-extend in one Lua script: a claim that now holds another token is left
    untouched and renew returns False (#renew-own-claim).
    """
    return client.eval(EXTEND, 1, claim.key, claim.token, _ttl_ms(lease_seconds)) == 1


def release(client: redis.Redis, claim: Claim) -> bool:
    """Delete the claim if it is still ours; True if deleted, False otherwise.

    Compare-and-delete in one Lua script: never delete a claim that someone else took
    after ours expired (#release-own-claim).
    """
    return client.eval(DELETE, 1, claim.key, claim.token) == 1


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

    @property
    def _values(self) -> str:
        return f"{KEY_PREFIX}:fenced-store:{self.name}:values"

    @property
    def _fences(self) -> str:
        return f"{KEY_PREFIX}:fenced-store:{self.name}:fences"

    def write(self, resource: str, value: str, fencing_token: int) -> bool:
        """Store ``value`` unless a higher fencing token was accepted already."""
        ok = self.client.eval(
            FENCED_WRITE, 2, self._values, self._fences, resource, int(fencing_token), value
        )
        return ok == 1

    def read(self, resource: str) -> str | None:
        """The last accepted value of ``resource``, or None."""
        return self.client.hget(self._values, resource)


def tick_report(client: redis.Redis, job_id: str) -> dict[datetime, str]:
    """Every recorded tick of a job (aware fire time) with its status.

    "done" (it ran to the end), "running" (claimed, not finished, claim still held),
    "abandoned" (claimed, never finished, and its claim is gone: the holder crashed; alert
    on it) (#abandoned-reported), "skipped" (no instance ran it because Redis was
    unreachable; written once Redis is back, never over a "done") (#skips-recorded).
    """
    raw = client.hgetall(_statuses(job_id))
    running = [int(f) for f, s in raw.items() if s == "running"]
    alive: dict[int, bool] = {}
    if running:
        pipe = client.pipeline(transaction=False)
        for ms in running:
            pipe.exists(f"{KEY_PREFIX}:claim:{job_id}:{ms}")
        alive = {ms: bool(n) for ms, n in zip(running, pipe.execute())}
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return {
        epoch + timedelta(milliseconds=int(f)): ("abandoned" if s == "running" and not alive[int(f)] else s)
        for f, s in sorted(raw.items(), key=lambda item: int(item[0]))
    }


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
        self._owed: list[tuple[str, datetime]] = []  # skips not yet written to Redis
        self._in_flight: dict[tuple[str, int], Claim] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None

    def _settle_owed_skips(self) -> None:
        with self._guard:
            owed = list(self._owed)
        for job_id, fire_time in owed:
            self.client.hsetnx(_statuses(job_id), _stamp(fire_time), "skipped")
            with self._guard:
                self._owed.remove((job_id, fire_time))

    def run_tick(self, job_id: str, fire_time: datetime, func: JobFunc) -> bool:
        """Run ``func(fire_time, fencing_token)`` if this instance wins the tick; True if it ran.

        * Exactly one of all instances calling run_tick for a tick runs it (#one-run-per-tick),
          passing the claim's fencing token (#run-tick-passes-fence).
        * After the run the claim is kept, not deleted, until the tick can no longer come due
          on any instance: ``fire_time + 2 * MAX_CLOCK_SKEW_SECONDS + MISFIRE_GRACE_SECONDS``
          on this clock (#claim-outlives-tick); the tick is recorded as "done".
        * Redis unreachable (``redis.RedisError``): do not run ``func``; log, add the tick to
          ``skipped`` and return False (#redis-down-no-run). Nothing else changes: the next
          tick after Redis returns runs normally (#redis-recovery).
        * No state that decides who runs lives in this object: a restarted instance (a new
          Coordinator) finds the claims in Redis (#restart-safe).
        * An instance that crashes mid-run never releases; with the default lease its
          tick is not run again (#crashed-holder-abandoned).
        """
        try:
            self._settle_owed_skips()
            claim = try_claim(self.client, job_id, fire_time, self.lease_seconds, self.instance)
        except redis.RedisError as problem:
            logger.warning("redis down: %s does not run %s/%s (%s)",
                           self.instance, job_id, fire_time.isoformat(), problem)
            with self._guard:
                self.skipped.append((job_id, fire_time))
                self._owed.append((job_id, fire_time))
            return False
        if claim is None:
            return False

        slot = (job_id, _stamp(fire_time))
        with self._guard:
            self._in_flight[slot] = claim
        try:
            func(fire_time, claim.fencing_token)
        except Exception:
            # The run did not finish: stop renewing, keep the lease, leave it "running"
            # so tick_report shows it as abandoned once the lease is gone.
            logger.exception("%s: %s/%s failed", self.instance, job_id, fire_time.isoformat())
            return True
        finally:
            with self._guard:
                self._in_flight.pop(slot, None)

        keep_for = fire_time + timedelta(
            seconds=2 * MAX_CLOCK_SKEW_SECONDS + MISFIRE_GRACE_SECONDS
        ) - datetime.now(timezone.utc)
        keep_ms = int(keep_for / timedelta(milliseconds=1))
        try:
            ours = self.client.eval(
                FINISH, 2, claim.key, _statuses(job_id), claim.token, keep_ms, _stamp(fire_time)
            )
            if ours != 1:
                logger.error("%s: claim %s expired during the run", self.instance, claim.key)
        except redis.RedisError as problem:
            logger.error("%s: finished %s but could not record it: %s", self.instance, claim.key, problem)
        return True

    def heartbeat(self) -> None:
        """Renew (with `renew`, for ``lease_seconds``) the claim of every tick this instance
        is running right now, so a job longer than the lease is never started twice
        (#heartbeat-renews). Log a lost claim; never raise on a Redis error.
        """
        with self._guard:
            claims = list(self._in_flight.values())
        for claim in claims:
            try:
                if not renew(self.client, claim, self.lease_seconds):
                    logger.error("%s lost its claim on %s", self.instance, claim.key)
            except redis.RedisError as problem:
                logger.warning("%s could not renew %s: %s", self.instance, claim.key, problem)
        try:
            self._settle_owed_skips()
        except redis.RedisError:
            pass

    def start_renewer(self) -> None:
        """Call `heartbeat` every ``lease_seconds / 3`` from a daemon thread."""
        if self._worker is not None:
            return
        self._wake.clear()

        def loop() -> None:
            while not self._wake.wait(timeout=self.lease_seconds / 3):
                self.heartbeat()

        self._worker = threading.Thread(target=loop, daemon=True)
        self._worker.start()

    def stop_renewer(self) -> None:
        """Stop the renewal thread."""
        self._wake.set()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.join(timeout=10)

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

        def tick() -> None:
            self.run_tick(job_id, fire_time_at(datetime.now(timezone.utc), interval_seconds, anchor), func)

        job = scheduler.add_job(
            func=tick,
            trigger=IntervalTrigger(seconds=interval_seconds, start_date=anchor, timezone=UTC),
            id=job_id,
            name=f"{job_id} (coordinated)",
            replace_existing=True,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            coalesce=True,
            max_instances=1,
        )
        return job


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
