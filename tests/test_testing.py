"""`grader.testing.ForkedPython`: a forked process that behaves like ``python -c CODE``."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from grader.testing import ForkedPython

pytestmark = pytest.mark.timeout(30)


def _run(code: str, tmp_path: Path, **env: str) -> tuple[int, str, str]:
    process = ForkedPython(code, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", **env})
    code_ = process.wait(timeout=10)
    return code_, process.stdout.read().decode(), process.stderr.read().decode()


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("pass", 0),
        ("raise SystemExit", 0),
        ("raise SystemExit(3)", 3),
        ("import sys; sys.exit('bye')", 1),
        ("raise ValueError('boom')", 1),
        ("raise KeyboardInterrupt", -signal.SIGINT),
    ],
)
def test_exit_codes_follow_pythons_rules(code: str, expected: int, tmp_path: Path) -> None:
    assert _run(code, tmp_path)[0] == expected


def test_output_errors_cwd_and_environment_are_the_processs_own(tmp_path: Path) -> None:
    code = (
        "import os, sys, logging\n"
        "print(os.getcwd(), os.environ['ONLY'], 'HOME' in os.environ)\n"
        "logging.basicConfig(level=logging.INFO)\n"  # a fresh root logger: this configures it
        "logging.getLogger('x').info('configured')\n"
        "raise ValueError('boom')\n"
    )
    status, out, err = _run(code, tmp_path, ONLY="1")
    assert status == 1
    assert out.split() == [str(tmp_path), "1", "False"]
    assert "INFO:x:configured" in err and "ValueError: boom" in err


def test_a_real_sigterm_kills_it_unless_it_handles_it(tmp_path: Path) -> None:
    idle = ForkedPython(
        "import time; print('ready', flush=True); time.sleep(60)", cwd=tmp_path, env={}
    )
    assert idle.stdout.readline() == b"ready\n"
    idle.send_signal(signal.SIGTERM)
    assert idle.wait(timeout=10) == -signal.SIGTERM
    handled = ForkedPython(
        "import signal, sys, threading\n"
        "stop = threading.Event()\n"
        "signal.signal(signal.SIGTERM, lambda *a: stop.set())\n"
        "print('ready', flush=True)\n"
        "stop.wait(60)\n"
        "sys.exit(0)\n",
        cwd=tmp_path,
        env={},
    )
    assert handled.stdout.readline() == b"ready\n"
    handled.send_signal(signal.SIGTERM)
    assert handled.wait(timeout=10) == 0


def test_wait_times_out_like_popen_and_kill_ends_it(tmp_path: Path) -> None:
    process = ForkedPython("import time; time.sleep(60)", cwd=tmp_path, env={})
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.2)
    assert process.poll() is None
    process.kill()
    assert process.wait(timeout=10) == -signal.SIGKILL


def test_python_waits_for_non_daemon_threads_before_it_exits(tmp_path: Path) -> None:
    code = (
        "import threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))).start()\n"
    )
    status, out, _ = _run(code, tmp_path)
    assert (status, out) == (0, "thread done\n")
