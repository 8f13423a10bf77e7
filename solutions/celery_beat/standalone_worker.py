"""Level 3 reference solution: a worker process configured for correctness, not speed.

What it teaches (notes/07d_celery_beat_advanced.md):
    * ``task_acks_late`` acknowledges a message after the task ran, not when it arrived, so
      a worker that dies mid-task does not lose it; ``task_reject_on_worker_lost`` makes a
      killed child process count as "not done" too (otherwise Celery acks it anyway);
      the price is that a message may run twice, so tasks must be idempotent;
    * ``worker_prefetch_multiplier = 1``: a worker reserves one message per process, so
      long tasks do not sit behind each other in one worker while others are idle;
    * time limits: soft < hard <= the broker's ``visibility_timeout``; a task still running
      when the visibility timeout expires is handed to a second worker (Redis broker);
    * queues: the worker declares and consumes every queue tasks are routed to
      (tasks.py's TASK_ROUTES, the beat entries' "queue" option, and the default queue).

How to run (Redis on localhost:6379, or set CELERY_BROKER_URL / CELERY_RESULT_BACKEND;
with the course's venv: `python3 -m grader setup`, once, from the repository root,
creates .venv):
    cd solutions/celery_beat && ../../.venv/bin/python standalone_worker.py         # a worker
    cd solutions/celery_beat && ../../.venv/bin/python standalone_worker.py --beat  # + beat
or with the celery command:
    cd solutions/celery_beat && ../../.venv/bin/celery -A standalone_worker worker --loglevel=INFO
Run --beat in exactly ONE process: two beats send every task twice.
"""

import argparse
import logging
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from tasks import app

QUEUES = ("celery", "maintenance", "notifications")
DEFAULT_SCHEDULE_FILE = "celerybeat-schedule"

logger = logging.getLogger(__name__)


def worker_settings() -> dict[str, Any]:
    """The Celery settings of a worker process (lowercase setting names)."""
    visibility_timeout = 3600  # Redis redelivers an unacked message after this long
    return {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": 240,
        "task_time_limit": 300,
        "broker_transport_options": {"visibility_timeout": visibility_timeout},
        "task_queues": tuple(Queue(name, Exchange(name), routing_key=name) for name in QUEUES),
        "task_track_started": True,  # the status endpoint can show STARTED
        "worker_send_task_events": True,  # Flower and `celery events` see the tasks
    }


def configure_worker(celery_app: Celery) -> Celery:
    """Apply ``worker_settings()`` to ``celery_app`` (before it is finalized); return it."""
    celery_app.conf.update(worker_settings())
    return celery_app


def worker_argv(
    beat: bool = False, loglevel: str = "INFO", schedule_file: str | None = None
) -> list[str]:
    """The arguments of ``app.worker_main``: a worker on QUEUES, with an embedded beat if asked."""
    argv = ["worker", f"--loglevel={loglevel}", f"--queues={','.join(QUEUES)}"]
    if beat:
        argv += ["--beat", f"--schedule={schedule_file or DEFAULT_SCHEDULE_FILE}"]
    return argv


def main(argv: list[str] | None = None) -> int:
    """Start a worker (and beat with ``--beat``) from the command line; return the exit code."""
    parser = argparse.ArgumentParser(description="cronkata Celery worker")
    parser.add_argument("--beat", action="store_true", help="also run beat in this process")
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--schedule-file", default=None, help="beat's schedule state file")
    options = parser.parse_args(argv)
    logger.info("starting worker on queues %s (beat: %s)", ",".join(QUEUES), options.beat)
    app.worker_main(worker_argv(options.beat, options.loglevel, options.schedule_file))
    return 0


configure_worker(app)

if __name__ == "__main__":
    raise SystemExit(main())
