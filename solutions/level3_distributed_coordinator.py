"""Level 3: several scheduler instances, one run per tick, guarded by a Redis lock.

Every replica of a web service that embeds APScheduler runs every job (APScheduler #160,
#218). This module lets N identical instances share one schedule while each tick of a job
runs exactly once:

* a claim per (job id, scheduled fire time), taken atomically with ``SET key token NX PX``
  and a random token, kept until the tick can no longer come due on any instance;
* a lease that the running instance renews while the job outlives it (compare-and-extend
  in Lua), released only by its owner (compare-and-delete in Lua);
* a fencing token (``INCR``) handed to the job, and a `FencedStore` that rejects a write
  carrying an older token than one it has accepted;
* fire times computed from the trigger (an interval aligned on `ANCHOR`), so instances
  whose clocks disagree by up to `MAX_CLOCK_SKEW_SECONDS` name the same tick;
* no run without Redis: a tick whose claim cannot be taken is skipped, logged, kept in
  `Coordinator.skipped` and written to the tick record once Redis is back.

A holder that crashes mid-run leaves its claim until the lease ends; with the default
lease (longer than the window in which the other instances reach that tick) the tick is
not run again: `tick_report` shows it as ``abandoned``.

Run it (Redis on 127.0.0.1:6379; start two or more, each in its own terminal; with the
course's venv: `python3 -m grader setup`, once, from the repository root, creates .venv)::

    cd solutions && ../.venv/bin/python level3_distributed_coordinator.py --instance a
    cd solutions && ../.venv/bin/python level3_distributed_coordinator.py --instance b

Environment: ``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``),
``COORDINATOR_INTERVAL_SECONDS`` (default 5), ``COORDINATOR_JOB_SECONDS`` (how long the
demo job works, default 0.5), ``COORDINATOR_LEASE_SECONDS`` (default 30). Each run of the
demo job appends ``"<fire ms> <instance> <fencing token> started|accepted|rejected"`` to
the list ``cronkata:runs:demo``; ``redis-cli hgetall cronkata:ticks:demo`` shows each tick.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import secrets
import signal
import socket
import threading
import time
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

# KEYS: claim, fence, ticks; ARGV: token, lease ms, tick field, instance.
_claim_lua = """
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local fence = redis.call('incr', KEYS[2])
redis.call('hset', KEYS[3], ARGV[3], 'running ' .. ARGV[4] .. ' ' .. fence)
return fence
"""
_extend_lua = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_release_lua = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_fenced_write_lua = """
local last = redis.call('hget', KEYS[1], 'fence')
if last and tonumber(ARGV[1]) < tonumber(last) then return 0 end
redis.call('hset', KEYS[1], 'fence', ARGV[1], 'value', ARGV[2])
return 1
"""


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (a zone-independent tick name)."""
    return (moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def fire_time_at(now: datetime, interval_seconds: float, anchor: datetime = ANCHOR) -> datetime:
    """The latest fire time at or before ``now`` of an interval schedule aligned on ``anchor``."""
    if interval_seconds <= 0:
        raise ValueError(f"interval_seconds must be positive, not {interval_seconds}")
    step = timedelta(seconds=interval_seconds)
    ticks = (now.astimezone(UTC) - anchor) // step
    return (anchor + ticks * step).astimezone(UTC)


def claim_key(job_id: str, fire_time: datetime) -> str:
    """The Redis key of the claim on one tick: the job id and the fire instant (epoch ms)."""
    return f"{KEY_PREFIX}:claim:{job_id}:{_ms(fire_time)}"


def _fence_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:fence:{job_id}"


def _ticks_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:ticks:{job_id}"


@dataclass(frozen=True)
class Claim:
    """A claim on one tick, owned by whoever holds its random ``token``."""

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
    """Claim one tick (SET NX PX with a random token, then INCR the fence), or None if taken."""
    key = claim_key(job_id, fire_time)
    token = secrets.token_hex(16)
    lease_ms = max(1, round(lease_seconds * 1000))
    fence = int(
        client.eval(  # type: ignore[no-untyped-call]
            _claim_lua,
            3,
            key,
            _fence_key(job_id),
            _ticks_key(job_id),
            token,
            lease_ms,
            _ms(fire_time),
            instance or "-",
        )
    )
    if fence == 0:
        return None
    return Claim(job_id, fire_time.astimezone(UTC), key, token, fence)


def renew(client: redis.Redis, claim: Claim, lease_seconds: float) -> bool:
    """Set the claim's TTL to ``lease_seconds`` if it is still ours (compare-and-extend)."""
    ttl_ms = max(1, round(lease_seconds * 1000))
    return bool(client.eval(_extend_lua, 1, claim.key, claim.token, ttl_ms))  # type: ignore[no-untyped-call]


def release(client: redis.Redis, claim: Claim) -> bool:
    """Delete the claim if it is still ours (compare-and-delete); False if someone else holds it."""
    return bool(client.eval(_release_lua, 1, claim.key, claim.token))  # type: ignore[no-untyped-call]


class FencedStore:
    """A Redis-backed store whose writes carry fencing tokens; older tokens are rejected."""

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.name = name

    def _key(self, resource: str) -> str:
        return f"{KEY_PREFIX}:store:{self.name}:{resource}"

    def write(self, resource: str, value: str, fencing_token: int) -> bool:
        """Store ``value`` unless a write with a higher fencing token was accepted already."""
        accepted = bool(
            self.client.eval(  # type: ignore[no-untyped-call]
                _fenced_write_lua, 1, self._key(resource), int(fencing_token), value
            )
        )
        if not accepted:
            logger.warning(
                "fenced write to %s/%s rejected: token %s is older than the last accepted",
                self.name,
                resource,
                fencing_token,
            )
        return accepted

    def read(self, resource: str) -> str | None:
        """The last accepted value, or None."""
        value = self.client.hget(self._key(resource), "value")
        return None if value is None else str(value)


def tick_report(client: redis.Redis, job_id: str) -> dict[datetime, str]:
    """Each recorded tick of a job: ``done``, ``running``, ``abandoned`` or ``skipped``."""
    report: dict[datetime, str] = {}
    for field, value in client.hgetall(_ticks_key(job_id)).items():
        ms = int(field)
        status = str(value).split(" ", 1)[0]
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
        if status == "running" and not client.exists(claim_key(job_id, moment)):
            status = "abandoned"  # its holder stopped renewing before finishing
        report[moment] = status
    return dict(sorted(report.items()))


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
        self._unreported: list[tuple[str, datetime]] = []
        self._running: dict[str, Claim] = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- one tick ---------------------------------------------------------------------

    def run_tick(self, job_id: str, fire_time: datetime, func: JobFunc) -> bool:
        """Run ``func(fire_time, fencing_token)`` if this instance wins the tick; True if it ran."""
        fire_time = fire_time.astimezone(UTC)
        try:
            self._report_skips()
            claim = try_claim(self.client, job_id, fire_time, self.lease_seconds, self.instance)
        except redis.RedisError as exc:
            logger.warning(
                "%s: Redis unavailable, skipping %s at %s: %s",
                self.instance,
                job_id,
                fire_time.isoformat(),
                exc,
            )
            self.skipped.append((job_id, fire_time))
            self._unreported.append((job_id, fire_time))
            return False
        if claim is None:
            logger.debug("%s: %s at %s runs elsewhere", self.instance, job_id, fire_time)
            return False
        logger.info(
            "%s: running %s at %s (fence %d)",
            self.instance,
            job_id,
            fire_time.isoformat(),
            claim.fencing_token,
        )
        with self._guard:
            self._running[claim.key] = claim
        try:
            func(fire_time, claim.fencing_token)
        finally:
            with self._guard:
                self._running.pop(claim.key, None)
            self._finish(claim)
        return True

    def _finish(self, claim: Claim) -> None:
        """Keep the claim until the tick can no longer come due anywhere, then let it go."""
        window = 2 * MAX_CLOCK_SKEW_SECONDS + MISFIRE_GRACE_SECONDS
        horizon = claim.fire_time + timedelta(seconds=window)
        remaining = (horizon - datetime.now(UTC)).total_seconds()
        try:
            self.client.hset(
                _ticks_key(claim.job_id),
                str(_ms(claim.fire_time)),
                f"done {self.instance} {claim.fencing_token}",
            )
            if remaining > 0:
                kept = renew(self.client, claim, remaining)
            else:
                kept = release(self.client, claim)
            if not kept:
                logger.error(
                    "%s: the claim on %s at %s was lost while it ran (lease too short?)",
                    self.instance,
                    claim.job_id,
                    claim.fire_time.isoformat(),
                )
        except redis.RedisError:
            logger.exception("%s: could not finish the claim %s", self.instance, claim.key)

    def _report_skips(self) -> None:
        while self._unreported:
            job_id, fire_time = self._unreported[0]
            self.client.hsetnx(
                _ticks_key(job_id), str(_ms(fire_time)), f"skipped {self.instance} redis-down"
            )
            self._unreported.pop(0)

    # -- leases -----------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Renew the lease of every tick this instance is running."""
        with self._guard:
            claims = list(self._running.values())
        for claim in claims:
            try:
                if not renew(self.client, claim, self.lease_seconds):
                    logger.error("%s: lost the claim %s", self.instance, claim.key)
            except redis.RedisError as exc:
                logger.warning("%s: could not renew %s: %s", self.instance, claim.key, exc)

    def start_renewer(self) -> None:
        """Call `heartbeat` every third of the lease from a daemon thread."""
        if self._renewer is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.lease_seconds / 3):
                self.heartbeat()

        self._renewer = threading.Thread(target=loop, name="lease-renewer", daemon=True)
        self._renewer.start()

    def stop_renewer(self) -> None:
        """Stop the renewal thread."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
            self._renewer = None

    # -- scheduling -------------------------------------------------------------------

    def add_job(
        self,
        scheduler: BaseScheduler,
        func: JobFunc,
        *,
        job_id: str,
        interval_seconds: float,
        anchor: datetime = ANCHOR,
    ) -> Job:
        """Schedule ``func`` every ``interval_seconds`` (aligned on ``anchor``), once per tick."""

        def tick() -> None:
            fire_time = fire_time_at(datetime.now(UTC), interval_seconds, anchor)
            self.run_tick(job_id, fire_time, func)

        trigger = IntervalTrigger(seconds=interval_seconds, start_date=anchor, timezone=UTC)
        return scheduler.add_job(
            tick,
            trigger,
            id=job_id,
            name=job_id,
            replace_existing=True,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            coalesce=True,
            max_instances=1,
        )


# -- the demo process -----------------------------------------------------------------------


def _demo_job(client: redis.Redis, instance: str, seconds: float) -> JobFunc:
    store = FencedStore(client, "demo")
    runs = f"{KEY_PREFIX}:runs:demo"

    def job(fire_time: datetime, fencing_token: int) -> None:
        tick = _ms(fire_time)
        client.rpush(runs, f"{tick} {instance} {fencing_token} started")
        time.sleep(seconds)  # the work
        accepted = store.write("last-tick", str(tick), fencing_token)
        client.rpush(
            runs, f"{tick} {instance} {fencing_token} {'accepted' if accepted else 'rejected'}"
        )

    return job


def main(argv: list[str] | None = None) -> int:
    """Run one instance of the coordinated demo schedule until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description="one instance of the coordinated schedule")
    parser.add_argument("--instance", default=f"{socket.gethostname()}-{os.getpid()}")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    client = redis.Redis.from_url(
        os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
        decode_responses=True,
        socket_timeout=2,
        socket_connect_timeout=2,
    )
    interval = float(os.environ.get("COORDINATOR_INTERVAL_SECONDS", "5"))
    work = float(os.environ.get("COORDINATOR_JOB_SECONDS", "0.5"))
    lease = float(os.environ.get("COORDINATOR_LEASE_SECONDS", str(LEASE_SECONDS)))
    coordinator = Coordinator(client, options.instance, lease_seconds=lease)
    scheduler = BackgroundScheduler(timezone=UTC)
    coordinator.add_job(
        scheduler,
        _demo_job(client, options.instance, work),
        job_id="demo",
        interval_seconds=interval,
    )
    # SimpleQueue.put is safe in a signal handler; Event.set can deadlock there (note 07a §9).
    stop_requests: queue.SimpleQueue[int] = queue.SimpleQueue()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requests.put(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    coordinator.start_renewer()
    scheduler.start()
    logger.info("instance %s started (every %s s)", options.instance, interval)
    while True:
        try:  # in slices: a signal just before get() starts waiting runs after it returns
            stop_requests.get(timeout=0.5)
            break
        except queue.Empty:
            continue
    scheduler.shutdown(wait=True)
    coordinator.stop_renewer()
    logger.info("instance %s stopped", options.instance)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
