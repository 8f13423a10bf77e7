"""The self-setting-up environment."""

from __future__ import annotations

import sys
from pathlib import Path

import hypothesis
import pytest

from grader import bootstrap


@pytest.mark.timeout(10)
def test_setup_leaves_hypothesis_asserts_rewritten_and_cached() -> None:
    """pytest rewrites every module of a plugin distribution; without the cached result each
    run under PYTHONDONTWRITEBYTECODE redid it (about 2 s). Setup collects once to fill it."""
    package = Path(hypothesis.__file__).parent
    tag = f"{sys.implementation.cache_tag}-pytest-{pytest.__version__}"
    cached = package / "__pycache__" / f"core.{tag}.pyc"
    assert cached.is_file(), (
        f"{cached} is missing: `python3 -m grader setup` should have filled pytest's caches"
    )


def test_the_setup_stamp_changes_with_the_setup_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    before = bootstrap._wanted_stamp()
    monkeypatch.setattr(bootstrap, "SETUP_VERSION", bootstrap.SETUP_VERSION + "+next")
    assert bootstrap._wanted_stamp() != before  # existing checkouts get the new steps
