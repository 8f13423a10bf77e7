"""Hidden suite of `apscheduler_config` (exercises/level1/apscheduler/config.py).

Settings come from SCHEDULER_* variables; every test starts from a clean environment and
a machine zone (America/Los_Angeles) that no setting uses. Values are probed at their
edges and away from the defaults: a bug that only shows with a non-default value
(a hard-coded pool size, a forgotten zone) must show here. Job defaults are checked
through their effect on a job, not through private attributes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from hypothesis import example, given
from hypothesis import strategies as st

from grader.drawing import blank, deterministic, int_edges, int_outside, padded, utc_instants, zones
from grader.feedback import expect, expect_equal, expect_fire_times, fail
from grader.sim_apscheduler import simulate
from grader.targets import Target
from grader.testing import environment, machine_zone

NOTE = "07a_ap_scheduler_intro.md"
FILE = "apscheduler/config.py"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
DEFAULTS: dict[str, Any] = {
    "timezone": "UTC",
    "jobstore_url": None,
    "max_workers": 10,
    "coalesce": True,
    "misfire_grace_time": 30,
    "max_instances": 1,
}
RANGES = {  # variable -> inclusive range the stub documents (None: no upper bound)
    "SCHEDULER_MAX_WORKERS": (1, 100),
    "SCHEDULER_MISFIRE_GRACE_TIME": (1, 86_400),  # 10**20 would overflow timedelta later
    "SCHEDULER_MAX_INSTANCES": (1, 100),
}


def _inside(variable: str) -> st.SearchStrategy[str]:
    low, high = RANGES[variable]
    return int_edges(low, high if high is not None else 86_400).map(str)


def _outside(variable: str) -> st.SearchStrategy[str]:
    low, high = RANGES[variable]
    below = st.integers(-3, low - 1) if high is None else int_outside(low, high)
    return st.one_of(below.map(str), st.sampled_from(["1.5", "many", "ten"]))


BAD_ZONES = ["Mars/Olympus_Mons", "", "Europe/Berlinn", "europe/berlin-x", "+08:00"]
# non-default settings for the scheduler, one of them at every edge
SETTINGS_CASES: list[dict[str, Any]] = [
    {"timezone": "Europe/Berlin", "max_workers": 4, "coalesce": False,
     "misfire_grace_time": 120, "max_instances": 3},
    {"timezone": "Asia/Kolkata", "max_workers": 1, "coalesce": True,
     "misfire_grace_time": 1, "max_instances": 7},
    {"timezone": "Australia/Sydney", "max_workers": 100, "coalesce": False,
     "misfire_grace_time": 3600, "max_instances": 2},
]  # fmt: skip


def noop() -> None:
    """A job function that a persistent store can reference by module path."""


def _settings_dict(settings: object) -> dict[str, object]:
    return {name: getattr(settings, name, "<missing>") for name in DEFAULTS}


def _typed(values: dict[str, object]) -> dict[str, str]:
    return {name: f"{value!r} ({type(value).__name__})" for name, value in values.items()}


@contextmanager
def grading_conditions() -> Iterator[None]:
    """Every test (and the import of the file): no course variable set, the machine in
    Los Angeles."""
    with environment(), machine_zone("America/Los_Angeles"):
        yield


def _names_field(error: ValueError, field: str) -> bool:
    """Whether the error names the field: in a ValidationError's loc, else in its text."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        try:
            details = errors()
        except Exception:  # not pydantic's errors(): fall back to the message
            details = None
        if isinstance(details, list):
            return any(
                field in str(part).lower() for item in details for part in item.get("loc", ())
            )
    return field in str(error).lower()


def _load_with(module: ModuleType, values: dict[str, str]) -> object:
    with environment(values):
        return module.load_settings()


