"""Correct: time limits derived from one visibility constant, settings built with dict()."""

import argparse
import logging
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from tasks import app as app

QUEUES = ("celery", "maintenance", "notifications")
DEFAULT_SCHEDULE_FILE = "celerybeat-schedule"

logger = logging.getLogger(__name__)

_VISIBILITY_SECONDS = 2 * 60 * 60          # what Redis waits before redelivering
_HARD_LIMIT_SECONDS = 30 * 60              # well inside the visibility timeout
_SOFT_LIMIT_SECONDS = _HARD_LIMIT_SECONDS - 60


def _queue(name: str) -> Queue:
    return Queue(name, exchange=Exchange(name), routing_key=name)


def worker_settings() -> dict[str, Any]:
    """Return the Celery settings of a worker process (lowercase setting names)."""
    assert 0 < _SOFT_LIMIT_SECONDS < _HARD_LIMIT_SECONDS <= _VISIBILITY_SECONDS
    return dict(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=_SOFT_LIMIT_SECONDS,
        task_time_limit=_HARD_LIMIT_SECONDS,
        broker_transport_options=dict(visibility_timeout=_VISIBILITY_SECONDS),
        task_queues=[_queue(name) for name in QUEUES],
    )


def configure_worker(celery_app: Celery) -> Celery:
    """Apply ``worker_settings()`` to ``celery_app`` (``conf.update``) and return it."""
    celery_app.conf.update(**worker_settings())
    return celery_app


def worker_argv(
    beat: bool = False, loglevel: str = "INFO", schedule_file: str | None = None
) -> list[str]:
    """Return the arguments for ``app.worker_main``."""
    extra: list[str] = []
    if beat:
        state_file = schedule_file if schedule_file else DEFAULT_SCHEDULE_FILE
        extra = ["--beat", "--schedule=%s" % state_file]
    return ["worker", "--loglevel=%s" % loglevel, "--queues=%s" % ",".join(QUEUES), *extra]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="standalone_worker")
    parser.add_argument("--beat", action="store_true", default=False)
    parser.add_argument("--loglevel", default="INFO")
    parser.add_argument("--schedule-file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start a worker from the command line; return 0 once it has stopped."""
    ns = _parser().parse_args(argv)  # argparse reads sys.argv[1:] itself when argv is None
    if ns.beat:
        logger.warning("beat runs inside this worker: start it in exactly one process")
    app.worker_main(worker_argv(ns.beat, ns.loglevel, ns.schedule_file))
    logger.info("worker stopped")
    return 0


configure_worker(app)

if __name__ == "__main__":
    raise SystemExit(main())
