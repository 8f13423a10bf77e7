"""Floods stdout with binary garbage and terminal escape codes while being imported."""

import os

from _reference import *  # noqa: F403

_garbage = b"\x1b[2J\x1b[31m\x1b]0;pwned\x07GARBAGE\x00\xff\xfe" * 4096
while True:
    os.write(1, _garbage)
