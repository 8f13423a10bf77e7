"""The learner's safety copies: `grader reset`, `grader restore` and `r` in `grader watch`.

Each copy is a new ``.grader/backups/<time><suffix>/`` folder (``$CRONKATA_STATE_DIR``
when set) holding the file at its path below ``exercises/``.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from grader import paths
from grader.catalog import Exercise, pristine_source
from grader.results import HarnessError

BACKUPS = "backups"
BEFORE_RESTORE = "-before-restore"  # suffix of the folders of restore's own safety copies


def backup(item: Exercise, suffix: str = "") -> Path:
    """Copy the learner's file to a new ``.grader/backups/<time><suffix>/`` folder."""
    target = item.stub_path()
    relative = target.relative_to(paths.EXERCISES_DIR)
    while True:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        copy = paths.STATE_DIR / BACKUPS / f"{stamp}{suffix}" / relative
        if not copy.exists():
            break
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target, copy)
    return copy


def last_backup(item: Exercise) -> Path | None:
    """The newest copy of this exercise's file that `grader reset` kept, if any."""
    folder = paths.STATE_DIR / BACKUPS
    if not folder.is_dir():
        return None
    relative = item.stub_path().relative_to(paths.EXERCISES_DIR)
    for stamp in sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True):
        if not stamp.name.endswith(BEFORE_RESTORE) and (stamp / relative).is_file():
            return stamp / relative
    return None


def restore_stub(item: Exercise) -> Path | None:
    """Write the pristine stub over the learner's file, backing that file up first.

    Returns the backup (None when there was no file to keep); raises HarnessError when
    the pristine stub cannot be found (no hash in the catalog, or git does not know it).
    """
    if item.stub_blob is None:
        raise HarnessError(f"{item.id}: the catalog has no stub hash to restore from")
    content = pristine_source(item)
    if content is None:
        raise HarnessError(f"{item.id}: git cannot find the pristine stub ({item.stub_blob})")
    target = item.stub_path()
    kept = backup(item) if target.is_file() else None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return kept
