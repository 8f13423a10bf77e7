"""Exercise celery_embedded (level 3): a FastAPI app that hands work to Celery (correct 2).

Style: Annotated constraints, signatures by task name, keyword arguments for notify,
and FastAPI exception handlers that turn connection errors into 503 answers.
"""

import logging
from typing import Annotated, Any, Literal

import redis.exceptions
from celery import chain, chord, group
from celery.canvas import Signature
from celery.result import AsyncResult, GroupResult
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from pydantic import BaseModel, Field, field_validator
from tasks import app as celery_app  # noqa: F401  (the tests use it; send through it)

MAX_NUMBERS = 100
MAX_USER_ID = 2**31 - 1  # a 32-bit database id
MAX_NUMBER = 10**9  # the largest magnitude of each number
UNAVAILABLE_WITHIN_SECONDS = 3  # a request answers within this long when Redis is down
RETRY_AFTER_SECONDS = 5

logger = logging.getLogger(__name__)

NotificationId = Annotated[str, Field(min_length=1, max_length=64)]
UserId = Annotated[int, Field(ge=1, le=MAX_USER_ID)]
Message = Annotated[str, Field(min_length=1, max_length=500)]


class NotifyRequest(BaseModel):
    """The body of POST /tasks/notify."""

    notification_id: NotificationId
    user_id: UserId
    message: Message


class WorkflowRequest(BaseModel):
    """The body of POST /workflows."""

    kind: Literal["chain", "group", "chord"]
    numbers: Annotated[list[int], Field(min_length=1, max_length=MAX_NUMBERS)]

    @field_validator("numbers", mode="after")
    @classmethod
    def check_magnitudes(cls, value: list[int]) -> list[int]:
        too_big = [n for n in value if abs(n) > MAX_NUMBER]
        if too_big:
            raise ValueError(f"numbers must be between -{MAX_NUMBER} and {MAX_NUMBER}")
        return value


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
    return celery_app.signature(name, args=args)


def build_workflow(kind: str, numbers: list[int]) -> Signature:
    """Return the canvas for ``kind`` over ``numbers`` (tasks add, square, total)."""
    builders = {
        "chain": lambda: chain(
            [_sig("cronkata.add", 0, numbers[0])] + [_sig("cronkata.add", n) for n in numbers[1:]]
        ),
        "group": lambda: group([_sig("cronkata.square", n) for n in numbers]),
        "chord": lambda: chord(
            header=[_sig("cronkata.square", n) for n in numbers], body=_sig("cronkata.total")
        ),
    }
    return builders[kind]()


def describe_error(exc: Any) -> str:
    return "{}: {}".format(exc.__class__.__name__, exc)


def _group_status(task_id: str, saved: GroupResult) -> TaskStatus:
    members: list[AsyncResult] = list(saved.results or [])
    if not all(member.ready() for member in members):
        return TaskStatus(task_id=task_id, state="PENDING")
    for member in members:
        if member.failed():
            return TaskStatus(task_id=task_id, state="FAILURE", error=describe_error(member.result))
    return TaskStatus(task_id=task_id, state="SUCCESS", result=[m.result for m in members])


def task_status(task_id: str) -> TaskStatus:
    """Return the state of ``task_id`` from the result backend (never wait for it)."""
    saved = GroupResult.restore(task_id, app=celery_app)
    if saved is not None:
        return _group_status(task_id, saved)
    res = celery_app.AsyncResult(task_id)
    status = TaskStatus(task_id=task_id, state=res.state)
    if status.state == "SUCCESS":
        status.result = res.result
    elif status.state == "FAILURE":
        status.error = describe_error(res.result)
    return status


def _web_only_limits() -> dict[str, Any]:
    conf = celery_app.conf
    backend_options = dict(conf.result_backend_transport_options or {})
    backend_options["retry_policy"] = {"max_retries": 0}
    broker_options = dict(conf.broker_transport_options or {})
    broker_options.update(socket_timeout=0.5, socket_connect_timeout=0.5)
    return dict(
        broker_connection_timeout=0.5,
        redis_socket_connect_timeout=0.5,
        redis_socket_timeout=0.5,
        result_backend_transport_options=backend_options,
        broker_transport_options=broker_options,
        task_publish_retry_policy={"max_retries": 0, "interval_start": 0},
    )


UNREACHABLE = (
    OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def _caused_by_unreachable_redis(error: BaseException) -> bool:
    chain_of_causes = []
    current: BaseException | None = error
    while current is not None and current not in chain_of_causes:
        chain_of_causes.append(current)
        current = current.__cause__ or current.__context__
    return any(
        isinstance(e, UNREACHABLE) or (isinstance(e, RuntimeError) and "Retry limit exceeded" in str(e))
        for e in chain_of_causes
    )


def _service_unavailable() -> JSONResponse:
    return JSONResponse(
        status_code=503,
        content={"detail": "Redis is unreachable; retry later"},
        headers={"Retry-After": f"{RETRY_AFTER_SECONDS}"},
    )


def create_app() -> FastAPI:
    """Return a NEW FastAPI app with the endpoints described at the top."""
    celery_app.conf.update(**_web_only_limits())
    web = FastAPI()

    async def on_redis_error(request: Request, exc: Exception) -> JSONResponse:
        if not _caused_by_unreachable_redis(exc):
            raise exc
        logger.warning("%s %s -> 503 (%r)", request.method, request.url.path, exc)
        return _service_unavailable()

    for error_type in (*UNREACHABLE, RuntimeError):
        web.add_exception_handler(error_type, on_redis_error)

    @web.post("/tasks/notify", status_code=202)
    def queue_notification(request_body: NotifyRequest) -> TaskAccepted:
        queued = celery_app.tasks["cronkata.notify"].apply_async(
            kwargs={
                "notification_id": request_body.notification_id,
                "user_id": request_body.user_id,
                "message": request_body.message,
            }
        )
        return TaskAccepted(task_id=queued.id)

    @web.post("/workflows", status_code=202)
    def queue_workflow(request_body: WorkflowRequest) -> TaskAccepted:
        handle = build_workflow(request_body.kind, request_body.numbers).apply_async()
        if isinstance(handle, GroupResult):
            handle.save()  # a group id is only findable once saved
        return TaskAccepted(task_id=handle.id)

    @web.get("/tasks/{task_id}")
    def read_status(task_id: str) -> TaskStatus:
        return task_status(task_id)

    @web.get("/health")
    def broker_health() -> JSONResponse:
        connection = celery_app.connection_for_read()
        try:
            connection.ensure_connection(max_retries=0)
        except Exception as exc:
            if not _caused_by_unreachable_redis(exc):
                raise
            return JSONResponse({"broker": "unavailable"}, status_code=503)
        finally:
            connection.release()
        return JSONResponse({"broker": "ok"}, status_code=200)

    return web


app = create_app()
