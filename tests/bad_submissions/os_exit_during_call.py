"""Kills its own process (exit code 0!) in every function a test calls."""

import os

from _reference import *  # noqa: F403


def _leave(*args, **kwargs):
    os._exit(0)


heartbeat = one_shot = build_scheduler = main = _leave