def _expect_rejected(module: ModuleType, variable: str, value: str) -> None:
    field = variable.removeprefix("SCHEDULER_").lower()
    try:
        settings = _load_with(module, {variable: value})
    except ValueError as error:
        expect(
            _names_field(error, field),
            f"{variable}={value!r} was rejected, but the error does not name the field "
            f"{field!r} (for a ValidationError: in errors()[...]['loc']). It says:\n{error}",
        )
        return
    except Exception as error:
        fail(
            f"{variable}={value!r} raised {type(error).__name__}: {error}\n"
            "A bad setting must raise a ValueError (pydantic's ValidationError is one): "
            "catch the library's exception in the validator and raise ValueError."
        )
    fail(
        f"{variable}={value!r} was accepted (got {getattr(settings, field, None)!r}): "
        "reject it at start-up with a ValueError naming the field."
    )


# -- reading the environment ----------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="With no SCHEDULER_* variable set, every field keeps its documented default and type.",
    spec=("defaults",),
)
def test_defaults_without_environment(target: Target) -> None:
    module = target.load(FILE)
    with environment({"TIMEZONE": "Asia/Tokyo", "MAX_WORKERS": "3"}):  # unprefixed: ignored
        settings = module.load_settings()
    expect_equal(
        _typed(_settings_dict(settings)),
        _typed(DEFAULTS),
        "load_settings() with no SCHEDULER_* variables (TIMEZONE and MAX_WORKERS set)",
        "Only SCHEDULER_* variables count, and each field keeps the type of the stub.",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#configuration",
    hint="pydantic-settings: model_config = SettingsConfigDict(env_prefix='SCHEDULER_').",
    spec=("environment-overrides", "env-prefix"),
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
    settings = _load_with(target.load(FILE), values)
    expected = {
        "timezone": "Europe/Berlin",
        "jobstore_url": url,
        "max_workers": 4,
        "coalesce": False,
        "misfire_grace_time": 120,
        "max_instances": 3,
    }
    expect_equal(
        _typed(_settings_dict(settings)),
        _typed(expected),
        "load_settings() with every SCHEDULER_* variable set",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="load_settings() returns SchedulerSettings() each time: no lru_cache, no module global.",
    spec=("reads-environment-each-call",),
)
def test_load_settings_reads_the_environment_at_each_call(target: Target) -> None:
    module = target.load(FILE)
    seen = [
        getattr(_load_with(module, {"SCHEDULER_MAX_WORKERS": str(n)}), "max_workers", None)
        for n in (3, 7, 3)
    ]
    expect_equal(
        seen,
        [3, 7, 3],
        "max_workers from three load_settings() calls with SCHEDULER_MAX_WORKERS=3, 7, 3",
        "A cached result keeps the first environment forever: tests and restarts see stale values.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="With env_prefix (not aliases), SchedulerSettings(timezone=..., max_workers=...) works "
    "and is validated like the environment.",
    spec=("keyword-arguments",),
)
def test_keyword_arguments_set_the_fields(target: Target) -> None:
    module = target.load(FILE)
    values = dict(SETTINGS_CASES[0], jobstore_url="sqlite:///jobs.sqlite")
    # Every field also set, differently, in the environment: keyword arguments win.
    other = SETTINGS_CASES[1]
    conflicting = {f"SCHEDULER_{name.upper()}": str(value) for name, value in other.items()}
    conflicting["SCHEDULER_JOBSTORE_URL"] = "sqlite:///other.sqlite"
    with environment(conflicting):
        try:
            settings = module.SchedulerSettings(**values)
        except Exception as error:
            fail(f"SchedulerSettings(**{values!r}) raised {type(error).__name__}: {error}")
    expect_equal(
        _settings_dict(settings),
        values,
        f"SchedulerSettings(...) with keyword arguments, while the environment says {conflicting}",
    )
    try:
        module.SchedulerSettings(max_workers=101)
    except ValueError:
        return
    fail("SchedulerSettings(max_workers=101) was accepted: keyword arguments are validated too.")


# -- validation -----------------------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="Validate with ZoneInfo(value) in a field_validator; catch its errors, raise ValueError.",
    spec=("timezone-validated",),
)
def test_rejects_a_time_zone_zoneinfo_cannot_load(target: Target) -> None:
    module = target.load(FILE)

    @deterministic(15)
    @given(zone=st.one_of(st.sampled_from(BAD_ZONES), blank()))
    def bad_zone_scenario(zone: str) -> None:
        _expect_rejected(module, "SCHEDULER_TIMEZONE", zone)

    bad_zone_scenario()


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="Validate the value you store: ZoneInfo(settings.timezone) must work afterwards.",
    spec=("timezone-validated",),
)
def test_an_accepted_time_zone_can_be_loaded(target: Target) -> None:
    module = target.load(FILE)

    @deterministic(15)
    @given(zone=st.sampled_from(["Europe/Berlin", "Asia/Tokyo", "UTC"]).flatmap(padded))
    def padded_zone_scenario(zone: str) -> None:
        try:
            settings = _load_with(module, {"SCHEDULER_TIMEZONE": zone})
        except ValueError:
            return  # rejecting is fine
        stored = getattr(settings, "timezone", None)
        try:
            ZoneInfo(str(stored))
        except Exception as error:
            fail(
                f"SCHEDULER_TIMEZONE={zone!r} was accepted and stored as {stored!r}, which "
                f"ZoneInfo cannot load ({type(error).__name__}): either reject it or store "
                "the value you validated."
            )

    padded_zone_scenario()


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="Field(ge=..., le=...) on each field gives range checks whose errors name the field.",
    spec=("max-workers-range", "misfire-grace-time-range", "max-instances-range"),
)
def test_numbers_at_the_edges_of_their_ranges(target: Target) -> None:
    module = target.load(FILE)

    @deterministic(30)
    @given(data=st.data(), variable=st.sampled_from(sorted(RANGES)), accepted=st.booleans())
    def edge_scenario(data: st.DataObject, variable: str, accepted: bool) -> None:
        if not accepted:
            _expect_rejected(module, variable, data.draw(_outside(variable), label="value"))
            return
        value = data.draw(_inside(variable), label="value")
        field = variable.removeprefix("SCHEDULER_").lower()
        try:
            settings = _load_with(module, {variable: value})
        except Exception as error:
            fail(f"{variable}={value} is within its range but was rejected: {error}")
        expect_equal(getattr(settings, field, None), int(value), f"{field} from {variable}={value}")

    edge_scenario()


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="Constraints on the fields (Field(ge=1), a field_validator) put the field in the error.",
    spec=("error-names-the-field",),
)
def test_every_error_names_its_field(target: Target) -> None:
    module = target.load(FILE)
    for variable, value in [
        ("SCHEDULER_TIMEZONE", "Mars/Olympus_Mons"),
        ("SCHEDULER_MAX_WORKERS", "0"),
        ("SCHEDULER_MISFIRE_GRACE_TIME", "0"),
        ("SCHEDULER_MAX_INSTANCES", "0"),
    ]:
        _expect_rejected(module, variable, value)


