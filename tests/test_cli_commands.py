"""`grader --version`, suggestions for unknown ids, usage errors, reset's confirmation, restore."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import cli, paths
from grader.catalog import catalog, git_blob_sha

MINE = "# my attempt\n"


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRONKATA_LANG", "en")


@pytest.fixture
def learner(tmp_path: Path, pristine_exercises: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the pristine exercises with simple_timer edited; state under tmp_path."""
    exercises = tmp_path / "exercises"
    shutil.copytree(pristine_exercises, exercises)
    monkeypatch.setattr(paths, "EXERCISES_DIR", exercises)
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / "state")
    mine = exercises / "level1" / "level1_simple_timer.py"
    mine.write_text(MINE)
    return mine


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    code = exit_info.value.code
    return code if isinstance(code, int) else 0, capsys.readouterr().err


def _pyproject_version() -> str:
    data = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def test_version_prints_grader_and_the_version() -> None:
    done = CliRunner().invoke(cli.cli, ["--version"])
    assert done.exit_code == 0, done.output
    assert done.output.strip() == f"grader {cli._version()}"


def test_version_falls_back_to_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise cli.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cli.metadata, "version", missing)
    assert cli._version() == _pyproject_version()


@pytest.mark.parametrize("name", ["simple-timer", "simpel_timer", "Simple-Timer"])
def test_unknown_exercise_suggests_the_close_id(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, err = _main(capsys, "check", name)
    assert code == 2
    assert err.strip() == f"grader: error: unknown exercise {name!r}; did you mean simple_timer?"


def test_unknown_exercise_without_a_close_id_lists_the_known(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _main(capsys, "check", "zzzz")
    assert code == 2
    assert "unknown exercise 'zzzz' (known: simple_timer" in err


@pytest.mark.parametrize(
    ("args", "see"),
    [
        (("check",), "(see: grader check --help)"),
        (("--no-such-option",), "(see: grader --help)"),
        (("frobnicate",), "(see: grader --help)"),
        (("check", "simple_timer", "--bogus"), "(see: grader check --help)"),
    ],
)
def test_usage_errors_name_the_program_once(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], see: str
) -> None:
    code, err = _main(capsys, *args)
    assert code == 2
    assert err.startswith("grader: error:") and err.strip().endswith(see), err
    assert "grader grader" not in err


def test_reset_refuses_without_a_terminal_or_yes(learner: Path) -> None:
    done = CliRunner().invoke(cli.cli, ["reset", "simple_timer"])  # no input: must not hang
    assert done.exit_code == 2, done.output
    assert "pass --yes" in done.output
    assert learner.read_text() == MINE
    assert not (paths.STATE_DIR / "backups").exists()


def test_reset_refusal_is_one_line_from_main(
    learner: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _main(capsys, "reset", "simple_timer")
    assert code == 2
    assert err.strip().count("\n") == 0 and err.startswith("grader: error: reset would overwrite")
    assert learner.read_text() == MINE


def test_reset_asks_and_defaults_to_no(learner: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    done = CliRunner().invoke(cli.cli, ["reset", "simple_timer"], input="\n")
    assert done.exit_code == 1, done.output
    assert "[y/N]" in done.output and "nothing reset" in done.output
    assert learner.read_text() == MINE


def test_reset_goes_ahead_when_confirmed(learner: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_interactive", lambda: True)
    done = CliRunner().invoke(cli.cli, ["reset", "simple_timer"], input="y\n")
    assert done.exit_code == 0, done.output
    assert git_blob_sha(learner.read_bytes()) == catalog().exercise("simple_timer").stub_blob


def test_reset_yes_prints_the_backup_relative_to_the_repository(
    learner: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "STATE_DIR", paths.REPO_ROOT / ".grader" / "test-cli-commands")
    try:
        done = CliRunner().invoke(cli.cli, ["reset", "-y", "simple_timer"])
        assert done.exit_code == 0, done.output
        assert "your file is saved as .grader/test-cli-commands/backups/" in done.output
        assert str(paths.REPO_ROOT) not in done.output
    finally:
        shutil.rmtree(paths.STATE_DIR, ignore_errors=True)


def test_restore_brings_back_the_reset_file_and_keeps_the_current_one(learner: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli.cli, ["reset", "--yes", "simple_timer"]).exit_code == 0
    learner.write_text("# started again\n")
    done = runner.invoke(cli.cli, ["restore", "simple_timer"])
    assert done.exit_code == 0, done.output
    assert learner.read_text() == MINE
    assert "restored exercises/level1/level1_simple_timer.py from" in done.output
    kept = sorted(p.read_text() for p in paths.STATE_DIR.rglob("level1_simple_timer.py"))
    assert kept == sorted([MINE, "# started again\n"])
    # restoring again brings back the reset's backup, not restore's own safety copy
    learner.write_text("# third try\n")
    assert runner.invoke(cli.cli, ["restore", "simple_timer"]).exit_code == 0
    assert learner.read_text() == MINE


def test_restore_without_a_backup_says_so_and_exits_1(learner: Path) -> None:
    done = CliRunner().invoke(cli.cli, ["restore", "simple_timer"])
    assert done.exit_code == 1, done.output
    assert "no backup to restore" in done.output
    assert learner.read_text() == MINE
