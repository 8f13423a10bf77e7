"""Prints without end: megabytes of output."""

from _reference import *  # noqa: F403


def build_scheduler():
    while True:
        print("x" * 10_000)
