"""Exercise celery_worker (level 3): a worker process configured for correctness.

Read first: notes/07d_celery_beat_advanced.md (section "Worker settings").
Do the celery_tasks exercise first: this file configures the app of tasks.py
(``from tasks import app`` finds tasks.py next to this file).

Choose the worker's settings so that no task is lost and none runs twice by accident:
acknowledge late, treat a killed process as "not done", reserve one message at a time,
stop every task well before the broker would hand it to another worker, and consume
every queue tasks are sent to. Then start the worker (and, with a flag, beat) from
``main()``.

Keep the names, signatures and constants below exactly as they are: the hidden tests
import them. Replace each ``raise NotImplementedError(...)`` with your code.

Check your work:  pytest exercises/level3/celery_beat/standalone_worker.py
Try it by hand:   cd exercises/level3/celery_beat && python standalone_worker.py --beat
                  (or: celery -A standalone_worker worker --loglevel=INFO)
"""

import logging
from typing import Any

from celery import Celery
from tasks import app as app

QUEUES = ("celery", "maintenance", "notifications")
DEFAULT_SCHEDULE_FILE = "celerybeat-schedule"

logger = logging.getLogger(__name__)


def worker_settings() -> dict[str, Any]:
    """Return the Celery settings of a worker process (lowercase setting names).

    The tests check:
      * task_acks_late and task_reject_on_worker_lost are True;
      * worker_prefetch_multiplier is 1;
      * 0 < task_soft_time_limit < task_time_limit <= the visibility timeout, given as
        broker_transport_options={"visibility_timeout": seconds} (what the Redis broker
        waits for an acknowledgement before it redelivers a message);
      * task_queues declares a ``kombu.Queue`` for each name in QUEUES (use
        ``Queue(name, Exchange(name), routing_key=name)``).
    """
    raise NotImplementedError("return the settings dict described above")


def configure_worker(celery_app: Celery) -> Celery:
    """Apply ``worker_settings()`` to ``celery_app`` (``conf.update``) and return it."""
    raise NotImplementedError("celery_app.conf.update(worker_settings())")


def worker_argv(
    beat: bool = False, loglevel: str = "INFO", schedule_file: str | None = None
) -> list[str]:
    """Return the arguments for ``app.worker_main``.

    ``["worker", "--loglevel=<loglevel>", "--queues=<QUEUES joined by commas>"]``, plus,
    when ``beat`` is true, ``"--beat"`` and ``"--schedule=<schedule_file or
    DEFAULT_SCHEDULE_FILE>"`` (beat's state file).
    """
    raise NotImplementedError("build the worker's command-line arguments")


def main(argv: list[str] | None = None) -> int:
    """Start a worker from the command line; return 0 once it has stopped.

    Parse ``argv`` (``sys.argv[1:]`` when None) with argparse: ``--beat`` (a flag: also
    run beat inside this worker), ``--loglevel`` (default "INFO") and
    ``--schedule-file``. Then call ``app.worker_main(worker_argv(...))``.
    """
    raise NotImplementedError("parse the flags, then app.worker_main(worker_argv(...))")


# TODO: call configure_worker(app) here, at import time, so that
# `celery -A standalone_worker worker` runs with these settings.

if __name__ == "__main__":
    raise SystemExit(main())
