"""A learner's exercises tree as content: its files, a content hash, a tar archive.

A snapshot is taken once, on the teacher's machine, from a folder or a git commit; from
then on the learner's files travel as bytes (to a local sandbox or in a Celery message),
so grading never reads or writes the learner's own folder again. Symbolic links and
other special files are left out (a link to another learner's folder or to /etc must not
be followed), as are caches (``__pycache__``, ``*.pyc``) and hidden folders (``.git``).

The course version is the hash of what a grade depends on besides the learner's files:
the grader package (suites, catalog, plugin, sandbox), the reference solutions (some
suites compare against them) and pyproject.toml (pytest's settings).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath

from grader import paths

MAX_FILES = 2000
MAX_BYTES = 20 * 1024 * 1024
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})


class SnapshotError(ValueError):
    """The tree cannot be graded as it is (too large, no exercises, a bad archive)."""


def _wanted(name: str) -> bool:
    return not name.startswith(".") and not name.endswith((".pyc", ".pyo"))


@dataclass(frozen=True)
class Snapshot:
    """The files of one exercises tree (``level1/...``), by POSIX path relative to it."""

    files: dict[str, bytes]
    skipped: tuple[str, ...] = field(default=(), compare=False)  # links, special files

    @classmethod
    def from_tree(cls, root: Path) -> Snapshot:
        """Read the regular files below ``root`` without following any symbolic link."""
        files: dict[str, bytes] = {}
        skipped: list[str] = []
        total = 0
        for folder, dirs, names in os.walk(root, followlinks=False):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if _wanted(d) and d not in SKIPPED_DIRS)
            for link in [d for d in dirs if (here / d).is_symlink()]:
                skipped.append((here / link).relative_to(root).as_posix())
                dirs.remove(link)
            for name in sorted(names):
                if not _wanted(name):
                    continue
                path = here / name
                relative = path.relative_to(root).as_posix()
                mode = os.lstat(path).st_mode
                if not stat.S_ISREG(mode):
                    skipped.append(relative)
                    continue
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as handle:
                    data = handle.read(MAX_BYTES + 1)
                total += len(data)
                files[relative] = data
                if len(files) > MAX_FILES or total > MAX_BYTES:
                    raise SnapshotError(
                        f"more than {MAX_FILES} files or {MAX_BYTES // 2**20} MiB: "
                        "not an exercises tree"
                    )
        return cls(files, tuple(skipped))

    @classmethod
    def from_archive(cls, data: bytes) -> Snapshot:
        """The snapshot an :meth:`archive` holds; raises SnapshotError on a bad archive."""
        files: dict[str, bytes] = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                for member in tar:
                    name = PurePosixPath(member.name)
                    if not member.isfile() or name.is_absolute() or ".." in name.parts:
                        raise SnapshotError(f"unexpected archive member {member.name!r}")
                    handle = tar.extractfile(member)
                    files[member.name] = handle.read() if handle else b""
        except tarfile.TarError as error:
            raise SnapshotError(f"not a snapshot archive: {error}") from None
        return cls(files)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the paths and contents (the same files give the same hash anywhere)."""
        digest = hashlib.sha256()
        for name in sorted(self.files):
            data = self.files[name]
            digest.update(f"{name}\0{len(data)}\0".encode())
            digest.update(data)
        return digest.hexdigest()

    def archive(self) -> bytes:
        """A deterministic uncompressed tar of the files (mtime 0, owner root, sorted)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.files):
                data = self.files[name]
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    def write_to(self, root: Path) -> None:
        """Write the files below ``root`` (a fresh folder)."""
        for name, data in self.files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def levels(self) -> list[str]:
        """The level folders it holds (``level1``, ...)."""
        return sorted({name.split("/", 1)[0] for name in self.files if "/" in name})


def find_exercises_root(folder: Path) -> Path | None:
    """The exercises tree in a learner's folder: ``folder/exercises`` (a clone of the
    course) or ``folder`` itself when it holds ``levelN`` folders; None if neither."""
    inner = folder / "exercises"
    if inner.is_dir() and not inner.is_symlink():
        return inner
    if any(p.is_dir() and p.name.startswith("level") for p in folder.iterdir()):
        return folder
    return None


def _tree_digest(digest: hashlib._Hash, root: Path, suffixes: tuple[str, ...]) -> None:
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or path.suffix not in suffixes:
            continue
        digest.update(path.relative_to(paths.REPO_ROOT).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())


@cache
def course_version() -> str:
    """A hash of the grader package, the solutions and pyproject.toml (12 hex digits)."""
    digest = hashlib.sha256()
    _tree_digest(digest, paths.PACKAGE_DIR, (".py", ".toml"))
    _tree_digest(digest, paths.SOLUTIONS_DIR, (".py",))
    pyproject = paths.REPO_ROOT / "pyproject.toml"
    if pyproject.is_file():
        digest.update(pyproject.read_bytes())
    return digest.hexdigest()[:12]
