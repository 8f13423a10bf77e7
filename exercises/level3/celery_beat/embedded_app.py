"""Exercise celery_embedded (level 3): a FastAPI app that hands work to Celery.

Read first: notes/07d_celery_beat_advanced.md (sections "FastAPI and Celery" and
"Canvas"). Do the celery_tasks exercise first: this file sends its tasks.

Nothing runs inside the web process: endpoints only *send* messages and read states from
the result backend (#nothing-runs-in-web). Endpoints:

  * ``POST /tasks/notify`` with a NotifyRequest body: send ``cronkata.notify`` with the
    body's notification_id, user_id and message, as the task's arguments (positional in
    that order, or by name) (#notify-sends-the-fields); answer 202 with
    ``{"task_id": ...}`` (#notify-answers-202);
  * ``POST /workflows`` with a WorkflowRequest body: send ``build_workflow(kind,
    numbers)``; answer 202 with ``{"task_id": ...}`` (for a group: the group's id)
    (#workflow-answers-202);
  * ``GET /tasks/{task_id}``: answer 200 with ``task_status(task_id)``, for any id
    (#status-answers-200);
  * ``GET /health``: 200 ``{"broker": "ok"}`` while the broker answers, 503
    ``{"broker": "unavailable"}`` while it does not (#health-reports-broker).

Redis down is an answer, not a hang. While the broker or the result backend cannot be
reached, POST /tasks/notify, POST /workflows and GET /tasks/{task_id} answer 503 with
a JSON ``{"detail": "..."}`` and a
``Retry-After: RETRY_AFTER_SECONDS`` header, never a 500, and each within
UNAVAILABLE_WITHIN_SECONDS (#redis-down-503). Celery's defaults retry the result backend
20 times, 1 s apart: in create_app, bound this process's calls (``broker_connection_timeout``,
``redis_socket_connect_timeout``, ``redis_socket_timeout``, a ``retry_policy`` in
``result_backend_transport_options``, ``task_publish_retry_policy``); workers keep their
patient defaults. As soon as Redis is back, the same app works again, without a restart
(#recovers-when-redis-returns).

Invalid bodies are answered 422 by FastAPI once the models below carry the constraints,
and nothing is sent for them (#invalid-bodies-422).

At the bottom, ``app = create_app()``, so that ``uvicorn embedded_app:app`` finds it
(#module-app).

Each promise the tests grade ends with a tag such as (#first-run-after-interval); a
failing test names its tag.

Keep the names, signatures and constants below exactly as they are: the hidden tests
import them (``celery_app`` too). Replace each ``raise NotImplementedError(...)``.

Check your work:  python3 -m grader check celery_embedded   (from the repository root)
Try it by hand:   cd exercises/level3/celery_beat && ../../../.venv/bin/uvicorn embedded_app:app
                  (with a worker running: ../../../.venv/bin/python standalone_worker.py),
                  then stop Redis and ask again: curl -i localhost:8000/health
"""

import logging
from typing import Any, Literal

from celery.canvas import Signature
from fastapi import FastAPI
from pydantic import BaseModel
from tasks import app as celery_app  # noqa: F401  (the tests use it; send through it)

MAX_NUMBERS = 100
MAX_USER_ID = 2**31 - 1  # a 32-bit database id
MAX_NUMBER = 10**9  # the largest magnitude of each number
UNAVAILABLE_WITHIN_SECONDS = 3  # a request answers within this long when Redis is down
RETRY_AFTER_SECONDS = 5

logger = logging.getLogger(__name__)


class NotifyRequest(BaseModel):
    """The body of POST /tasks/notify.

    TODO: constrain the fields with pydantic's Field: notification_id 1 to 64
    characters, user_id from 1 to MAX_USER_ID, message 1 to 500 characters, bounds
    included (#notify-constraints).
    """

    notification_id: str
    user_id: int
    message: str


class WorkflowRequest(BaseModel):
    """The body of POST /workflows.

    TODO: numbers must hold 1 to MAX_NUMBERS integers, each from -MAX_NUMBER to
    MAX_NUMBER, bounds included (Field(min_length=..., max_length=...) on the list; a
    ``field_validator`` that raises ValueError for the items) (#numbers-constraints).
    """

    kind: Literal["chain", "group", "chord"]
    numbers: list[int]


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
    """Return the canvas for ``kind`` over ``numbers`` (tasks add, square, total of tasks.py).

    * "chain": ``add.s(0, n0) | add.s(n1) | add.s(n2) ...``: its result is sum(numbers),
      one number included (#chain-sum);
    * "group": ``square.s(n)`` for each n, in parallel: the list of squares
      (#group-squares);
    * "chord": that group, then ``total.s()`` on its results: the sum of the squares
      (#chord-sum-of-squares).
    """
    raise NotImplementedError("build a chain, a group or a chord of signatures")


def task_status(task_id: str) -> TaskStatus:
    """Return the state of ``task_id`` from the result backend (never wait for it).

    If ``GroupResult.restore(task_id, app=celery_app)`` finds a saved group: "PENDING"
    until it is ready, i.e. until every member finished (#group-pending-until-ready),
    then "SUCCESS" with the list of its results (#group-success-list), or "FAILURE" if a
    member failed (#group-failure).
    Otherwise use ``celery_app.AsyncResult(task_id)``: its ``state`` (PENDING, STARTED,
    RETRY, SUCCESS, FAILURE) (#task-state), the ``result`` only when SUCCESS, None in
    every other state (#result-only-on-success), and when FAILURE an ``error`` string
    exactly "<ExceptionType>: <message>", e.g. "ValueError: bad input" (``.result`` is
    then the exception itself) (#failure-error-format).
    """
    raise NotImplementedError("read the state (and result or error) from the backend")


def create_app() -> FastAPI:
    """Return a NEW FastAPI app with the endpoints described at the top, each call a
    different app (#create-app-new).

    After sending a group, call ``result.save()``: a group id is not a task id, and
    task_status can only restore a group that was saved (#group-saved).
    """
    raise NotImplementedError(
        "FastAPI() with POST /tasks/notify, POST /workflows, GET /tasks/{id}, GET /health"
    )


# TODO: once create_app works, replace this line with `app = create_app()`
# so that `uvicorn embedded_app:app` finds the app.
app: FastAPI | None = None
