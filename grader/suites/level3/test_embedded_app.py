"""Hidden suite of `celery_embedded` (exercises/level3/celery_beat/embedded_app.py).

The app is driven with FastAPI's TestClient. Its Celery app (tasks.py's, as
`embedded_app.celery_app`) is pointed at the in-memory broker and backend; workflows and
task states are produced by a real worker running in this test's process
(`grader.sim_celery.in_process_worker`), started only after the "before a worker" checks.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from types import ModuleType
from typing import Any

import pytest
from celery import Celery
from celery.result import AsyncResult, GroupResult
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from grader import paths
from grader.drawing import deterministic
from grader.feedback import expect, expect_equal
from grader.sim_celery import (
    RedisOverTcp,
    in_process_worker,
    queued_messages,
    routed_queues,
    use_memory_transport,
)
from grader.targets import Target, load_file
from grader.testing import environment

NOTE = "07d_celery_beat_advanced.md"
FILE = "celery_beat/embedded_app.py"
TEST_ENV = {
    "CELERY_BROKER_URL": "memory://",
    "CELERY_RESULT_BACKEND": "cache+memory://",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}
WAIT = 3.0  # seconds; the in-process worker answers in milliseconds
NOTIFY_FIELDS = ("notification_id", "user_id", "message")
UNAVAILABLE_WITHIN_SECONDS = 3  # the stub's promise (and constant)
RETRY_AFTER_SECONDS = 5
NOTIFY_BODY = {"notification_id": "n-503", "user_id": 7, "message": "redis is back"}
DRAWN = deterministic(max_examples=10)


@cache
def _reference() -> ModuleType:
    """The reference embedded_app.py: its models say which bodies are valid."""
    with environment(TEST_ENV):
        return load_file(paths.SOLUTIONS_DIR / FILE, "the reference embedded_app.py")


def _valid(model: type, body: dict[str, Any]) -> bool:
    try:
        model.model_validate(body)  # type: ignore[attr-defined]
    except ValidationError:
        return False
    return True


def _bind_notify(message: dict[str, Any]) -> dict[str, Any]:
    """The queued notify message's arguments by parameter name (positional or keyword)."""
    bound = dict(zip(NOTIFY_FIELDS, message["args"], strict=False))
    bound.update(message["kwargs"])
    return bound


def _new_id() -> str:
    return str(uuid.uuid4())


def _saved_group(celery_app: Celery, states: list[tuple[str, Any]]) -> str:
    """A saved GroupResult whose members are in ``states`` ((state, result) each)."""
    members = []
    for state, result in states:
        member = _new_id()
        if state != "PENDING":
            celery_app.backend.store_result(member, result, state)
        members.append(AsyncResult(member, app=celery_app))
    group = GroupResult(_new_id(), members, app=celery_app)
    group.save()
    return str(group.id)


@contextmanager
def grading_conditions() -> Iterator[None]:
    """Every test (and the import of the file): the in-memory broker and backend."""
    with environment(TEST_ENV):
        yield


def _load(target: Target) -> tuple[ModuleType, Celery, TestClient]:
    module = target.load(FILE)
    celery_app = module.celery_app
    use_memory_transport(celery_app)
    return module, celery_app, TestClient(module.create_app())


def _accepted(response: Any, what: str) -> str:
    expect_equal(response.status_code, 202, f"status of {what}", f"Body: {response.text[:300]}")
    body = response.json()
    task_id = body.get("task_id") if isinstance(body, dict) else None
    expect(
        isinstance(task_id, str) and task_id,
        f"{what} should answer {{'task_id': ...}}; got {body!r}",
    )
    return str(task_id)


def _status(client: TestClient, task_id: str) -> dict[str, Any]:
    response = client.get(f"/tasks/{task_id}")
    expect_equal(response.status_code, 200, f"status of GET /tasks/{task_id}")
    body = response.json()
    expect(isinstance(body, dict), f"GET /tasks/<id> should answer a JSON object; got {body!r}")
    return dict(body)


def _wait(celery_app: Celery, task_id: str) -> None:
    """Block (bounded) until the backend has a final state for task_id or the saved group."""
    from celery.result import GroupResult

    group = GroupResult.restore(task_id, app=celery_app)
    result = group if group is not None else celery_app.AsyncResult(task_id)
    try:
        result.get(timeout=WAIT, interval=0.01, propagate=False)
    except Exception:  # a timeout: the status the test reads next says what happened
        return


