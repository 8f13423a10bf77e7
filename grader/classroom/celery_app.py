"""The Celery application of class grading: ``celery -A grader.classroom worker``.

The broker and the result backend are Redis, by default database 10 of the local Redis;
``CRONKATA_CLASS_BROKER`` (and ``CRONKATA_CLASS_BACKEND``, default: the broker) point
them elsewhere, e.g. ``redis://grading-host:6379/10`` for workers on other machines.
Every worker needs a checkout of the same course (the task checks the course version)
and bubblewrap. Settings: JSON only, late acknowledgement (a worker that dies mid-grading
leaves the message to another worker), one message prefetched at a time (gradings are
long), results kept for a week.
"""

from __future__ import annotations

import os

from celery import Celery

DEFAULT_BROKER = "redis://127.0.0.1:6379/10"


def broker_url() -> str:
    """The broker URL from the environment (``CRONKATA_CLASS_BROKER``)."""
    return os.environ.get("CRONKATA_CLASS_BROKER") or DEFAULT_BROKER


def backend_url() -> str:
    """The result backend URL (``CRONKATA_CLASS_BACKEND``, default: the broker)."""
    return os.environ.get("CRONKATA_CLASS_BACKEND") or broker_url()


app = Celery("grader.classroom", broker=broker_url(), backend=backend_url())
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_track_started=True,
    result_expires=7 * 24 * 3600,
    broker_connection_retry_on_startup=True,
    task_default_queue="cronkata-class",
    include=["grader.classroom.tasks"],
)
