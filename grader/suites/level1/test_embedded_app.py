"""Hidden suite of `apscheduler_embedded` (exercises/level1/apscheduler/embedded_app.py).

It drives the app with FastAPI's TestClient, which runs the lifespan on entering and
leaving its context; TestClient never throws the app's failure into the lifespan, so
"shut down even if the app failed" is checked by entering `lifespan()` directly. Threads
are real in the lifecycle tests and virtual elsewhere. The machine's zone is
America/Los_Angeles, which no scheduler here uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from grader.drawing import deterministic, near_dst, utc_instants, zones
from grader.feedback import expect, expect_equal, expect_fire_times, fail
from grader.sim_apscheduler import running_schedulers, simulate
from grader.targets import Target
from grader.testing import environment, machine_zone, run_until_waited_for

NOTE = "07a_ap_scheduler_intro.md"
FILE = "apscheduler/embedded_app.py"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def _app_starts() -> st.SearchStrategy[datetime]:
    """Start instants (with microseconds, which isoformat() keeps) over three years and
    within minutes of DST changes, where the offset of the next run differs from now's."""
    instants = st.one_of(
        utc_instants(),
        near_dst(within=timedelta(minutes=2), resolution="second").map(lambda n: n.instant),
    )
    return st.builds(
        lambda t, micro: t + timedelta(microseconds=micro), instants, st.integers(0, 999_999)
    )


def _scheduler_threads() -> list[str]:
    return [
        t.name for t in threading.enumerate() if t.name.startswith("APScheduler") and t.is_alive()
    ]


@contextmanager
def grading_conditions() -> Iterator[None]:
    """Every test (and the import of the file): the machine in Los Angeles, the scheduler's
    zone Asia/Shanghai."""
    with machine_zone("America/Los_Angeles"), environment({"SCHEDULER_TIMEZONE": "Asia/Shanghai"}):
        yield


def _stop_quietly(app: Any) -> None:
    scheduler = getattr(app.state, "scheduler", None)
    if scheduler is not None and getattr(scheduler, "running", False):
        scheduler.shutdown(wait=False)


# -- the job --------------------------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint='def heartbeat() -> None: logger.info("heartbeat"): one INFO record, module logger.',
    spec=("heartbeat-logs-one-info-record",),
)
def test_heartbeat_logs_one_info_record_with_the_module_logger(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    module = target.load(FILE)
    with caplog.at_level(logging.DEBUG):
        result = module.heartbeat()
    shown = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records]
    expect(len(shown) == 1, f"heartbeat() should log exactly one record; it logged {shown}")
    record = caplog.records[0]
    expect_equal(
        (record.levelname, record.name, "heartbeat" in record.getMessage()),
        ("INFO", module.logger.name, True),
        "heartbeat()'s record (level, logger, contains 'heartbeat')",
        "Use the module's logger at INFO: logger.info(...), not logging.info(...) or print().",
    )
    expect(result is None, f"heartbeat() should return nothing; it returned {result!r}")


