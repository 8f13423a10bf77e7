"""Starts 200 processes that sleep (a bounded fork bomb) when a test calls it."""

import os
import time

from _reference import *  # noqa: F403


def _bomb(*args, **kwargs):
    for _ in range(200):
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)


heartbeat = one_shot = build_scheduler = main = _bomb
