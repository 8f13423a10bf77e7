"""Hidden suite of `apscheduler_config` (exercises/level1/apscheduler/config.py).

Settings come from SCHEDULER_* variables; every test starts from a clean environment.
Job defaults are checked through their effect on a job, not through private attributes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from grader.feedback import expect, expect_equal, expect_fire_times, fail
from grader.sim_apscheduler import simulate
from grader.targets import Target
from grader.testing import environment, machine_zone

NOTE = "07a_ap_scheduler_intro.md"
FILE = "apscheduler/config.py"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
DEFAULTS = {
    "timezone": "UTC",
    "jobstore_url": None,
    "max_workers": 10,
    "coalesce": True,
    "misfire_grace_time": 30,
    "max_instances": 1,
}


def noop() -> None:
    """A job function that a persistent store can reference by module path."""


def _settings_dict(settings: object) -> dict[str, object]:
    return {name: getattr(settings, name, "<missing>") for name in DEFAULTS}


@pytest.fixture(autouse=True)
def _clean_environment() -> Iterator[None]:
    with environment(), machine_zone("America/Los_Angeles"):
        yield


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="With no SCHEDULER_* variable set, every field keeps its documented default.",
)
def test_defaults_without_environment(target: Target) -> None:
    settings = target.load(FILE).load_settings()
    expect_equal(
        _settings_dict(settings), DEFAULTS, "load_settings() with no SCHEDULER_* variables"
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#configuration",
    hint="pydantic-settings: model_config = SettingsConfigDict(env_prefix='SCHEDULER_').",
)
def test_environment_overrides_every_setting(target: Target, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    values = {
        "SCHEDULER_TIMEZONE": "Europe/Berlin",
        "SCHEDULER_JOBSTORE_URL": url,
        "SCHEDULER_MAX_WORKERS": "4",
        "SCHEDULER_COALESCE": "false",
        "SCHEDULER_MISFIRE_GRACE_TIME": "120",
        "SCHEDULER_MAX_INSTANCES": "3",
    }
    module = target.load(FILE)
    with environment(values):
        settings = module.load_settings()
    expect_equal(
        _settings_dict(settings),
        {
            "timezone": "Europe/Berlin",
            "jobstore_url": url,
            "max_workers": 4,
            "coalesce": False,
            "misfire_grace_time": 120,
            "max_instances": 3,
        },
        "load_settings() with every SCHEDULER_* variable set",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="Validate with ZoneInfo(value) in a field_validator and raise ValueError naming the zone.",
)
def test_rejects_an_unknown_time_zone(target: Target) -> None:
    module = target.load(FILE)
    with environment({"SCHEDULER_TIMEZONE": "Mars/Olympus_Mons"}):
        try:
            module.load_settings()
        except ValueError as error:
            expect(
                "timezone" in str(error).lower(),
                f"The error should name the field 'timezone'; it says: {error}",
            )
            return
    fail(
        "SCHEDULER_TIMEZONE=Mars/Olympus_Mons was accepted: "
        "reject it at start-up with a ValueError."
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="pydantic Field(ge=..., le=...) gives range checks with clear messages.",
)
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SCHEDULER_MAX_WORKERS", "0"),
        ("SCHEDULER_MAX_WORKERS", "1000"),
        ("SCHEDULER_MAX_WORKERS", "many"),
        ("SCHEDULER_MISFIRE_GRACE_TIME", "0"),
        ("SCHEDULER_MAX_INSTANCES", "0"),
    ],
)
def test_rejects_a_bad_number(target: Target, variable: str, value: str) -> None:
    module = target.load(FILE)
    field = variable.removeprefix("SCHEDULER_").lower()
    with environment({variable: value}):
        try:
            settings = module.load_settings()
        except ValueError as error:
            expect(
                field in str(error).lower(), f"The error should name {field!r}; it says: {error}"
            )
            return
    fail(f"{variable}={value} was accepted (got {getattr(settings, field, None)!r}): reject it.")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="build_scheduler configures; whoever calls it decides when to start().",
)
def test_build_scheduler_does_not_start_it(target: Target) -> None:
    module = target.load(FILE)
    with simulate(T0):
        scheduler = module.build_scheduler(module.SchedulerSettings())
        expect(
            not scheduler.running, "build_scheduler() must return a scheduler that is not started."
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#configuration",
    hint="coalesce, misfire_grace_time and max_instances go in job_defaults={...}: "
    "BackgroundScheduler(misfire_grace_time=...) silently ignores them.",
)
def test_job_defaults_apply_to_new_jobs(target: Target) -> None:
    module = target.load(FILE)
    settings = module.SchedulerSettings(coalesce=False, misfire_grace_time=120, max_instances=3)
    with simulate(T0):
        scheduler = module.build_scheduler(settings)
        scheduler.start(paused=True)
        job = scheduler.add_job(noop, "interval", seconds=5, id="probe")
        seen = {
            "coalesce": job.coalesce,
            "misfire_grace_time": job.misfire_grace_time,
            "max_instances": job.max_instances,
        }
        scheduler.shutdown()
    expect_equal(
        seen,
        {"coalesce": False, "misfire_grace_time": 120, "max_instances": 3},
        "a new job's options (from the scheduler's job defaults)",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#timezone",
    hint="BackgroundScheduler(timezone=ZoneInfo(settings.timezone)).",
)
def test_cron_jobs_follow_the_configured_zone(target: Target) -> None:
    module = target.load(FILE)
    berlin = ZoneInfo("Europe/Berlin")
    with simulate(T0) as sim:
        scheduler = module.build_scheduler(module.SchedulerSettings(timezone="Europe/Berlin"))
        scheduler.add_job(noop, "cron", hour=3, minute=0, id="nightly")
        scheduler.start()
        sim.run_until(T0 + timedelta(days=3))
    expect_fire_times(
        sim.fire_times("nightly"),
        [datetime(2026, 3, day, 3, 0, tzinfo=berlin) for day in (2, 3, 4)],
        what="a cron job at hour=3 with SCHEDULER_TIMEZONE=Europe/Berlin",
        tz=berlin,
        why="A cron job without its own zone uses the scheduler's zone (the machine is in LA).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="executors={'default': ThreadPoolExecutor(settings.max_workers)}",
)
def test_thread_pool_size_follows_max_workers(target: Target) -> None:
    module = target.load(FILE)
    with simulate(T0):
        scheduler = module.build_scheduler(module.SchedulerSettings(max_workers=4))
        scheduler.start(paused=True)
        pool = getattr(scheduler._lookup_executor("default"), "_pool", None)
        scheduler.shutdown()
    expect_equal(getattr(pool, "_max_workers", None), 4, "threads of the default executor")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#configuration",
    hint="jobstores={'default': SQLAlchemyJobStore(url=settings.jobstore_url)} when a URL is set.",
)
def test_a_jobstore_url_persists_jobs_across_schedulers(target: Target, tmp_path: Path) -> None:
    module = target.load(FILE)
    settings = module.SchedulerSettings(jobstore_url=f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    with simulate(T0):
        first = module.build_scheduler(settings)
        first.start(paused=True)
        first.add_job(noop, "interval", minutes=5, id="persisted")
        first.shutdown()
        second = module.build_scheduler(settings)
        second.start(paused=True)
        ids = [job.id for job in second.get_jobs()]
        second.shutdown()
    expect_equal(
        ids,
        ["persisted"],
        "jobs seen by a second scheduler on the same SCHEDULER_JOBSTORE_URL",
        "With a URL the jobs must live in a SQLAlchemyJobStore, not in memory.",
    )