def _registered(module: ModuleType, zone: str = "Asia/Shanghai") -> tuple[Any, Any]:
    scheduler = BackgroundScheduler(timezone=ZoneInfo(zone))
    scheduler.start(paused=True)
    module.register_jobs(scheduler)
    return scheduler, scheduler.get_job(module.HEARTBEAT_JOB_ID)


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="add_job(heartbeat, ...): the module-level function itself, not a lambda or a wrapper.",
    spec=("job-calls-heartbeat",),
)
def test_register_jobs_adds_heartbeat_itself(target: Target) -> None:
    module = target.load(FILE)
    with simulate(T0):
        scheduler, job = _registered(module)
        scheduler.shutdown()
    expect(job is not None, "register_jobs() should add a job with id HEARTBEAT_JOB_ID.")
    expect(
        job.func is module.heartbeat,
        f"The job calls {job.func!r} (stored as {getattr(job, 'func_ref', '?')!r}): pass the "
        "module-level function heartbeat itself, so a persistent store saves 'module:heartbeat'.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#timezone",
    hint="IntervalTrigger(seconds=..., timezone=scheduler.timezone), or the 'interval' alias, "
    "which inherits the scheduler's zone.",
    spec=("trigger-in-scheduler-zone",),
)
def test_register_jobs_uses_the_scheduler_zone(target: Target) -> None:
    module = target.load(FILE)
    zones = {}
    for zone in ("Europe/Berlin", "Asia/Kolkata"):
        with simulate(T0):
            scheduler, job = _registered(module, zone)
            zones[zone] = str(getattr(getattr(job, "trigger", None), "timezone", None))
            scheduler.shutdown()
    expect_equal(
        zones,
        {"Europe/Berlin": "Europe/Berlin", "Asia/Kolkata": "Asia/Kolkata"},
        "the heartbeat trigger's zone, by scheduler zone",
        "A trigger object built without timezone= uses the machine's zone (here Los Angeles).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi-lifespan",
    hint="add_job(..., id=HEARTBEAT_JOB_ID, replace_existing=True)",
    spec=("fixed-job-id", "register-idempotent"),
)
def test_register_jobs_twice_keeps_one_job(target: Target) -> None:
    module = target.load(FILE)
    with simulate(T0):
        scheduler = BackgroundScheduler(timezone=ZoneInfo("Asia/Shanghai"))
        scheduler.start(paused=True)
        module.register_jobs(scheduler)
        module.register_jobs(scheduler)
        ids = sorted(job.id for job in scheduler.get_jobs())
        scheduler.shutdown()
    expect_equal(ids, ["heartbeat"], "job ids after calling register_jobs() twice")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi-lifespan",
    hint="With a persistent job store, every restart re-registers: a fixed id + "
    "replace_existing=True keeps one job instead of one per restart.",
    spec=("restart-keeps-one-job",),
)
def test_restarts_with_a_persistent_store_keep_one_job(target: Target, tmp_path: Path) -> None:
    module = target.load(FILE)
    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    bodies = []
    with environment({"SCHEDULER_TIMEZONE": "Asia/Shanghai", "SCHEDULER_JOBSTORE_URL": url}):
        for _ in range(3):  # three deploys of the same app
            app = module.create_app()
            with simulate(T0), TestClient(app) as client:
                bodies.append([job["id"] for job in client.get("/jobs").json()])
    expect_equal(
        bodies,
        [["heartbeat"]] * 3,
        "job ids listed by GET /jobs after each of three restarts on one SQLite job store",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#interval-trigger",
    hint="The heartbeat runs every HEARTBEAT_SECONDS (30 s) once the app has started.",
    spec=("every-30-seconds",),
)
def test_heartbeat_runs_every_30_seconds_while_the_app_runs(target: Target) -> None:
    module = target.load(FILE)
    with simulate(T0) as sim, TestClient(module.create_app()):
        sim.run_for(timedelta(seconds=90))
    expect_fire_times(
        sim.fire_times("heartbeat"),
        [T0 + timedelta(seconds=s) for s in (30, 60, 90)],
        what="job 'heartbeat' over the app's first 90 s",
        tz=ZoneInfo("Asia/Shanghai"),
    )


