"""Shared by the tests against real services: a database of the local Redis, emptied."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
import redis

HOST, PORT = "127.0.0.1", 6379


def redis_listening() -> bool:
    """Whether a Redis answers on 127.0.0.1:6379."""
    try:
        with socket.create_connection((HOST, PORT), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture
def clean_redis(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """The database the test module names in ``DB``, empty before and after the test.

    Without Redis the test is skipped, unless CRONKATA_REQUIRE_SERVICES=1 (CI): then it fails.
    """
    if not redis_listening():
        if os.environ.get("CRONKATA_REQUIRE_SERVICES") == "1":
            pytest.fail(f"no Redis on {HOST}:{PORT} and CRONKATA_REQUIRE_SERVICES=1")
        pytest.skip(f"no Redis on {HOST}:{PORT}")
    client = redis.Redis(host=HOST, port=PORT, db=request.module.DB, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
