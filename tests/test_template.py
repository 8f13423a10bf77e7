"""Template processes: tests forked from a process that imported the file once.

The template has run learner code, so every test here checks a verdict the grader reaches
on its own: the right results, a real child of the grader, nothing left alive, and a
fallback to forking from the grader whenever the template cannot be trusted or used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import time_machine

from grader import paths, sandbox, targets
from grader.sandbox import conditions, reaper, template

pytestmark = pytest.mark.timeout(60)

_STATE: dict[str, object] = {}


def _run(
    works: list[tuple[str, Callable[[], object], float]], load: Callable[[], str | None]
) -> dict[object, sandbox.ChildResult]:
    return sandbox.run_many(
        works,
        parallel=2,
        templates={"t": sandbox.TemplateSpec(load, 10.0)},
        template_of=lambda key: "t" if str(key).startswith("w") else None,
    )


def _loaded() -> str | None:
    _STATE["loaded_in"] = os.getpid()
    return None


def _where() -> dict[str, object]:
    return {
        "loaded_in": _STATE.get("loaded_in"),
        "pid": os.getpid(),
        "parent": os.getppid(),
        "group": os.getpgid(0),
    }


def test_works_fork_from_the_template_that_imported_once() -> None:
    results = _run([(f"w{i}", _where, 10.0) for i in range(4)], _loaded)
    values = [results[f"w{i}"].payload for i in range(4)]
    assert all(isinstance(v, dict) for v in values), [r.problem for r in results.values()]
    loaded_in = {v["loaded_in"] for v in values}  # type: ignore[index]
    assert len(loaded_in) == 1 and None not in loaded_in  # one import, in the template
    assert loaded_in != {os.getpid()}  # never in the grader
    assert "loaded_in" not in _STATE
    for value in values:
        assert value["parent"] == value["loaded_in"]  # type: ignore[index]
        assert value["group"] == value["pid"]  # type: ignore[index]  # its own group


def test_a_test_forked_from_a_template_reports_its_real_exit() -> None:
    def crash() -> object:
        os.kill(os.getpid(), signal.SIGSEGV)
        return None

    def leave() -> object:
        os._exit(3)

    results = _run([("w0", crash, 10.0), ("w1", leave, 10.0), ("w2", _where, 10.0)], _loaded)
    assert "SIGSEGV" in str(results["w0"].problem)
    assert "exit code 3" in str(results["w1"].problem)
    assert results["w2"].problem is None


def test_a_test_that_outlives_its_timeout_is_killed_and_says_so() -> None:
    def hang() -> object:
        threading.Event().wait()
        return None

    results = _run([("w0", hang, 0.5), ("w1", _where, 10.0)], _loaded)
    assert "did not finish within 0.5 s" in str(results["w0"].problem)
    assert results["w1"].payload["loaded_in"] is not None  # type: ignore[index]


def test_each_test_process_starts_from_the_pristine_template() -> None:
    def bump() -> object:
        _STATE["count"] = int(str(_STATE.get("count", 0))) + 1
        return _STATE["count"]

    results = _run([(f"w{i}", bump, 10.0) for i in range(5)], _loaded)
    assert [results[f"w{i}"].payload for i in range(5)] == [1] * 5


def test_a_work_without_a_template_still_forks_from_the_grader() -> None:
    results = _run([("w0", _where, 10.0), ("plain", _where, 10.0)], _loaded)
    assert results["plain"].payload["loaded_in"] is None  # type: ignore[index]
    assert results["w0"].payload["loaded_in"] is not None  # type: ignore[index]


def test_a_template_whose_import_fails_leaves_its_works_to_the_grader() -> None:
    results = _run([(f"w{i}", _where, 10.0) for i in range(3)], lambda: "SyntaxError")
    assert [results[f"w{i}"].payload["loaded_in"] for i in range(3)] == [None] * 3  # type: ignore[index]


def test_an_import_that_starts_a_thread_is_not_preloaded(caplog: pytest.LogCaptureFixture) -> None:
    def load_with_thread() -> str | None:
        _STATE["loaded_in"] = os.getpid()
        threading.Thread(target=threading.Event().wait, daemon=True, name="poller").start()
        return None

    with caplog.at_level(logging.INFO, logger=template.__name__):
        results = _run([(f"w{i}", _where, 10.0) for i in range(3)], load_with_thread)
    assert [results[f"w{i}"].payload["loaded_in"] for i in range(3)] == [None] * 3  # type: ignore[index]
    assert "poller" in caplog.text


@pytest.mark.parametrize("lie", ["one", "itself", "grader", "nonsense"])
def test_a_template_that_lies_about_the_pid_is_dropped(
    lie: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Learner code in the template replaces the code that forks a test: the pid it then
    reports is checked (a new child of the grader), never killed or trusted."""
    grader = os.getpid()

    def lying_load() -> str | None:
        answers: dict[str, Callable[[], object]] = {
            "one": lambda: 1,
            "itself": os.getpid,
            "grader": lambda: grader,
            "nonsense": lambda: "a pid",
        }
        template._fork_test = lambda *args: answers[lie]()  # type: ignore[assignment]
        return None

    with caplog.at_level(logging.INFO, logger=template.__name__):
        results = _run([(f"w{i}", _where, 10.0) for i in range(3)], lying_load)
    assert all(r.problem is None for r in results.values()), [r.problem for r in results.values()]
    assert [results[f"w{i}"].payload["loaded_in"] for i in range(3)] == [None] * 3  # type: ignore[index]
    assert "dropped" in caplog.text


