"""Plants a module in site-packages and imports it, hoping the grader imports it too.

If the grader process ever imports it, the planted code runs there (with full power over
the results). It records the pid of every process it runs in, so the test can tell.
"""

import os
import sys
import sysconfig

from _reference import *  # noqa: F403

_NAME = "cronkata_planted_probe"
_MARKERS = os.environ.get("CRONKATA_FIXTURE_DIR", "/tmp")
_path = os.path.join(sysconfig.get_paths()["purelib"], f"{_NAME}.py")
with open(_path, "w") as _handle:
    _handle.write(
        "import os\n"
        f"with open(os.path.join({_MARKERS!r}, 'planted.pids'), 'a') as f:\n"
        "    f.write(f'{os.getpid()}\\n')\n"
    )
__import__(_NAME)
sys.modules.setdefault(f"apscheduler.{_NAME}", sys.modules[_NAME])


def build_scheduler():
    raise NotImplementedError("nothing implemented")


heartbeat = one_shot = main = build_scheduler
