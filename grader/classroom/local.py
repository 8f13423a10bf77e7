"""Grading a class on this machine: parallel workers, one learner's sandbox each.

Workers are threads, each waiting on one sandboxed grading process, so ``workers``
learners are graded at once (default: one per CPU). Inside each sandbox the grader runs
``jobs`` graded tests at once; by default the machine's four-per-CPU budget is shared
between the workers. An infrastructure error is tried once more, then recorded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace

from grader.classroom import isolate
from grader.classroom.isolate import InfrastructureError, Outcome, Request, Settings
from grader.classroom.plan import ERROR, Plan

logger = logging.getLogger(__name__)

OnResult = Callable[[str, Outcome], None]  # (key, outcome), after it is recorded
LOCAL_ATTEMPTS = 2


def default_workers() -> int:
    """One worker per CPU."""
    return max(1, os.cpu_count() or 1)


def default_jobs(workers: int) -> int:
    """Graded tests at once inside one learner's sandbox when ``workers`` run together."""
    return max(2, 4 * (os.cpu_count() or 1) // max(1, workers))


def grade_one(request: Request, settings: Settings, attempts: int = LOCAL_ATTEMPTS) -> Outcome:
    """Grade one request; infrastructure errors are retried, then become an ``error``."""
    for attempt in range(1, attempts + 1):
        try:
            return isolate.grade(request, settings)
        except InfrastructureError as error:
            logger.warning("%s: attempt %d: %s", request.learner, attempt, error)
            last = str(error)
    return Outcome(status=ERROR, message=f"infrastructure error: {last}")


def run_local(plan: Plan, workers: int | None = None, on_result: OnResult | None = None) -> None:
    """Grade every pending submission of ``plan`` with ``workers`` parallel sandboxes."""
    count = workers or default_workers()
    settings = plan.settings
    if settings.jobs is None:
        settings = replace(settings, jobs=default_jobs(count))
    pending = plan.pending()
    if not pending:
        return
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="grade") as pool:

        def grade_and_record(key: str, request: Request) -> Outcome:
            outcome = grade_one(request, settings)
            plan.record(key, outcome)  # cached at once: an interrupt loses no finished work
            return outcome

        futures: dict[Future[Outcome], str] = {
            pool.submit(grade_and_record, key, request): key for key, request in pending
        }
        try:
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in done:
                    key = futures[future]
                    future.result()  # re-raises what went wrong in the worker
                    if on_result is not None:
                        on_result(key, plan.outcomes[key])
        except BaseException:
            for future in futures:
                future.cancel()
            isolate.stop_all()
            raise
        finally:
            isolate.remove_class_cgroups()
