"""Correct: Annotated constraints, signatures by task name, routes added with add_api_route."""

import functools
import logging
import operator
from collections.abc import Callable
from typing import Annotated, Any, Literal

import redis

from celery import chain, chord, group
from celery.canvas import Signature
from celery.result import AsyncResult, GroupResult
from fastapi import FastAPI, HTTPException, status
from kombu.exceptions import OperationalError
from pydantic import BaseModel, Field
from tasks import app as celery_app  # noqa: F401  (the tests use it; send through it)

MAX_NUMBERS = 100
MAX_USER_ID = 2**31 - 1
MAX_NUMBER = 10**9
UNAVAILABLE_WITHIN_SECONDS = 3  # a request answers within this long when Redis is down
RETRY_AFTER_SECONDS = 5

logger = logging.getLogger(__name__)

NotificationId = Annotated[str, Field(min_length=1, max_length=64)]
PositiveId = Annotated[int, Field(gt=0, le=MAX_USER_ID)]
MessageText = Annotated[str, Field(min_length=1, max_length=500)]


class NotifyRequest(BaseModel):
    """The body of POST /tasks/notify."""

    notification_id: NotificationId
    user_id: PositiveId
    message: MessageText


class WorkflowRequest(BaseModel):
    """The body of POST /workflows."""

    kind: Literal["chain", "group", "chord"]
    numbers: Annotated[
        list[Annotated[int, Field(ge=-MAX_NUMBER, le=MAX_NUMBER)]],
        Field(min_length=1, max_length=MAX_NUMBERS),
    ]


class TaskAccepted(BaseModel):
    """The answer of an endpoint that queued work: where to ask for its state."""

    task_id: str


class TaskStatus(BaseModel):
    """The state of a task (or a saved group) and its result or error."""

    task_id: str
    state: str
    result: Any = None
    error: str | None = None


def _sig(name: str, *args: Any) -> Signature:
    return celery_app.signature(f"cronkata.{name}", args=args)


def _chain(numbers: list[int]) -> Signature:
    first, *rest = numbers
    steps = [_sig("add", 0, first)] + [_sig("add", n) for n in rest]
    return functools.reduce(operator.or_, steps, chain())


def _group(numbers: list[int]) -> Signature:
    return group([_sig("square", n) for n in numbers])


def _chord(numbers: list[int]) -> Signature:
    return chord(_group(numbers).tasks, _sig("total"))


_BUILDERS = {"chain": _chain, "group": _group, "chord": _chord}


def build_workflow(kind: str, numbers: list[int]) -> Signature:
    """Return the canvas for ``kind`` over ``numbers`` (tasks add, square, total of tasks.py)."""
    try:
        builder = _BUILDERS[kind]
    except KeyError:
        raise ValueError(f"no workflow called {kind!r}") from None
    return builder(list(numbers))


def _describe(exc: Any) -> str:
    return "{}: {}".format(type(exc).__name__, exc)


def task_status(task_id: str) -> TaskStatus:
    """Return the state of ``task_id`` from the result backend (never wait for it)."""
    group_result = GroupResult.restore(task_id, app=celery_app)
    if group_result is not None:
        if not group_result.ready():
            return TaskStatus(task_id=task_id, state="PENDING")
        if group_result.successful():
            return TaskStatus(task_id=task_id, state="SUCCESS",
                              result=[child.result for child in group_result.results])
        broken = [child for child in group_result.results if child.state == "FAILURE"]
        return TaskStatus(task_id=task_id, state="FAILURE",
                          error=_describe(broken[0].result) if broken else None)

    single: AsyncResult = celery_app.AsyncResult(task_id)
    match single.state:
        case "SUCCESS":
            return TaskStatus(task_id=task_id, state="SUCCESS", result=single.result)
        case "FAILURE":
            return TaskStatus(task_id=task_id, state="FAILURE", error=_describe(single.result))
        case other:
            return TaskStatus(task_id=task_id, state=other)


def _down(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, (OperationalError, redis.ConnectionError, redis.TimeoutError)):
            return True
        error = error.__cause__ or error.__context__
    return False


def _guarded(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The endpoint, answering 503 instead of failing while Redis cannot be reached."""

    @functools.wraps(endpoint)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        except Exception as error:
            if not _down(error):
                raise
            logger.warning("redis unreachable in %s: %s", endpoint.__name__, error)
            raise HTTPException(503, "queue unavailable",
                                headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None

    return guarded


def _health() -> Any:
    from fastapi.responses import JSONResponse

    try:
        celery_app.connection_for_read().connect()  # kombu: one attempt
    except Exception:
        return JSONResponse({"broker": "unavailable"}, status_code=503)
    return {"broker": "ok"}


def _post_notify(body: NotifyRequest) -> TaskAccepted:
    sent = celery_app.send_task(
        "cronkata.notify",
        retry=False,
        kwargs={"notification_id": body.notification_id, "user_id": body.user_id,
                "message": body.message},
    )
    logger.info("notification %s handed to celery (task %s)", body.notification_id, sent.id)
    return TaskAccepted(task_id=sent.id)


def _post_workflow(body: WorkflowRequest) -> TaskAccepted:
    sent = build_workflow(body.kind, body.numbers).apply_async()
    if isinstance(sent, GroupResult):
        sent.save()  # a group id is only queryable once saved
    logger.info("workflow %s over %d numbers handed to celery (%s)",
                body.kind, len(body.numbers), sent.id)
    return TaskAccepted(task_id=sent.id)


def _get_status(task_id: str) -> TaskStatus:
    return task_status(task_id)


def create_app() -> FastAPI:
    """Return a NEW FastAPI app with the three endpoints described at the top."""
    celery_app.conf.broker_connection_timeout = 2
    celery_app.conf.redis_socket_connect_timeout = 2
    celery_app.conf.redis_socket_timeout = 2
    celery_app.conf.result_backend_transport_options = {
        **(celery_app.conf.result_backend_transport_options or {}),
        "retry_policy": {"max_retries": 0},
    }
    celery_app.conf.task_publish_retry = False
    api = FastAPI()
    api.add_api_route("/health", _health, methods=["GET"])
    api.add_api_route("/tasks/notify", _guarded(_post_notify), methods=["POST"],
                      status_code=status.HTTP_202_ACCEPTED, response_model=TaskAccepted)
    api.add_api_route("/workflows", _guarded(_post_workflow), methods=["POST"],
                      status_code=status.HTTP_202_ACCEPTED, response_model=TaskAccepted)
    api.add_api_route("/tasks/{task_id}", _guarded(_get_status), methods=["GET"],
                      response_model=TaskStatus)
    return api


app = create_app()
