"""Level 3 reference solution: a FastAPI app that hands work to Celery and reports on it.

What it teaches (notes/07d_celery_beat_advanced.md):
    * the web process only *sends* messages: ``delay()`` / ``apply_async()`` return at once
      with a task id, so the endpoint answers 202 Accepted and the client polls for the state;
    * a task's state comes from the result backend: PENDING (also: an id nobody knows),
      STARTED, RETRY, SUCCESS with its result, FAILURE with its error;
    * canvas: a chain passes each result to the next task, a group runs tasks in parallel,
      a chord runs a group and then one callback with the list of results;
    * a group's id is not a task id: save the GroupResult so the status endpoint can find
      it again with ``GroupResult.restore``;
    * input is validated by pydantic before anything is queued (422 otherwise).

Unlike APScheduler's embedded mode (level 1), nothing runs inside this process: the
schedule lives in beat, the work in workers. Scaling the web tier out is therefore safe.

How to run (Redis on localhost:6379 and a worker running, see standalone_worker.py):
    cd solutions/celery_beat && uvicorn embedded_app:app
    curl -X POST localhost:8000/workflows -H 'content-type: application/json' \\
         -d '{"kind": "chord", "numbers": [1, 2, 3]}'
    curl localhost:8000/tasks/<task_id>
"""

import logging
from typing import Any, Literal

from celery import chain, chord, group
from celery.canvas import Signature
from celery.result import GroupResult
from fastapi import FastAPI, status
from pydantic import BaseModel, Field
from tasks import add, notify, square, total
from tasks import app as celery_app

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
    """The canvas for ``kind``: chain -> the running sum, group -> the squares,
    chord -> the sum of the squares."""
    if kind == "chain":
        first, *rest = numbers
        return chain(add.s(0, first), *(add.s(n) for n in rest))
    if kind == "group":
        return group(square.s(n) for n in numbers)
    if kind == "chord":
        return chord((square.s(n) for n in numbers), total.s())
    raise ValueError(f"unknown workflow kind {kind!r}")


def _describe(error: object) -> str:
    return f"{type(error).__name__}: {error}"


def task_status(task_id: str) -> TaskStatus:
    """The state of ``task_id``, a task id or the id of a saved group."""
    saved_group = GroupResult.restore(task_id, app=celery_app)
    if saved_group is not None:
        if not saved_group.ready():
            return TaskStatus(task_id=task_id, state="PENDING")
        if saved_group.successful():
            results = [child.result for child in saved_group.results]
            return TaskStatus(task_id=task_id, state="SUCCESS", result=results)
        failed = next(c for c in saved_group.results if c.failed())
        return TaskStatus(task_id=task_id, state="FAILURE", error=_describe(failed.result))
    result = celery_app.AsyncResult(task_id)
    state = result.state
    if state == "SUCCESS":
        return TaskStatus(task_id=task_id, state=state, result=result.result)
    if state == "FAILURE":
        return TaskStatus(task_id=task_id, state=state, error=_describe(result.result))
    return TaskStatus(task_id=task_id, state=state)


def create_app() -> FastAPI:
    """Build a new FastAPI app with the enqueue, workflow and status endpoints."""
    api = FastAPI(title="cronkata: Celery from FastAPI")

    # Plain `def` endpoints: sending a message and reading the backend are blocking calls.
    @api.post("/tasks/notify", status_code=status.HTTP_202_ACCEPTED)
    def enqueue_notification(body: NotifyRequest) -> TaskAccepted:
        """Queue one notification; answer at once with the task id."""
        result = notify.delay(body.notification_id, body.user_id, body.message)
        logger.info("queued notification %s as %s", body.notification_id, result.id)
        return TaskAccepted(task_id=result.id)

    @api.post("/workflows", status_code=status.HTTP_202_ACCEPTED)
    def start_workflow(body: WorkflowRequest) -> TaskAccepted:
        """Queue a chain, a group or a chord over ``numbers``; answer with the id to poll."""
        result = build_workflow(body.kind, body.numbers).apply_async()
        if isinstance(result, GroupResult):
            result.save()  # a group id is not a task id: store it so it can be restored
        logger.info("queued %s workflow as %s", body.kind, result.id)
        return TaskAccepted(task_id=result.id)

    @api.get("/tasks/{task_id}")
    def get_task(task_id: str) -> TaskStatus:
        """The state of a task or workflow, with its result once it succeeded."""
        return task_status(task_id)

    return api


app = create_app()
