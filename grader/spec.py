"""Spec coverage: every promise a stub's docstrings make is graded by some test, and back.

A stub's docstrings are the specification. Each graded promise ends with a tag::

    its first run is one interval after now, not immediately (#first-run-after-interval).

A tag is ``(#name)`` with ``name`` in lowercase kebab-case, defined once per stub. A test
names the tags it grades in its marker: ``@pytest.mark.grade(..., spec=("tag-a", "tag-b"))``.
The stub's module docstring carries `SPEC_HEADER` so the learner knows what tags mean (its
example tag is not a definition).

`spec_problems` checks one exercise: every tag of the stub is named by a test, every
tag a test names exists in the stub, and every test names at least one tag.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Mapping

TAG_NAME = r"[a-z0-9]+(?:-[a-z0-9]+)*"
TAG = re.compile(rf"\(#({TAG_NAME})\)")
ANY_TAG = re.compile(r"\(#([^()\s]*)\)")  # what an author may have meant as a tag
SPEC_HEADER = (
    "Each promise the tests grade ends with a tag such as (#first-run-after-interval); "
    "a failing test names its tag."
)


def docstrings(source: str) -> list[str]:
    """The module's, classes' and functions' docstrings of a source, in file order."""
    kinds = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    found = [
        (getattr(node, "lineno", 0), ast.get_docstring(node, clean=True) or "")
        for node in ast.walk(ast.parse(source))
        if isinstance(node, kinds)
    ]
    return [text for _, text in sorted(found, key=lambda pair: pair[0]) if text]


def _without_header(text: str) -> str:
    """A docstring with the header line(s) removed (the header's example is no tag)."""
    return " ".join(text.split()).replace(SPEC_HEADER, "")


def stub_tags(source: str) -> list[str]:
    """Every tag defined in a stub's docstrings, in order (a repeated tag appears twice)."""
    return [tag for text in docstrings(source) for tag in TAG.findall(_without_header(text))]


def malformed_tags(source: str) -> list[str]:
    """``(#...)`` spans of the docstrings that are not valid tags (e.g. ``(#First_Run)``)."""
    return [
        raw
        for text in docstrings(source)
        for raw in ANY_TAG.findall(_without_header(text))
        if not re.fullmatch(TAG_NAME, raw)
    ]


def has_header(source: str) -> bool:
    """Whether the stub's module docstring tells the learner about tags (`SPEC_HEADER`)."""
    module_doc = ast.get_docstring(ast.parse(source), clean=True) or ""
    return SPEC_HEADER in " ".join(module_doc.split())


def spec_of(kwargs: Mapping[str, object]) -> tuple[str, ...] | None:
    """The tags a grade marker's ``spec=`` names (a str is one tag); None when malformed."""
    value = kwargs.get("spec", ())
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list) and all(isinstance(tag, str) for tag in value):
        return tuple(value)
    return None


def spec_problems(stub_source: str, marks: Mapping[str, Mapping[str, object]]) -> list[str]:
    """What breaks spec coverage between a pristine stub and its suite's grade markers.

    ``marks`` maps each test function name to its ``grade`` marker's arguments (as
    `grader.verify.grade_marks` returns them). Empty when the coverage is complete.
    """
    problems: list[str] = []
    if not has_header(stub_source):
        problems.append(f'stub: its module docstring lacks the line "{SPEC_HEADER}"')
    problems += [
        f"stub: (#{raw}) is not a tag: tags are lowercase kebab-case, e.g. (#runs-at-03-00)"
        for raw in malformed_tags(stub_source)
    ]
    defined = Counter(stub_tags(stub_source))
    problems += [
        f"stub: tag (#{tag}) is defined {count} times: one promise, one tag"
        for tag, count in defined.items()
        if count > 1
    ]
    graded: set[str] = set()
    for test, kwargs in marks.items():
        named = spec_of(kwargs)
        if named is None:
            problems.append(f"{test}: grade(spec=...) must be a tuple of tag names")
            continue
        if not named:
            problems.append(f"{test} names no spec tag: add grade(spec=(...)) with what it grades")
        for tag in named:
            if tag in defined:
                graded.add(tag)
                continue
            why = " (write the name without '(#' and ')')" if tag.startswith(("#", "(")) else ""
            problems.append(f"{test} names spec tag {tag!r}, which the stub does not define{why}")
    problems += [
        f"stub: tag (#{tag}) is graded by no test: name it in a test's grade(spec=...)"
        for tag in defined
        if tag not in graded
    ]
    return problems
