"""Run learner code where it cannot take the grader down or fake a result.

Each graded test (and each load probe) runs in a child forked from the warm grader
process. The child is boxed (process group, cgroup, RLIMITs, fds 0-2 on capped files,
nothing else inherited), signs its result with a key drawn after the fork, and leaves with
``os._exit``. The parent sees its end through a pidfd, judges it (exit status, signature,
an integrity fingerprint of pytest's reporting code) and kills whatever it left behind.

Modules, after pytest-xdist's split:
    controller  the loop that runs many children and judges each (dsession)
    spawn       starting one child (workermanage)
    template    a process that imports the file once and forks each test (a zygote)
    conditions  what a preloaded import depended on; when a test imports anew
    child       the child's side, from fork to ``os._exit`` (remote)
    channel     the signed result file
    integrity   detecting a patched reporting machinery
    limits      RLIMITs, configurable; cgroups: memory and process caps that bind root
    reaper      subreaper, orphans, SIGTERM; warmup: what the parent imports before forking
    text        learner output, bounded and without control codes
"""

from grader.sandbox.child import leaked_threads
from grader.sandbox.controller import ChildResult, TemplateSpec, run_in_child, run_many
from grader.sandbox.limits import Limits
from grader.sandbox.text import MAX_OUTPUT_CHARS, sanitize, shown, truncate
from grader.sandbox.warmup import warm_up

__all__ = [
    "MAX_OUTPUT_CHARS",
    "ChildResult",
    "Limits",
    "TemplateSpec",
    "leaked_threads",
    "run_in_child",
    "run_many",
    "sanitize",
    "shown",
    "truncate",
    "warm_up",
]
