"""Prints without end (megabytes of output) in every function a test calls."""

from _reference import *  # noqa: F403


def _flood(*args, **kwargs):
    while True:
        print("x" * 10_000)


heartbeat = one_shot = build_scheduler = main = _flood
