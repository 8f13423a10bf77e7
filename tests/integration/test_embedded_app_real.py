"""Real Redis going away under the solution's Celery web app, and coming back.

The app (solutions/celery_beat/embedded_app.py) reaches the local Redis through a TCP
proxy that the test cuts and restores: to the app this is a Redis restart (every open
connection drops, the port refuses new ones), while the Redis other tests use stays up.
Needs Redis on 127.0.0.1:6379 (database 13, emptied).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from grader import paths
from grader.targets import load_file
from grader.testing import environment, free_port

HOST, PORT = "127.0.0.1", 6379  # the local Redis (see conftest.py)

DB = 13
WITHIN = 3.0  # seconds: the solution's UNAVAILABLE_WITHIN_SECONDS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class CuttableProxy:
    """A TCP proxy from a free local port to the real Redis, which can be cut and restored."""

    def __init__(self) -> None:
        self.port = free_port(HOST)
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> None:
        """Listen again and forward each new connection."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Close the port and every forwarded connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection((HOST, PORT))
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied_app(clean_redis: redis.Redis) -> Iterator[tuple[CuttableProxy, TestClient]]:
    proxy = CuttableProxy()
    proxy.restore()
    url = f"redis://{HOST}:{proxy.port}/{DB}"
    env = {"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url, "REDIS_URL": url}
    with environment(env):
        module = load_file(paths.SOLUTIONS_DIR / "celery_beat" / "embedded_app.py")
        yield proxy, TestClient(module.create_app(), raise_server_exceptions=False)
    proxy.cut()


def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    return call(), time.monotonic() - started


def test_redis_restart_gives_quick_503s_and_the_app_recovers(
    proxied_app: tuple[CuttableProxy, TestClient], clean_redis: redis.Redis
) -> None:
    proxy, client = proxied_app
    body = {"notification_id": "n-real", "user_id": 3, "message": "hello"}
    seen = []
    for state in ("up", "down", "up again"):
        if state == "down":
            proxy.cut()
        if state == "up again":
            proxy.restore()
        for name, call in (
            ("notify", lambda: client.post("/tasks/notify", json=body)),
            ("workflow", lambda: client.post("/workflows", json={"kind": "group", "numbers": [1]})),
            ("status", lambda: client.get("/tasks/some-id")),
            ("health", lambda: client.get("/health")),
        ):
            response, seconds = _timed(call)
            assert seconds < WITHIN, f"{name} with Redis {state} took {seconds:.1f} s"
            seen.append((state, name, response.status_code))
    assert seen == [
        ("up", "notify", 202),
        ("up", "workflow", 202),
        ("up", "status", 200),
        ("up", "health", 200),
        ("down", "notify", 503),
        ("down", "workflow", 503),
        ("down", "status", 503),
        ("down", "health", 503),
        ("up again", "notify", 202),
        ("up again", "workflow", 202),
        ("up again", "status", 200),
        ("up again", "health", 200),
    ]
    assert clean_redis.llen("notifications") == 2  # both accepted notifications, in Redis
