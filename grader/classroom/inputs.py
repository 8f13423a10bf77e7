"""The submissions of a class: from a folder of learners' folders or from a roster CSV.

- A folder: each sub-folder is one learner (its name is the learner id) and holds either
  an ``exercises/`` tree (a clone or copy of the course) or the ``levelN`` folders
  themselves. A sub-folder that is a git repository is graded at a commit, like a roster
  entry.
- A roster CSV (UTF-8, a header row): ``learner`` and ``source`` columns, optionally
  ``commit``. ``source`` is a folder (relative to the CSV's folder) or a git URL.

Git sources are mirrored into ``<out>/.work/repos/`` (the learner's repository is only
read, never checked out) and graded at the roster's ``commit``, else at the last commit
before the deadline (``--before``: committer dates, which a learner could forge; the
platform's push times are the trustworthy ones), else at HEAD. The commit graded is
recorded in the gradebook.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.classroom.snapshot import (
    MAX_BYTES,
    MAX_FILES,
    SKIPPED_DIRS,
    Snapshot,
    SnapshotError,
    find_exercises_root,
)

logger = logging.getLogger(__name__)

LEARNER_COLUMNS = ("learner", "learner_id", "id", "student", "login", "email")
SOURCE_COLUMNS = ("source", "repo", "repository", "git", "url", "path")
GIT_TIMEOUT = 300.0
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)


class InputError(ValueError):
    """The class cannot be read at all (no such folder, a roster without its columns)."""


@dataclass
class Submission:
    """One learner's work, ready to grade (``snapshot``) or with the ``problem`` why not."""

    learner: str
    source: str
    snapshot: Snapshot | None = None
    commit: str = ""
    problem: str = ""

    @property
    def slug(self) -> str:
        """The learner id as a file name (``learners/<slug>/``)."""
        return slug_of(self.learner)


def slug_of(learner: str) -> str:
    """A file-name-safe form of a learner id (letters, digits, ``@.+-_``)."""
    cleaned = re.sub(r"[^\w@.+-]", "_", learner).lstrip(".")
    return cleaned[:100] or "_"


def is_url(source: str) -> bool:
    """Whether a roster source is a git URL (``https://``, ``file://``, ``git@host:``)."""
    return bool(_URL.match(source))


