"""claim_key names the tick by its wall-clock text, so one instant in two zones gets two keys.

A learner-style file written from the stub; one promise broken on purpose.
"""

from __future__ import annotations

import argparse
import json
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
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
LEASE_SECONDS = 30.0
MAX_CLOCK_SKEW_SECONDS = 5.0
MISFIRE_GRACE_SECONDS = 10
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

JobFunc = Callable[[datetime, int], object]

COMPARE_AND_DELETE = """
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("DEL", KEYS[1])
return 1
"""
COMPARE_AND_PEXPIRE = """
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return 1
"""
FENCED_SET = """
local seen = tonumber(redis.call("HGET", KEYS[1], "t") or "-9007199254740992")
if tonumber(ARGV[1]) < seen then return 0 end
redis.call("HSET", KEYS[1], "t", ARGV[1], "v", ARGV[2])
return 1
"""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_ms(moment: datetime) -> int:
    return int((moment - EPOCH) / timedelta(milliseconds=1))


def fire_time_at(now: datetime, interval_seconds: float, anchor: datetime = ANCHOR) -> datetime:
    """The trigger's latest fire time at or before ``now``."""
    if not interval_seconds > 0:
        raise ValueError("interval_seconds must be > 0")
    step_us = int(round(interval_seconds * 1_000_000))
    elapsed_us = (now - anchor) // timedelta(microseconds=1)
    return (anchor + timedelta(microseconds=(elapsed_us // step_us) * step_us)).astimezone(UTC)


def claim_key(job_id: str, fire_time: datetime) -> str:
    """``cronkata:tick-claim:<ms>:<job>``."""
    return f"{KEY_PREFIX}:tick-claim:{fire_time:%Y%m%d%H%M%S%f}:{job_id}"


def _record_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:record:{job_id}"


@dataclass(frozen=True)
class Claim:
    """A claim on one tick."""

    job_id: str
    fire_time: datetime
    key: str
    token: str
    fencing_token: int


def try_claim(
    client: redis.Redis,
    job_id: str,
    fire_time: datetime,
    lease_seconds: float = LEASE_SECONDS,
    instance: str = "",
) -> Claim | None:
    """SET NX PX, then INCR the job's fence and write the record."""
    key = claim_key(job_id, fire_time)
    token = secrets.token_urlsafe(24)
    if not client.set(key, token, nx=True, px=max(1, int(lease_seconds * 1000))):
        return None
    fencing = client.incr(f"{KEY_PREFIX}:fencing:{job_id}")
    client.hset(
        _record_key(job_id),
        str(_epoch_ms(fire_time)),
        json.dumps({"state": "running", "by": instance, "fence": fencing}),
    )
    return Claim(job_id, fire_time, key, token, int(fencing))


def renew(client: redis.Redis, claim: Claim, lease_seconds: float) -> bool:
    """Compare-and-extend."""
    script = client.register_script(COMPARE_AND_PEXPIRE)
    return script(keys=[claim.key], args=[claim.token, max(1, int(lease_seconds * 1000))]) == 1


def release(client: redis.Redis, claim: Claim) -> bool:
    """Compare-and-delete."""
    script = client.register_script(COMPARE_AND_DELETE)
    return script(keys=[claim.key], args=[claim.token]) == 1


class FencedStore:
    """Writes carry fencing tokens; a lower one is refused."""

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.name = name
        self._set = client.register_script(FENCED_SET)

    def write(self, resource: str, value: str, fencing_token: int) -> bool:
        """Store unless a higher token was accepted."""
        done = self._set(keys=[f"{KEY_PREFIX}:fenced:{self.name}:{resource}"], args=[fencing_token, value])
        return done == 1

    def read(self, resource: str) -> str | None:
        """Last accepted value."""
        got = self.client.hget(f"{KEY_PREFIX}:fenced:{self.name}:{resource}", "v")
        return None if got is None else str(got)


def tick_report(client: redis.Redis, job_id: str) -> dict[datetime, str]:
    """Status per tick."""
    out: dict[datetime, str] = {}
    for field, raw in client.hgetall(_record_key(job_id)).items():
        when = EPOCH + timedelta(milliseconds=int(field))
        state = json.loads(raw)["state"]
        if state == "running" and client.get(claim_key(job_id, when)) is None:
            state = "abandoned"
        out[when] = state
    return out


class Coordinator:
    """Claims, runs, renews, keeps, reports."""

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
        self._to_report: list[tuple[str, datetime]] = []
        self._active: list[Claim] = []
        self._timer: threading.Timer | None = None
        self._stopped = True

    def _flush(self) -> None:
        for job_id, when in list(self._to_report):
            self.client.hsetnx(
                _record_key(job_id),
                str(_epoch_ms(when)),
                json.dumps({"state": "skipped", "by": self.instance}),
            )
            self._to_report.remove((job_id, when))

    def run_tick(self, job_id: str, fire_time: datetime, func: JobFunc) -> bool:
        """Run func once per tick across instances."""
        try:
            self._flush()
            claim = try_claim(self.client, job_id, fire_time, self.lease_seconds, self.instance)
        except redis.RedisError:
            logger.warning("[%s] no Redis: tick %s of %s skipped", self.instance, fire_time, job_id)
            self.skipped.append((job_id, fire_time))
            self._to_report.append((job_id, fire_time))
            return False
        if claim is None:
            return False
        self._active.append(claim)
        try:
            func(fire_time, claim.fencing_token)
        finally:
            self._active.remove(claim)
            horizon = fire_time + timedelta(
                seconds=2 * MAX_CLOCK_SKEW_SECONDS + MISFIRE_GRACE_SECONDS
            )
            left = (horizon - datetime.now(UTC)).total_seconds()
            try:
                self.client.hset(
                    _record_key(job_id),
                    str(_epoch_ms(fire_time)),
                    json.dumps({"state": "done", "by": self.instance, "fence": claim.fencing_token}),
                )
                if left > 0:
                    renew(self.client, claim, left)
                else:
                    release(self.client, claim)
            except redis.RedisError:
                logger.error("[%s] could not close tick %s", self.instance, fire_time)
        return True

    def heartbeat(self) -> None:
        """Renew running claims."""
        for claim in list(self._active):
            try:
                if not renew(self.client, claim, self.lease_seconds):
                    logger.error("[%s] claim %s lost", self.instance, claim.key)
            except redis.RedisError:
                logger.warning("[%s] renewal failed", self.instance)

    def _tick_timer(self) -> None:
        if self._stopped:
            return
        self.heartbeat()
        self._timer = threading.Timer(self.lease_seconds / 3, self._tick_timer)
        self._timer.daemon = True
        self._timer.start()

    def start_renewer(self) -> None:
        """Renew from a Timer chain."""
        self._stopped = False
        self._timer = threading.Timer(self.lease_seconds / 3, self._tick_timer)
        self._timer.daemon = True
        self._timer.start()

    def stop_renewer(self) -> None:
        """Stop renewing."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()

    def add_job(
        self,
        scheduler: BaseScheduler,
        func: JobFunc,
        *,
        job_id: str,
        interval_seconds: float,
        anchor: datetime = ANCHOR,
    ) -> Job:
        """Aligned interval job calling run_tick."""
        return scheduler.add_job(
            lambda: self.run_tick(
                job_id, fire_time_at(datetime.now(UTC), interval_seconds, anchor), func
            ),
            trigger=IntervalTrigger(seconds=interval_seconds, start_date=anchor, timezone=UTC),
            id=job_id,
            replace_existing=True,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            coalesce=True,
            max_instances=1,
        )


def main(argv: list[str] | None = None) -> int:
    """Run one instance."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--instance", default=f"{socket.gethostname()}-{os.getpid()}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL), decode_responses=True)
    coordinator = Coordinator(client, args.instance)
    scheduler = BackgroundScheduler(timezone=UTC)
    coordinator.add_job(scheduler, lambda when, fence: None, job_id="demo", interval_seconds=5)
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    coordinator.start_renewer()
    scheduler.start()
    done.wait()
    scheduler.shutdown()
    coordinator.stop_renewer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
