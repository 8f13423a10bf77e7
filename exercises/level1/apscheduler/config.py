"""Exercise apscheduler_config (level 1): scheduler settings from the environment.

Read first: notes/07a_ap_scheduler_intro.md (section "Configuration").

Every scheduler of this level (embedded_app.py, standalone_app.py) is built here, from
settings read in ``SCHEDULER_*`` environment variables. Your tasks:
    1. make ``SchedulerSettings`` read the environment with the prefix ``SCHEDULER_``
       (SCHEDULER_TIMEZONE, SCHEDULER_JOBSTORE_URL, SCHEDULER_MAX_WORKERS,
       SCHEDULER_COALESCE, SCHEDULER_MISFIRE_GRACE_TIME, SCHEDULER_MAX_INSTANCES);
    2. add validation, so that a bad value fails at start-up with an error naming the field;
    3. write ``load_settings`` and ``build_scheduler``.

Each promise the tests grade ends with a tag such as (#first-run-after-interval); a
failing test names its tag.

Keep the names, field names, defaults and signatures below exactly as they are: the
hidden tests import them. Sibling files import this module by bare name
(``from config import build_scheduler, load_settings``), so keep the file name too.

Check your work:  python3 -m grader check apscheduler_config   (from the repository root)
Try it by hand:   cd exercises/level1/apscheduler
                  ../../../.venv/bin/python -c "import config; print(config.load_settings())"
"""

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from pydantic_settings import BaseSettings

logger = logging.getLogger(__name__)


class SchedulerSettings(BaseSettings):
    """Scheduler configuration, read from ``SCHEDULER_<FIELD>`` environment variables.

    Keyword arguments work too, and win over the environment:
    ``SchedulerSettings(timezone="Europe/Berlin")`` (#keyword-arguments).

    TODO (validation, checked by the tests; each error must be a ``ValueError`` - pydantic's
    ``ValidationError`` is one - that names the field: for a ``ValidationError``, in the
    ``loc`` of its ``errors()``, as a ``field_validator`` or ``Field(...)`` constraint does)
    (#error-names-the-field):
      * ``timezone`` must be a time zone that ``zoneinfo.ZoneInfo`` can load
        ("Europe/Berlin" is fine, "Mars/Olympus" and "" are not; whatever value is
        accepted, ``ZoneInfo(settings.timezone)`` works) (#timezone-validated);
      * ``max_workers`` must be between 1 and 100 inclusive (#max-workers-range);
      * ``misfire_grace_time`` must be between 1 and 86400 (a day) inclusive, in whole
        seconds (an ``int``: 1.5 is rejected) (#misfire-grace-time-range);
      * ``max_instances`` must be between 1 and 100 inclusive (#max-instances-range);
      * ``jobstore_url``, when set, must be a URL that SQLAlchemy can parse and whose
        database SQLAlchemy knows (``sqlalchemy.engine.make_url(value).get_dialect()``
        works; catch its ``ArgumentError``, which is no ``ValueError``): "not a url",
        "foo://x" and "postgres://..." (SQLAlchemy's name is "postgresql") are rejected,
        "sqlite:////tmp/jobs.sqlite" and "postgresql+psycopg://user:password@host:5432/db"
        are accepted and stored as given. Check the URL, do not connect: the database need
        not be up when the settings are read (#jobstore-url-validated).
    TODO (environment): without the ``SCHEDULER_`` prefix configured, this class reads the
    wrong variables (``TIMEZONE`` instead of ``SCHEDULER_TIMEZONE``) (#env-prefix).
    """

    timezone: str = "UTC"  # an IANA name such as "Europe/Berlin"
    jobstore_url: str | None = None  # None: in memory; else a SQLAlchemy URL
    max_workers: int = 10  # threads running jobs
    coalesce: bool = True  # run a late job once, not once per missed run
    misfire_grace_time: int = 30  # seconds a run may start late
    max_instances: int = 1  # concurrent runs of one job


def load_settings() -> SchedulerSettings:
    """Return the settings read from the ``SCHEDULER_*`` environment variables.

    The tests set, for example, ``SCHEDULER_TIMEZONE=Europe/Berlin`` and
    ``SCHEDULER_MAX_WORKERS=3`` and expect them in the result, with the field types above
    (#environment-overrides); with nothing set, every field has its default
    (#defaults). Each call reads the environment as it is at that moment (no caching)
    (#reads-environment-each-call). A bad value (``SCHEDULER_MAX_WORKERS=0``, an unknown
    zone) raises a ``ValueError`` whose message names the field.
    """
    raise NotImplementedError("return SchedulerSettings() once it reads the SCHEDULER_ variables")


def build_scheduler(settings: SchedulerSettings | None = None) -> BackgroundScheduler:
    """Return a BackgroundScheduler configured from ``settings``. Do NOT start it.

    ``settings`` defaults to ``load_settings()`` (#settings-default-to-environment); given
    settings are used as they are, the environment is not read again
    (#uses-given-settings). The tests check that the scheduler:
      * is not running (#not-started);
      * has ``timezone=ZoneInfo(settings.timezone)`` (#scheduler-zone);
      * has one job store, "default": a MemoryJobStore when ``jobstore_url`` is None
        (#memory-store-by-default), else a SQLAlchemyJobStore created with
        ``url=settings.jobstore_url`` (#sqlalchemy-store-for-url);
      * has one executor, "default": a ThreadPoolExecutor (#thread-pool-executor) with
        ``settings.max_workers`` threads (#pool-size-from-settings);
      * applies ``coalesce``, ``misfire_grace_time`` and ``max_instances`` from the settings
        to every job, as job defaults (a job added without those options gets them)
        (#job-defaults-from-settings).
    """
    raise NotImplementedError(
        "create a BackgroundScheduler with jobstores, executors, job_defaults and the time zone"
    )
