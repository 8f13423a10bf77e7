"""Breaks: send cronkata.notify with notification_id, user_id, message (user_id and notification_id swapped)."""

import logging
from typing import Any, Literal

from celery import chain, chord, group
from celery.canvas import Signature
from celery.result import GroupResult
from fastapi import FastAPI
from pydantic import BaseModel, Field
from tasks import add, notify, square, total
from tasks import app as celery_app  # noqa: F401  (the tests use it; send through it)

MAX_NUMBERS = 100

logger = logging.getLogger(__name__)


class NotifyRequest(BaseModel):
    """The body of POST /tasks/notify."""

    notification_id: str = Field(min_length=1, max_length=64)
    user_id: int = Field(gt=0)
    message: str = Field(min_length=1, max_length=500)


class WorkflowRequest(BaseModel):
    """The body of POST /workflows."""

    kind: Literal["chain", "group", "chord"]
    numbers: list[int] = Field(min_length=1, max_length=MAX_NUMBERS)


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
        return chain(add.s(0, numbers[0]), *(add.s(n) for n in numbers[1:]))
    if kind == "group":
        return group(square.s(n) for n in numbers)
    if kind == "chord":
        return chord((square.s(n) for n in numbers), total.s())
    raise ValueError(f"unknown workflow kind: {kind!r}")


def _error(exc: Any) -> str:
    return f"{type(exc).__name__}: {exc}"


def task_status(task_id: str) -> TaskStatus:
    """Return the state of ``task_id`` from the result backend (never wait for it)."""
    saved = GroupResult.restore(task_id, app=celery_app)
    if saved is not None:
        if not saved.ready():
            return TaskStatus(task_id=task_id, state="PENDING")
        if saved.failed():
            failed = next(r for r in saved.results if r.failed())
            return TaskStatus(task_id=task_id, state="FAILURE", error=_error(failed.result))
        return TaskStatus(task_id=task_id, state="SUCCESS", result=[r.result for r in saved.results])
    result = celery_app.AsyncResult(task_id)
    state = result.state
    if state == "SUCCESS":
        return TaskStatus(task_id=task_id, state=state, result=result.result)
    if state == "FAILURE":
        return TaskStatus(task_id=task_id, state=state, error=_error(result.result))
    return TaskStatus(task_id=task_id, state=state)


def create_app() -> FastAPI:
    """Return a NEW FastAPI app with the three endpoints described at the top."""
    api = FastAPI(title="cronkata tasks")

    @api.post("/tasks/notify", status_code=202, response_model=TaskAccepted)
    def enqueue_notify(body: NotifyRequest) -> TaskAccepted:
        result = notify.delay(body.user_id, body.notification_id, body.message)
        logger.info("queued notify %s as %s", body.notification_id, result.id)
        return TaskAccepted(task_id=result.id)

    @api.post("/workflows", status_code=202, response_model=TaskAccepted)
    def enqueue_workflow(body: WorkflowRequest) -> TaskAccepted:
        result = build_workflow(body.kind, body.numbers).apply_async()
        if body.kind == "group":
            result.save()
        logger.info("queued %s workflow as %s", body.kind, result.id)
        return TaskAccepted(task_id=result.id)

    @api.get("/tasks/{task_id}", response_model=TaskStatus)
    def get_status(task_id: str) -> TaskStatus:
        return task_status(task_id)

    return api


app = create_app()
