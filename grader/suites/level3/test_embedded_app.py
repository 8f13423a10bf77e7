"""Hidden suite of `celery_embedded` (exercises/level3/celery_beat/embedded_app.py).

The app is driven with FastAPI's TestClient. Its Celery app (tasks.py's, as
`embedded_app.celery_app`) is pointed at the in-memory broker and backend; workflows and
task states are produced by a real worker running in this test's process
(`grader.sim_celery.in_process_worker`), started only after the "before a worker" checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from celery import Celery
from fastapi.testclient import TestClient

from grader.feedback import expect, expect_equal
from grader.sim_celery import (
    in_process_worker,
    queued_messages,
    routed_queues,
    use_memory_transport,
)
from grader.targets import Target
from grader.testing import environment

NOTE = "07d_celery_beat_advanced.md"
FILE = "celery_beat/embedded_app.py"
TEST_ENV = {
    "CELERY_BROKER_URL": "memory://",
    "CELERY_RESULT_BACKEND": "cache+memory://",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}
WAIT = 3.0  # seconds; the in-process worker answers in milliseconds


@pytest.fixture(autouse=True)
def _clean_environment() -> Iterator[None]:
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
    )
    message = queued[0]
    sent = [*message["args"], *message["kwargs"].values()]
    expect(
        "n-1" in sent and 42 in sent and "hi" in sent,
        f"The queued cronkata.notify message should carry the request's fields; got {message!r}",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi",
    hint="Let pydantic validate: a BaseModel body with Field(min_length=1), Field(gt=0), "
    "Literal['chain', 'group', 'chord'].",
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
    note=f"{NOTE}#fastapi",
    hint="GET /tasks/{task_id}: AsyncResult(task_id, app=celery_app).state, and .result "
    "once it is SUCCESS.",
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
    hint="For a FAILURE, AsyncResult.result is the exception: report its type and message "
    "as 'error', never the exception object itself.",
)
def test_failed_task_state_is_failure_with_its_error(target: Target) -> None:
    _module, celery_app, client = _load(target)

    @celery_app.task(name="grader.always_fails")
    def always_fails() -> None:
        raise ValueError("the grader's task failed on purpose")

    with client:
        task_id = always_fails.delay().id
        in_process_worker(celery_app)
        _wait(celery_app, task_id)
        status = _status(client, task_id)
    expect_equal(status.get("state"), "FAILURE", f"state of a task that raised; body: {status!r}")
    expect(
        "failed on purpose" in str(status.get("error")),
        f"The status of a failed task should carry its error message; got {status!r}",
    )
