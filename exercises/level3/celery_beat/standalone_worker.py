"""Exercise celery_worker (level 3): a worker process configured for correctness.

Read first: notes/07d_celery_beat_advanced.md (section "Worker settings").
Do the celery_tasks exercise first: this file configures the app of tasks.py
(``from tasks import app`` finds tasks.py next to this file).

Choose the worker's settings so that no task is lost and none runs twice by accident:
acknowledge late, treat a killed process as "not done", reserve one message at a time,
stop every task well before the broker would hand it to another worker, and consume
every queue tasks are sent to. Then start the worker (and, with a flag, beat) from
``main()``.

Importing this module configures the app: ``configure_worker(app)`` runs at import time
(at the bottom), because ``celery -A standalone_worker worker`` runs with what the
import configured (#configured-at-import).

Each promise the tests grade ends with a tag such as (#first-run-after-interval); a
failing test names its tag.

Keep the names, signatures and constants below exactly as they are: the hidden tests
import them. Replace each ``raise NotImplementedError(...)`` with your code.

Check your work:  python3 -m grader check celery_worker   (from the repository root)
Try it by hand:   cd exercises/level3/celery_beat && ../../../.venv/bin/python standalone_worker.py --beat
                  (or: ../../../.venv/bin/celery -A standalone_worker worker --loglevel=INFO;
                  `python3 -m grader setup`, once, from the repository root, creates .venv)
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
      * task_acks_late is True (#acks-late) and task_reject_on_worker_lost is True
        (#reject-on-worker-lost);
      * worker_prefetch_multiplier is 1 (#prefetch-one);
      * 0 < task_soft_time_limit < task_time_limit, strictly (#soft-below-hard);
      * task_time_limit, and every task's own time_limit, <= the visibility timeout,
        given as broker_transport_options={"visibility_timeout": seconds} (what the Redis
        broker waits for an acknowledgement before it redelivers a message)
        (#hard-within-visibility);
      * the visibility timeout also covers the longest retry countdown of the tasks
        (notify's retry_backoff_max): a message waiting for its ETA is unacknowledged
        too (#visibility-covers-countdowns);
      * task_queues declares a ``kombu.Queue`` for each name in QUEUES, with
        ``Queue(name, Exchange(name), routing_key=name)`` (#queue-per-name).
    """
    raise NotImplementedError("return the settings dict described above")


def configure_worker(celery_app: Celery) -> Celery:
    """Apply ``worker_settings()`` to ``celery_app`` (``conf.update``) and return it
    (#configure-updates-and-returns). The app keeps its other settings (beat_config's,
    task_routes): update, never replace, its configuration (#configure-keeps-other-settings).
    """
    raise NotImplementedError("celery_app.conf.update(worker_settings())")


def worker_argv(
    beat: bool = False, loglevel: str = "INFO", schedule_file: str | None = None
) -> list[str]:
    """Return the arguments for ``app.worker_main``.

    ``["worker", "--loglevel=<loglevel>", "--queues=<QUEUES joined by commas>"]``, plus,
    when ``beat`` is true, ``"--beat"`` and ``"--schedule=<schedule_file or
    DEFAULT_SCHEDULE_FILE>"`` (beat's state file); no ``--schedule`` without beat
    (#worker-argv).
    """
    raise NotImplementedError("build the worker's command-line arguments")


def main(argv: list[str] | None = None) -> int:
    """Start a worker from the command line: call ``app.worker_main(worker_argv(...))``
    once (#main-starts-the-worker); return 0 once it has stopped (#main-returns-0).

    Parse ``argv``, and ``sys.argv[1:]`` only when it is None (#main-parses-argv), with
    argparse: ``--beat`` (a flag, off unless given: also run beat inside this worker),
    ``--loglevel`` (default "INFO") and ``--schedule-file``, all passed on to
    ``worker_argv`` (#main-flags).
    """
    raise NotImplementedError("parse the flags, then app.worker_main(worker_argv(...))")


# TODO: call configure_worker(app) here, at import time, so that
# `celery -A standalone_worker worker` runs with these settings.

if __name__ == "__main__":
    raise SystemExit(main())
