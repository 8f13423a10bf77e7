"""A blind red team's correct coordinator: the base its bugs (grader/mutants/.../rt_*.toml) edit."""

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

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)

RENEW_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

FENCED_WRITE_LUA = """
local last = redis.call('hget', KEYS[1], 'fence')
if last and tonumber(ARGV[1]) < tonumber(last) then
  return 0
end
redis.call('hset', KEYS[1], 'fence', ARGV[1], 'value', ARGV[2])
return 1
"""


def _epoch_ms(moment: datetime) -> int:
    return (moment - EPOCH) // ONE_MS


def _from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _fence_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:fence:{job_id}"


def _ticks_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:ticks:{job_id}"


def _holders_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:holders:{job_id}"


def fire_time_at(now: datetime, interval_seconds: float, anchor: datetime = ANCHOR) -> datetime:
    """The tick an instance is running: the trigger's latest fire time at or before ``now``."""
    if not interval_seconds > 0:
        raise ValueError(f"interval_seconds must be positive, got {interval_seconds!r}")
    step = timedelta(seconds=interval_seconds)
    return (anchor + ((now - anchor) // step) * step).astimezone(UTC)


def claim_key(job_id: str, fire_time: datetime) -> str:
    """The Redis key of the claim on one tick."""
    return f"{KEY_PREFIX}:claim:{job_id}:{_epoch_ms(fire_time)}"


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
    """Claim one tick for ``lease_seconds``, or return None when it is taken."""
    key = claim_key(job_id, fire_time)
    token = secrets.token_hex(16)
    if not client.set(key, token, nx=True, px=max(1, int(lease_seconds * 1000))):
        return None
    fencing_token = int(client.incr(_fence_key(job_id)))
    field = str(_epoch_ms(fire_time))
    client.hset(_ticks_key(job_id), field, "running")
    client.hset(_holders_key(job_id), field, instance)
    return Claim(job_id, fire_time, key, token, fencing_token)


def renew(client: redis.Redis, claim: Claim, lease_seconds: float) -> bool:
    """Set the claim's TTL to ``lease_seconds`` if it is still ours; True if it was."""
    ms = max(1, int(lease_seconds * 1000))
    return bool(client.eval(RENEW_LUA, 1, claim.key, claim.token, ms))


def release(client: redis.Redis, claim: Claim) -> bool:
    """Delete the claim if it is still ours; True if deleted, False otherwise."""
    return bool(client.eval(RELEASE_LUA, 1, claim.key, claim.token))


class FencedStore:
    """A Redis-backed store whose writes carry fencing tokens."""

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.name = name

    def _key(self, resource: str) -> str:
        return f"{KEY_PREFIX}:store:{self.name}:{resource}"

    def write(self, resource: str, value: str, fencing_token: int) -> bool:
        """Store ``value`` unless a higher fencing token was accepted already."""
        return bool(
            self.client.eval(FENCED_WRITE_LUA, 1, self._key(resource), int(fencing_token), value)
        )

    def read(self, resource: str) -> str | None:
        """The last accepted value of ``resource``, or None."""
        return self.client.hget(self._key(resource), "value")


def tick_report(client: redis.Redis, job_id: str) -> dict[datetime, str]:
    """Every recorded tick of a job (aware fire time) with its status."""
    report: dict[datetime, str] = {}
    for field, status in client.hgetall(_ticks_key(job_id)).items():
        fire_time = _from_ms(int(field))
        if status == "running" and not client.exists(claim_key(job_id, fire_time)):
            status = "abandoned"
        report[fire_time] = status
    return report


class Coordinator:
    """One instance's side of the protocol: claim, run, renew, keep, report."""

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
        self._unrecorded: list[tuple[str, datetime]] = []
        self._running: dict[str, Claim] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _flush_skips(self) -> None:
        while self._unrecorded:
            job_id, fire_time = self._unrecorded[0]
            self.client.hsetnx(_ticks_key(job_id), str(_epoch_ms(fire_time)), "skipped")
            self._unrecorded.pop(0)

    def run_tick(self, job_id: str, fire_time: datetime, func: JobFunc) -> bool:
        """Run ``func(fire_time, fencing_token)`` if this instance wins the tick; True if it ran."""
        try:
            self._flush_skips()
            claim = try_claim(self.client, job_id, fire_time, self.lease_seconds, self.instance)
        except redis.RedisError as exc:
            logger.warning("%s: Redis unreachable, skipping %s at %s: %s",
                           self.instance, job_id, fire_time.isoformat(), exc)
            self.skipped.append((job_id, fire_time))
            self._unrecorded.append((job_id, fire_time))
            return False
        if claim is None:
            return False
        with self._lock:
            self._running[claim.key] = claim
        try:
            func(fire_time, claim.fencing_token)
        except BaseException:
            with self._lock:
                self._running.pop(claim.key, None)
            raise
        with self._lock:
            self._running.pop(claim.key, None)
        keep_until = fire_time + timedelta(seconds=2 * MAX_CLOCK_SKEW_SECONDS + MISFIRE_GRACE_SECONDS)
        remaining = (keep_until - datetime.now(UTC)).total_seconds()
        try:
            if remaining > 0:
                if not renew(self.client, claim, remaining):
                    logger.error("%s: lost claim %s before the run ended", self.instance, claim.key)
            else:
                release(self.client, claim)
            self.client.hset(_ticks_key(job_id), str(_epoch_ms(fire_time)), "done")
        except redis.RedisError as exc:
            logger.error("%s: could not record %s as done: %s", self.instance, claim.key, exc)
        return True

    def heartbeat(self) -> None:
        """Renew the claim of every tick this instance is running right now."""
        with self._lock:
            claims = list(self._running.values())
        for claim in claims:
            try:
                if not renew(self.client, claim, self.lease_seconds):
                    logger.error("%s: lost claim %s", self.instance, claim.key)
            except redis.RedisError as exc:
                logger.warning("%s: could not renew %s: %s", self.instance, claim.key, exc)
        try:
            self._flush_skips()
        except redis.RedisError:
            pass

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            self.heartbeat()

    def start_renewer(self) -> None:
        """Call `heartbeat` every ``lease_seconds / 3`` from a daemon thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"renewer-{self.instance}", daemon=True
        )
        self._thread.start()

    def stop_renewer(self) -> None:
        """Stop the renewal thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def add_job(
        self,
        scheduler: BaseScheduler,
        func: JobFunc,
        *,
        job_id: str,
        interval_seconds: float,
        anchor: datetime = ANCHOR,
    ) -> Job:
        """Schedule ``func`` on ``scheduler`` every ``interval_seconds``, once per tick."""

        def scheduled() -> None:
            fire_time = fire_time_at(datetime.now(UTC), interval_seconds, anchor)
            self.run_tick(job_id, fire_time, func)

        return scheduler.add_job(
            scheduled,
            IntervalTrigger(seconds=interval_seconds, start_date=anchor, timezone=UTC),
            id=job_id,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )


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
