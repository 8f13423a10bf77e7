"""Correct: settings kept on a config class, turned into a lowercase dict by worker_settings()."""

import argparse
import logging
import sys
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from tasks import app as app

QUEUES = ("celery", "maintenance", "notifications")
DEFAULT_SCHEDULE_FILE = "celerybeat-schedule"

logger = logging.getLogger(__name__)


class _ReliableWorkerConfig:
    """Settings for a worker that neither loses nor silently repeats tasks."""

    task_acks_late = True
    task_reject_on_worker_lost = True
    worker_prefetch_multiplier = 1
    task_soft_time_limit = 240
    task_time_limit = 300
    visibility_timeout = 3600  # Redis redelivers unacknowledged messages after this

    @classmethod
    def as_dict(cls) -> dict[str, Any]:
        return {
            "task_acks_late": cls.task_acks_late,
            "task_reject_on_worker_lost": cls.task_reject_on_worker_lost,
            "worker_prefetch_multiplier": cls.worker_prefetch_multiplier,
            "task_soft_time_limit": cls.task_soft_time_limit,
            "task_time_limit": cls.task_time_limit,
            "broker_transport_options": {"visibility_timeout": cls.visibility_timeout},
            "task_queues": tuple(Queue(q, Exchange(q), routing_key=q) for q in QUEUES),
        }


def worker_settings() -> dict[str, Any]:
    """Return the Celery settings of a worker process (lowercase setting names)."""
    return _ReliableWorkerConfig.as_dict()


def configure_worker(celery_app: Celery) -> Celery:
    """Apply ``worker_settings()`` to ``celery_app`` (``conf.update``) and return it."""
    settings = worker_settings()
    celery_app.conf.update(settings)
    logger.debug("worker configured: %s", sorted(settings))
    return celery_app


def worker_argv(
    beat: bool = False, loglevel: str = "INFO", schedule_file: str | None = None
) -> list[str]:
    """Return the arguments for ``app.worker_main``."""
    argv = ["worker", f"--loglevel={loglevel}", "--queues=" + ",".join(QUEUES)]
    if beat:
        argv += ["--beat", f"--schedule={schedule_file or DEFAULT_SCHEDULE_FILE}"]
    return argv


def main(argv: list[str] | None = None) -> int:
    """Start a worker from the command line; return 0 once it has stopped."""
    parser = argparse.ArgumentParser(description="cronkata Celery worker")
    parser.add_argument("--beat", action="store_true", help="also embed beat (one process only!)")
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--schedule-file", dest="schedule_file", default=None)
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args = worker_argv(beat=options.beat, loglevel=options.loglevel,
                       schedule_file=options.schedule_file)
    logger.info("starting celery %s", " ".join(args))
    app.worker_main(args)
    return 0


configure_worker(app)

if __name__ == "__main__":
    raise SystemExit(main())