# URLs SQLAlchemy cannot open: no URL at all, no scheme, unknown databases ("postgres" is
# Heroku's spelling; SQLAlchemy's is "postgresql").
BAD_URLS = ["not a url", "localhost:5432/jobs", "foo://x", "postgres://user:secret@db/app"]
# Valid URLs; the PostgreSQL host does not exist: the settings must not connect to it.
GOOD_URLS = ["sqlite:////tmp/jobs.sqlite", "sqlite:///jobs.sqlite", "sqlite://"] + (
    ["postgresql+psycopg://user:secret@db.invalid:5432/app"]
    if importlib.util.find_spec("psycopg") is not None  # the course's .venv has the driver
    else []
)


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="A field_validator on jobstore_url: make_url(value).get_dialect() inside try, and "
    "raise ValueError for sqlalchemy.exc.ArgumentError (NoSuchModuleError is one).",
    spec=("jobstore-url-validated",),
)
def test_a_jobstore_url_sqlalchemy_cannot_open_is_rejected(target: Target) -> None:
    module = target.load(FILE)
    for url in BAD_URLS:
        _expect_rejected(module, "SCHEDULER_JOBSTORE_URL", url)
    for url in GOOD_URLS:
        try:
            settings = _load_with(module, {"SCHEDULER_JOBSTORE_URL": url})
        except Exception as error:
            fail(
                f"SCHEDULER_JOBSTORE_URL={url!r} is a valid URL but was rejected "
                f"({type(error).__name__}: {error}). Check the URL only: connecting while "
                "the settings are read fails whenever the database is not up yet."
            )
        expect_equal(getattr(settings, "jobstore_url", None), url, f"jobstore_url from {url!r}")