def test_a_template_that_dies_after_loading_leaves_its_works_to_the_grader() -> None:
    def load_then_die() -> str | None:
        _STATE["loaded_in"] = os.getpid()
        template._fork_test = lambda *args: os._exit(0)  # type: ignore[assignment]
        return None

    results = _run([(f"w{i}", _where, 10.0) for i in range(3)], load_then_die)
    assert all(r.problem is None for r in results.values()), [r.problem for r in results.values()]


def test_a_template_that_never_finishes_importing_is_dropped_in_time() -> None:
    def hang() -> str | None:
        threading.Event().wait()
        return None

    results = sandbox.run_many(
        [("w0", _where, 10.0)],
        templates={"t": sandbox.TemplateSpec(hang, 0.5)},
        template_of=lambda key: "t",
    )
    assert results["w0"].payload["loaded_in"] is None  # type: ignore[index]


def test_nothing_a_template_or_its_tests_started_survives_the_run(tmp_path: Path) -> None:
    marker = tmp_path / "pids"

    def load_and_leak() -> str | None:
        daemon = subprocess.Popen(["sleep", "600"], start_new_session=True)
        marker.write_text(f"{daemon.pid}\n")
        return None

    def leak() -> object:
        process = subprocess.Popen(["sleep", "600"], start_new_session=True)
        with marker.open("a") as pids:
            pids.write(f"{process.pid}\n")
        return True

    before = reaper.children_of(os.getpid())
    _run([(f"w{i}", leak, 10.0) for i in range(3)], load_and_leak)
    pids = [int(line) for line in marker.read_text().split()]
    assert len(pids) == 4
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid), pid
    assert reaper.children_of(os.getpid()) == before


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_test_forked_from_a_template_gets_its_own_cpu_cap() -> None:
    def cpu_cap() -> object:
        import resource

        return resource.getrlimit(resource.RLIMIT_CPU)[0]

    results = _run([("w0", cpu_cap, 10.0), ("w1", cpu_cap, 30.0)], _loaded)
    limits = sandbox.Limits.from_env()
    assert results["w0"].payload == limits.cpu_seconds(10.0)
    assert results["w1"].payload == limits.cpu_seconds(30.0)


# -- conditions: when a preloaded module is imported again ----------------------------------------


def _reuse_after(
    change: Callable[[], AbstractContextManager[object] | None], source: str = "VALUE = 1\n"
) -> Callable[[], object]:
    """A child's work: preload a file, then load it again inside ``change`` (a context
    manager, or None after a lasting change): is the module reused, and if not, why?"""

    def work() -> object:
        folder = Path(tempfile.mkdtemp())
        path = folder / "exercise.py"
        path.write_text(source)
        conditions.watch_patches()
        targets.preload(path)
        first = sys.modules[targets.module_name_for(path)]
        with change() or contextlib.nullcontext():
            again = targets.load_file(path)
        return {"reused": again is first, "why": [why for _, why in targets.REIMPORTED]}

    return work


def _in_child(work: Callable[[], object]) -> dict[str, object]:
    result = sandbox.run_in_child(work, timeout=20)
    assert result.problem is None, result.problem
    assert isinstance(result.payload, dict)
    return result.payload


def test_a_preloaded_module_is_reused_when_nothing_changed() -> None:
    assert _in_child(_reuse_after(lambda: None))["reused"] is True


def test_a_variable_the_import_never_read_does_not_cause_a_new_import() -> None:
    change = lambda: os.environ.__setitem__("CRONKATA_UNREAD", "x")  # noqa: E731
    assert _in_child(_reuse_after(change))["reused"] is True


def test_a_variable_the_import_read_changed_causes_a_new_import() -> None:
    source = "import os\nVALUE = os.environ.get('CRONKATA_READ', 'default')\n"
    change = lambda: os.environ.__setitem__("CRONKATA_READ", "x")  # noqa: E731
    payload = _in_child(_reuse_after(change, source))
    assert payload["reused"] is False
    assert "CRONKATA_READ" in str(payload["why"])


def test_an_import_that_lists_the_environment_depends_on_every_variable() -> None:
    source = "import os\nVALUES = dict(os.environ)\n"
    change = lambda: os.environ.__setitem__("CRONKATA_ANY", "x")  # noqa: E731
    assert _in_child(_reuse_after(change, source))["reused"] is False


def test_a_variable_read_through_environb_counts_too() -> None:
    source = "import os\nVALUE = os.environb.get(b'CRONKATA_BYTES')\n"
    change = lambda: os.environ.__setitem__("CRONKATA_BYTES", "x")  # noqa: E731
    assert _in_child(_reuse_after(change, source))["reused"] is False


