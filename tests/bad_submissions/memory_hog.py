"""Allocates 3 GB when a test calls it."""

from _reference import *  # noqa: F403


def _hog(*args, **kwargs):
    blocks = [bytearray(3 * 1024**3)]
    return blocks


heartbeat = one_shot = build_scheduler = main = _hog
