"""What a class run has to grade, and the cache that makes runs resumable.

Every submission gets a cache key: its content hash, the course version, the exercises
chosen and the settings that can change a grade. A finished grading is written to
``<out>/.cache/<key>.json`` the moment it ends, so an interrupted run resumes where it
stopped and an unchanged submission is not graded again. Identical submissions (the
same key) are graded once. Gradings that ended in an infrastructure error are not
cached: the next run tries them again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.classroom.inputs import Submission
from grader.classroom.isolate import Outcome, Request, Settings
from grader.classroom.snapshot import course_version

logger = logging.getLogger(__name__)

CACHED_STATUSES = frozenset({"graded", "timeout", "limit"})  # the learner's, not the machine's
INVALID = "invalid"  # the submission could not be read (no exercises, git failed, too large)
ERROR = "error"


class Cache:
    """Finished gradings by key, one JSON file each (written atomically)."""

    def __init__(self, folder: Path) -> None:
        """Keep the cache in ``folder`` (created when first written)."""
        self.folder = folder

    def get(self, key: str) -> Outcome | None:
        """The cached outcome, or None (also for an unreadable entry)."""
        path = self.folder / f"{key}.json"
        try:
            return Outcome.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            logger.warning("ignoring the unreadable cache entry %s", path)
            return None

    def put(self, key: str, outcome: Outcome) -> None:
        """Store an outcome whose status is the learner's doing (not an infrastructure error)."""
        if outcome.status not in CACHED_STATUSES:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(outcome.to_dict(), file)
        os.replace(temporary, self.folder / f"{key}.json")


def cache_key(content_hash: str, version: str, only: tuple[str, ...], settings: Settings) -> str:
    """The key of one grading (see the module's doc)."""
    material = json.dumps(
        [content_hash, version, sorted(only), settings.grading_key()], sort_keys=True
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


@dataclass
class Plan:
    """The submissions of a run, what is known of them, and what is left to grade."""

    submissions: list[Submission]
    only: tuple[str, ...]
    settings: Settings
    cache: Cache
    version: str = field(default_factory=course_version)
    keys: dict[str, str] = field(default_factory=dict)  # learner -> key
    requests: dict[str, Request] = field(default_factory=dict)  # key -> one request
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # key -> outcome
    cached: set[str] = field(default_factory=set)  # keys answered by the cache

    def __post_init__(self) -> None:
        """Key every readable submission and look it up in the cache."""
        for submission in self.submissions:
            if submission.snapshot is None:
                continue
            content = submission.snapshot.content_hash
            key = cache_key(content, self.version, self.only, self.settings)
            self.keys[submission.learner] = key
            if key in self.requests or key in self.outcomes:
                continue
            found = self.cache.get(key)
            if found is not None:
                self.outcomes[key] = found
                self.cached.add(key)
            else:
                archive = submission.snapshot.archive()
                self.requests[key] = Request(submission.learner, archive, content, self.only)

    def pending(self) -> list[tuple[str, Request]]:
        """The gradings still to do, one per distinct submission."""
        return [(k, r) for k, r in self.requests.items() if k not in self.outcomes]

    def learners_of(self, key: str) -> list[str]:
        """Every learner whose submission has this key."""
        return [learner for learner, k in self.keys.items() if k == key]

    def record(self, key: str, outcome: Outcome) -> None:
        """A grading finished: remember it (and cache it, if it is the learner's doing)."""
        self.outcomes[key] = outcome
        self.cache.put(key, outcome)

    def outcome_of(self, submission: Submission) -> Outcome:
        """What is known of one learner: an outcome, or why there is none."""
        if submission.snapshot is None:
            return Outcome(status=INVALID, message=submission.problem)
        key = self.keys[submission.learner]
        return self.outcomes.get(key) or Outcome(status=ERROR, message="not graded")