def test_the_machine_zone_always_counts() -> None:
    change = lambda: os.environ.__setitem__("TZ", "Asia/Tokyo")  # noqa: E731
    assert _in_child(_reuse_after(change))["reused"] is False


def test_an_active_monkeypatch_causes_a_new_import() -> None:
    @contextlib.contextmanager
    def patched() -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patcher:
            patcher.setattr(os, "getcwd", lambda: "/patched")
            yield

    payload = _in_child(_reuse_after(patched))
    assert payload["reused"] is False
    assert "patched attributes" in str(payload["why"])


def test_an_active_mock_patch_causes_a_new_import() -> None:
    from unittest import mock

    payload = _in_child(_reuse_after(lambda: mock.patch.object(os, "sep", "!")))
    assert payload["reused"] is False


def test_a_frozen_clock_causes_a_new_import() -> None:
    payload = _in_child(_reuse_after(lambda: time_machine.travel(0, tick=False)))
    assert payload["reused"] is False
    assert "clock" in str(payload["why"])


def test_a_replaced_library_module_causes_a_new_import() -> None:
    def change() -> None:
        sys.modules["json"] = types.ModuleType("json")

    assert _in_child(_reuse_after(change))["reused"] is False


# -- the whole course -----------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_preloading_changes_no_verdict_of_the_solutions(tmp_path: Path) -> None:
    """Every exercise's solution graded with and without templates: the same verdict per
    test. (`grader verify` grades the stubs and the alternatives with templates, the
    mutants without.)"""

    def verdicts(*options: str) -> dict[str, str]:
        report = tmp_path / f"{len(options)}.xml"
        command = [sys.executable, "-m", "pytest", "exercises", "--solutions", "-q"]
        command += ["-p", "no:cacheprovider", f"--junitxml={report}", *options]
        subprocess.run(command, cwd=paths.REPO_ROOT, capture_output=True, check=False)
        return _outcomes(report)

    preloaded, fresh = verdicts(), verdicts("--grader-no-preload")
    assert preloaded and preloaded == fresh, {
        k: (preloaded.get(k), fresh.get(k))
        for k in set(preloaded) | set(fresh)
        if preloaded.get(k) != fresh.get(k)
    }
    assert set(preloaded.values()) == {"passed"}


def _outcomes(report: Path) -> dict[str, str]:
    found = {}
    for case in ElementTree.parse(report).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        failed = any(child.tag in ("failure", "error") for child in case)
        found[name] = "failed" if failed else "passed"
    return found


def test_a_template_that_loads_stands_for_the_load_probe() -> None:
    ran: list[object] = []

    def probe() -> object:
        return {"ran in": os.getpid()}

    def run(load: Callable[[], str | None]) -> dict[object, sandbox.ChildResult]:
        spec = sandbox.TemplateSpec(load, 10.0, replaces="probe", ready_payload={"ok": True})
        return sandbox.run_many(
            [("probe", probe, 10.0), ("w0", _where, 10.0)],
            templates={"t": spec},
            template_of=lambda key: "t" if key == "w0" else None,
            on_result=lambda key, result: ran.append(key),
        )

    loaded = run(_loaded)
    assert loaded["probe"].payload == {"ok": True}  # not run: the template loaded
    assert loaded["w0"].payload["loaded_in"] is not None  # type: ignore[index]
    failed = run(lambda: "ImportError")
    assert "ran in" in failed["probe"].payload  # type: ignore[operator]  # ran: it says why
    assert failed["w0"].payload["loaded_in"] is None  # type: ignore[index]
    assert sorted(map(str, ran)) == ["probe", "probe", "w0", "w0"]


def test_dropping_a_template_spares_the_tests_it_already_forked(tmp_path: Path) -> None:
    """A template that lies on its second request is dropped, but the test it forked
    first is still running: that test finishes and is judged, it does not die with it."""
    second_ran = tmp_path / "second-ran"

    def lie_after_the_first() -> str | None:
        _STATE["loaded_in"] = os.getpid()
        honest = template._fork_test
        calls = [0]

        def fork_then_lie(*args: object) -> int:
            calls[0] += 1
            return honest(*args) if calls[0] == 1 else 1  # type: ignore[arg-type]

        template._fork_test = fork_then_lie  # type: ignore[assignment]
        return None

    def until_the_second_ran() -> object:  # still running while the template lies
        deadline = time.monotonic() + 8
        while not second_ran.exists() and time.monotonic() < deadline:
            threading.Event().wait(0.005)
        return _where()

    def second() -> object:
        second_ran.touch()
        return _where()

    results = _run([("w0", until_the_second_ran, 10.0), ("w1", second, 10.0)], lie_after_the_first)
    assert results["w0"].problem is None, results["w0"].problem
    assert results["w0"].payload["loaded_in"] is not None  # type: ignore[index]
    assert results["w1"].payload["loaded_in"] is None  # type: ignore[index]  # from the grader
