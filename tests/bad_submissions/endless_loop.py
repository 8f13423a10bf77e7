"""An endless loop inside the function the tests call."""

from _reference import *  # noqa: F403


def build_scheduler():
    while True:
        pass
