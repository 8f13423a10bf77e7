"""Several scheduler instances on one virtual timeline, sharing one fakeredis[lua] server.

A `Fleet` runs N instances of a coordinated job. Each instance has its own clock offset
(its local time is the true time plus the offset), its own Redis client, coordinator and,
in scheduler mode, its own real APScheduler scheduler stepped by `grader.sim_apscheduler`.
The fleet processes events in true-time order: a scheduler's due time (reached when the
instance's *local* clock gets there), a lease heartbeat, a control event (pause, kill,
restart an instance; Redis down or up). Before each instance event the frozen process
clock is set to that instance's local time; Redis itself always sees true time.

Jobs run instantly unless they call `Fleet.spend(seconds)`: then the rest of the fleet
keeps going (other instances fire, heartbeats renew leases) until the job's instance is
done with it. A paused instance does nothing (no scheduler, no heartbeat, its job makes no
progress); a killed one loses its Redis connection at once (a crash runs no clean-up that
reaches Redis) and its job stops at its next `spend`.

`Fleet.runs` records every run a job function started (instance, tick, fencing token) and
`Fleet.timeline()` shows which instance ran which tick, duplicates and gaps marked.

Two modes: ``scheduler=True`` (the default) drives real schedulers through the
coordinator's ``add_job``; ``scheduler=False`` calls ``run_tick`` for every instance at
every tick, in the order their clocks reach it (fast: ten instances, ten thousand ticks).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType, TracebackType
from typing import Any, Self
from unittest import mock

import fakeredis
import redis
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from fakeredis._helpers import SimpleError
from fakeredis._socket import FakeSocket
from fakeredis._socket import _base as fakeredis_socket_base
from fakeredis._socket._resp import extract_command
from redis._parsers.helpers import _RedisCallbacks, _RedisCallbacksRESP2

from grader.clock import VirtualClock, as_utc
from grader.sim_apscheduler import SchedulerSimulation, SimulationError

logger = logging.getLogger(__name__)

JOB_ID = "report"
MAX_EVENTS = 2_000_000


class InstanceKilled(BaseException):
    """Raised inside a killed instance's job at its next `Fleet.spend`: the process is gone."""


class SkewedClock(VirtualClock):
    """A `VirtualClock` that may also be set backwards (to another instance's local time)."""

    def set(self, moment: datetime) -> None:
        """Set the frozen time to ``moment`` (aware), earlier or later than now."""
        target = as_utc(moment)
        if self._coordinates is None:
            raise SimulationError("the clock is not running: use the fleet as a context manager")
        if target != self._now:
            self._now = target
            self._coordinates.move_to(target)


