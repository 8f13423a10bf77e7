"""Shared by the tests against real services: a database of the local Redis, emptied; a
database of the local PostgreSQL, created for the test and dropped after it."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy.engine import make_url

HOST, PORT = "127.0.0.1", 6379
PG_HOST, PG_PORT = "127.0.0.1", 5432
# Where to create and drop the test's database (libpq URL; trust auth on these machines).
PG_ADMIN_URL = os.environ.get(
    "CRONKATA_POSTGRES_ADMIN_URL", f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def redis_listening() -> bool:
    """Whether a Redis answers on 127.0.0.1:6379."""
    return _listening(HOST, PORT)


def service_missing(reason: str) -> None:
    """Skip the test, or fail it when CRONKATA_REQUIRE_SERVICES=1 (CI)."""
    if os.environ.get("CRONKATA_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} and CRONKATA_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@pytest.fixture
def clean_redis(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """The database the test module names in ``DB``, empty before and after the test.

    Without Redis the test is skipped, unless CRONKATA_REQUIRE_SERVICES=1 (CI): then it fails.
    """
    if not redis_listening():
        service_missing(f"no Redis on {HOST}:{PORT}")
    client = redis.Redis(host=HOST, port=PORT, db=request.module.DB, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """The SQLAlchemy URL (``postgresql+psycopg://``) of a new, empty database of the local
    PostgreSQL, dropped after the test.

    Without PostgreSQL on 127.0.0.1:5432, without the driver (the ``postgres`` extra) or
    without the right to create a database (CRONKATA_POSTGRES_ADMIN_URL says as whom), the
    test is skipped, unless CRONKATA_REQUIRE_SERVICES=1 (CI): then it fails.
    """
    if not _listening(PG_HOST, PG_PORT):
        service_missing(f"no PostgreSQL on {PG_HOST}:{PG_PORT}")
    try:
        import psycopg
    except ImportError:
        service_missing("psycopg is not installed (pip install -e '.[postgres]')")
    name = f"cronkata_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as error:
        service_missing(f"cannot connect to PostgreSQL as {PG_ADMIN_URL}: {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
            yield url.render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
