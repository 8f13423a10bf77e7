"""Correct: an APIRouter, signatures from the task objects, a chain built with |=, Field(...) constraints."""

import logging
from typing import Any, Literal

from celery import chord, group
from celery.canvas import Signature
from celery.result import GroupResult
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field
from tasks import add, notify, square, total
from tasks import app as celery_app  # noqa: F401  (the tests use it; send through it)

MAX_NUMBERS = 100

logger = logging.getLogger(__name__)


class NotifyRequest(BaseModel):
    """The body of POST /tasks/notify."""

    notification_id: str = Field(..., min_length=1, max_length=64, description="business id")
    user_id: int = Field(..., gt=0)
    message: str = Field(..., min_length=1, max_length=500)


class WorkflowRequest(BaseModel):
    """The body of POST /workflows."""

    kind: Literal["chain", "group", "chord"]
    numbers: list[int] = Field(..., min_length=1, max_length=MAX_NUMBERS)


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
        queued = notify.apply_async(
            args=(body.notification_id, body.user_id, body.message))
        logger.info("notify queued: id=%s task=%s", body.notification_id, queued.id)
        return TaskAccepted(task_id=queued.id)

    @router.get("/{task_id}")
    def get_task(task_id: str) -> TaskStatus:
        return task_status(task_id)

    return router


def create_app() -> FastAPI:
    """Return a NEW FastAPI app with the three endpoints described at the top."""
    api = FastAPI()
    api.include_router(_router())

    @api.post("/workflows", status_code=202)
    def post_workflow(body: WorkflowRequest) -> TaskAccepted:
        queued = build_workflow(body.kind, body.numbers).apply_async()
        if body.kind == "group":
            queued.save()
        logger.info("workflow queued: kind=%s id=%s", body.kind, queued.id)
        return TaskAccepted(task_id=queued.id)

    return api


app = create_app()