# -- build_scheduler ------------------------------------------------------------------------


def _started_paused(module: ModuleType, settings: object) -> Any:
    scheduler = module.build_scheduler(settings)
    scheduler.start(paused=True)
    return scheduler


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="build_scheduler configures; whoever calls it decides when to start().",
    spec=("not-started",),
)
def test_build_scheduler_does_not_start_it(target: Target) -> None:
    module = target.load(FILE)
    with simulate(T0):
        scheduler = module.build_scheduler(module.SchedulerSettings())
        expect(
            not scheduler.running,
            "build_scheduler() must return a scheduler that is not started (not even paused).",
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="def build_scheduler(settings=None): settings = settings or load_settings() ...",
    spec=("settings-default-to-environment",),
)
def test_build_scheduler_without_settings_reads_the_environment(target: Target) -> None:
    module = target.load(FILE)
    with simulate(T0), environment({"SCHEDULER_TIMEZONE": "America/New_York"}):
        scheduler = module.build_scheduler()
    expect_equal(
        str(scheduler.timezone),
        "America/New_York",
        "the zone of build_scheduler() with SCHEDULER_TIMEZONE=America/New_York",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="Use the settings you are given; call load_settings() only when settings is None.",
    spec=("uses-given-settings",),
)
def test_build_scheduler_uses_the_settings_it_is_given(target: Target) -> None:
    module = target.load(FILE)
    settings = module.SchedulerSettings(**SETTINGS_CASES[0])
    # Values that conflict with the given settings, and one the environment cannot pass:
    # reading the environment again either takes the wrong values or raises.
    conflicting = {
        "SCHEDULER_TIMEZONE": "Asia/Tokyo",
        "SCHEDULER_MAX_INSTANCES": "9",
        "SCHEDULER_MISFIRE_GRACE_TIME": "soon",
    }
    with simulate(T0), environment(conflicting):
        try:
            scheduler = _started_paused(module, settings)
        except Exception as error:
            fail(
                "build_scheduler(settings) read the environment again and failed on "
                f"SCHEDULER_MISFIRE_GRACE_TIME='soon': {type(error).__name__}: {error}. "
                "Given settings are used as they are: call load_settings() only when "
                "settings is None."
            )
        job = scheduler.add_job(noop, "interval", seconds=5, id="probe")
        seen = {"timezone": str(scheduler.timezone), "max_instances": job.max_instances}
        scheduler.shutdown()
    expect_equal(
        seen,
        {"timezone": "Europe/Berlin", "max_instances": 3},
        f"the scheduler built from settings Europe/Berlin, max_instances=3 (environment: "
        f"{conflicting})",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#configuration",
    hint="coalesce, misfire_grace_time and max_instances go in job_defaults={...}: "
    "BackgroundScheduler(misfire_grace_time=...) silently ignores them.",
    spec=("job-defaults-from-settings",),
)
def test_job_defaults_apply_to_new_jobs(target: Target) -> None:
    module = target.load(FILE)
    for case in SETTINGS_CASES:
        with simulate(T0):
            scheduler = _started_paused(module, module.SchedulerSettings(**case))
            job = scheduler.add_job(noop, "interval", seconds=5, id="probe")
            seen = {
                "coalesce": job.coalesce,
                "misfire_grace_time": job.misfire_grace_time,
                "max_instances": job.max_instances,
            }
            scheduler.shutdown()
        expected = {key: case[key] for key in seen}
        expect_equal(seen, expected, "a new job's options (from the scheduler's job defaults)")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#timezone",
    hint="BackgroundScheduler(timezone=ZoneInfo(settings.timezone)).",
    spec=("scheduler-zone",),
)
def test_cron_jobs_follow_the_configured_zone(target: Target) -> None:
    module = target.load(FILE)

    @deterministic(10)
    @example(start=T0, zone=ZoneInfo("Europe/Berlin"))
    @given(start=utc_instants(resolution="minute"), zone=zones())
    def cron_scenario(start: datetime, zone: ZoneInfo) -> None:
        end = start + timedelta(days=2)
        with simulate(start) as sim:
            scheduler = module.build_scheduler(module.SchedulerSettings(timezone=zone.key))
            scheduler.add_job(noop, "cron", hour=3, minute=0, id="nightly")
            scheduler.start()
            sim.run_until(end)
            scheduler.shutdown()
        first_day = start.astimezone(zone).date() - timedelta(days=1)
        local_03 = [
            datetime.combine(first_day + timedelta(days=n), time(3, 0), tzinfo=zone)
            for n in range(5)
        ]
        expect_fire_times(
            sim.fire_times("nightly"),
            [t for t in local_03 if start <= t <= end],
            what=f"a cron job at hour=3, timezone={zone.key}, from {start:%a %Y-%m-%d %H:%M} UTC",
            tz=zone,
            why="A cron job without its own zone uses the scheduler's zone (the machine is in LA).",
        )

    cron_scenario()


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="executors={'default': ThreadPoolExecutor(settings.max_workers)}",
    spec=("thread-pool-executor",),
)
def test_default_executor_is_a_thread_pool(target: Target) -> None:
    module = target.load(FILE)
    with simulate(T0):
        scheduler = _started_paused(module, module.SchedulerSettings())
        executor = scheduler._lookup_executor("default")
        scheduler.shutdown()
    expect(
        isinstance(executor, ThreadPoolExecutor),
        f"The 'default' executor is {type(executor).__name__}: use APScheduler's "
        "ThreadPoolExecutor (jobs run in threads of this process).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="executors={'default': ThreadPoolExecutor(settings.max_workers)}",
    spec=("pool-size-from-settings",),
)
def test_thread_pool_size_follows_max_workers(target: Target) -> None:
    module = target.load(FILE)
    for workers in (1, 4, 100):
        with simulate(T0):
            scheduler = _started_paused(module, module.SchedulerSettings(max_workers=workers))
            pool = getattr(scheduler._lookup_executor("default"), "_pool", None)
            scheduler.shutdown()
        expect_equal(
            getattr(pool, "_max_workers", None),
            workers,
            f"threads of the default executor with max_workers={workers}",
        )


