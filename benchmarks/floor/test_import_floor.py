"""The import floor: one trivial test that imports what the graded levels import."""

import apscheduler.schedulers.background
import celery
import fakeredis
import fastapi.testclient
import pydantic_settings
import sqlalchemy
import time_machine


def test_libraries_import() -> None:
    """Nothing to grade: the run's cost is pytest plus the libraries."""
    modules = (apscheduler, celery, fakeredis, fastapi, pydantic_settings, sqlalchemy, time_machine)
    assert all(m.__name__ for m in modules)
