"""Registers the grader's pytest plugin for this repository.

`pytest exercises/levelN` then grades level N with the hidden suites in `grader/suites/`,
and plain `pytest` runs the harness's own tests in `tests/`.
"""

pytest_plugins = ["grader.plugin"]
