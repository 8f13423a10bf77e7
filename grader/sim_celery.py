"""Run Celery tasks as a worker would, without a broker process: retries, Redis, a worker.

- `run_like_worker(task, ...)` runs a task with its retries and records every attempt and
  every retry countdown. It uses ``task.apply(throw=False)``: a retry re-runs the task at
  once (countdowns are recorded from the ``task_retry`` signal, not waited for) and the
  final failure reaches ``on_failure`` once, as in a worker. ``task_eager_propagates`` is
  off meanwhile (a worker ignores it): with it, an ``autoretry_for`` task raises ``Retry``
  after one attempt and no retry runs.
- `controlled_jitter(pick)` makes Celery's full jitter deterministic: it replaces the
  random source of ``celery.utils.time.get_exponential_backoff_interval`` (``randrange``)
  and records each bound it was asked for.
- `fake_redis(module)`: a fresh fakeredis server for one test, handed out by the module's
  ``get_redis()`` (and by ``redis.Redis.from_url``, in case code bypasses it).
- `Interleaved(client, key, during)`: a Redis client that runs ``during()`` right after
  the first command on ``key`` (a concurrent redelivery, deterministic).
- `RedisOverTcp()`: a fakeredis server on a real TCP port of 127.0.0.1 that can go down
  (connections closed, the port refusing) and come back with its data, so kombu and
  redis-py meet a real outage and a real recovery.
- `in_process_worker(app)`: a real Celery worker (pool solo) in a daemon thread of this
  process, on the ``memory://`` broker and ``cache+memory://`` backend. It starts in about
  50 ms; stopping one costs seconds, so it is never stopped: each graded test runs in a
  forked child that is discarded with ``os._exit``.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from unittest import mock

import celery.utils.time
import fakeredis
import redis
from celery import Celery, Task
from celery.contrib.testing.worker import start_worker
from celery.signals import task_prerun, task_retry
from celery.worker import WorkController
from fakeredis import TcpFakeServer
from fakeredis._core import FakeServer

from grader.testing import free_port

IN_MEMORY = {"broker_url": "memory://", "result_backend": "cache+memory://"}
FAST_POLLING = {"polling_interval": 0.01}  # the memory transport polls every second otherwise
_RUNNING_WORKERS: list[object] = []


def jitter_max(bound: int) -> int:
    """``randrange(bound)`` at its largest: the countdown is the un-jittered backoff."""
    return bound - 1


def jitter_min(bound: int) -> int:
    """``randrange(bound)`` at its smallest: every countdown is 0."""
    return 0


class _ChosenRandom:
    """Stands in for the ``random`` module inside ``celery.utils.time``."""

    def __init__(self, pick: Callable[[int], int], bounds: list[int]) -> None:
        self._pick = pick
        self._bounds = bounds

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        bound = start if stop is None else stop - start
        self._bounds.append(bound)
        chosen = self._pick(bound)
        return chosen if stop is None else start + chosen

    def __getattr__(self, name: str) -> Any:
        return getattr(random, name)


@contextmanager
def controlled_jitter(pick: Callable[[int], int] = jitter_max) -> Iterator[list[int]]:
    """Make Celery's retry jitter choose ``pick(bound)``; yields the bounds asked for."""
    bounds: list[int] = []
    with mock.patch.object(celery.utils.time, "random", _ChosenRandom(pick, bounds)):
        yield bounds


@dataclass
class TaskRun:
    """What running a task like a worker did."""

    task_id: str
    attempts: int = 0
    countdowns: list[float | None] = field(default_factory=list)
    state: str = "PENDING"
    result: Any = None

    @property
    def retries(self) -> int:
        """How many retries were requested."""
        return len(self.countdowns)


