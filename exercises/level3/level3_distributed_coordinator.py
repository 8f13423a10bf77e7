"""Exercise distributed_coordinator (level 3): several instances, one run per tick.

Read first: notes/07e_best_practices.md (the lock, then the exercise at its end).

Every replica of a service that embeds APScheduler runs every job. Here N identical
instances share one interval schedule and a Redis server; each tick of a job must run
exactly once, even when the instances' clocks disagree by up to MAX_CLOCK_SKEW_SECONDS,
a job outlives its lease, an instance freezes or crashes mid-run, or Redis goes away.

Each promise the tests grade ends with a tag such as (#first-run-after-interval); a failing
test names its tag.

Keep every name, signature and constant exactly as it is (the hidden tests import them)
and replace each ``raise NotImplementedError(...)`` with your code. Every function takes
a redis-py client made with ``decode_responses=True``. Useful pieces: ``client.set(key,
value, nx=True, px=ms)``, ``client.incr``, ``client.eval(lua, numkeys, *keys_and_args)``
(or ``client.register_script``), ``client.hset/hsetnx/hgetall``, ``secrets.token_hex``,
``redis.RedisError``, apscheduler's ``IntervalTrigger``.

Check your work:  python3 -m grader check distributed_coordinator   (from the repository root)
Try it by hand:   cd exercises/level3 && ../../.venv/bin/python level3_distributed_coordinator.py --instance a
                  (and a second terminal with --instance b; needs Redis on 127.0.0.1:6379;
                  `python3 -m grader setup`, once, from the repository root, creates .venv)
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

import redis
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

logger = logging.getLogger("cronkata.coordinator")

KEY_PREFIX = "cronkata"
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)  # the start_date every instance's trigger shares
LEASE_SECONDS = 30.0  # longer than the tick window below
MAX_CLOCK_SKEW_SECONDS = 5.0
MISFIRE_GRACE_SECONDS = 10
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

JobFunc = Callable[[datetime, int], object]


def fire_time_at(now: datetime, interval_seconds: float, anchor: datetime = ANCHOR) -> datetime:
    """The tick an instance is running: the trigger's latest fire time at or before ``now``.

    The schedule fires at ``anchor + k * interval_seconds`` for every integer k; return that
    fire time (aware, UTC) for the largest k not after ``now``, however late ``now`` is
    within the interval. Never round ``now()`` (#fire-time-from-trigger).
    Raise ValueError when ``interval_seconds`` is not positive (#interval-positive).
    """
    raise NotImplementedError("return anchor + ((now - anchor) // interval) * interval")


def claim_key(job_id: str, fire_time: datetime) -> str:
    """The Redis key of the claim on one tick.

    It depends on the job id and the fire *instant* only: the same instant written in any
    zone gives the same key, another job or another fire time (even 1 ms apart) another
    key (#claim-key-per-tick). Start it with KEY_PREFIX.
    """
    raise NotImplementedError("build the key from KEY_PREFIX, job_id and the epoch ms")


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
    raise NotImplementedError("SET NX PX with a random token, then INCR the job's fence")


def renew(client: redis.Redis, claim: Claim, lease_seconds: float) -> bool:
    """Set the claim's TTL to ``lease_seconds`` if it is still ours; True if it was.

    Compare-and-extend in one Lua script: a claim that now holds another token is left
    untouched and renew returns False (#renew-own-claim).
    """
    raise NotImplementedError("Lua: if GET == token then PEXPIRE")


def release(client: redis.Redis, claim: Claim) -> bool:
    """Delete the claim if it is still ours; True if deleted, False otherwise.

    Compare-and-delete in one Lua script: never delete a claim that someone else took
    after ours expired (#release-own-claim).
    """
    raise NotImplementedError("Lua: if GET == token then DEL")


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
        raise NotImplementedError("Lua: compare the token with the last accepted, then HSET")

    def read(self, resource: str) -> str | None:
        """The last accepted value of ``resource``, or None."""
        raise NotImplementedError("read what write stored")


def tick_report(client: redis.Redis, job_id: str) -> dict[datetime, str]:
    """Every recorded tick of a job (aware fire time) with its status.

    "done" (it ran to the end), "running" (claimed, not finished, claim still held),
    "abandoned" (claimed, never finished, and its claim is gone: the holder crashed; alert
    on it) (#abandoned-reported), "skipped" (no instance ran it because Redis was
    unreachable; written once Redis is back, never over a "done") (#skips-recorded).
    """
    raise NotImplementedError("read the tick record the coordinator writes")


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
        * If ``func`` raises, the run is over all the same: the claim is kept as after any
          run, so no other instance runs that tick again (#failed-run-keeps-claim).
        """
        raise NotImplementedError("claim, run, keep the claim; skip when Redis is down")

    def heartbeat(self) -> None:
        """Renew (with `renew`, for ``lease_seconds``) the claim of every tick this instance
        is running right now, so a job longer than the lease is never started twice
        (#heartbeat-renews). Log a lost claim; never raise on a Redis error
        (#heartbeat-never-raises).
        """
        raise NotImplementedError("renew every claim whose job is still running")

    def start_renewer(self) -> None:
        """Call `heartbeat` every ``lease_seconds / 3`` from a daemon thread."""
        raise NotImplementedError("a daemon thread that waits on an Event, then heartbeat()")

    def stop_renewer(self) -> None:
        """Stop the renewal thread."""
        raise NotImplementedError("set the Event, join the thread")

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
        raise NotImplementedError("add an interval job whose callable calls run_tick")


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
    # SimpleQueue.put is safe in a signal handler; Event.set can deadlock there (note 07a §9).
    stop_requests: queue.SimpleQueue[int] = queue.SimpleQueue()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requests.put(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    coordinator.start_renewer()
    scheduler.start()
    while True:
        try:  # in slices: a signal just before get() starts waiting runs after it returns
            stop_requests.get(timeout=0.5)
            break
        except queue.Empty:
            continue
    scheduler.shutdown(wait=True)
    coordinator.stop_renewer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
