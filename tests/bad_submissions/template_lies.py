"""Attacks the process its tests are forked from: reports the grader's own pid as each
new test process (so the grader would wait on, kill or trust itself). The grader drops
the template and forks each test itself."""

import os
import sys

_template = sys.modules.get("grader.sandbox.template")
if _template is not None:
    _grader = os.getppid()
    _template._fork_test = lambda *args: _grader

from _reference import *  # noqa: F403, E402


def build_scheduler():
    raise NotImplementedError("nothing implemented: lying about the test's pid should not help")


heartbeat = one_shot = main = build_scheduler
