"""BUG: only the outermost exception is inspected: Celery's RuntimeError('Retry limit exceeded ...') from the POSTs becomes a 500 (#redis-down-503: 'never a 500')."""

import logging
from contextlib import contextmanager
from typing import Any, Iterator, Literal

import redis.exceptions
from celery import chain, chord, group
from celery.canvas import Signature
from celery.result import GroupResult
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from pydantic import BaseModel, Field, field_validator
from tasks import add, square, total
from tasks import app as celery_app  # noqa: F401  (the tests use it; send through it)

MAX_NUMBERS = 100
MAX_USER_ID = 2**31 - 1  # a 32-bit database id
MAX_NUMBER = 10**9  # the largest magnitude of each number
UNAVAILABLE_WITHIN_SECONDS = 3  # a request answers within this long when Redis is down
RETRY_AFTER_SECONDS = 5

logger = logging.getLogger(__name__)


class NotifyRequest(BaseModel):
    """The body of POST /tasks/notify."""

    notification_id: str = Field(min_length=1, max_length=64)
    user_id: int = Field(ge=1, le=MAX_USER_ID)
    message: str = Field(min_length=1, max_length=500)


class WorkflowRequest(BaseModel):
    """The body of POST /workflows."""

    kind: Literal["chain", "group", "chord"]
    numbers: list[int] = Field(min_length=1, max_length=MAX_NUMBERS)

    @field_validator("numbers")
    @classmethod
    def _each_number_in_range(cls, numbers: list[int]) -> list[int]:
        for n in numbers:
            if not -MAX_NUMBER <= n <= MAX_NUMBER:
                raise ValueError(f"each number must be within ±{MAX_NUMBER}, got {n}")
        return numbers


class TaskAccepted(BaseModel):
    """The answer of an endpoint that queued work: where to ask for its state."""

    task_id: str


class TaskStatus(BaseModel):
    """The state of a task (or a saved group) and its result or error."""

    task_id: str
    state: str
    result: Any = None
    error: str | None = None


def build_workflow(kind: str, numbers: list[int]) -> Signature:
    """Return the canvas for ``kind`` over ``numbers``."""
    if kind == "chain":
        first, *rest = numbers
        return chain(add.s(0, first), *(add.s(n) for n in rest))
    if kind == "group":
        return group(square.s(n) for n in numbers)
    if kind == "chord":
        return chord([square.s(n) for n in numbers], total.s())
    raise ValueError(f"unknown workflow kind {kind!r}")


def _error_text(exc: Any) -> str:
    return f"{type(exc).__name__}: {exc}"


def task_status(task_id: str) -> TaskStatus:
    """Return the state of ``task_id`` from the result backend (never wait for it)."""
    saved = GroupResult.restore(task_id, app=celery_app)
    if saved is not None:
        if not saved.ready():
            return TaskStatus(task_id=task_id, state="PENDING")
        failed = [r for r in saved.results if r.state == "FAILURE"]
        if failed:
            return TaskStatus(task_id=task_id, state="FAILURE", error=_error_text(failed[0].result))
        return TaskStatus(task_id=task_id, state="SUCCESS", result=[r.result for r in saved.results])

    result = celery_app.AsyncResult(task_id)
    state = result.state
    if state == "SUCCESS":
        return TaskStatus(task_id=task_id, state=state, result=result.result)
    if state == "FAILURE":
        return TaskStatus(task_id=task_id, state=state, error=_error_text(result.result))
    return TaskStatus(task_id=task_id, state=state)


# -- Redis down ---------------------------------------------------------------------------------

WEB_PROCESS_LIMITS: dict[str, Any] = {
    "broker_connection_timeout": 0.5,
    "redis_socket_connect_timeout": 0.5,
    "redis_socket_timeout": 0.5,
    "task_publish_retry_policy": {
        "max_retries": 0,
        "interval_start": 0,
        "interval_step": 0,
        "interval_max": 0,
    },
}
BACKEND_RETRY_POLICY = {"max_retries": 0, "interval_start": 0, "interval_step": 0, "interval_max": 0}
# a Redis that accepts connections but never answers: bound the broker's sockets too
BROKER_SOCKET_LIMITS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}


def _connection_trouble(exc: BaseException | None) -> bool:
    """True if ``exc`` (or anything it was raised from) means Redis cannot be reached."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(
            exc,
            (
                OperationalError,
                redis.exceptions.ConnectionError,
                redis.exceptions.TimeoutError,
                ConnectionError,
                TimeoutError,
            ),
        ):
            return True
        return False
    return False


@contextmanager
def _redis_guard(what: str) -> Iterator[None]:
    try:
        yield
    except HTTPException:
        raise
    except Exception as exc:
        if not _connection_trouble(exc):
            raise
        logger.warning("%s: Redis unavailable (%s: %s)", what, type(exc).__name__, exc)
        raise HTTPException(
            status_code=503,
            detail="the task queue is unavailable, try again later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None


def _bound_web_calls() -> None:
    transport_options = dict(celery_app.conf.result_backend_transport_options or {})
    transport_options["retry_policy"] = dict(BACKEND_RETRY_POLICY)
    broker_options = {**(celery_app.conf.broker_transport_options or {}), **BROKER_SOCKET_LIMITS}
    celery_app.conf.update(
        WEB_PROCESS_LIMITS,
        result_backend_transport_options=transport_options,
        broker_transport_options=broker_options,
    )


def create_app() -> FastAPI:
    """Return a NEW FastAPI app with the endpoints described at the top."""
    _bound_web_calls()
    api = FastAPI(title="cronkata tasks")

    @api.post("/tasks/notify", status_code=202, response_model=TaskAccepted)
    def post_notify(body: NotifyRequest) -> TaskAccepted:
        with _redis_guard("POST /tasks/notify"):
            sent = celery_app.send_task(
                "cronkata.notify", args=[body.notification_id, body.user_id, body.message]
            )
        return TaskAccepted(task_id=sent.id)

    @api.post("/workflows", status_code=202, response_model=TaskAccepted)
    def post_workflow(body: WorkflowRequest) -> TaskAccepted:
        with _redis_guard("POST /workflows"):
            sent = build_workflow(body.kind, body.numbers).apply_async()
            if isinstance(sent, GroupResult):
                sent.save()
        return TaskAccepted(task_id=sent.id)

    @api.get("/tasks/{task_id}", response_model=TaskStatus)
    def get_task(task_id: str) -> TaskStatus:
        with _redis_guard("GET /tasks/{id}"):
            return task_status(task_id)

    @api.get("/health")
    def health() -> JSONResponse:
        try:
            with celery_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        except Exception as exc:
            if not _connection_trouble(exc):
                raise
            logger.warning("health: broker unavailable (%s)", exc)
            return JSONResponse(
                {"broker": "unavailable"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return JSONResponse({"broker": "ok"})

    return api


app = create_app()
