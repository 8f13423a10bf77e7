"""The sandbox's mechanisms, one by one: limits, signed results, integrity, reaping."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from grader import sandbox
from grader.sandbox import cgroups, channel, integrity
from grader.sandbox.limits import Limits, parse_size


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sizes_parse_with_units_and_reject_nonsense() -> None:
    assert parse_size("2G") == 2 * 1024**3
    assert parse_size("512MiB") == 512 * 1024**2
    assert parse_size("1048576") == 1024**2
    for bad in ("0", "-1G", "nan", "inf", "lots"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRONKATA_MEMORY_LIMIT", "3G")
    monkeypatch.setenv("CRONKATA_PROCESS_LIMIT", "99")
    limits = Limits.from_env()
    assert (limits.memory, limits.processes) == (3 * 1024**3, 99)
    assert Limits().cpu_seconds(10) == 15


def test_a_child_runs_with_every_rlimit_applied() -> None:
    def work() -> dict[str, int]:
        import resource

        return {
            name: resource.getrlimit(getattr(resource, name))[0]
            for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE")
        }

    result = sandbox.run_in_child(work, timeout=10)
    assert result.problem is None, result.problem
    limits = Limits.from_env()
    assert result.payload == {
        "RLIMIT_AS": limits.memory,
        "RLIMIT_CPU": limits.cpu_seconds(10),
        "RLIMIT_FSIZE": limits.file_size,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_CORE": 0,
    }


def test_a_child_inherits_no_descriptor_but_its_own() -> None:
    read_end, write_end = os.pipe()  # a sibling's pipe, say
    try:

        def work() -> dict[int, str]:
            found = {}
            for name in os.listdir("/proc/self/fd"):
                with contextlib.suppress(OSError):
                    found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
            return found

        result = sandbox.run_in_child(work, timeout=10)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert result.problem is None, result.problem
    assert isinstance(result.payload, dict)
    targets = {int(fd): target for fd, target in result.payload.items()}
    leaked = {
        fd: target
        for fd, target in targets.items()
        if fd > 2 and target != "/dev/null" and not target.startswith(("socket:", "/proc/"))
    }
    assert not leaked, f"inherited descriptors still open: {leaked}"
    sockets = [fd for fd, target in targets.items() if target.startswith("socket:")]
    assert len(sockets) == 1, f"only the child's own channel, not {sockets}"
    assert targets.get(read_end, "/dev/null") == "/dev/null"


def test_a_parent_object_writing_to_an_inherited_fd_never_lands_in_a_childs_file(
    tmp_path: Path,
) -> None:
    """pytest's log-file handler writes to an inherited fd: reusing its number would put
    log lines inside the child's own files (an SQLite database, say)."""
    handler_file = open(os.devnull, "w")  # noqa: SIM115 - held like pytest's handler
    target = tmp_path / "data.bin"
    try:

        def work() -> str:
            with open(target, "wb") as data:
                handler_file.write("LOG LINE\n" * 100)
                handler_file.flush()
                data.write(b"payload")
            return "done"

        result = sandbox.run_in_child(work, timeout=10)
    finally:
        handler_file.close()
    assert result.problem is None, result.problem
    assert target.read_bytes() == b"payload"


def test_a_childs_output_goes_to_a_capped_file_without_control_codes() -> None:
    def work() -> None:
        os.write(1, b"\x1b[2Jhello\x07 from fd 1\n")
        os.write(2, b"and fd 2\n")

    result = sandbox.run_in_child(work, timeout=10)
    assert result.problem is None
    assert "hello? from fd 1" in result.output and "and fd 2" in result.output
    assert "\x1b" not in result.output


def test_a_result_forged_without_the_key_is_rejected(tmp_path: Path) -> None:
    parent, child = channel.pair()
    with parent, child:
        child.sendall(b'{"body": "{\\"value\\": 1}", "mac": "' + b"0" * 64 + b'"}')
        child.close()
        inbox = channel.Inbox(parent)
        with pytest.raises(channel.ForgedResult, match="wrong signature"):
            channel.receive(inbox, channel.new_key())


def test_a_result_signed_with_the_key_is_accepted() -> None:
    parent, child = channel.pair()
    key = channel.new_key()
    with parent, child:
        parent.sendall(key)
        channel.send(child, channel.read_key(child), {"value": 42})
        received = channel.receive(channel.Inbox(parent), key)
    assert received is not None and received.payload == {"value": 42}


def test_a_child_that_takes_its_key_early_cannot_sign_its_result() -> None:
    def work() -> int:
        for fd in map(int, os.listdir("/proc/self/fd")):
            with contextlib.suppress(OSError):
                os.read(fd, 64)  # learner code emptying every descriptor it finds
        return 1

    result = sandbox.run_in_child(work, timeout=10)
    assert result.payload is None
    assert result.problem is not None and "without its key" in result.problem


def test_os_exit_0_without_a_result_is_not_a_pass() -> None:
    result = sandbox.run_in_child(lambda: os._exit(0), timeout=10)
    assert result.payload is None
    assert result.problem is not None and "before reporting a result" in result.problem


def test_patching_the_reporting_code_in_the_child_is_detected() -> None:
    import _pytest.runner

    def work() -> int:
        _pytest.runner.call_and_report = lambda *args, **kwargs: None  # type: ignore[assignment]
        return 1

    result = sandbox.run_many([(0, work, 10)], watch=integrity.fingerprint)[0]
    assert result.problem is not None
    assert "_pytest.runner.call_and_report" in result.problem


def test_an_untouched_fingerprint_is_stable() -> None:
    assert not integrity.changed(integrity.fingerprint(), integrity.fingerprint())


