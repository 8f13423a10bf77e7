"""Level 1 reference solution: scheduler settings from the environment, validated early.

What it teaches (notes/07a_ap_scheduler_intro.md):
    * one typed settings object (pydantic-settings) read from ``SCHEDULER_*`` variables;
    * reject bad values at start-up with a message naming the field, not later in a job;
    * ``coalesce``, ``misfire_grace_time`` and ``max_instances`` belong in ``job_defaults``:
      passed as scheduler keyword arguments they are silently ignored;
    * ``jobstore_url`` switches from the in-memory store to a persistent SQLAlchemy store;
      a URL SQLAlchemy cannot parse, an unknown database or a driver that is not installed
      is a bad setting too (an empty value means "in memory").

How to run (it prints the settings and the scheduler it would build, once it has connected
to the job store's database; a bad setting or an unreachable database is one ERROR line
naming the variable, and exit status 2):
    cd solutions/apscheduler && ../../.venv/bin/python config.py
    cd solutions/apscheduler && SCHEDULER_TIMEZONE=Europe/Berlin ../../.venv/bin/python config.py
    cd solutions/apscheduler && SCHEDULER_JOBSTORE_URL=sqlite:////tmp/jobs.sqlite \\
        ../../.venv/bin/python config.py
(`python3 -m grader setup` creates .venv on a fresh clone.)

PostgreSQL needs its driver, psycopg: the project's ``postgres`` extra (the course's .venv has
it; elsewhere ``pip install -e ".[postgres]"`` from the repository root). Name the driver in
the URL, ``postgresql+psycopg://user:password@host:port/database``; with the local server:
    createdb -h 127.0.0.1 -U postgres cronkata    # once
    cd solutions/apscheduler
    export SCHEDULER_JOBSTORE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/cronkata
    ../../.venv/bin/python config.py              # then standalone_app.py keeps its jobs there

Sibling files import it by bare name: ``from config import build_scheduler, load_settings``.
"""

import logging
import sys
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

logger = logging.getLogger(__name__)

_ENV_PREFIX = "SCHEDULER_"
_URL_EXAMPLES = "sqlite:////tmp/jobs.sqlite or postgresql+psycopg://user:password@host:5432/db"
_EXIT_BAD_SETTINGS = 2  # the process could not start with these settings


class SchedulerSettings(BaseSettings):
    """Scheduler configuration, read from ``SCHEDULER_<FIELD>`` environment variables."""

    # hide_input_in_errors: a rejected URL may hold a database password, keep it out of logs
    model_config = SettingsConfigDict(env_prefix="SCHEDULER_", hide_input_in_errors=True)

    timezone: str = "UTC"  # an IANA name such as "Europe/Berlin"
    jobstore_url: str | None = None  # None: in memory; else a SQLAlchemy URL
    max_workers: int = Field(default=10, ge=1, le=100)  # threads running jobs
    coalesce: bool = True  # run a late job once, not once per missed run
    # Bounded above too: 10**20 seconds passes a lower bound and overflows timedelta later.
    misfire_grace_time: int = Field(default=30, ge=1, le=86_400)  # seconds a run may be late
    max_instances: int = Field(default=1, ge=1, le=100)  # concurrent runs of one job

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        """Reject a name that is not an IANA time zone (ZoneInfo cannot load it)."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as 'Europe/Berlin'"
            ) from error
        return value

    @field_validator("jobstore_url", mode="before")
    @classmethod
    def _blank_url_means_memory(cls, value: object) -> object:
        """Treat an empty ``SCHEDULER_JOBSTORE_URL=`` like an unset one."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("jobstore_url")
    @classmethod
    def _usable_url(cls, value: str | None) -> str | None:
        """Reject what SQLAlchemy could not open: no URL, an unknown database, no driver.

        The messages never repeat the URL: it may hold a password.
        """
        if value is None:
            return None
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(f"not a SQLAlchemy URL; use e.g. {_URL_EXAMPLES}") from None
        try:
            dialect = url.get_dialect()
        except NoSuchModuleError:
            raise ValueError(
                f"unknown database {url.drivername!r}; use e.g. {_URL_EXAMPLES}"
            ) from None
        try:
            dialect.import_dbapi()
        except ImportError as error:
            raise ValueError(
                f"the driver of {url.drivername!r} is not installed ({error}); for PostgreSQL "
                "install the project's postgres extra: pip install -e '.[postgres]'"
            ) from None
        return value


def load_settings() -> SchedulerSettings:
    """Read the settings from the environment; bad values raise ``pydantic.ValidationError``."""
    return SchedulerSettings()


def _jobstore(settings: SchedulerSettings) -> BaseJobStore:
    """The default job store: SQLAlchemy when a URL is configured, else in memory."""
    if settings.jobstore_url:
        return SQLAlchemyJobStore(url=settings.jobstore_url)
    return MemoryJobStore()


def build_scheduler(settings: SchedulerSettings | None = None) -> BackgroundScheduler:
    """Return a configured ``BackgroundScheduler``, not started (the caller starts it)."""
    if settings is None:
        settings = load_settings()
    return BackgroundScheduler(
        jobstores={"default": _jobstore(settings)},
        executors={"default": ThreadPoolExecutor(settings.max_workers)},
        job_defaults={
            "coalesce": settings.coalesce,
            "misfire_grace_time": settings.misfire_grace_time,
            "max_instances": settings.max_instances,
        },
        timezone=ZoneInfo(settings.timezone),
    )


def _check_jobstore(settings: SchedulerSettings) -> None:
    """Connect once to the job store's database: a wrong host, port or password fails here."""
    if not settings.jobstore_url:
        return
    # A host that drops packets would otherwise hang start-up until the OS gives up.
    backend = make_url(settings.jobstore_url).get_backend_name()
    connect_args = {"connect_timeout": 5} if backend in {"postgresql", "mysql"} else {}
    engine = create_engine(settings.jobstore_url, connect_args=connect_args)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def _error_line(error: BaseException) -> str:
    """A start-up error as one line naming the variable to fix (for config.py and
    standalone_app.py), without a traceback and without the URL's password."""
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{_ENV_PREFIX}{'_'.join(map(str, item['loc'])).upper()}: "
            + item["msg"].removeprefix("Value error, ")
            for item in error.errors()
        )
    if isinstance(error, SQLAlchemyError):  # raised by the job store, the only database here
        # the driver's own message (its first line), without SQLAlchemy's [SQL: ...] lines
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()
        reason = detail[0] if detail else type(error).__name__
        return f"{_ENV_PREFIX}JOBSTORE_URL: the job store's database cannot be used: {reason}"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _main() -> int:
    """Print the settings and the scheduler they build; a bad setting: one line, status 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        current = load_settings()
        scheduler = build_scheduler(current)
        _check_jobstore(current)
    except (ValueError, ImportError, SQLAlchemyError) as error:
        logger.error("cannot build the scheduler: %s", _error_line(error))
        return _EXIT_BAD_SETTINGS
    # The URL may hold a database password: never log it.
    logger.info("settings: %s", current.model_dump(exclude={"jobstore_url"}))
    logger.info("job store: %s", "SQLAlchemy" if current.jobstore_url else "memory")
    logger.info("scheduler built (not started), time zone %s", scheduler.timezone)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
