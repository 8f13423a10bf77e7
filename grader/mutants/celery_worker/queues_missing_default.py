"""Breaks: task_queues declares a Queue for each name in QUEUES (only the routed queues, not 'celery')."""

import argparse
import logging
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from tasks import app as app

QUEUES = ("celery", "maintenance", "notifications")
DEFAULT_SCHEDULE_FILE = "celerybeat-schedule"

logger = logging.getLogger(__name__)


def worker_settings() -> dict[str, Any]:
    """Return the Celery settings of a worker process (lowercase setting names)."""
    return {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": 240,
        "task_time_limit": 300,
        "broker_transport_options": {"visibility_timeout": 3600},
        "task_queues": [Queue(name, Exchange(name), routing_key=name) for name in QUEUES if name != "celery"],
    }


def configure_worker(celery_app: Celery) -> Celery:
    """Apply ``worker_settings()`` to ``celery_app`` (``conf.update``) and return it."""
    celery_app.conf.update(worker_settings())
    return celery_app


def worker_argv(
    beat: bool = False, loglevel: str = "INFO", schedule_file: str | None = None
) -> list[str]:
    """Return the arguments for ``app.worker_main``."""
    argv = ["worker", f"--loglevel={loglevel}", f"--queues={','.join(QUEUES)}"]
    if beat:
        argv.append("--beat")
        argv.append(f"--schedule={schedule_file or DEFAULT_SCHEDULE_FILE}")
    return argv


def main(argv: list[str] | None = None) -> int:
    """Start a worker from the command line; return 0 once it has stopped."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--beat", action="store_true")
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--schedule-file", default=None)
    args = parser.parse_args(argv)
    app.worker_main(worker_argv(args.beat, args.loglevel, args.schedule_file))
    return 0


configure_worker(app)

if __name__ == "__main__":
    raise SystemExit(main())
