"""The Celery task that grades one learner, and the client that sends a class to workers.

``grade_submission`` receives everything in its message (the snapshot's archive, the
exercises, the settings, the course version), so a worker needs no shared folder: only
a checkout of the same course. A worker whose course differs refuses the task (no
retry: a wrong course does not heal). Infrastructure errors (the sandbox could not
start, the grader failed) are retried with a back-off; a learner's failing, hanging or
hostile code is a normal result, never retried. Each task has a time limit: the
sandbox's own timeout plus a margin, after which Celery kills the worker process.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from celery.result import AsyncResult, ResultSet

from grader.classroom import isolate
from grader.classroom.celery_app import app
from grader.classroom.isolate import InfrastructureError, Outcome, Request, Settings
from grader.classroom.plan import ERROR, Plan
from grader.classroom.snapshot import course_version

logger = logging.getLogger(__name__)

TASK_NAME = "cronkata.class.grade"
MAX_RETRIES = 3
TIME_MARGIN = 60.0  # seconds past the sandbox's own timeout before Celery kills the task


class CourseMismatchError(RuntimeError):
    """The worker's course (suites, grader, solutions) is not the sender's."""


def payload_of(request: Request, settings: Settings, version: str) -> dict[str, Any]:
    """The JSON message of one grading."""
    return {
        "learner": request.learner,
        "archive": base64.b64encode(request.archive).decode(),
        "content_hash": request.content_hash,
        "only": list(request.only),
        "settings": settings.to_dict(),
        "course_version": version,
    }


@app.task(
    name=TASK_NAME,
    bind=True,
    acks_late=True,
    autoretry_for=(InfrastructureError,),
    retry_backoff=5,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=MAX_RETRIES,
)
def grade_submission(self: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """Grade one learner's snapshot on this worker; returns the Outcome as a dict."""
    mine = course_version()
    if payload["course_version"] != mine:
        raise CourseMismatchError(
            f"this worker has course version {mine}, the sender {payload['course_version']}: "
            "update the worker's checkout"
        )
    request = Request(
        learner=payload["learner"],
        archive=base64.b64decode(payload["archive"]),
        content_hash=payload["content_hash"],
        only=tuple(payload["only"]),
    )
    logger.info("grading %s (attempt %d)", request.learner, self.request.retries + 1)
    try:
        outcome = isolate.grade(request, Settings.from_dict(payload["settings"]))
    finally:
        isolate.remove_class_cgroups()
    outcome.host = str(self.request.hostname or outcome.host)
    return outcome.to_dict()


def _outcome_of(value: Any, result: AsyncResult) -> Outcome:
    if isinstance(value, dict) and "status" in value:
        return Outcome.from_dict(value)
    reason = result.result if result.failed() else value
    return Outcome(status=ERROR, message=f"the worker failed: {reason!r}"[:2000])


def run_celery(
    plan: Plan,
    on_result: Callable[[str, Outcome], None] | None = None,
    timeout: float | None = None,
) -> None:
    """Send every pending grading of ``plan`` to the workers and record the answers as
    they arrive (``timeout``: seconds to wait for all of them; None waits)."""
    pending = plan.pending()
    if not pending:
        return
    settings = plan.settings
    by_id: dict[str, str] = {}
    sent: list[AsyncResult] = []
    for key, request in pending:
        result = grade_submission.apply_async(
            args=[payload_of(request, settings, plan.version)],
            time_limit=settings.timeout + TIME_MARGIN,
            soft_time_limit=settings.timeout + TIME_MARGIN / 2,
        )
        by_id[result.id] = key
        sent.append(result)

    def arrived(task_id: str, value: Any) -> None:
        key = by_id[task_id]
        plan.record(key, _outcome_of(value, AsyncResult(task_id, app=app)))
        if on_result is not None:
            on_result(key, plan.outcomes[key])

    ResultSet(sent, app=app).join_native(timeout=timeout, propagate=False, callback=arrived)
