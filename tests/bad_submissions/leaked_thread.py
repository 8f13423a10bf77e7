"""Correct jobs, but a non-daemon thread that never ends is left behind."""

import threading

from _reference import *  # noqa: F403
from _reference import build_scheduler as _reference_build


def build_scheduler():
    threading.Thread(target=threading.Event().wait, name="forgotten-worker").start()
    return _reference_build()