def _git(args: list[str], cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    done = subprocess.run(
        ["git", "-c", "safe.directory=*", *args],
        cwd=cwd,
        capture_output=True,
        env=env,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise SnapshotError(f"git {args[0]}: {done.stderr.decode(errors='replace').strip()[-300:]}")
    return done.stdout.decode(errors="replace")


def _mirror(source: str, work: Path, slug: str) -> Path:
    """A bare mirror of the learner's repository in ``work`` (fetched again if it exists)."""
    target = work / "repos" / f"{slug}.git"
    if target.is_dir():
        _git(["--git-dir", str(target), "remote", "set-url", "origin", source])
        _git(["--git-dir", str(target), "fetch", "--quiet", "--prune", "--force", "origin"])
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        _git(["clone", "--quiet", "--mirror", "--no-hardlinks", source, str(target)])
    return target


def _resolve(git_dir: Path, commit: str, before: str | None) -> str:
    base = ["--git-dir", str(git_dir)]
    if commit:
        return _git([*base, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"]).strip()
    if before:
        found = _git([*base, "rev-list", "-1", f"--before={before}", "HEAD"]).strip()
        if not found:
            raise SnapshotError(f"no commit before {before}")
        return found
    return _git([*base, "rev-parse", "--verify", "HEAD^{commit}"]).strip()


def _snapshot_of_commit(git_dir: Path, commit: str) -> Snapshot:
    """The exercises tree of a commit (``exercises/`` if it has one, else its root)."""
    base = ["--git-dir", str(git_dir)]
    top = _git([*base, "ls-tree", "--name-only", commit]).split()
    prefix = "exercises/" if "exercises" in top else ""
    if not prefix and not any(name.startswith("level") for name in top):
        raise SnapshotError("the commit holds neither exercises/ nor level folders")
    done = subprocess.run(
        ["git", "-c", "safe.directory=*", *base, "archive", "--format=tar", commit],
        capture_output=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise SnapshotError(f"git archive: {done.stderr.decode(errors='replace')[-300:]}")
    files: dict[str, bytes] = {}
    skipped: list[str] = []
    total = 0
    with tarfile.open(fileobj=io.BytesIO(done.stdout), mode="r:") as tar:
        for member in tar:
            if not member.name.startswith(prefix) or member.isdir():
                continue
            relative = member.name[len(prefix) :]
            parts = PurePosixPath(relative).parts
            if any(p.startswith(".") or p in SKIPPED_DIRS for p in parts) or relative.endswith(
                ".pyc"
            ):
                continue
            if not member.isfile():  # a symbolic link in the repository: never followed
                skipped.append(relative)
                continue
            handle = tar.extractfile(member)
            data = handle.read() if handle else b""
            total += len(data)
            files[relative] = data
            if len(files) > MAX_FILES or total > MAX_BYTES:
                raise SnapshotError(f"more than {MAX_FILES} files or {MAX_BYTES // 2**20} MiB")
    return Snapshot(files, tuple(skipped))


def _is_git_folder(folder: Path) -> bool:
    return (folder / ".git").exists() or (
        (folder / "HEAD").is_file() and (folder / "objects").is_dir()
    )


def load(
    learner: str, source: str, base: Path, work: Path, commit: str = "", before: str | None = None
) -> Submission:
    """One submission: a folder's files, or a git source at its commit (never raises)."""
    submission = Submission(learner, source)
    try:
        if is_url(source):
            git_dir = _mirror(source, work, submission.slug)
        else:
            folder = (base / source).resolve()
            if not folder.is_dir():
                raise SnapshotError(f"{source}: no such folder")
            if not _is_git_folder(folder):
                if commit:
                    raise SnapshotError(
                        f"{source}: a commit is named but it is not a git repository"
                    )
                root = find_exercises_root(folder)
                if root is None:
                    raise SnapshotError(f"{source}: no exercises/ folder and no level folders")
                submission.snapshot = Snapshot.from_tree(root)
                return submission
            git_dir = _mirror(str(folder), work, submission.slug)
        submission.commit = _resolve(git_dir, commit, before)
        submission.snapshot = _snapshot_of_commit(git_dir, submission.commit)
    except (SnapshotError, OSError, subprocess.TimeoutExpired) as error:
        submission.problem = str(error)
        logger.warning("%s: %s", learner, error)
    return submission


def from_folder(folder: Path, work: Path, before: str | None = None) -> list[Submission]:
    """One submission per sub-folder of ``folder`` (hidden ones and files are ignored)."""
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    learners = sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    )
    if not learners:
        raise InputError(f"{folder}: no learner folders in it")
    return [load(p.name, p.name, folder, work, before=before) for p in learners]


def _column(header: list[str], names: tuple[str, ...], what: str, path: Path) -> str:
    lowered = {h.strip().lower(): h for h in header}
    for name in names:
        if name in lowered:
            return lowered[name]
    raise InputError(f"{path}: no {what} column (one of {', '.join(names)}) in {header}")


def from_roster(path: Path, work: Path, before: str | None = None) -> list[Submission]:
    """One submission per row of a roster CSV (``learner,source[,commit]``)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: {error}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    learner_key = _column(header, LEARNER_COLUMNS, "learner", path)
    source_key = _column(header, SOURCE_COLUMNS, "source", path)
    commit_key = next((h for h in header if h.strip().lower() == "commit"), None)
    found: list[Submission] = []
    seen: set[str] = set()
    for number, row in enumerate(reader, start=2):
        learner = (row.get(learner_key) or "").strip()
        source = (row.get(source_key) or "").strip()
        if not learner and not source:
            continue
        if not learner or not source:
            raise InputError(f"{path}:{number}: a row needs both a learner and a source")
        if learner in seen:
            raise InputError(f"{path}:{number}: learner {learner!r} is listed twice")
        seen.add(learner)
        commit = (row.get(commit_key) or "").strip() if commit_key else ""
        found.append(load(learner, source, path.parent, work, commit=commit, before=before))
    if not found:
        raise InputError(f"{path}: no learners listed")
    return found


def discover(source: Path, work: Path, before: str | None = None) -> list[Submission]:
    """The submissions of ``source``: a roster CSV (a file) or a folder of learners."""
    submissions = (
        from_roster(source, work, before) if source.is_file() else from_folder(source, work, before)
    )
    slugs: dict[str, str] = {}
    for submission in submissions:
        other = slugs.setdefault(submission.slug, submission.learner)
        if other != submission.learner:
            raise InputError(
                f"learners {other!r} and {submission.learner!r} share the file name "
                f"{submission.slug!r}: rename one"
            )
    return submissions
