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
    * input is validated by pydantic before anything is queued (422 otherwise);
    * Redis down is an answer, not a hang: this process bounds every broker and backend
      call (a worker keeps Celery's patient defaults: it must not lose a result), answers
      503 with a short body and a Retry-After header, logs one line instead of a
      traceback, and works again as soon as Redis is back; ``GET /health`` reports it.

Unlike APScheduler's embedded mode (level 1), nothing runs inside this process: the
schedule lives in beat, the work in workers. Scaling the web tier out is therefore safe.

How to run (Redis on localhost:6379 and a worker running, see standalone_worker.py):
    cd solutions/celery_beat && ../../.venv/bin/uvicorn embedded_app:app
    curl -i localhost:8000/health         # 200 {"broker": "ok"}; 503 while Redis is down
    curl -X POST localhost:8000/workflows -H 'content-type: application/json' \\
         -d '{"kind": "chord", "numbers": [1, 2, 3]}'
    curl localhost:8000/tasks/<task_id>
"""

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal

import redis.exceptions
from celery import chain, chord, group
from celery.canvas import Signature
from celery.result import GroupResult
from fastapi import FastAPI, HTTPException, status
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from pydantic import BaseModel, Field, field_validator
from tasks import add, notify, square, total
from tasks import app as celery_app

MAX_NUMBERS = 100
MAX_USER_ID = 2**31 - 1  # a 32-bit database id: larger ids fail in the worker, not here
MAX_NUMBER = 10**9  # each number's magnitude: a 4,000-digit int would be queued as is
UNAVAILABLE_WITHIN_SECONDS = 3  # a request answers within this long when Redis is down
RETRY_AFTER_SECONDS = 5
# A request gives up quickly; Celery's defaults retry the result backend 20 times, 1 s
# apart (a 19 s hang), and never time out a connection that does not answer.
_WEB_PROCESS_SETTINGS: dict[str, Any] = {
    "broker_connection_timeout": 1.0,
    "redis_socket_connect_timeout": 1.0,
    "redis_socket_timeout": 2.0,
}
_BACKEND_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
_UNREACHABLE = (OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

logger = logging.getLogger(__name__)


class NotifyRequest(BaseModel):
    """The body of POST /tasks/notify."""

    notification_id: str = Field(min_length=1, max_length=64)
    user_id: int = Field(gt=0, le=MAX_USER_ID)
    message: str = Field(min_length=1, max_length=500)


class WorkflowRequest(BaseModel):
    """The body of POST /workflows."""

    kind: Literal["chain", "group", "chord"]
    numbers: list[int] = Field(min_length=1, max_length=MAX_NUMBERS)

    @field_validator("numbers")
    @classmethod
    def _each_number_bounded(cls, numbers: list[int]) -> list[int]:
        """Each number within -MAX_NUMBER..MAX_NUMBER (the list's length is checked above)."""
        for number in numbers:
            if abs(number) > MAX_NUMBER:
                raise ValueError(f"each number must be within -{MAX_NUMBER}..{MAX_NUMBER}")
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


def _bound_web_calls() -> None:
    """Make this process's broker and backend calls give up within seconds (see above).

    Called before the first call: Celery reads these settings when it first connects.
    """
    celery_app.conf.update(_WEB_PROCESS_SETTINGS)
    options = dict(celery_app.conf.result_backend_transport_options or {})
    options["retry_policy"] = _BACKEND_RETRY_POLICY
    celery_app.conf.result_backend_transport_options = options
    celery_app.conf.task_publish_retry_policy = _PUBLISH_RETRY_POLICY


def _broker_reachable() -> bool:
    """Whether the broker answers now (one quick attempt)."""
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=1)
    except Exception:  # any failure to connect means "not now"
        return False
    return True


def _unreachable_cause(error: BaseException) -> BaseException | None:
    """The connection error behind ``error``, if any (Celery wraps some of them)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, _UNREACHABLE):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def _answer_503_if_redis_is_down(what: str) -> Iterator[None]:
    """Turn a broker or backend connection failure inside the block into a 503."""
    try:
        yield
    except Exception as error:
        cause = _unreachable_cause(error)
        if cause is None:
            raise
        logger.warning("%s: Redis unavailable (%s: %s)", what, type(cause).__name__, cause)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the task queue is unavailable, try again later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None


@asynccontextmanager
async def _lifespan(api: FastAPI) -> AsyncIterator[None]:
    # uvicorn configures only its own loggers: without this, the "queued ..." and "Redis
    # unavailable" lines never show. A no-op where logging is configured already.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    yield


def create_app() -> FastAPI:
    """Build a new FastAPI app with the enqueue, workflow, status and health endpoints."""
    _bound_web_calls()
    api = FastAPI(title="cronkata: Celery from FastAPI", lifespan=_lifespan)

    @api.get("/health")
    def health() -> JSONResponse:
        """200 while the broker answers, 503 while it does not."""
        if _broker_reachable():
            return JSONResponse({"broker": "ok"})
        return JSONResponse({"broker": "unavailable"}, status_code=503)

    # Plain `def` endpoints: sending a message and reading the backend are blocking calls.
    @api.post("/tasks/notify", status_code=status.HTTP_202_ACCEPTED)
    def enqueue_notification(body: NotifyRequest) -> TaskAccepted:
        """Queue one notification; answer at once with the task id."""
        with _answer_503_if_redis_is_down("POST /tasks/notify"):
            result = notify.delay(body.notification_id, body.user_id, body.message)
        logger.info("queued notification %s as %s", body.notification_id, result.id)
        return TaskAccepted(task_id=result.id)

    @api.post("/workflows", status_code=status.HTTP_202_ACCEPTED)
    def start_workflow(body: WorkflowRequest) -> TaskAccepted:
        """Queue a chain, a group or a chord over ``numbers``; answer with the id to poll."""
        with _answer_503_if_redis_is_down("POST /workflows"):
            result = build_workflow(body.kind, body.numbers).apply_async()
            if isinstance(result, GroupResult):
                result.save()  # a group id is not a task id: store it so it can be restored
        logger.info("queued %s workflow as %s", body.kind, result.id)
        return TaskAccepted(task_id=result.id)

    @api.get("/tasks/{task_id}")
    def get_task(task_id: str) -> TaskStatus:
        """The state of a task or workflow, with its result once it succeeded."""
        with _answer_503_if_redis_is_down("GET /tasks/{task_id}"):
            return task_status(task_id)

    return api


app = create_app()