# -- the lifespan ---------------------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi-lifespan",
    hint="In the lifespan: build, register_jobs, start(), app.state.scheduler = scheduler, yield.",
    spec=("lifespan-starts-scheduler",),
)
def test_lifespan_starts_the_scheduler(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()
    with environment({"SCHEDULER_TIMEZONE": "Europe/Berlin"}), TestClient(app):
        scheduler = getattr(app.state, "scheduler", None)
        running = bool(getattr(scheduler, "running", False))
        zone = str(getattr(scheduler, "timezone", None))
        ids = [job.id for job in scheduler.get_jobs()] if scheduler is not None else []
    expect(scheduler is not None, "The lifespan must store the scheduler on app.state.scheduler.")
    expect(running, "While the app runs, app.state.scheduler must be running.")
    expect_equal(
        (zone, ids),
        ("Europe/Berlin", ["heartbeat"]),
        "the running scheduler's zone and jobs with SCHEDULER_TIMEZONE=Europe/Berlin",
        "Build it with build_scheduler(load_settings()) at startup, then register_jobs().",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi-lifespan",
    hint="After `yield` in the lifespan: scheduler.shutdown() (it waits for running jobs).",
    spec=("no-thread-left",),
)
def test_lifespan_shutdown_leaves_no_scheduler_thread(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()
    with TestClient(app):
        scheduler = app.state.scheduler
        expect(_scheduler_threads(), "While the app runs, the scheduler's thread should be alive.")
    leftover = _scheduler_threads()
    still_running = [s for s in running_schedulers() if s is scheduler]
    expect(
        not still_running and not leftover,
        "After the app stopped, the scheduler is still running"
        f" (threads alive: {leftover}). Shut it down in the lifespan after `yield`.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi-lifespan",
    hint="try: yield finally: scheduler.shutdown(): the code after a bare yield is skipped "
    "when the app fails.",
    spec=("shutdown-even-if-failed",),
)
def test_lifespan_shuts_down_even_if_the_app_failed(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()

    class AppCrashed(Exception):
        pass

    async def serve_then_crash() -> None:
        async with module.lifespan(app):
            raise AppCrashed

    try:
        asyncio.run(serve_then_crash())
    except AppCrashed:
        pass
    except Exception as error:
        fail(f"lifespan(app) raised {type(error).__name__}: {error}")
    scheduler = getattr(app.state, "scheduler", None)
    running = bool(getattr(scheduler, "running", False))
    _stop_quietly(app)
    expect(scheduler is not None, "The lifespan must store the scheduler on app.state.scheduler.")
    expect(
        not running,
        "When the app fails while serving, the lifespan's exit still has to shut the "
        "scheduler down: put shutdown() in a `finally:` around the yield.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi-lifespan",
    hint="scheduler.shutdown() (wait=True, the default) lets a running job finish.",
    spec=("shutdown-waits-for-jobs",),
)
def test_lifespan_shutdown_waits_for_a_running_job(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()
    started, finished, left = threading.Event(), threading.Event(), threading.Event()

    def slow_job() -> None:
        started.set()
        run_until_waited_for(left)
        finished.set()

    with TestClient(app):
        app.state.scheduler.add_job(slow_job, "date", run_date=datetime.now(UTC), id="slow")
        expect(started.wait(5), "A job added to app.state.scheduler did not start within 5 s.")
    done = finished.is_set()
    left.set()
    _stop_quietly(app)
    expect(
        done,
        "The app stopped while a job was still running: shutdown(wait=False) cuts it off. "
        "Use scheduler.shutdown() (wait=True).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#pitfalls",
    hint="if scheduler.running: scheduler.shutdown(): shutting down a stopped scheduler raises "
    "SchedulerNotRunningError.",
    spec=("shutdown-tolerates-stopped",),
)
def test_lifespan_exit_tolerates_an_already_stopped_scheduler(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()
    try:
        with TestClient(app):
            app.state.scheduler.shutdown()  # e.g. an admin endpoint stopped it
    except Exception as error:
        fail(
            f"Leaving the app raised {type(error).__name__}: {error}\n"
            "The scheduler was already stopped: check scheduler.running before shutdown()."
        )


# -- the endpoints --------------------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi-lifespan",
    hint="def create_app(): app = FastAPI(lifespan=lifespan); ...; return app",
    spec=("new-app-each-call",),
)
def test_create_app_returns_a_new_app_each_time(target: Target) -> None:
    module = target.load(FILE)
    first, second = module.create_app(), module.create_app()
    expect(
        first is not second,
        "create_app() returned the same object twice: build a new FastAPI app in each call, "
        "so every test or server gets its own app and scheduler.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi-lifespan",
    hint="At the end of the module: app = create_app()",
    spec=("module-app",),
)
def test_module_exposes_an_app_for_uvicorn(target: Target) -> None:
    module = target.load(FILE)
    expect(
        hasattr(getattr(module, "app", None), "router"),
        f"`app` is {getattr(module, 'app', None)!r}: set app = create_app() so that "
        "`uvicorn embedded_app:app` finds it.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi-lifespan",
    hint="GET /health -> {'status': 'ok', 'scheduler_running': scheduler.running}",
    spec=("health-running",),
)
def test_health_reports_a_running_scheduler(target: Target) -> None:
    module = target.load(FILE)
    with TestClient(module.create_app()) as client:
        health = client.get("/health")
    expect_equal(health.status_code, 200, "GET /health status")
    expect_equal(health.json(), {"status": "ok", "scheduler_running": True}, "GET /health body")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi-lifespan",
    hint="Answer scheduler.running, not whether app.state has a scheduler.",
    spec=("health-not-running",),
)
def test_health_reports_a_stopped_scheduler(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()
    client = TestClient(app)
    client.__enter__()
    try:
        app.state.scheduler.shutdown()
        health = client.get("/health")
    finally:
        # an error here is graded by test_lifespan_exit_tolerates_an_already_stopped_scheduler
        with contextlib.suppress(Exception):
            client.__exit__(None, None, None)
    expect_equal(health.status_code, 200, "GET /health status with the scheduler shut down")
    expect_equal(
        health.json(),
        {"status": "ok", "scheduler_running": False},
        "GET /health body after the scheduler was shut down",
    )


def _jobs_body(module: ModuleType, start: datetime, zone: str) -> tuple[int, Any]:
    with environment({"SCHEDULER_TIMEZONE": zone}):
        app = module.create_app()
        with simulate(start), TestClient(app) as client:
            response = client.get("/jobs")
    return response.status_code, response.json()


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi-lifespan",
    hint="{'id': job.id, 'name': job.name, 'trigger': str(job.trigger), "
    "'next_run_time': job.next_run_time.astimezone(scheduler.timezone).isoformat()}",
    spec=("job-fields", "next-run-time-isoformat-in-zone"),
)
def test_jobs_endpoint_shows_next_run_time_with_offset(target: Target) -> None:
    module = target.load(FILE)

    @deterministic(10)
    @example(start=T0, zone=ZoneInfo("Asia/Shanghai"))
    @example(start=datetime(2026, 7, 1, 23, 59, 45, tzinfo=UTC), zone=ZoneInfo("UTC"))
    @given(start=_app_starts(), zone=zones())
    def jobs_scenario(start: datetime, zone: ZoneInfo) -> None:
        status, body = _jobs_body(module, start, zone.key)
        expect_equal(status, 200, f"GET /jobs status (SCHEDULER_TIMEZONE={zone.key})")
        expected = {
            "id": "heartbeat",
            "name": "heartbeat",
            "trigger": "interval[0:00:30]",
            "next_run_time": (start + timedelta(seconds=30)).astimezone(zone).isoformat(),
        }
        expect_equal(
            body,
            [expected],
            f"GET /jobs with SCHEDULER_TIMEZONE={zone.key}, app started at {start.isoformat()}",
            "next_run_time is the job's next run in the scheduler's zone, formatted with "
            "isoformat(): a 'T' between date and time, microseconds kept, the offset as +HH:MM "
            "(+00:00 for UTC, never Z), no naive time.",
        )

    jobs_scenario()


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi-lifespan",
    hint="sorted(scheduler.get_jobs(), key=lambda job: job.id): get_jobs() orders by next run.",
    spec=("jobs-list-sorted-by-id",),
)
def test_jobs_endpoint_lists_every_job_sorted_by_id(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()
    with simulate(T0), TestClient(app) as client:
        scheduler = app.state.scheduler
        scheduler.add_job(module.heartbeat, "interval", seconds=1, id="zz_fast")
        scheduler.add_job(module.heartbeat, "interval", hours=1, id="aa_slow")
        scheduler.add_job(module.heartbeat, "interval", seconds=2, id="mm_mid")
        response = client.get("/jobs")
    body = response.json()
    expect(isinstance(body, list), f"GET /jobs should answer a JSON list; got {body!r}")
    expect_equal(
        [job.get("id") for job in body],
        ["aa_slow", "heartbeat", "mm_mid", "zz_fast"],
        "job ids listed by GET /jobs",
        "The list must be sorted by id, whatever runs next.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi-lifespan",
    hint="A paused job has next_run_time None: send null, do not crash.",
    spec=("paused-job-null",),
)
def test_jobs_endpoint_shows_null_for_a_paused_job(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()
    with simulate(T0), TestClient(app) as client:
        app.state.scheduler.pause_job("heartbeat")
        response = client.get("/jobs")
    expect_equal(response.status_code, 200, "GET /jobs status with a paused job")
    body = response.json()
    expect(isinstance(body, list), f"GET /jobs should answer a JSON list; got {body!r}")
    expect_equal(
        [job.get("next_run_time", "<missing>") for job in body],
        [None],
        "next_run_time of a paused job",
    )
