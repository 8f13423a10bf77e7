"""Leaves processes behind: a plain child, a double-forked setsid daemon, an open pool."""

import multiprocessing
import os
import subprocess

import _reference
from _reference import *  # noqa: F403

_pools = []


def build_scheduler():
    subprocess.Popen(["sleep", "600"])
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "601"])
        os._exit(0)
    _pools.append(multiprocessing.get_context("fork").Pool(2))
    return _reference.build_scheduler()
