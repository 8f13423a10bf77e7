"""The Celery web app's own log lines show when it runs under uvicorn, as documented."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from grader import paths
from grader.testing import free_port

FOLDER = paths.SOLUTIONS_DIR / "celery_beat"


class _Lines:
    """The process's output lines, read by a thread (no select on a buffered pipe)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.queue.put(line.rstrip())

    def until(self, marker: str, within: float) -> bool:
        """Read lines until one contains ``marker`` (True) or ``within`` s pass (False)."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                return False
            self.seen.append(line)
            if marker in line:
                return True
        return False


@pytest.mark.timeout(60)
def test_the_celery_web_apps_own_lines_show_under_uvicorn(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CELERY_BROKER_URL": "memory://",
        "CELERY_RESULT_BACKEND": "cache+memory://",
        "PYTHONUNBUFFERED": "1",
    }
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    process = subprocess.Popen(
        [uvicorn, "embedded_app:app", "--port", str(port)],
        cwd=FOLDER,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = _Lines(process)
    try:
        assert lines.until("Application startup complete", 30), "\n".join(lines.seen)
        body = {"notification_id": "n-log", "user_id": 1, "message": "hi"}
        answer = httpx.post(f"http://127.0.0.1:{port}/tasks/notify", json=body, timeout=10)
        assert answer.status_code == 202, answer.text
        lines.until("queued notification n-log", 10)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert any("embedded_app: queued notification n-log" in line for line in lines.seen), "\n".join(
        lines.seen[-20:]
    )
