"""Benchmark: grading a class of 100 learners (levels 1-3), locally and on two Celery workers.

    .venv/bin/python benchmarks/bench_class.py [--count 100] [--workers N] [--no-celery]

Run by hand, not in CI: about 40 minutes for 100 learners on 2 CPUs (each mode grades
the whole class: measured 1,257 s locally, 1,084 s on the two workers, 76 distinct
gradings); `--count 12` takes about 8 minutes. The class is `grader class demo
--distinct`: complete, partial (level 1 solved) and untouched learners in turn, every
solved file different, so no solved submission comes from another's cache entry (the
untouched ones share one). Each mode grades it into a fresh out folder, each learner in
its own bubblewrap sandbox (the fallback without it, with a warning). The Celery mode
starts two workers (`celery -A grader.classroom worker --concurrency 1`) against the
local Redis, database 12 (flushed before and after). Prints throughput: submissions
(learners) and distinct gradings per minute.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.classroom import demo, inputs  # noqa: E402
from grader.classroom.isolate import Settings  # noqa: E402
from grader.classroom.plan import Cache, Plan  # noqa: E402
from grader.classroom.snapshot import course_version  # noqa: E402

BENCH_DB = 12


def _plan(source: Path, out: Path) -> Plan:
    submissions = inputs.discover(source, out / ".work")
    return Plan(submissions, (), Settings.with_environment(), Cache(out / ".cache"))


def _graded(plan: Plan) -> int:
    """Gradings that ended with results; the others are reported."""
    bad = {k: o for k, o in plan.outcomes.items() if o.status != "graded"}
    for outcome in bad.values():
        print(f"  not graded: {outcome.status}: {outcome.message[:300]}", flush=True)
    return len(plan.outcomes) - len(bad)


def bench_local(source: Path, out: Path, workers: int | None) -> tuple[float, int]:
    """Seconds to grade the class locally, and the gradings done."""
    from grader.classroom.local import run_local

    plan = _plan(source, out)
    started = time.monotonic()
    run_local(plan, workers=workers)
    return time.monotonic() - started, _graded(plan)


def bench_celery(source: Path, out: Path, broker: str, logs: Path) -> tuple[float, int]:
    """Seconds to grade the class on two fresh workers, and the gradings done."""
    import redis

    os.environ["CRONKATA_CLASS_BROKER"] = broker
    client = redis.Redis.from_url(broker)
    client.flushdb()
    from grader.classroom.celery_app import app
    from grader.classroom.tasks import run_celery

    app.conf.broker_url = app.conf.result_backend = broker
    celery = str(Path(sys.executable).with_name("celery"))
    processes = []
    for name in ("bench-a@cronkata", "bench-b@cronkata"):
        log = (logs / f"{name}.log").open("wb")
        command = [celery, "-A", "grader.classroom", "worker", "--concurrency", "1", "-n", name]
        processes.append(
            (subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log)
        )
    try:
        answered: set[str] = set()
        for _ in range(60):
            answered |= {n for reply in app.control.ping(timeout=1.0) or [] for n in reply}
            if len(answered) >= 2:
                break
        if len(answered) < 2:
            raise SystemExit(f"the workers did not come up (see {logs})")
        course_version.cache_clear()  # the workers' view of the course, read now
        plan = _plan(source, out)
        started = time.monotonic()
        run_celery(plan)
        return time.monotonic() - started, _graded(plan)
    finally:
        for process, _log in processes:
            process.send_signal(signal.SIGTERM)
        for process, log in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
        client.flushdb()


def main() -> None:
    """Make the class, grade it in each mode, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="learners (default 100)")
    parser.add_argument("--workers", type=int, default=None, help="local workers (default: CPUs)")
    parser.add_argument("--no-celery", action="store_true", help="only the local mode")
    parser.add_argument("--broker", default=f"redis://127.0.0.1:6379/{BENCH_DB}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cronkata-bench-class-") as scratch:
        root = Path(scratch)
        demo.make_class(root / "class", args.count, distinct=True)
        rows = []
        seconds, done = bench_local(root / "class", root / "local", args.workers)
        rows.append((f"local, {args.workers or os.cpu_count()} workers", seconds, done))
        print(f"local: {done} gradings in {seconds:.0f} s", flush=True)
        if not args.no_celery:
            seconds, done = bench_celery(root / "class", root / "celery", args.broker, root)
            rows.append(("celery, 2 workers x 1", seconds, done))
    print(f"\n{args.count} learners, levels 1-3, {os.cpu_count()} CPUs")
    print("submissions/min: learners graded a minute; gradings/min: distinct gradings (a")
    print("submission identical to another's comes from the cache)")
    print(f"{'mode':<24}{'seconds':>10}{'submissions/min':>17}{'gradings/min':>14}")
    for name, seconds, done in rows:
        per_learner, per_grading = 60 * args.count / seconds, 60 * done / seconds
        print(f"{name:<24}{seconds:>10.1f}{per_learner:>17.1f}{per_grading:>14.1f}")


if __name__ == "__main__":
    main()
