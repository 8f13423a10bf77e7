"""Real components: the solution's worker and beat as `celery` processes against a real Redis.

Needs Redis on 127.0.0.1:6379 (it uses database 15 and flushes it). Without Redis the test
is skipped, unless CRONKATA_REQUIRE_SERVICES=1 (CI), in which case it fails.

It starts, from solutions/celery_beat/:
    celery -A standalone_worker worker ...       (the worker settings of standalone_worker.py)
    celery -A tasks beat -s <tmp>/schedule ...   (beat_config.py's schedule, through tasks.py)
with CELERY_BEAT_DEMO_SECONDS=2, so beat sends the cleanup task every 2 seconds. It waits
(bounded) until a task id that beat logged as sent has a SUCCESS result in the Redis result
backend, sends ``notify`` (routed to its own queue) from another process as tasks.py's
header does, then stops both processes with SIGTERM and checks that they exit in time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "solutions" / "celery_beat"
HOST, PORT, DB = "127.0.0.1", 6379, 15  # DB: emptied by conftest.clean_redis
URL = f"redis://{HOST}:{PORT}/{DB}"
RESULT_WAIT = 45.0
EXIT_WAIT = 20.0
NOTIFY_BY_HAND = "from tasks import notify; print(notify.delay('it-1', 7, 'hi').get(timeout=20))"
SENT = re.compile(r"cronkata\.cleanup sent\. id->([0-9a-f-]{36})")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "CELERY_BROKER_URL": URL,
        "CELERY_RESULT_BACKEND": URL,
        "REDIS_URL": URL,
        "CELERY_BEAT_DEMO_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
    }


def _start(args: list[str], log: Path) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    env = _env()
    celery = str(Path(sys.executable).with_name("celery"))
    output = log.open("wb")
    process = subprocess.Popen(
        [celery, *args], cwd=FOLDER, env=env, stdout=output, stderr=subprocess.STDOUT
    )
    return process, output


def _stop(process: subprocess.Popen[bytes]) -> tuple[int | None, float]:
    """SIGTERM, then wait; returns (exit code or None if it had to be killed, seconds)."""
    sent = time.monotonic()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        code: int | None = process.wait(timeout=EXIT_WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        code = None
    return code, time.monotonic() - sent


def _beat_result(client: redis.Redis, beat_log: Path) -> tuple[str, dict[str, object]] | None:
    """The first task id beat logged as sent whose result is SUCCESS in the backend."""
    for task_id in SENT.findall(beat_log.read_text(errors="replace")):
        raw = client.get(f"celery-task-meta-{task_id}")
        if raw:
            meta = json.loads(str(raw))
            if meta.get("status") == "SUCCESS":
                return task_id, meta
    return None


def test_beat_sends_the_worker_runs_and_the_result_is_in_redis(
    clean_redis: redis.Redis, tmp_path: Path
) -> None:
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    worker, worker_out = _start(
        [
            "-A",
            "standalone_worker",
            "worker",
            "--loglevel=INFO",
            "--concurrency=1",
            "--without-mingle",
            "--without-gossip",
            f"--hostname=cronkata-it-{os.getpid()}@%h",
        ],
        worker_log,
    )
    beat, beat_out = _start(
        ["-A", "tasks", "beat", "--loglevel=DEBUG", f"--schedule={tmp_path / 'schedule'}"],
        beat_log,
    )
    found = None
    try:
        deadline = time.monotonic() + RESULT_WAIT
        while found is None and time.monotonic() < deadline:
            if worker.poll() is not None or beat.poll() is not None:
                break
            found = _beat_result(clean_redis, beat_log)
            if found is None:
                time.sleep(0.25)  # real processes: polling with short sleeps is the way
        # tasks.py's header: a routed task (queue "notifications"), sent by another process
        notified = subprocess.run(
            [sys.executable, "-c", NOTIFY_BY_HAND],
            cwd=FOLDER,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=RESULT_WAIT,
            check=False,
        )
    finally:
        worker_exit = _stop(worker)
        beat_exit = _stop(beat)
        worker_out.close()
        beat_out.close()

    logs = (
        f"--- worker log (tail) ---\n{worker_log.read_text(errors='replace')[-3000:]}\n"
        f"--- beat log (tail) ---\n{beat_log.read_text(errors='replace')[-3000:]}"
    )
    assert found is not None, (
        f"no beat-sent task had a SUCCESS result within {RESULT_WAIT} s\n{logs}"
    )
    assert notified.returncode == 0, (
        "notify (routed to the 'notifications' queue) did not complete: the worker started "
        f"as documented must consume every routed queue\n{notified.stderr[-2000:]}\n{logs}"
    )
    task_id, meta = found
    assert meta["result"] == 0, meta  # cronkata.cleanup: no session to remove in an empty DB
    assert "Sending due task cleanup-every-10-minutes (cronkata.cleanup)" in beat_log.read_text()
    assert f"Task cronkata.cleanup[{task_id}] succeeded" in worker_log.read_text(), logs
    for name, (code, seconds) in (("worker", worker_exit), ("beat", beat_exit)):
        assert code == 0, f"{name} exited with {code} after SIGTERM ({seconds:.1f} s)\n{logs}"
        assert seconds < EXIT_WAIT, f"{name} took {seconds:.1f} s to stop\n{logs}"