def run_like_worker(
    task: Task,
    args: Iterable[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    task_id: str | None = None,
) -> TaskRun:
    """Run ``task`` with its retries, synchronously; count attempts and record countdowns.

    The same ``task_id`` twice simulates a redelivery of the same message.
    """
    run = TaskRun(task_id=task_id or str(uuid.uuid4()))

    def on_prerun(task_id: str | None = None, **_: Any) -> None:
        if task_id == run.task_id:
            run.attempts += 1

    def on_retry(request: Any = None, reason: Any = None, **_: Any) -> None:
        if getattr(request, "id", None) == run.task_id:
            when = getattr(reason, "when", None)
            run.countdowns.append(float(when) if isinstance(when, int | float) else when)

    conf = task.app.conf
    propagates = conf.task_eager_propagates  # a worker ignores it; the eager retries read it
    conf.task_eager_propagates = False
    task_prerun.connect(on_prerun, weak=False)
    task_retry.connect(on_retry, weak=False)
    try:
        outcome = task.apply(
            args=tuple(args), kwargs=kwargs or {}, task_id=run.task_id, throw=False
        )
    finally:
        task_prerun.disconnect(on_prerun)
        task_retry.disconnect(on_retry)
        conf.task_eager_propagates = propagates
    run.state = str(outcome.state)
    run.result = outcome.result
    return run


@contextmanager
def fake_redis(module: ModuleType | None = None) -> Iterator[fakeredis.FakeRedis]:
    """A fresh in-memory Redis for this test, returned by ``module.get_redis()``.

    ``redis.Redis.from_url`` / ``redis.from_url`` hand out the same server too, so code
    that bypasses ``get_redis`` still never reaches a real Redis.
    """
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server, decode_responses=True)

    def from_url(*_args: Any, **kwargs: Any) -> fakeredis.FakeRedis:
        return fakeredis.FakeRedis(
            server=server, decode_responses=bool(kwargs.get("decode_responses", False))
        )

    with (
        mock.patch.object(redis.Redis, "from_url", staticmethod(from_url)),
        mock.patch.object(redis, "from_url", from_url),
    ):
        if module is not None and hasattr(module, "get_redis"):
            with mock.patch.object(module, "get_redis", lambda: client):
                yield client
        else:
            yield client