def _workflow(
    target: Target, kind: str, numbers: list[int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST a workflow; its status before a worker runs, and after."""
    _module, celery_app, client = _load(target)
    with client:
        task_id = _accepted(
            client.post("/workflows", json={"kind": kind, "numbers": numbers}),
            f"POST /workflows ({kind})",
        )
        before = _status(client, task_id)
        in_process_worker(celery_app)
        _wait(celery_app, task_id)
        after = _status(client, task_id)
    return before, after


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi",
    hint="@app.post('/tasks/notify', status_code=202): notify.delay(...) returns at once; "
    "answer {'task_id': result.id}.",
    timeout=10,
    spec=("notify-answers-202", "nothing-runs-in-web"),
)
def test_enqueue_answers_202_with_a_task_id(target: Target) -> None:
    _module, celery_app, client = _load(target)
    with client:
        task_id = _accepted(
            client.post(
                "/tasks/notify", json={"notification_id": "n-1", "user_id": 42, "message": "hi"}
            ),
            "POST /tasks/notify",
        )
    queued = queued_messages(celery_app, routed_queues(celery_app))
    expect_equal(
        [(m["task"], m["id"]) for m in queued],
        [("cronkata.notify", task_id)],
        "(task, id) of the messages queued by POST /tasks/notify",
        "The endpoint only sends a message (delay / apply_async / send_task); a worker runs it.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi",
    hint="notify.delay(body.notification_id, body.user_id, body.message): in the task's "
    "parameter order (or as keywords).",
    timeout=10,
    spec=("notify-sends-the-fields",),
)
def test_enqueued_message_carries_the_request_fields(target: Target) -> None:
    _module, celery_app, client = _load(target)
    body = {"notification_id": "n-8812", "user_id": 7, "message": "parcel on its way"}
    with client:
        _accepted(client.post("/tasks/notify", json=body), "POST /tasks/notify")
    queued = [
        m
        for m in queued_messages(celery_app, routed_queues(celery_app))
        if m["task"] == "cronkata.notify"
    ]
    expect_equal(
        [_bind_notify(m) for m in queued],
        [body],
        "arguments of the queued cronkata.notify message, by parameter "
        "(notification_id, user_id, message)",
        "Arguments in the wrong order reach the worker as a user id 'n-8812': the task "
        "fails there, long after the request was answered 202.",
    )


NOTIFY_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "notification_id": st.sampled_from([0, 1, 2, 63, 64, 65, 100]).map(lambda n: "i" * n),
        "user_id": st.sampled_from([-5, -1, 0, 1, 2, 42, 2**31 - 1, 2**31, 10**30]),
        "message": st.sampled_from([0, 1, 2, 64, 65, 499, 500, 501, 1000]).map(lambda n: "m" * n),
    },
)


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi",
    hint="notification_id: Field(min_length=1, max_length=64); user_id: Field(gt=0); "
    "message: Field(min_length=1, max_length=500). The maxima are inclusive.",
    timeout=30,
    spec=("notify-constraints", "invalid-bodies-422"),
)
@DRAWN
@given(body=NOTIFY_BODIES)
@example(body={"notification_id": "i" * 64, "user_id": 1, "message": "m" * 500})
@example(body={"notification_id": "i", "user_id": 0, "message": "m"})
@example(body={"notification_id": "i", "user_id": 1, "message": "m" * 501})
@example(body={"notification_id": "i", "user_id": 2**31 - 1, "message": "m"})
@example(body={"notification_id": "i", "user_id": 2**31, "message": "m"})
def test_notify_bodies_are_accepted_exactly_within_the_bounds(
    target: Target, body: dict[str, Any]
) -> None:
    _module, celery_app, client = _load(target)
    expected = 202 if _valid(_reference().NotifyRequest, body) else 422
    shown = {k: (f"<{len(v)} chars>" if isinstance(v, str) else v) for k, v in body.items()}
    code = client.post("/tasks/notify", json=body).status_code
    queued = len(queued_messages(celery_app, routed_queues(celery_app)))
    expect_equal(
        (code, queued),
        (expected, 1 if expected == 202 else 0),
        f"(status, messages queued) of POST /tasks/notify with {shown}",
        "notification_id 1..64 characters, user_id > 0, message 1..500 characters, all "
        "three required; anything else is answered 422 before a message is sent.",
    )


WORKFLOW_BODIES = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["chain", "group", "chord", "loop"]),
        "numbers": st.tuples(
            st.sampled_from([0, 1, 2, 99, 100, 101]),
            st.sampled_from([3, -(10**9), 10**9, 10**9 + 1, -(10**9) - 1, 10**4000]),
        ).map(lambda pair: [3] * (pair[0] - 1) + [pair[1]] if pair[0] else []),
    }
)


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi",
    hint="numbers: list[int] = Field(min_length=1, max_length=MAX_NUMBERS); kind a Literal.",
    timeout=30,
    spec=("numbers-constraints", "invalid-bodies-422"),
)
@DRAWN
@given(body=WORKFLOW_BODIES)
@example(body={"kind": "group", "numbers": [3] * 100})
@example(body={"kind": "chain", "numbers": []})
@example(body={"kind": "chord", "numbers": [3, 10**9, -(10**9)]})
@example(body={"kind": "chord", "numbers": [3, 10**9 + 1]})
def test_workflow_bodies_are_accepted_exactly_within_the_bounds(
    target: Target, body: dict[str, Any]
) -> None:
    _module, _celery_app, client = _load(target)
    expected = 202 if _valid(_reference().WorkflowRequest, body) else 422
    code = client.post("/workflows", json=body).status_code
    expect_equal(
        code,
        expected,
        f"status of POST /workflows with kind={body['kind']!r} and "
        f"{len(body['numbers'])} number(s)",
        f"1 to MAX_NUMBERS ({_reference().MAX_NUMBERS}) numbers, inclusive; kind chain, "
        "group or chord.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi",
    hint="Let pydantic validate: a BaseModel body with Field(min_length=1), Field(gt=0), "
    "Literal['chain', 'group', 'chord'].",
    timeout=10,
    spec=("invalid-bodies-422",),
)
def test_bad_input_is_rejected_with_422_and_nothing_is_queued(target: Target) -> None:
    _module, celery_app, client = _load(target)
    bad = [
        ("/tasks/notify", {"notification_id": "n-1", "user_id": "forty-two", "message": "hi"}),
        ("/tasks/notify", {"notification_id": "", "user_id": 42, "message": "hi"}),
        ("/tasks/notify", {"notification_id": "n-1", "user_id": 0, "message": "hi"}),
        ("/tasks/notify", {"user_id": 42, "message": "hi"}),
        ("/workflows", {"kind": "loop", "numbers": [1, 2]}),
        ("/workflows", {"kind": "chain", "numbers": []}),
        ("/workflows", {"kind": "chord", "numbers": ["x"]}),
    ]
    with client:
        codes = [(path, body, client.post(path, json=body).status_code) for path, body in bad]
    wrong = [f"  POST {path} {body} -> {code}" for path, body, code in codes if code != 422]
    expect(not wrong, "Invalid bodies must be answered 422:\n" + "\n".join(wrong))
    queued = queued_messages(celery_app, routed_queues(celery_app))
    expect_equal(queued, [], "messages queued by invalid requests")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#canvas",
    hint="chain(add.s(0, n0), add.s(n1), ...): starting from 0 makes one number work too; "
    "group(square.s(n) ...); chord(that group, total.s()): .s(), not the immutable .si().",
    timeout=30,
    spec=("chain-sum", "group-squares", "chord-sum-of-squares"),
)
@DRAWN
@given(
    kind=st.sampled_from(["chain", "group", "chord"]),
    numbers=st.lists(st.integers(-50, 50), min_size=1, max_size=6),
)
@example(kind="chain", numbers=[5])
@example(kind="chord", numbers=[7])
def test_build_workflow_computes_the_spec_for_any_numbers(
    target: Target, kind: str, numbers: list[int]
) -> None:
    module, _celery_app, _client = _load(target)
    expected: Any = {
        "chain": sum(numbers),
        "group": [n * n for n in numbers],
        "chord": sum(n * n for n in numbers),
    }[kind]
    outcome = module.build_workflow(kind, list(numbers)).apply()
    expect_equal(
        outcome.get(propagate=True, disable_sync_subtasks=False),
        expected,
        f"build_workflow({kind!r}, {numbers}).apply().get() (run in this process)",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi",
    hint="GET /tasks/{task_id}: AsyncResult(task_id, app=celery_app).state, and .result "
    "once it is SUCCESS.",
    timeout=10,
    spec=("workflow-answers-202", "status-answers-200", "task-state"),
)
def test_chain_state_moves_from_pending_to_success(target: Target) -> None:
    before, after = _workflow(target, "chain", [1, 2, 3, 4])
    expect_equal(before.get("state"), "PENDING", "state of the chain before any worker ran it")
    expect_equal(
        (after.get("state"), after.get("result")),
        ("SUCCESS", 10),
        "(state, result) of the chain 0+1, +2, +3, +4 once a worker ran it",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#canvas",
    hint="group(square.s(n) for n in numbers).apply_async(), then result.save(): a group's "
    "id can only be looked up again (GroupResult.restore) if it was saved.",
    timeout=10,
    spec=("group-saved", "group-success-list"),
)
def test_group_result_lists_each_square(target: Target) -> None:
    _before, after = _workflow(target, "group", [1, 2, 3])
    expect_equal(
        (after.get("state"), after.get("result")),
        ("SUCCESS", [1, 4, 9]),
        "(state, result) of the group over [1, 2, 3] once a worker ran it",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#canvas",
    hint="chord((square.s(n) for n in numbers), total.s()): the callback gets the list of "
    "the group's results.",
    timeout=10,
    spec=("chord-sum-of-squares",),
)
def test_chord_result_is_the_sum_of_squares(target: Target) -> None:
    _before, after = _workflow(target, "chord", [1, 2, 3, 4])
    expect_equal(
        (after.get("state"), after.get("result")),
        ("SUCCESS", 30),
        "(state, result) of the chord over [1, 2, 3, 4] once a worker ran it",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#failure-handling",
    hint="For a FAILURE, AsyncResult.result is the exception: "
    "f'{type(exc).__name__}: {exc}' as 'error', never the exception object itself.",
    timeout=10,
    spec=("failure-error-format",),
)
def test_failed_task_state_is_failure_with_its_error(target: Target) -> None:
    _module, celery_app, client = _load(target)

    @celery_app.task(name="grader.always_fails", shared=False)
    def always_fails() -> None:
        raise ValueError("the grader's task failed on purpose")

    with client:
        task_id = always_fails.delay().id
        in_process_worker(celery_app)
        _wait(celery_app, task_id)
        status = _status(client, task_id)
    expect_equal(
        (status.get("state"), status.get("error"), status.get("result")),
        ("FAILURE", "ValueError: the grader's task failed on purpose", None),
        "(state, error, result) of a task that raised ValueError('the grader's task failed "
        "on purpose')",
        "The error is exactly '<ExceptionType>: <message>': the type says what kind of "
        "failure it was, the message which one.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi",
    hint="Only a SUCCESS has a result: for STARTED the backend's result is the worker's "
    "metadata, for RETRY the exception; answer result None for them.",
    timeout=10,
    spec=("result-only-on-success", "task-state"),
)
def test_started_and_retrying_tasks_carry_no_result(target: Target) -> None:
    _module, celery_app, client = _load(target)
    started, retrying, unknown = _new_id(), _new_id(), _new_id()
    celery_app.backend.store_result(started, {"pid": 4242, "hostname": "w1@host"}, "STARTED")
    celery_app.backend.store_result(retrying, ConnectionError("provider timeout"), "RETRY")
    with client:
        seen = [
            (s.get("state"), s.get("result"), s.get("error"))
            for s in (_status(client, t) for t in (started, retrying, unknown))
        ]
    expect_equal(
        seen,
        [("STARTED", None, None), ("RETRY", None, None), ("PENDING", None, None)],
        "(state, result, error) of a STARTED task, a task waiting for its retry, and an id "
        "nobody knows",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#canvas",
    hint="saved_group.ready() is True only when every member finished: until then PENDING.",
    timeout=10,
    spec=("group-pending-until-ready",),
)
def test_a_partly_done_group_is_pending(target: Target) -> None:
    _module, celery_app, client = _load(target)
    unfinished: list[list[tuple[str, Any]]] = [
        [("SUCCESS", 1), ("PENDING", None), ("SUCCESS", 9)],
        # a member failed, another still runs: not ready yet, so not FAILURE yet
        [("FAILURE", ValueError("square of a bad number")), ("PENDING", None)],
        [("STARTED", None), ("SUCCESS", 4)],
    ]
    with client:
        for members in unfinished:
            group_id = _saved_group(celery_app, members)
            status = _status(client, group_id)
            expect_equal(
                status.get("state"),
                "PENDING",
                f"state of a saved group whose members are {[state for state, _ in members]}",
                f"Body: {status!r}. A group is PENDING until every member finished "
                "(saved_group.ready()), even when one of them failed already.",
            )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#canvas",
    hint="A ready group is SUCCESS only if saved_group.successful(); otherwise FAILURE.",
    timeout=10,
    spec=("group-failure",),
)
def test_a_group_with_a_failed_member_is_failure(target: Target) -> None:
    _module, celery_app, client = _load(target)
    group_id = _saved_group(
        celery_app, [("SUCCESS", 1), ("FAILURE", ValueError("square of a bad number"))]
    )
    with client:
        status = _status(client, group_id)
    expect_equal(
        status.get("state"),
        "FAILURE",
        "state of a saved group whose members are all done, one of them failed",
        f"Body: {status!r}. ready() only says that every member finished.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi",
    hint="create_app() builds a new FastAPI() (and its routes) each time it is called.",
    timeout=10,
    spec=("create-app-new",),
)
def test_create_app_returns_a_new_app_each_time(target: Target) -> None:
    module, _celery_app, _client = _load(target)
    first, second = module.create_app(), module.create_app()
    expect(
        isinstance(first, FastAPI) and isinstance(second, FastAPI) and first is not second,
        f"create_app() twice should give two FastAPI apps; got {first!r} and {second!r}.",
    )
    codes = [TestClient(api).get(f"/tasks/{_new_id()}").status_code for api in (first, second)]
    expect_equal(codes, [200, 200], "status of GET /tasks/<id> on each of the two apps")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi",
    hint="At the bottom of the module: app = create_app(), for `uvicorn embedded_app:app`.",
    timeout=10,
    spec=("module-app",),
)
def test_the_module_app_serves_the_endpoints(target: Target) -> None:
    module = target.load(FILE)
    use_memory_transport(module.celery_app)
    expect(
        isinstance(module.app, FastAPI), f"embedded_app.app should be a FastAPI app: {module.app!r}"
    )
    response = TestClient(module.app).get(f"/tasks/{_new_id()}")
    expect_equal(
        (response.status_code, response.json().get("state")),
        (200, "PENDING"),
        "(status, state) of GET /tasks/<unknown id> on embedded_app.app",
    )


# --- Redis down: an answer, not a hang ------------------------------------------------------


@contextmanager
def _over_tcp(target: Target) -> Iterator[tuple[RedisOverTcp, TestClient]]:
    """The learner's app with broker and backend on a Redis that the test switches off."""
    redis_server = RedisOverTcp()
    urls = {
        "CELERY_BROKER_URL": redis_server.url(0),
        "CELERY_RESULT_BACKEND": redis_server.url(1),
        "REDIS_URL": redis_server.url(2),
    }
    with redis_server, environment(urls):
        module = target.load(FILE)
        yield redis_server, TestClient(module.create_app(), raise_server_exceptions=False)


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """``call()``'s response and seconds taken, or (None, limit) if it took longer.

    The call runs in a daemon thread: a request stuck in Celery's retries cannot hold the
    test (the forked test process is discarded afterwards).
    """
    answer: list[Any] = []
    worker = threading.Thread(target=lambda: answer.append(call()), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(UNAVAILABLE_WITHIN_SECONDS)
    return (answer[0] if answer else None), time.monotonic() - started


def _across(
    redis_server: RedisOverTcp, states: tuple[str, ...], call: Callable[[], Any]
) -> list[tuple[Any, float]]:
    """``_timed(call)`` with Redis in each of ``states`` in turn ("down", else up)."""
    answers = []
    for state in states:
        if state == "down":
            redis_server.down()
        else:
            redis_server.up()
        answers.append(_timed(call))
    return answers


REQUESTS: dict[str, Callable[[TestClient], Any]] = {
    "POST /tasks/notify": lambda client: client.post("/tasks/notify", json=NOTIFY_BODY),
    "POST /workflows": lambda client: client.post(
        "/workflows", json={"kind": "group", "numbers": [2, 3]}
    ),
    "GET /tasks/{id}": lambda client: client.get(f"/tasks/{_new_id()}"),
}
UP_STATUS = {"POST /tasks/notify": 202, "POST /workflows": 202, "GET /tasks/{id}": 200}


def _expect_unavailable(response: Any, seconds: float, what: str, when: str) -> None:
    expect(
        response is not None,
        f"{what} {when} gave no answer within {UNAVAILABLE_WITHIN_SECONDS} s. Celery's "
        "defaults retry the result backend 20 times, 1 s apart (a 19 s hang per request): "
        "bound this process's calls in create_app (broker_connection_timeout, "
        "redis_socket_connect_timeout, redis_socket_timeout, a retry_policy in "
        "result_backend_transport_options, task_publish_retry_policy).",
    )
    body = response.text[:300]
    expect_equal(
        response.status_code,
        503,
        f"status of {what} {when} (after {seconds:.2f} s)",
        f"Body: {body}. A client can retry a 503 Service Unavailable; a 500 says the server "
        "is broken. Catch the connection error (kombu's OperationalError, redis-py's "
        "ConnectionError, also when Celery wraps it) and raise HTTPException(503).",
    )
    is_json = "json" in response.headers.get("content-type", "")
    detail = response.json().get("detail") if is_json else None
    expect(
        isinstance(detail, str) and detail.strip(),
        f"{what} {when} should answer a JSON {{'detail': '...'}} saying what is wrong; "
        f"got {body!r}",
    )
    expect_equal(
        response.headers.get("retry-after"),
        str(RETRY_AFTER_SECONDS),
        f"Retry-After header of the 503 of {what}",
        "Retry-After tells clients (and load balancers) when to try again.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#redis-down",
    hint="Wrap each endpoint's Celery call: on a connection error (also one Celery wraps in "
    "a RuntimeError: look at __cause__) raise HTTPException(503, detail, headers="
    "{'Retry-After': '5'}); in create_app, lower the broker and backend timeouts and retries.",
    timeout=30,
    spec=("redis-down-503",),
)
@pytest.mark.parametrize("what", list(REQUESTS))
def test_while_redis_is_down_each_endpoint_answers_503_at_once(target: Target, what: str) -> None:
    request = REQUESTS[what]
    with _over_tcp(target) as (redis_server, client):
        # down from the start; up; down again: a Redis restart breaks the pooled connections
        first, up, again = _across(redis_server, ("down", "up", "down"), lambda: request(client))
    _expect_unavailable(*first, what, "with Redis down from the start")
    response, seconds = up
    expect(
        response is not None and response.status_code == UP_STATUS[what],
        f"{what} with Redis up should answer {UP_STATUS[what]}; got "
        f"{getattr(response, 'status_code', 'no answer')} after {seconds:.2f} s",
    )
    _expect_unavailable(*again, what, "after Redis went down")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#redis-down",
    hint="GET /health: try one connection (celery_app.connection_for_write() and "
    "ensure_connection(max_retries=1)); {'broker': 'ok'} with 200, else "
    "{'broker': 'unavailable'} with 503.",
    timeout=30,
    spec=("health-reports-broker",),
)
def test_health_reports_the_broker_up_and_down(target: Target) -> None:
    states = ("up", "down", "up again")
    with _over_tcp(target) as (redis_server, client):
        answers = _across(redis_server, states, lambda: client.get("/health"))
    seen = []
    for state, (response, _seconds) in zip(states, answers, strict=True):
        expect(
            response is not None,
            f"GET /health with Redis {state} gave no answer within "
            f"{UNAVAILABLE_WITHIN_SECONDS} s: a health check must answer quickly "
            "(one connection attempt, not kombu's default of retrying for ever).",
        )
        is_json = "json" in response.headers.get("content-type", "")
        seen.append((response.status_code, response.json() if is_json else response.text))
    expect_equal(
        seen,
        [(200, {"broker": "ok"}), (503, {"broker": "unavailable"}), (200, {"broker": "ok"})],
        "(status, body) of GET /health with Redis up, down, up again",
        "A health endpoint that always says ok hides the outage from the load balancer; one "
        "that remembers a failure keeps the instance out after Redis is back.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#redis-down",
    hint="Nothing to remember: each request tries Redis again (kombu reconnects a pooled "
    "connection that broke); do not cache a failure or a dead connection.",
    timeout=30,
    spec=("recovers-when-redis-returns",),
)
def test_the_app_works_again_once_redis_is_back(target: Target) -> None:
    with _over_tcp(target) as (redis_server, client):
        notify = REQUESTS["POST /tasks/notify"]
        answers = _across(redis_server, ("up", "down", "up again"), lambda: notify(client))
        broker = redis_server.client(0)
        queued = sum(broker.llen(key) for key in broker.keys("*") if broker.type(key) == b"list")
    expect_equal(
        [getattr(response, "status_code", None) for response, _seconds in answers],
        [202, 503, 202],
        "status of POST /tasks/notify with Redis up, down, up again",
        "The same process must work again once Redis is back: no restart, no stale "
        "connection, no remembered failure.",
    )
    expect_equal(queued, 2, "messages waiting in the broker (one per 202)")
