"""Hidden suite of `celery_worker` (exercises/level3/celery_beat/standalone_worker.py).

Settings are checked as values and as invariants between them (soft < hard <= the
visibility timeout), and on the tasks they reach: importing the module must configure
the tasks app. `main()` is run with `Celery.worker_main` replaced, so no worker starts.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from celery import Celery
from hypothesis import example, given
from hypothesis import strategies as st

from grader import paths
from grader.drawing import deterministic
from grader.feedback import expect, expect_equal, fail
from grader.sim_celery import routed_queues
from grader.targets import Target, load_file
from grader.testing import environment

NOTE = "07d_celery_beat_advanced.md"
FILE = "celery_beat/standalone_worker.py"
TEST_ENV = {
    "CELERY_BROKER_URL": "memory://",
    "CELERY_RESULT_BACKEND": "cache+memory://",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


DRAWN = deterministic(max_examples=10)
LOGLEVELS = st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
SCHEDULE_FILES = st.sampled_from(
    [None, "celerybeat-schedule", "/var/lib/beat/schedule", "/tmp/beat state.db", "s"]
)
FOREIGN_ARGV = ["standalone_worker.py", "--loglevel=DEBUG", "--no-such-flag"]


@cache
def _reference() -> ModuleType:
    with environment(TEST_ENV):
        return load_file(paths.SOLUTIONS_DIR / FILE, "the reference standalone_worker.py")


@contextmanager
def grading_conditions() -> Iterator[None]:
    """Every test (and the import of the file): the in-memory broker and backend."""
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


def _run_main(
    module: ModuleType, argv: list[str] | None, sys_argv: list[str] | None = None
) -> tuple[list[list[str]], object]:
    """main(argv) with Celery.worker_main recorded (no worker starts) and sys.argv set."""
    calls: list[list[str]] = []

    def worker_main(app: Celery, argv: list[str] | None = None) -> None:
        calls.append(list(argv or []))

    with (
        mock.patch.object(Celery, "worker_main", worker_main),
        mock.patch.object(sys, "argv", list(sys_argv or FOREIGN_ARGV)),
    ):
        try:
            code = module.main(argv)
        except SystemExit as leaving:
            fail(
                f"main({argv!r}) raised SystemExit({leaving.code!r}) with sys.argv = "
                f"{sys.argv!r}: parse the argv argument (parse_args(argv)); sys.argv[1:] "
                "only when it is None."
            )
    return calls, code


def _canonical(argv: list[str]) -> tuple[list[str], list[str]]:
    """The fixed head of worker_main's argv and its extra arguments, in any order."""
    return list(argv[:3]), sorted(argv[3:])


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="'task_acks_late': True: the message is acknowledged after the task ran, not when "
    "the worker received it (the unprefixed 'acks_late' key is ignored).",
    timeout=10,
    spec=("acks-late",),
)
def test_acks_late(target: Target) -> None:
    settings = _settings(target)
    expect_equal(settings.get("task_acks_late"), True, "task_acks_late in worker_settings()")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="task_reject_on_worker_lost=True: without it, a killed child process still "
    "acknowledges its message and the task is lost.",
    timeout=10,
    spec=("reject-on-worker-lost",),
)
def test_reject_on_worker_lost(target: Target) -> None:
    settings = _settings(target)
    expect_equal(
        settings.get("task_reject_on_worker_lost"),
        True,
        "task_reject_on_worker_lost in worker_settings()",
        "acks_late alone does not cover a child killed by the OOM killer or the hard time "
        "limit: Celery acknowledges its message anyway.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#worker-settings",
    hint="At import: configure_worker(app) on the app from tasks.py, before anything "
    "finalizes it (a task's acks_late is copied from the settings when it is bound).",
    timeout=10,
    spec=("configured-at-import",),
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
    hint="celery_app.conf.update(worker_settings()) adds to the configuration; "
    "config_from_object(...) replaces its source, and beat_config's settings are gone.",
    timeout=10,
    spec=("configure-keeps-other-settings",),
)
def test_configuring_keeps_the_apps_other_settings(target: Target) -> None:
    module = target.load(FILE)
    tasks = target.load("celery_beat/tasks.py")
    beat_config = target.load("celery_beat/beat_config.py")
    conf = module.app.conf
    expect_equal(
        (str(conf.timezone), sorted(conf.beat_schedule or {}), conf.task_routes),
        (str(beat_config.timezone), sorted(beat_config.beat_schedule), tasks.TASK_ROUTES),
        "(timezone, beat_schedule entries, task_routes) of the app after importing "
        "standalone_worker",
        "The worker settings come on top of the app's own (beat_config.py, task_routes).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="def configure_worker(celery_app): celery_app.conf.update(worker_settings()); "
    "return celery_app.",
    timeout=10,
    spec=("configure-updates-and-returns",),
)
def test_configure_worker_applies_the_settings_and_returns_the_app(target: Target) -> None:
    module = target.load(FILE)
    fresh = Celery("grader-fresh", set_as_current=False)
    returned = module.configure_worker(fresh)
    expect(
        returned is fresh,
        f"configure_worker(app) should return the app it was given; got {returned!r}.",
    )
    wanted = module.worker_settings()
    differing = sorted(k for k, v in wanted.items() if fresh.conf.get(k) != v)
    expect(not differing, f"Settings not applied by configure_worker(app): {differing}")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="worker_prefetch_multiplier=1: each process reserves one message at a time.",
    timeout=10,
    spec=("prefetch-one",),
)
def test_prefetch_multiplier_is_one(target: Target) -> None:
    settings = _settings(target)
    expect_equal(
        settings.get("worker_prefetch_multiplier"),
        1,
        "worker_prefetch_multiplier in worker_settings()",
        "The default (4) lets one busy worker hold messages that idle workers could run; "
        "0 does not mean 'none', it means unlimited.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="task_soft_time_limit < task_time_limit: the soft limit warns the task, the hard "
    "one kills the process.",
    timeout=10,
    spec=("soft-below-hard",),
)
def test_soft_time_limit_is_below_the_hard_limit(target: Target) -> None:
    settings = _settings(target)
    soft, hard = settings.get("task_soft_time_limit"), settings.get("task_time_limit")
    expect(
        isinstance(soft, int | float) and isinstance(hard, int | float) and 0 < soft < hard,
        f"Expected 0 < task_soft_time_limit < task_time_limit; got soft={soft!r}, hard={hard!r}. "
        "Equal limits leave the task no time to clean up before it is killed.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#worker-settings",
    hint="task_time_limit <= broker_transport_options['visibility_timeout'], or Redis hands "
    "a still-running task to a second worker.",
    timeout=10,
    spec=("hard-within-visibility",),
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
    timeout=10,
    spec=("hard-within-visibility",),
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
    hint="A retry waiting for its countdown is an unacknowledged message too: the visibility "
    "timeout must be longer than the longest countdown (notify's retry_backoff_max).",
    timeout=10,
    spec=("visibility-covers-countdowns",),
)
def test_retry_countdowns_fit_in_the_visibility_timeout(target: Target) -> None:
    module = target.load(FILE)
    visibility = _visibility_timeout(dict(module.worker_settings()))
    notify = module.app.tasks.get("cronkata.notify")
    expect(notify is not None, "The worker's app has no cronkata.notify task.")
    longest = getattr(notify, "retry_backoff_max", None)
    expect(
        isinstance(longest, int | float) and longest <= visibility,
        f"cronkata.notify may wait {longest!r} s before a retry, but visibility_timeout is "
        f"{visibility:g} s: Redis redelivers a message whose countdown (ETA) is longer, and "
        "the task runs once per redelivery.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#distributed",
    hint="task_queues declares a kombu Queue per name in QUEUES, and worker_argv() consumes "
    "them all: --queues=celery,maintenance,notifications.",
    timeout=10,
    spec=("queue-per-name",),
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
    note=f"{NOTE}#distributed",
    hint="Queue(name, Exchange(name), routing_key=name): a message routed to a queue reaches "
    "it through its exchange by its routing key.",
    timeout=10,
    spec=("queue-per-name",),
)
def test_each_queue_has_its_own_exchange_and_routing_key(target: Target) -> None:
    module = target.load(FILE)
    queues = list(module.worker_settings().get("task_queues") or ())
    shapes = sorted(
        (
            str(getattr(q, "name", q)),
            str(getattr(getattr(q, "exchange", None), "name", None)),
            str(getattr(q, "routing_key", None)),
        )
        for q in queues
    )
    expect_equal(
        shapes,
        sorted((name, name, name) for name in module.QUEUES),
        "(name, exchange, routing_key) of each kombu.Queue in task_queues",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="['worker', f'--loglevel={loglevel}', '--queues=' + ','.join(QUEUES)], plus "
    "'--beat' and f'--schedule={schedule_file or DEFAULT_SCHEDULE_FILE}' only when beat.",
    timeout=20,
    spec=("worker-argv",),
)
@DRAWN
@given(beat=st.booleans(), loglevel=LOGLEVELS, schedule_file=SCHEDULE_FILES)
@example(beat=False, loglevel="INFO", schedule_file="/tmp/beat")
def test_worker_argv_matches_the_spec(
    target: Target, beat: bool, loglevel: str, schedule_file: str | None
) -> None:
    module = target.load(FILE)
    call = f"worker_argv(beat={beat}, loglevel={loglevel!r}, schedule_file={schedule_file!r})"
    expect_equal(
        _canonical(list(module.worker_argv(beat, loglevel, schedule_file))),
        _canonical(_reference().worker_argv(beat, loglevel, schedule_file)),
        f"{call}: (the first three arguments, the others in any order)",
        "--schedule is beat's state file: only a worker that embeds beat gets one.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="main() parses its arguments and calls app.worker_main(worker_argv(...)) once; "
    "--beat is off unless given.",
    timeout=10,
    spec=("main-starts-the-worker", "main-returns-0"),
)
def test_main_starts_a_worker_without_beat(target: Target) -> None:
    calls, code = _run_main(target.load(FILE), [])
    expect(len(calls) == 1, f"main([]) should call app.worker_main once; calls: {calls!r}")
    argv = calls[0]
    expect(argv[:1] == ["worker"], f"worker_main's argv should start with 'worker': {argv!r}")
    expect(not _beat_in_argv(argv), f"main([]) must not embed beat: {argv!r}")
    expect_equal(code, 0, "main([])'s return value (worker_main returns None)")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="argparse: --beat (store_true), --loglevel (default 'INFO'), --schedule-file; then "
    "worker_argv(options.beat, options.loglevel, options.schedule_file).",
    timeout=20,
    spec=("main-flags",),
)
@DRAWN
@given(beat=st.booleans(), loglevel=st.one_of(st.none(), LOGLEVELS), schedule_file=SCHEDULE_FILES)
@example(beat=True, loglevel=None, schedule_file="/tmp/beat")
def test_main_passes_its_flags_to_the_worker(
    target: Target, beat: bool, loglevel: str | None, schedule_file: str | None
) -> None:
    argv = ["--beat"] if beat else []
    argv += [] if loglevel is None else ["--loglevel", loglevel]
    argv += [] if schedule_file is None else [f"--schedule-file={schedule_file}"]
    mine, _code = _run_main(target.load(FILE), argv)
    theirs, _ = _run_main(_reference(), argv)
    expect_equal(
        [_canonical(call) for call in mine],
        [_canonical(call) for call in theirs],
        f"app.worker_main calls made by main({argv!r})",
        "--schedule-file is beat's state file: pass it on to worker_argv().",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#worker-settings",
    hint="parser.parse_args(argv): argparse reads sys.argv[1:] itself only when argv is None.",
    timeout=10,
    spec=("main-parses-argv",),
)
def test_main_reads_sys_argv_only_without_arguments(target: Target) -> None:
    module = target.load(FILE)
    given_calls, _ = _run_main(module, ["--loglevel=WARNING"])
    default_calls, _ = _run_main(module, None, ["standalone_worker.py", "--beat"])
    expect_equal(
        (
            [_beat_in_argv(c) for c in given_calls],
            [any(a.endswith("=WARNING") for a in c) for c in given_calls],
            [_beat_in_argv(c) for c in default_calls],
        ),
        ([False], [True], [True]),
        "(beat?, loglevel WARNING?) of main(['--loglevel=WARNING']) while sys.argv is "
        f"{FOREIGN_ARGV!r}, and beat? of main() with sys.argv ['standalone_worker.py', '--beat']",
    )
