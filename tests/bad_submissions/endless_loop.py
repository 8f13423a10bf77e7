"""Loops forever in every function a test calls."""

from _reference import *  # noqa: F403


def _loop(*args, **kwargs):
    while True:
        pass


heartbeat = one_shot = build_scheduler = main = _loop
