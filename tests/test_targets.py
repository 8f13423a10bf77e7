"""Loading learner files in isolation."""

from __future__ import annotations

import sys
from pathlib import Path

import apscheduler
import pytest

from grader import paths
from grader.catalog import catalog
from grader.targets import LoadError, Target, load_file, module_name_for


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_is_loaded_under_a_unique_name_and_registered(tmp_path: Path) -> None:
    module = load_file(write(tmp_path / "a" / "job.py", "VALUE = 1\n"))
    other = load_file(write(tmp_path / "b" / "job.py", "VALUE = 2\n"))
    assert (module.VALUE, other.VALUE) == (1, 2)
    assert module.__name__ != other.__name__
    assert sys.modules[module.__name__] is module  # so pickled "module:function" refs resolve


def test_sibling_imports_resolve_in_the_same_tree_and_do_not_leak(tmp_path: Path) -> None:
    for tree, zone in (("exercises", "UTC"), ("solutions", "Asia/Shanghai")):
        write(tmp_path / tree / "config.py", f"ZONE = {zone!r}\n")
        write(tmp_path / tree / "app.py", "from config import ZONE\n")
    first = load_file(tmp_path / "exercises" / "app.py")
    second = load_file(tmp_path / "solutions" / "app.py")
    assert (first.ZONE, second.ZONE) == ("UTC", "Asia/Shanghai")
    assert "config" not in sys.modules
    assert str(tmp_path / "exercises") not in sys.path


def test_loading_writes_no_bytecode_into_the_learners_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as on most learners' machines
    write(tmp_path / "tree" / "config.py", "ZONE = 'UTC'\n")
    module = load_file(write(tmp_path / "tree" / "app.py", "from config import ZONE\n"))
    assert module.ZONE == "UTC"
    assert sorted(p.name for p in (tmp_path / "tree").iterdir()) == ["app.py", "config.py"]
    assert sys.dont_write_bytecode is False  # restored for the grader's own imports


def test_an_apscheduler_folder_never_shadows_the_real_library(tmp_path: Path) -> None:
    write(tmp_path / "apscheduler" / "config.py", "import apscheduler.schedulers.background\n")
    write(tmp_path / "apscheduler" / "schedulers.py", "BROKEN = True\n")
    module = load_file(tmp_path / "apscheduler" / "config.py")
    assert module.apscheduler is apscheduler
    assert "site-packages" in apscheduler.__file__


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def broken(:\n", "SyntaxError"),
        ("import sys\nsys.exit(3)\n", "sys.exit()"),
        ("raise RuntimeError('at import')\n", "RuntimeError: at import"),
        ("import not_a_module_anywhere\n", "ModuleNotFoundError"),
    ],
)
def test_a_broken_file_raises_a_load_error_that_explains(
    tmp_path: Path, source: str, expected: str
) -> None:
    path = write(tmp_path / "learner.py", source)
    with pytest.raises(LoadError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_file(path, "exercises/level1/learner.py")
    assert module_name_for(path) not in sys.modules


def test_a_missing_file_says_how_to_get_it_back(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="grader reset"):
        load_file(tmp_path / "gone.py")


def test_target_names_files_as_the_learner_sees_them() -> None:
    exercise = catalog().exercise("apscheduler_config")
    target = Target(exercise, paths.level_dir(1))
    assert target.shown() == "exercises/level1/apscheduler/config.py"
    assert (
        Target(exercise, paths.SOLUTIONS_DIR, "solution").shown()
        == "solutions/apscheduler/config.py"
    )
