"""Leaves processes behind: a plain child, a double-forked setsid daemon, an open pool.

With CRONKATA_LEAK_HOLD=<seconds> it then waits that long, so a test can signal the
grader while its children run.
"""

import multiprocessing
import os
import subprocess
import time

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
    time.sleep(float(os.environ.get("CRONKATA_LEAK_HOLD", "0")))
    return _reference.build_scheduler()