class Interleaved:
    """A Redis client that runs ``during()`` once, right after the first command on ``key``.

    It makes a race deterministic: "a second delivery of the same message runs between
    this delivery's first Redis command on its idempotency key and the next one". With an
    atomic claim (SET NX) the second delivery finds the key taken; with a check (EXISTS,
    GET) followed by a SET, both deliveries proceed. A pipeline counts as one command: it
    runs ``during()`` after its ``execute()`` if a queued command touched the key.
    """

    def __init__(self, client: Any, key: str, during: Callable[[], object]) -> None:
        self._client = client
        self._key = key
        self._during = during
        self.fired = False

    def touches_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether a command with these arguments names the key."""
        names = [*args, kwargs.get("name"), *(kwargs.get("keys") or ())]
        wanted = (self._key, self._key.encode())
        return any(n in wanted for n in names if isinstance(n, str | bytes))

    def after_command(self) -> None:
        """Run ``during()`` if it has not run yet."""
        if not self.fired:
            self.fired = True
            self._during()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "pipeline":
            return lambda *a, **k: _InterleavedPipeline(attribute(*a, **k), self)
        if not callable(attribute):
            return attribute

        def command(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if self.touches_key(args, kwargs):
                self.after_command()
            return result

        return command


class _InterleavedPipeline:
    """A pipeline of an `Interleaved` client: ``during()`` runs after ``execute()``."""

    def __init__(self, pipeline: Any, owner: Interleaved) -> None:
        self._pipeline = pipeline
        self._owner = owner
        self._touched = False

    def __enter__(self) -> _InterleavedPipeline:
        self._pipeline.__enter__()
        return self

    def __exit__(self, *exc: object) -> Any:
        return self._pipeline.__exit__(*exc)

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        result = self._pipeline.execute(*args, **kwargs)
        if self._touched:
            self._owner.after_command()
        return result

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._pipeline, name)
        if not callable(attribute):
            return attribute

        def queued(*args: Any, **kwargs: Any) -> Any:
            self._touched = self._touched or self._owner.touches_key(args, kwargs)
            result = attribute(*args, **kwargs)
            return self if result is self._pipeline else result

        return queued


def use_memory_transport(app: Celery) -> Celery:
    """Point ``app`` at the in-memory broker and backend (never a real Redis); return it."""
    app.conf.update(IN_MEMORY, broker_transport_options=dict(FAST_POLLING))
    return app


def routed_queues(app: Celery) -> list[str]:
    """The default queue plus every queue named in ``task_routes`` (dict routes only)."""
    queues = [str(app.conf.task_default_queue or "celery")]
    routes = app.conf.task_routes or {}
    if isinstance(routes, dict):
        for route in routes.values():
            name = route.get("queue") if isinstance(route, dict) else None
            if isinstance(name, str) and name not in queues:
                queues.append(name)
    return queues


def in_process_worker(app: Celery, queues: Iterable[str] | None = None) -> WorkController:
    """Start a real worker for ``app`` in a daemon thread; it is never stopped (see above)."""
    use_memory_transport(app)
    chosen = list(queues) if queues is not None else routed_queues(app)
    context = start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        loglevel="WARNING",
        queues=",".join(chosen),
    )
    worker: WorkController = context.__enter__()  # no __exit__: stopping costs seconds
    # Keep the context manager alive: when a generator context is garbage-collected its
    # `finally` runs, which sets celery.worker.state.should_terminate and stops the worker.
    _RUNNING_WORKERS.append(context)
    return worker


def queued_messages(app: Celery, queues: Iterable[str]) -> list[dict[str, Any]]:
    """Drain the messages waiting in ``queues`` of the memory broker (task, id, args, kwargs)."""
    found = []
    with app.connection_for_read() as connection:
        for name in queues:
            queue = connection.SimpleQueue(name, no_ack=True)
            while True:
                try:
                    message = queue.get(block=False)
                except queue.Empty:
                    break
                args, kwargs, _embed = message.payload
                found.append(
                    {
                        "queue": name,
                        "task": message.headers.get("task"),
                        "id": message.headers.get("id"),
                        "args": list(args),
                        "kwargs": dict(kwargs),
                    }
                )
            queue.close()
    return found


class ReclaimedAfterGet:
    """A Redis client whose key changes hands right after the failure path GETs it.

    Once ``armed`` (deliver() is raising), the first GET of ``key`` through this client (or
    through one of its pipelines) returns what Redis holds, then the key is
    given to another delivery: as if this attempt's claim expired and a redelivery claimed
    the key between this GET and the next command. A DEL sent next frees the other claim;
    a Lua script (EVAL, EVALSHA, register_script) runs its GET and its DEL as one step in
    Redis, and a WATCH/MULTI transaction aborts (WatchError) when the watched key changed.
    """

    def __init__(self, client: Any, key: str, other: str, ttl: int) -> None:
        self._client = client
        self._key = key
        self._other = other
        self._ttl = ttl
        self.armed = False
        self.swapped = False

    def is_get_of_key(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Whether this call (``get(key)`` or ``execute_command("GET", key)``) reads the key."""
        if name == "execute_command":
            if not args or str(args[0]).upper() != "GET":
                return False
            args = args[1:]
        names = [*args, kwargs.get("name")]
        return any(n in (self._key, self._key.encode()) for n in names)

    def after_get(self) -> None:
        """Hand the key to another delivery, once, if armed."""
        if self.armed and not self.swapped:
            self.swapped = True
            self._client.set(self._key, self._other, ex=self._ttl)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "pipeline":
            return lambda *a, **k: _ReclaimedAfterGetPipeline(attribute(*a, **k), self)
        if name not in ("get", "execute_command"):
            return attribute

        def command(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if self.is_get_of_key(name, args, kwargs):
                self.after_get()
            return result

        return command


class _ReclaimedAfterGetPipeline:
    """A pipeline of `ReclaimedAfterGet`: a GET of the key hands it over once it has run.

    In WATCH mode a GET runs at once; a queued GET has run after ``execute()``.
    """

    def __init__(self, pipeline: Any, owner: ReclaimedAfterGet) -> None:
        self._pipeline = pipeline
        self._owner = owner
        self._queued_get = False

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        result = self._pipeline.execute(*args, **kwargs)
        if self._queued_get:
            self._queued_get = False
            self._owner.after_get()
        return result

    def __enter__(self) -> _ReclaimedAfterGetPipeline:
        self._pipeline.__enter__()
        return self

    def __exit__(self, *exc: object) -> Any:
        return self._pipeline.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._pipeline, name)
        if not callable(attribute):
            return attribute

        def command(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            reads_key = self._owner.is_get_of_key(name, args, kwargs)
            if result is self._pipeline:  # queued: it runs in execute()
                self._queued_get = self._queued_get or reads_key
                return self
            if reads_key:
                self._owner.after_get()
            return result

        return command


class RedisOverTcp:
    """A fakeredis server listening on 127.0.0.1, switched off and on by the test.

    Down means what a Redis restart means to a client: every open connection is closed
    and the port refuses new ones. Up serves the same data again on the same port. Used
    as a context manager, it is up inside and down after (no thread is left behind).
    """

    def __init__(self) -> None:
        self.data = FakeServer()
        self.port = free_port()  # nothing listens on it until up()
        self._server: TcpFakeServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, db: int) -> str:
        """The redis:// URL of database ``db``."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def up(self) -> None:
        """Start serving (the same data as before)."""
        if self._server is not None:
            return
        server = TcpFakeServer(("127.0.0.1", self.port))
        server.fake_server = self.data
        server.daemon_threads = True  # a handler a client keeps busy never blocks down()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        self._server = server

    def down(self) -> None:
        """Close every connection and stop listening."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()  # also ends each connection's handler loop
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def client(self, db: int) -> fakeredis.FakeRedis:
        """A client of database ``db`` that reads the data directly (up or down)."""
        return fakeredis.FakeRedis(server=self.data, db=db)

    def __enter__(self) -> RedisOverTcp:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