def _store_kinds(scheduler: Any) -> dict[str, str]:
    return {alias: type(store).__name__ for alias, store in scheduler._jobstores.items()}


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#configuration",
    hint="jobstores={'default': MemoryJobStore()} when jobstore_url is None.",
    spec=("memory-store-by-default",),
)
def test_without_url_jobs_live_in_memory(target: Target) -> None:
    module = target.load(FILE)
    with simulate(T0):
        scheduler = _started_paused(module, module.SchedulerSettings())
        kinds = _store_kinds(scheduler)
        is_memory = isinstance(scheduler._jobstores.get("default"), MemoryJobStore)
        scheduler.shutdown()
    expect(is_memory and len(kinds) == 1, f"job stores without a URL: {kinds}; expected one "
           "'default' MemoryJobStore.")  # fmt: skip


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#configuration",
    hint="jobstores={'default': SQLAlchemyJobStore(url=settings.jobstore_url)} when a URL is set.",
    spec=("sqlalchemy-store-for-url",),
)
def test_a_jobstore_url_persists_jobs_across_schedulers(target: Target, tmp_path: Path) -> None:
    module = target.load(FILE)
    settings = module.SchedulerSettings(jobstore_url=f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    with simulate(T0):
        first = _started_paused(module, settings)
        kinds = _store_kinds(first)
        is_sql = isinstance(first._jobstores.get("default"), SQLAlchemyJobStore)
        first.add_job(noop, "interval", minutes=5, id="persisted")
        first.shutdown()
        second = _started_paused(module, settings)
        ids = [job.id for job in second.get_jobs()]
        second.shutdown()
    expect(
        is_sql and len(kinds) == 1,
        f"job stores with a URL: {kinds}; expected one 'default' SQLAlchemyJobStore "
        "(a job added without jobstore= goes to 'default').",
    )
    expect_equal(
        ids,
        ["persisted"],
        "jobs seen by a second scheduler on the same SCHEDULER_JOBSTORE_URL",
        "With a URL the jobs must live in a SQLAlchemyJobStore, not in memory.",
    )
