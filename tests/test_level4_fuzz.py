"""The Schemathesis fuzzing of the level-4 admin API, run in a pytest of its own.

Schemathesis's pytest plugin changes how Hypothesis reports failing cases in every test of
the run it is loaded into (the falsifying example loses its values), so it is kept out of
the harness's test run (``-p no:schemathesis`` in pyproject.toml) and loaded only for
``tests/fuzz/fuzz_level4_api.py``, in a child pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).parent / "fuzz" / "fuzz_level4_api.py"


@pytest.mark.timeout(600)
def test_the_admin_api_survives_schemathesis() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "schemathesis.pytest.plugin", str(FUZZ)],
        capture_output=True,
        text=True,
        timeout=590,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout, done.stdout[-2000:]
