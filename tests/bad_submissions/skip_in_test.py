"""Skips every test that calls it: a skip must never count as a pass."""

import pytest

from _reference import *  # noqa: F403


def _skip(*args, **kwargs):
    pytest.skip("nothing to grade here")


heartbeat = one_shot = build_scheduler = main = _skip