def test_a_grandchild_holding_descriptors_does_not_delay_the_verdict() -> None:
    def work() -> int:
        subprocess.Popen(["sleep", "30"], close_fds=False)
        return 7

    started = time.monotonic()
    result = sandbox.run_in_child(work, timeout=20)
    assert result.problem is None and result.payload == 7
    assert time.monotonic() - started < 5, "the child's end must be seen at once (pidfd)"


def test_nothing_a_child_started_survives_the_run(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"

    def work() -> None:
        plain = subprocess.Popen(["sleep", "600"])
        daemon = os.fork()
        if daemon == 0:
            os.setsid()
            grandchild = os.fork()
            if grandchild == 0:
                os.execvp("sleep", ["sleep", "601"])
            pids_file.write_text(f"{plain.pid} {grandchild}")
            os._exit(0)
        os.waitpid(daemon, 0)

    result = sandbox.run_in_child(work, timeout=20)
    assert result.problem is None, result.problem
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 2
    assert not [pid for pid in pids if _alive(pid)], "a process the child started is alive"


def test_the_grader_becomes_a_subreaper() -> None:
    import ctypes

    sandbox.run_in_child(lambda: True, timeout=10)
    flag = ctypes.c_int(0)
    libc = ctypes.CDLL(None, use_errno=True)
    pr_get_child_subreaper = 37
    assert libc.prctl(pr_get_child_subreaper, ctypes.byref(flag), 0, 0, 0) == 0
    assert flag.value == 1, "run_many must make the grader a child subreaper"


class _SignalsInItsFinaliser:
    """Sends the grader a signal from ``__del__``, where Python swallows what the handler raises."""

    def __init__(self, number: int) -> None:
        self.number = number

    def __del__(self) -> None:
        os.kill(os.getpid(), self.number)
        for _ in range(100):  # the handler runs here; its exception is "ignored"
            pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_swallowed_by_a_finaliser_still_stops_the_run(number: int) -> None:
    def wanted(key: object) -> bool:
        _SignalsInItsFinaliser(number)  # dropped at once: __del__ runs now
        return True

    works = [(i, lambda: time.sleep(30), 60.0) for i in range(2)]
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sandbox.run_many(works, parallel=1, wanted=wanted)
    assert time.monotonic() - started < 10, "the run went on after the signal"


def test_a_timeout_kills_the_child_and_says_so() -> None:
    started = time.monotonic()
    result = sandbox.run_in_child(lambda: time.sleep(60), timeout=1)
    assert result.problem is not None and "did not finish within 1 s" in result.problem
    assert time.monotonic() - started < 5


@pytest.mark.skipif(cgroups.available() is None, reason="no writable cgroup on this machine")
def test_a_fork_bomb_is_refused_by_the_process_cap() -> None:
    def work() -> str:
        for _ in range(200):
            if os.fork() == 0:
                time.sleep(600)
                os._exit(0)
        return "forked 200"

    result = sandbox.run_many([(0, work, 30)], limits=Limits(processes=16))[0]
    assert result.problem is not None, "200 forks must not succeed under a cap of 16"
    assert "BlockingIOError" in result.problem


@pytest.mark.skipif(cgroups.available() is None, reason="no writable cgroup on this machine")
def test_memory_beyond_the_cgroup_cap_kills_the_child_with_a_clear_message() -> None:
    def work() -> int:
        block = bytearray(600 * 1024**2)
        for index in range(0, len(block), 4096):
            block[index] = 1  # touch every page: resident memory, not address space
        return len(block)

    only_cgroup = Limits(memory=300 * 1024**2, address_space=8 * 1024**3)
    result = sandbox.run_many([(0, work, 30)], limits=only_cgroup)[0]
    assert result.problem is not None
    assert "ran out of memory" in result.problem


def test_a_child_faster_than_its_parent_still_gets_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a busy machine the child can finish before the parent has sent the key."""
    real_new_key = channel.new_key

    def slow_new_key() -> bytes:
        time.sleep(0.3)  # the parent is slow to draw the key; the child is already done
        return real_new_key()

    monkeypatch.setattr(channel, "new_key", slow_new_key)
    result = sandbox.run_in_child(lambda: 5, timeout=10)
    assert result.problem is None, result.problem
    assert result.payload == 5


def test_a_result_that_cannot_be_sent_is_a_clear_harness_problem() -> None:
    result = sandbox.run_in_child(lambda: b"bytes are not JSON", timeout=10)
    assert result.problem is not None
    assert "TypeError" in result.problem and result.seconds < 4


def test_warm_up_follows_sibling_imports_and_never_names_a_sibling() -> None:
    from grader import paths
    from grader.sandbox.warmup import imports_of

    names = imports_of(paths.SOLUTIONS_DIR / "apscheduler" / "embedded_app.py")
    assert "fastapi" in names
    assert "pydantic_settings" in names, "config.py's imports come with embedded_app.py's"
    assert not {"config", "embedded_app", "standalone_app"} & {n.split(".")[0] for n in names}


def test_a_held_work_starts_only_after_the_work_that_releases_it_is_judged() -> None:
    judged: list[object] = []
    started: dict[object, int] = {}

    def wanted(key: object) -> bool:
        started[key] = len(judged)  # how many works were judged when this one started
        return True

    works = [("probe", lambda: time.sleep(0.2), 10.0), ("test", lambda: None, 10.0)]
    sandbox.run_many(
        works,
        parallel=4,  # slots to spare: only the gate keeps "test" from starting at once
        wanted=wanted,
        on_result=lambda key, _result: judged.append(key),
        held=lambda key: key == "test" and "probe" not in judged,
    )
    assert judged == ["probe", "test"]
    assert started == {"probe": 0, "test": 1}


def test_works_held_with_nothing_running_to_release_them_are_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="held"):
        sandbox.run_many([(0, lambda: None, 10.0)], held=lambda key: True)
