"""Learner output as the grader shows it: bounded and free of terminal control codes."""

from __future__ import annotations

import re

MAX_OUTPUT_CHARS = 4000
# Everything a terminal could interpret: escape sequences and C0/C1 controls but \t and \n.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the head and the tail of a long text, saying how much was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n... [{cut} characters cut] ...\n{text[-half:]}"


def sanitize(text: str) -> str:
    """Remove terminal escape sequences and control characters (keeps tabs and newlines)."""
    return _CONTROLS.sub("?", _ESCAPES.sub("", text.replace("\r\n", "\n")))


def shown(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Sanitized and truncated: how any text that came from learner code is displayed."""
    return truncate(sanitize(text), limit)


def read_capped(path: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """The head and tail of a (possibly huge) output file, decoded leniently."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            if size <= 2 * limit:
                handle.seek(0)
                return shown(handle.read().decode(errors="replace"), limit)
            handle.seek(0)
            head = handle.read(limit // 2).decode(errors="replace")
            handle.seek(size - limit // 2)
            tail = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return sanitize(f"{head}\n... [{size - limit} bytes cut] ...\n{tail}")
