"""Hidden suite of `apscheduler_embedded` (exercises/level1/apscheduler/embedded_app.py).

It drives the app with FastAPI's TestClient, which runs the lifespan on entering and
leaving its context. Threads are real in the lifecycle tests and virtual elsewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi.testclient import TestClient

from grader.feedback import expect, expect_equal, expect_fire_times
from grader.sim_apscheduler import running_schedulers, simulate
from grader.targets import Target
from grader.testing import environment

NOTE = "07a_ap_scheduler_intro.md"
FILE = "apscheduler/embedded_app.py"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def _scheduler_threads() -> list[str]:
    return [
        t.name for t in threading.enumerate() if t.name.startswith("APScheduler") and t.is_alive()
    ]


@pytest.fixture(autouse=True)
def _clean_environment() -> Iterator[None]:
    with environment({"SCHEDULER_TIMEZONE": "Asia/Shanghai"}):
        yield


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi-lifespan",
    hint="In the lifespan: build, register_jobs, start(), app.state.scheduler = scheduler, yield.",
)
def test_lifespan_starts_the_scheduler(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()
    with TestClient(app) as client:
        scheduler = getattr(app.state, "scheduler", None)
        health = client.get("/health")
        running = bool(getattr(scheduler, "running", False))
    expect(scheduler is not None, "The lifespan must store the scheduler on app.state.scheduler.")
    expect(running, "While the app runs, app.state.scheduler must be running.")
    expect_equal(health.status_code, 200, "GET /health status")
    expect_equal(health.json(), {"status": "ok", "scheduler_running": True}, "GET /health body")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#fastapi-lifespan",
    hint="After `yield` in the lifespan: scheduler.shutdown() (it waits for running jobs).",
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
    hint="GET /jobs returns id, name, trigger and next_run_time.isoformat() for each job.",
)
def test_jobs_endpoint_shows_next_run_time_with_offset(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()
    with simulate(T0), TestClient(app) as client:
        response = client.get("/jobs")
    expect_equal(response.status_code, 200, "GET /jobs status")
    body = response.json()
    expect(
        isinstance(body, list) and len(body) == 1, f"GET /jobs should list one job; got {body!r}"
    )
    job = body[0]
    expect_equal(
        sorted(job), ["id", "name", "next_run_time", "trigger"], "keys of a job in GET /jobs"
    )
    expect_equal(job["id"], "heartbeat", "the job's id")
    expected = (T0 + timedelta(seconds=30)).astimezone(ZoneInfo("Asia/Shanghai")).isoformat()
    expect_equal(
        job["next_run_time"],
        expected,
        "next_run_time of the heartbeat (30 s after start, in the scheduler's zone)",
        "Use job.next_run_time.isoformat(): ISO 8601 with the zone's UTC offset.",
    )
    expect(
        "interval" in str(job["trigger"]),
        f"trigger should describe the interval: {job['trigger']!r}",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi-lifespan",
    hint="sorted(scheduler.get_jobs(), key=lambda job: job.id): get_jobs() orders by next run.",
)
def test_jobs_endpoint_lists_every_job_sorted_by_id(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()
    with simulate(T0), TestClient(app) as client:
        scheduler = app.state.scheduler
        scheduler.add_job(module.heartbeat, "interval", seconds=1, id="zz_fast")
        scheduler.add_job(module.heartbeat, "interval", hours=1, id="aa_slow")
        response = client.get("/jobs")
    expect_equal(
        [job.get("id") for job in response.json()],
        ["aa_slow", "heartbeat", "zz_fast"],
        "job ids listed by GET /jobs",
        "The list must be sorted by id, whatever runs next.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi-lifespan",
    hint="A paused job has next_run_time None: send null, do not crash.",
)
def test_jobs_endpoint_shows_null_for_a_paused_job(target: Target) -> None:
    module = target.load(FILE)
    app = module.create_app()
    with simulate(T0), TestClient(app) as client:
        app.state.scheduler.pause_job("heartbeat")
        response = client.get("/jobs")
    expect_equal(response.status_code, 200, "GET /jobs status with a paused job")
    expect_equal(
        [job.get("next_run_time", "<missing>") for job in response.json()],
        [None],
        "next_run_time of a paused job",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#fastapi-lifespan",
    hint="add_job(..., id=HEARTBEAT_JOB_ID, replace_existing=True)",
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
