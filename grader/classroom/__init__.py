"""Grading a class: many learners' work into one gradebook, isolated per learner.

`grader class grade SOURCE --out DIR` discovers the submissions (a folder with one
sub-folder per learner, or a roster CSV), grades each learner's tree in its own sandbox
(bubblewrap: read-only course, private /tmp, no network, own PID namespace, a memory and
process cap per learner), on local workers or on Celery workers, and writes a gradebook
(CSV, JSON, one results.json per learner) and an HTML class report.

Modules, one job each (after pytest-xdist's split):
    snapshot    a learner's exercises tree as content: files, content hash, archive;
                the course version (what a cached grade depends on)
    inputs      submissions from a folder or a roster CSV; git at a commit or a deadline
    isolate     one learner's grading in bubblewrap, with an outer cgroup and a timeout
    inner       what runs inside the sandbox (``python -m grader.classroom.inner``)
    cache       the per-submission results cache that makes runs resumable
    local       parallel local workers
    celery_app  the Celery application (``celery -A grader.classroom worker``)
    tasks       the Celery task and the client that sends a class to the workers
    gradebook   rows per learner: CSV, JSON, results.json per learner, who moved
    html        the HTML class report and each learner's feedback page
    demo        a small demo class to try the commands on
    cli         the ``grader class`` command
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``celery -A grader.classroom`` finds ``app`` here; Celery is imported only then."""
    if name == "app":
        from grader.classroom.celery_app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
