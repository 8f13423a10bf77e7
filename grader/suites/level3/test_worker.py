"""Hidden suite of `celery_worker` (exercises/level3/celery_beat/standalone_worker.py).

Settings are checked as values and as invariants between them (soft < hard <= the
visibility timeout), and on the tasks they reach: importing the module must configure
the tasks app. `main()` is run with `Celery.worker_main` replaced, so no worker starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from celery import Celery

from grader.feedback import expect, expect_equal, fail
from grader.sim_celery import routed_queues
from grader.targets import Target
from grader.testing import environment

NOTE = "07d_celery_beat_advanced.md"
FILE = "celery_beat/standalone_worker.py"
TEST_ENV = {
    "CELERY_BROKER_URL": "memory://",
    "CELERY_RESULT_BACKEND": "cache+memory://",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


@pytest.fixture(autouse=True)
def _clean_environment() -> Iterator[None]:
    with environment(TEST_ENV):
        yield


def _settings(target: Target) -> dict[str, Any]:
    settings = target.load(FILE).worker_settings()
    expect(isinstance(settings, dict), f"worker_settings() should return a dict; got {settings!r}")
    return dict(settings)


def _visibility_timeout(settings: dict[str, Any]) -> float:
    options = settings.get("broker_transport_options") or {}
    value = options.get("visibility_timeout") if isinstance(options, dict) else None
    if not isinstance(value, int | float):
        fail(
            "worker_settings() must set broker_transport_options={'visibility_timeout': "
            f"seconds}}; got broker_transport_options={options!r}. The Redis broker "
            "redelivers a message that is not acknowledged within this time (default 1 h)."
        )
    return float(value)  # type: ignore[arg-type]


def _queues_in_argv(argv: list[str]) -> list[str]:
    for i, arg in enumerate(argv):
        if arg.startswith("--queues="):
            return arg.split("=", 1)[1].split(",")
        if arg in ("-Q", "--queues") and i + 1 < len(argv):
            return argv[i + 1].split(",")
        if arg.startswith("-Q") and len(arg) > 2:
            return arg[2:].split(",")
    return []


def _beat_in_argv(argv: list[str]) -> bool:
    return any(arg in ("-B", "--beat") for arg in argv)


def _run_main(target: Target, argv: list[str]) -> tuple[list[list[str]], object]:
    module = target.load(FILE)
    calls: list[list[str]] = []

    def worker_main(app: Celery, argv: list[str] | None = None) -> None:
        calls.append(list(argv or []))

    with mock.patch.object(Celery, "worker_main", worker_main):
        code = module.main(argv)
    return calls, code


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#worker-settings",
    hint="task_acks_late=True and task_reject_on_worker_lost=True: without the second, a "
    "killed child process still acknowledges its message and the task is lost.",
)
def test_acks_late_with_reject_on_worker_lost(target: Target) -> None:
    settings = _settings(target)
    expect_equal(
        (settings.get("task_acks_late"), settings.get("task_reject_on_worker_lost")),
        (True, True),
        "(task_acks_late, task_reject_on_worker_lost) in worker_settings()",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#worker-settings",
    hint="At import: configure_worker(app) on the app from tasks.py, before anything "
    "finalizes it (a task's acks_late is copied from the settings when it is bound).",
)
def test_importing_the_module_configures_the_tasks(target: Target) -> None:
    module = target.load(FILE)
    app = module.app
    task = app.tasks.get("cronkata.notify")
    expect(task is not None, "The worker's app has no cronkata.notify task: does it import tasks?")
    expect_equal(
        (task.acks_late, task.reject_on_worker_lost, app.conf.worker_prefetch_multiplier),
        (True, True, 1),
        "(acks_late, reject_on_worker_lost) of cronkata.notify and the app's "
        "worker_prefetch_multiplier, after importing standalone_worker",
        "`celery -A standalone_worker worker` runs with what importing the module configured.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="worker_prefetch_multiplier=1: each process reserves one message at a time.",
)
def test_prefetch_multiplier_is_one(target: Target) -> None:
    settings = _settings(target)
    expect_equal(
        settings.get("worker_prefetch_multiplier"),
        1,
        "worker_prefetch_multiplier in worker_settings()",
        "The default (4) lets one busy worker hold messages that idle workers could run.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="task_soft_time_limit < task_time_limit: the soft limit warns the task, the hard "
    "one kills the process.",
)
def test_soft_time_limit_is_below_the_hard_limit(target: Target) -> None:
    settings = _settings(target)
    soft, hard = settings.get("task_soft_time_limit"), settings.get("task_time_limit")
    expect(
        isinstance(soft, int | float) and isinstance(hard, int | float) and 0 < soft < hard,
        f"Expected 0 < task_soft_time_limit < task_time_limit; got soft={soft!r}, hard={hard!r}.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#worker-settings",
    hint="task_time_limit <= broker_transport_options['visibility_timeout'], or Redis hands "
    "a still-running task to a second worker.",
)
def test_hard_limit_fits_in_the_visibility_timeout(target: Target) -> None:
    settings = _settings(target)
    visibility = _visibility_timeout(settings)
    hard = settings.get("task_time_limit")
    expect(
        isinstance(hard, int | float) and 0 < hard <= visibility,
        f"task_time_limit={hard!r} but visibility_timeout={visibility:g}: a task may run "
        "longer than the broker waits for its acknowledgement, so the broker redelivers it "
        "while it still runs (acks_late) and it runs twice.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="A task's own time_limit (tasks.py) overrides task_time_limit: each must fit "
    "in the visibility timeout.",
)
def test_every_task_ends_within_the_visibility_timeout(target: Target) -> None:
    module = target.load(FILE)
    visibility = _visibility_timeout(dict(module.worker_settings()))
    app = module.app
    too_long = {}
    for name, task in sorted(app.tasks.items()):
        if not name.startswith("cronkata."):
            continue
        limit = task.time_limit or app.conf.task_time_limit
        if limit is None or limit > visibility:
            too_long[name] = limit
    expect(
        not too_long,
        f"Tasks that may run longer than the visibility timeout ({visibility:g} s): "
        f"{too_long!r} (None: no hard limit at all).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="task_queues declares a kombu Queue per name in QUEUES, and worker_argv() consumes "
    "them all: --queues=celery,maintenance,notifications.",
)
def test_worker_declares_and_consumes_every_routed_queue(target: Target) -> None:
    module = target.load(FILE)
    routed = set(routed_queues(module.app)) | set(module.QUEUES)
    declared = {getattr(q, "name", q) for q in module.worker_settings().get("task_queues") or ()}
    consumed = set(_queues_in_argv(list(module.worker_argv())))
    expect_equal(
        (sorted(routed - declared), sorted(routed - consumed)),
        ([], []),
        "(queues not declared in task_queues, queues not consumed by worker_argv())",
        f"Queues that messages are routed to: {sorted(routed)}. A queue nobody consumes "
        "fills up silently.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="main() parses its arguments and calls app.worker_main(worker_argv(...)).",
)
def test_main_starts_a_worker_without_beat(target: Target) -> None:
    calls, code = _run_main(target, [])
    expect(len(calls) == 1, f"main([]) should call app.worker_main once; calls: {calls!r}")
    argv = calls[0]
    expect(argv[:1] == ["worker"], f"worker_main's argv should start with 'worker': {argv!r}")
    expect(not _beat_in_argv(argv), f"main([]) must not embed beat: {argv!r}")
    expect_equal(code, 0, "main([])'s return value")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="main(['--beat']) adds --beat (and --schedule=...) to the worker's arguments.",
)
def test_main_with_beat_flag_embeds_beat(target: Target) -> None:
    calls, _code = _run_main(target, ["--beat"])
    argv = calls[0] if calls else []
    expect(
        _beat_in_argv(argv),
        f"main(['--beat']) should start the worker with --beat (-B); argv: {argv!r}",
    )