class _TrueTime:
    """Stands in for the ``time`` module inside fakeredis: the server keeps true time."""

    def __init__(self, fleet: Fleet, real: Any) -> None:
        self._fleet = fleet
        self._real = real

    def time(self) -> float:
        return self._fleet.true_now.timestamp()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class InstanceRedis(fakeredis.FakeRedis):
    """One instance's connection to the fleet's server; commands skip the RESP round trip.

    Plain commands are dispatched straight to fakeredis's command table (three to four
    times faster than through a socket); pipelines, locks and pub/sub take fakeredis's
    normal path on the same server. While the instance is dead or Redis is down every
    command raises `redis.ConnectionError`.
    """

    def __init__(self, fleet: Fleet, instance: Instance) -> None:
        super().__init__(server=fleet.server, decode_responses=True)
        self._fleet = fleet
        self._instance = instance
        self._sock = FakeSocket(fleet.server, db=0, client_class=redis.Redis, lua_modules=set())
        self._encoder = self.get_encoder()
        self._callbacks = dict(_RedisCallbacks)
        self._callbacks.update(_RedisCallbacksRESP2)
        self._callbacks.update(self.response_callbacks)
        self.alive = True
        self.before_command: Callable[[tuple[Any, ...]], None] | None = None

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run one command against the shared server, as redis-py would.

        ``before_command(args)``, when set, runs first: a test's way to let another
        instance act between two commands of this one (a race).
        """
        if self.before_command is not None:
            hook, self.before_command = self.before_command, None
            try:
                hook(args)
            finally:
                self.before_command = hook
        if not self.alive:
            raise redis.ConnectionError(f"instance {self._instance.name} is dead")
        if not self._fleet.server.connected:
            raise redis.ConnectionError("Error 111 connecting to redis: Connection refused.")
        encode = self._encoder.encode
        fields = [encode(arg) for arg in args]
        sock = self._sock
        command, arguments = extract_command(fields)
        try:
            func, signature = sock._name_to_func(command)
            signature.check_arity(arguments, sock.version)
        except SimpleError as exc:
            raise sock._decode_error(exc) from None
        server = self._fleet.server
        with server.lock:
            now = self._fleet.true_now.timestamp()
            for db in server.dbs.values():
                db.time = now
            result = sock._run_command(func, signature, arguments, False)
        result = sock._decode_result(result)
        if isinstance(result, redis.exceptions.ResponseError):
            raise result
        result = _decoded(result)
        name = str(args[0])
        callback = self._callbacks.get(name.upper())
        options.pop("keys", None)
        return callback(result, **options) if callback is not None else result


def _decoded(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_decoded(item) for item in value]
    return value


@dataclass
class Instance:
    """One simulated process: a name, a clock offset, its client, coordinator, scheduler."""

    name: str
    offset: timedelta
    client: InstanceRedis | None = None
    coordinator: Any = None
    scheduler: BaseScheduler | None = None
    state: str = "running"  # running | paused | killed
    paused_until: datetime | None = None
    busy: int = 0  # nested jobs in progress
    generation: int = 0

    def local(self, true_time: datetime) -> datetime:
        """This instance's clock reading at a true instant."""
        return true_time + self.offset


@dataclass(frozen=True)
class Run:
    """A job run as the job function saw it start."""

    instance: str
    tick: datetime
    fencing_token: int
    started: datetime  # true time
    outcome: str = "started"


@dataclass(order=True)
class _Event:
    when: datetime
    order: int
    kind: str = field(compare=False)
    instance: Instance | None = field(compare=False, default=None)
    payload: Any = field(compare=False, default=None)


JobBody = Callable[["Fleet", Instance, datetime, int], None]


