"""Correct: an APIRouter, signatures from the task objects, a chain built with |=, Field(...) constraints."""

import logging
from typing import Annotated, Any, Literal

from celery import chord, group
from celery.canvas import Signature
from celery.result import GroupResult
import kombu
import kombu.exceptions
import redis.exceptions
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from tasks import add, notify, square, total
from tasks import app as celery_app  # noqa: F401  (the tests use it; send through it)

MAX_NUMBERS = 100
MAX_USER_ID = 2**31 - 1
MAX_NUMBER = 10**9
UNAVAILABLE_WITHIN_SECONDS = 3  # a request answers within this long when Redis is down
RETRY_AFTER_SECONDS = 5
_CONNECTION_ERRORS = (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError,
                      redis.exceptions.TimeoutError)


class QueueUnavailable(Exception):
    """Redis (broker or result backend) could not be reached."""


def _redis_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, _CONNECTION_ERRORS):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise QueueUnavailable(str(cause)) from exc

logger = logging.getLogger(__name__)


class NotifyRequest(BaseModel):
    """The body of POST /tasks/notify."""

    notification_id: str = Field(..., min_length=1, max_length=64, description="business id")
    user_id: int = Field(..., gt=0, lt=MAX_USER_ID + 1)
    message: str = Field(..., min_length=1, max_length=500)


class WorkflowRequest(BaseModel):
    """The body of POST /workflows."""

    kind: Literal["chain", "group", "chord"]
    numbers: list[Annotated[int, Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]] = Field(
        ..., min_length=1, max_length=MAX_NUMBERS)


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
    """Return the canvas for ``kind`` over ``numbers`` (tasks add, square, total of tasks.py)."""
    if kind == "chain":
        canvas: Signature = add.s(0, numbers[0])
        for n in numbers[1:]:
            canvas |= add.s(n)
        return canvas
    squares = [square.s(n) for n in numbers]
    if kind == "group":
        return group(*squares)
    if kind == "chord":
        return chord(squares, body=total.s())
    raise ValueError(kind)


def _error_text(exc: Any) -> str:
    if isinstance(exc, BaseException):
        return f"{exc.__class__.__name__}: {exc}"
    return f"{type(exc).__name__}: {exc!s}"


def task_status(task_id: str) -> TaskStatus:
    """Return the state of ``task_id`` from the result backend (never wait for it)."""
    answer: dict[str, Any] = {"task_id": task_id}
    saved = GroupResult.restore(task_id, app=celery_app)
    if saved is not None:
        if not saved.ready():
            answer["state"] = "PENDING"
        elif saved.failed():
            answer["state"] = "FAILURE"
            first = next((r.result for r in saved.results if r.state == "FAILURE"), None)
            answer["error"] = _error_text(first) if first is not None else None
        else:
            answer["state"] = "SUCCESS"
            answer["result"] = [r.result for r in saved.results]
        return TaskStatus(**answer)

    result = celery_app.AsyncResult(task_id)
    answer["state"] = result.state
    if result.state == "SUCCESS":
        answer["result"] = result.result
    elif result.state == "FAILURE":
        answer["error"] = _error_text(result.result)
    return TaskStatus(**answer)


def _router() -> APIRouter:
    router = APIRouter(prefix="/tasks")

    @router.post("/notify", status_code=202)
    def post_notify(body: NotifyRequest) -> TaskAccepted:
        queued = _redis_call(
            notify.apply_async, args=(body.notification_id, body.user_id, body.message),
            retry_policy={"max_retries": 0})
        logger.info("notify queued: id=%s task=%s", body.notification_id, queued.id)
        return TaskAccepted(task_id=queued.id)

    @router.get("/{task_id}")
    def get_task(task_id: str) -> TaskStatus:
        return _redis_call(task_status, task_id)

    return router


def create_app() -> FastAPI:
    """Return a NEW FastAPI app with the three endpoints described at the top."""
    celery_app.conf.update(
        broker_connection_timeout=1.5,
        redis_socket_connect_timeout=1.5,
        redis_socket_timeout=1.5,
        result_backend_transport_options={"retry_policy": {"max_retries": 0}},
    )
    api = FastAPI()
    api.include_router(_router())

    @api.exception_handler(QueueUnavailable)
    def unavailable(request: Request, exc: QueueUnavailable) -> JSONResponse:
        logger.warning("%s: redis unavailable: %s", request.url.path, exc)
        return JSONResponse({"detail": f"queue unavailable: {exc}"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @api.get("/health")
    def health() -> JSONResponse:
        probe = kombu.Connection(celery_app.conf.broker_url, connect_timeout=1)
        try:
            probe.ensure_connection(max_retries=1, interval_start=0)
        except Exception:
            return JSONResponse({"broker": "unavailable"}, status_code=503)
        finally:
            probe.release()
        return JSONResponse({"broker": "ok"})

    @api.post("/workflows", status_code=202)
    def post_workflow(body: WorkflowRequest) -> TaskAccepted:
        def send() -> Any:
            sent = build_workflow(body.kind, body.numbers).apply_async(
                retry_policy={"max_retries": 0})
            if body.kind == "group":
                sent.save()
            return sent

        queued = _redis_call(send)
        logger.info("workflow queued: kind=%s id=%s", body.kind, queued.id)
        return TaskAccepted(task_id=queued.id)

    return api


app = create_app()
