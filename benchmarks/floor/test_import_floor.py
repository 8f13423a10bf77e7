"""The import floor: one trivial test that imports what a level's grading imports.

``CRONKATA_FLOOR_MODULES`` lists the modules (comma-separated; bench_grading.py passes
`libraries.level_libraries` of the level); unset, every level's libraries are imported.
"""

import importlib
import os
import sys
from pathlib import Path


def _names() -> list[str]:
    listed = os.environ.get("CRONKATA_FLOOR_MODULES")
    if listed:
        return listed.split(",")
    sys.path.insert(0, str(Path(__file__).parent))
    from libraries import level_libraries

    return level_libraries()


NAMES = _names()
for _name in NAMES:
    _parent = _name.rpartition(".")[0]
    if _parent in sys.modules and not hasattr(sys.modules[_parent], "__path__"):
        continue  # ``from module import name``: a name, not a submodule
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError:
        if not _parent:
            raise
        # ``from package import name``: a name, not a submodule


def test_libraries_import() -> None:
    """Nothing to grade: the run's cost is pytest plus the level's libraries."""
    assert all(name.split(".")[0] in sys.modules for name in NAMES)