class Fleet:
    """N coordinated instances of one interval job on one virtual timeline."""

    def __init__(
        self,
        module: ModuleType,
        start: datetime,
        offsets: Sequence[float] = (0.0, 0.0, 0.0),
        *,
        interval_seconds: float = 10.0,
        anchor: datetime | None = None,
        job_id: str = JOB_ID,
        lease_seconds: float | None = None,
        body: JobBody | None = None,
        scheduler: bool = True,
        names: Sequence[str] | None = None,
    ) -> None:
        self.module = module
        self.start = as_utc(start)
        self.interval = timedelta(seconds=interval_seconds)
        self.interval_seconds = interval_seconds
        self.anchor = as_utc(anchor) if anchor is not None else as_utc(module.ANCHOR)
        self.job_id = job_id
        self.lease_seconds = lease_seconds
        self.body = body
        self.use_scheduler = scheduler
        self.server = fakeredis.FakeServer()
        self.true_now = self.start
        self.runs: list[Run] = []
        self.outcomes: list[Run] = []
        self.instances = [
            Instance(name, timedelta(seconds=offset))
            for name, offset in zip(
                names or [chr(ord("a") + i) for i in range(len(offsets))], offsets, strict=True
            )
        ]
        self._events: list[_Event] = []
        self._order = itertools.count()
        self._stack = ExitStack()
        self.clock = SkewedClock(self.start)
        self.simulation: SchedulerSimulation | None = None
        self._schedulers: dict[int, Instance] = {}
        self._dead: list[BaseScheduler] = []

    # -- context ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._stack.enter_context(self.clock)
        self._stack.enter_context(
            mock.patch.object(
                fakeredis_socket_base, "time", _TrueTime(self, fakeredis_socket_base.time)
            )
        )
        self.simulation = self._stack.enter_context(SchedulerSimulation(self.clock))
        for instance in self.instances:
            self._boot(instance)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for instance in self.instances:
            self._stop_scheduler(instance)
        for scheduler in self._dead:
            if scheduler.state != STATE_STOPPED:
                BaseScheduler.shutdown(scheduler, wait=False)
        self._stack.close()

    # -- instances --------------------------------------------------------------------

    def client(self, instance: Instance | None = None) -> InstanceRedis:
        """A client of the shared server (for the test's own checks: of a new instance)."""
        return InstanceRedis(self, instance or Instance("test", timedelta(0)))

    def _boot(self, instance: Instance) -> None:
        instance.generation += 1
        instance.client = InstanceRedis(self, instance)
        instance.state = "running"
        instance.busy = 0
        kwargs: dict[str, Any] = {}
        if self.lease_seconds is not None:
            kwargs["lease_seconds"] = self.lease_seconds
        self._at_local(instance)
        instance.coordinator = self.module.Coordinator(instance.client, instance.name, **kwargs)
        if self.use_scheduler:
            scheduler = BackgroundScheduler(timezone=UTC)
            instance.coordinator.add_job(
                scheduler,
                self._job_for(instance),
                job_id=self.job_id,
                interval_seconds=self.interval_seconds,
                anchor=self.anchor,
            )
            scheduler.start()
            instance.scheduler = scheduler
            self._schedulers[id(scheduler)] = instance
        if self.lease_seconds is not None or self.body is not None:
            self._push(
                self.true_now + self._renew_every(), "heartbeat", instance, instance.generation
            )

    def _renew_every(self) -> timedelta:
        lease = self.lease_seconds if self.lease_seconds is not None else self.module.LEASE_SECONDS
        return timedelta(seconds=lease / 3)

    def _stop_scheduler(self, instance: Instance) -> None:
        # A dead process's scheduler just stops being driven; it is shut down at the end
        # (shutting it down inside its own running job would empty its job store under it).
        if instance.scheduler is not None:
            self._dead.append(instance.scheduler)
        instance.scheduler = None

    def _job_for(self, instance: Instance) -> Callable[[datetime, int], None]:
        generation = instance.generation

        def job(fire_time: datetime, fencing_token: int) -> None:
            self._started(instance, fire_time, fencing_token)
            if self.body is not None:
                instance.busy += 1
                try:
                    self.body(self, instance, fire_time, fencing_token)
                finally:
                    instance.busy -= 1
            if instance.generation != generation or instance.state == "killed":
                raise InstanceKilled(instance.name)

        return job

    def _started(self, instance: Instance, fire_time: datetime, token: int) -> None:
        self.runs.append(Run(instance.name, as_utc(fire_time), int(token), self.true_now))

    def record(self, instance: Instance, fire_time: datetime, token: int, outcome: str) -> None:
        """Let a job body note what its side effect did (shown in the timeline)."""
        self.outcomes.append(
            Run(instance.name, as_utc(fire_time), int(token), self.true_now, outcome)
        )

    def instance(self, name: str) -> Instance:
        """The instance called ``name``."""
        return next(i for i in self.instances if i.name == name)

    # -- control events ---------------------------------------------------------------

    def pause(self, name: str, at: datetime, seconds: float) -> None:
        """Freeze an instance (SIGSTOP, a long GC pause) from ``at`` for ``seconds``."""
        self._push(as_utc(at), "pause", self.instance(name), seconds)

    def kill(self, name: str, at: datetime) -> None:
        """Crash an instance at ``at`` (SIGKILL: no clean-up reaches Redis)."""
        self._push(as_utc(at), "kill", self.instance(name))

    def restart(self, name: str, at: datetime) -> None:
        """Start a fresh process of a (killed or running) instance at ``at``."""
        self._push(as_utc(at), "restart", self.instance(name))

    def redis_down(self, start: datetime, end: datetime) -> None:
        """Make Redis refuse every connection from ``start`` until ``end``."""
        self._push(as_utc(start), "redis-down")
        self._push(as_utc(end), "redis-up")

    def _push(
        self, when: datetime, kind: str, instance: Instance | None = None, payload: Any = None
    ) -> None:
        heapq.heappush(self._events, _Event(when, next(self._order), kind, instance, payload))

    # -- time -------------------------------------------------------------------------

    def _at_local(self, instance: Instance) -> None:
        self.clock.set(instance.local(self.true_now))

    def _next_due(self, exclude: Iterable[Instance]) -> tuple[datetime, Instance] | None:
        busy = set(map(id, exclude))
        best: tuple[datetime, Instance] | None = None
        for instance in self.instances:
            if instance.state != "running" or id(instance) in busy or instance.scheduler is None:
                continue
            moment = instance.scheduler._jobstores["default"].get_next_run_time()
            if moment is None:
                continue
            true_time = as_utc(moment) - instance.offset
            if best is None or true_time < best[0]:
                best = (true_time, instance)
        return best

    def run_until(self, horizon: datetime, _busy: tuple[Instance, ...] = ()) -> None:
        """Process every event up to ``horizon`` (true time), in true-time order."""
        end = as_utc(horizon)
        for _ in range(MAX_EVENTS):
            due = self._next_due(_busy)
            event = self._events[0] if self._events else None
            candidates = []
            if due is not None and due[0] <= end:
                candidates.append(due[0])
            if event is not None and event.when <= end:
                candidates.append(event.when)
            if not candidates:
                break
            moment = min(candidates)
            self.true_now = max(self.true_now, moment)
            if event is not None and event.when == moment:
                heapq.heappop(self._events)
                self._handle(event, _busy)
            elif due is not None:
                instance = due[1]
                self._at_local(instance)
                assert instance.scheduler is not None
                instance.scheduler._process_jobs()
        else:  # pragma: no cover - a runaway schedule
            raise SimulationError(f"more than {MAX_EVENTS} events before {end}")
        self.true_now = max(self.true_now, end)

    def run_for(self, seconds: float) -> None:
        """Process events for ``seconds`` of true time."""
        self.run_until(self.true_now + timedelta(seconds=seconds))

    def spend(self, instance: Instance, seconds: float) -> None:
        """Called by a job body: the job works for ``seconds`` while the fleet goes on.

        Pauses of the instance stretch the work by their length. Raises `InstanceKilled`
        when the instance was killed (or restarted) meanwhile.
        """
        generation = instance.generation
        end = self.true_now + timedelta(seconds=seconds)
        busy = (instance,)
        while True:
            self.run_until(end, busy)
            if instance.generation != generation or instance.state == "killed":
                raise InstanceKilled(instance.name)
            if instance.state == "paused" and instance.paused_until is not None:
                end = instance.paused_until
                continue
            break
        self._at_local(instance)

    def _handle(self, event: _Event, busy: tuple[Instance, ...]) -> None:
        instance = event.instance
        if event.kind == "redis-down":
            self.server.connected = False
        elif event.kind == "redis-up":
            self.server.connected = True
        elif event.kind == "heartbeat" and instance is not None:
            if event.payload != instance.generation:
                return
            if instance.state == "running":
                self._at_local(instance)
                instance.coordinator.heartbeat()
            if instance.state != "killed":
                self._push(
                    self.true_now + self._renew_every(), "heartbeat", instance, event.payload
                )
        elif event.kind == "pause" and instance is not None:
            if instance.state == "running":
                instance.state = "paused"
                instance.paused_until = self.true_now + timedelta(seconds=event.payload)
                self._push(instance.paused_until, "resume", instance, instance.generation)
        elif event.kind == "resume" and instance is not None:
            if instance.state == "paused" and event.payload == instance.generation:
                instance.state = "running"
                instance.paused_until = None
        elif event.kind == "kill" and instance is not None:
            instance.state = "killed"
            if instance.client is not None:
                instance.client.alive = False
            self._stop_scheduler(instance)
        elif event.kind == "restart" and instance is not None:
            if instance.client is not None:
                instance.client.alive = False
            self._stop_scheduler(instance)
            self._boot(instance)

    # -- the fast mode ----------------------------------------------------------------

    def run_ticks(
        self, count: int, func: Callable[[Instance, datetime, int], None] | None = None
    ) -> None:
        """Without schedulers: every instance tries each of ``count`` ticks via ``run_tick``.

        Ticks start at the first fire time after the fleet's start; each instance attempts
        a tick when its own clock reaches it (earliest clock first).
        """
        ordered = sorted(self.instances, key=lambda i: i.offset, reverse=True)
        first = self.anchor + ((self.true_now - self.anchor) // self.interval + 1) * self.interval
        jobs = {id(i): self._fast_job(i, func) for i in ordered}
        for k in range(count):
            tick = first + k * self.interval
            for instance in ordered:
                self.true_now = tick - instance.offset
                self.clock.set(tick)
                instance.coordinator.run_tick(self.job_id, tick, jobs[id(instance)])

    def _fast_job(
        self, instance: Instance, func: Callable[[Instance, datetime, int], None] | None
    ) -> Callable[[datetime, int], None]:
        def job(fire_time: datetime, fencing_token: int) -> None:
            self.runs.append(Run(instance.name, fire_time, int(fencing_token), self.true_now))
            if func is not None:
                func(instance, fire_time, fencing_token)

        return job

    # -- what happened ----------------------------------------------------------------

    def ticks_between(self, first: datetime, last: datetime) -> list[datetime]:
        """The fire times of the schedule from ``first`` to ``last`` inclusive (true ticks)."""
        start = self.anchor + -((self.anchor - as_utc(first)) // self.interval) * self.interval
        moments = []
        moment = start
        while moment <= as_utc(last):
            moments.append(moment)
            moment += self.interval
        return moments

    def runs_per_tick(self) -> Counter[datetime]:
        """How many runs each tick had."""
        return Counter(run.tick for run in self.runs)

    def duplicates(self) -> list[datetime]:
        """Ticks that ran more than once."""
        return sorted(tick for tick, n in self.runs_per_tick().items() if n > 1)

    def gaps(self, ticks: Iterable[datetime]) -> list[datetime]:
        """Ticks of ``ticks`` that never ran."""
        counts = self.runs_per_tick()
        return [tick for tick in ticks if counts[tick] == 0]

    def timeline(
        self,
        ticks: Sequence[datetime] | None = None,
        *,
        expected_gaps: Iterable[datetime] = (),
        rows: int = 14,
    ) -> str:
        """Which instance ran which tick; ``DUP`` marks a tick run twice, ``GAP`` one never run.

        Only the region around the first bad tick is shown.
        """
        by_tick: dict[datetime, list[Run]] = {}
        for run in self.runs:
            by_tick.setdefault(run.tick, []).append(run)
        all_ticks = sorted(set(ticks or []) | set(by_tick))
        allowed = set(expected_gaps)
        outcomes: dict[tuple[str, datetime, int], str] = {
            (o.instance, o.tick, o.fencing_token): o.outcome for o in self.outcomes
        }

        def mark(tick: datetime) -> str:
            n = len(by_tick.get(tick, []))
            if n > 1:
                return "DUP"
            if n == 0 and tick not in allowed and ticks is not None and tick in ticks:
                return "GAP"
            return "   "

        bad = next((i for i, t in enumerate(all_ticks) if mark(t).strip()), 0)
        lo = max(0, min(bad - 3, len(all_ticks) - rows))
        hi = min(len(all_ticks), lo + rows)
        offsets = ", ".join(f"{i.name} {i.offset.total_seconds():+g}s" for i in self.instances)
        lines = [f"  tick timeline (instances and clock offsets: {offsets})"]
        if lo > 0:
            lines.append(f"        ... {lo} tick(s) before")
        for tick in all_ticks[lo:hi]:
            runs = by_tick.get(tick, [])
            who = ", ".join(
                f"{r.instance}(fence {r.fencing_token}"
                + (
                    f", {outcomes[(r.instance, r.tick, r.fencing_token)]}"
                    if (r.instance, r.tick, r.fencing_token) in outcomes
                    else ""
                )
                + f", at {r.started.strftime('%H:%M:%S')})"
                for r in runs
            )
            note = who or ("skipped (expected)" if tick in allowed else "nobody")
            lines.append(f"  {mark(tick)} {tick.strftime('%Y-%m-%d %H:%M:%S')}Z  {note}")
        if hi < len(all_ticks):
            lines.append(f"        ... {len(all_ticks) - hi} more tick(s)")
        return "\n".join(lines)
