"""Benchmark: latency of the level-4 admin API under load, with a big run history (issue 9).

    .venv/bin/python benchmarks/bench_admin_api.py [--rows 1000000] [--requests 2000]
        [--concurrency 100] [--jobs 20] [--postgres | --no-postgres]

Run by hand, not in CI. For each backend (SQLite in a temporary file; PostgreSQL on
127.0.0.1:5432 when it answers, in a throwaway database created and dropped here: trust
auth as ``postgres``, or CRONKATA_POSTGRES_ADMIN_URL):
    1. ``--rows`` run rows are bulk-inserted straight into the solution's ``monitor_runs``
       table (its SQLAlchemy ``RunRow`` table, executemany in batches of 50,000), spread
       over the demo jobs, ``--jobs`` extra jobs and some deleted ones, the last 25 days;
       the time this takes is printed;
    2. the solution starts under uvicorn as its header says (one process, demo jobs on),
       plus ``--no-access-log`` and MONITOR_RETENTION_INTERVAL_SECONDS=0 (no pruning
       while measuring); the ``--jobs`` extra jobs are created through the API;
    3. for ``GET /api/jobs`` and ``GET /api/runs?limit=50``: ``--requests`` requests from
       ``--concurrency`` concurrent clients (httpx.AsyncClient, one task per client, a
       closed loop), after a warm-up; then the same endpoint with one client, which gives
       the service time without queueing;
    4. EXPLAIN (QUERY PLAN) of the runs queries, to see which index each one uses.

The table has backend, endpoint, clients, requests, p50/p99 in ms and requests/s. Goal
(issue 9): p99 under 50 ms at 100 clients on a 2-core machine. With a closed loop, the
latency at C clients is about C / throughput (Little's law): p99 < 50 ms at 100 clients
needs more than 2,000 requests/s, so compare the one-client row (what an index or a query
changes) with the 100-client row (what the server's throughput allows). The load
generator shares the machine's CPUs with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import httpx
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader import paths  # noqa: E402
from grader.targets import load_file  # noqa: E402
from grader.testing import free_port  # noqa: E402

SOLUTION = paths.SOLUTIONS_DIR / "level4_production_monitor.py"
ADMIN = "admin-token-for-the-benchmark"
VIEWER = "viewer-token-for-the-benchmark"
PG_ADMIN_URL = os.environ.get(
    "CRONKATA_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BATCH = 50_000
GOAL_P99_MS = 50.0
ENDPOINTS = ("/api/jobs", "/api/runs?limit=50")
STATUSES = ("success",) * 90 + ("failure",) * 8 + ("missed", "skipped")


@dataclass(frozen=True)
class Result:
    """One row of the table."""

    backend: str
    endpoint: str
    clients: int
    requests: int
    p50_ms: float
    p99_ms: float
    per_second: float


def seed(mod: ModuleType, url: str, rows: int, job_ids: list[str]) -> float:
    """Create the solution's tables at ``url`` and insert ``rows`` runs; returns seconds."""
    store = mod.Store(url)
    try:
        store.create_tables()
        table = mod.RunRow.__table__
        now = datetime.now(UTC)
        start = now - timedelta(days=25)
        step = timedelta(days=25) / max(rows, 1)
        began = time.perf_counter()
        with store.engine.begin() as connection:
            for first in range(0, rows, BATCH):
                batch = []
                for i in range(first, min(first + BATCH, rows)):
                    status = STATUSES[i % len(STATUSES)]
                    scheduled = start + step * i
                    ran = status in {"success", "failure"}
                    batch.append(
                        {
                            "job_id": job_ids[i % len(job_ids)],
                            "trigger": "scheduled" if i % 50 else "manual",
                            "attempt": 1,
                            "scheduled_at": scheduled,
                            "started_at": scheduled if ran else None,
                            "finished_at": scheduled + timedelta(seconds=0.2) if ran else None,
                            "duration_seconds": 0.2 if ran else None,
                            "status": status,
                            "error_type": "RuntimeError" if status == "failure" else None,
                            "error_message": "simulated failure" if status == "failure" else None,
                            "traceback": None,
                        }
                    )
                connection.execute(insert(table), batch)
        if store.engine.dialect.name == "postgresql":
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE monitor_runs"))
        else:
            with store.engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        return time.perf_counter() - began
    finally:
        store.dispose()


def explain(mod: ModuleType, url: str) -> list[str]:
    """The query plans of the runs queries the API sends (unfiltered, by job, by status)."""
    store = mod.Store(url)
    lines: list[str] = []
    try:
        postgres = store.engine.dialect.name == "postgresql"
        prefix = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)" if postgres else "EXPLAIN QUERY PLAN"
        queries = {
            "/api/runs?limit=50": "",
            "/api/runs?job_id=flaky&limit=50": "WHERE job_id = 'flaky'",
            "/api/runs?status=failure&limit=50": "WHERE status = 'failure'",
            "/api/runs?since=...&limit=50": "WHERE scheduled_at >= CURRENT_TIMESTAMP",
        }
        with store.engine.connect() as connection:
            for name, where in queries.items():
                sql = f"SELECT * FROM monitor_runs {where} ORDER BY id DESC LIMIT 50 OFFSET 0"
                plan = connection.execute(text(f"{prefix} {sql}")).all()
                lines.append(f"  {name}")
                lines += [f"      {row[-1]}" for row in plan]
    finally:
        store.dispose()
    return lines


@contextmanager
def uvicorn(url: str, workdir: Path) -> Iterator[str]:
    """The solution under uvicorn on a free port (stopped after); yields its base URL."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    variables = {
        "MONITOR_ADMIN_TOKEN": ADMIN,
        "MONITOR_VIEWER_TOKEN": VIEWER,
        "MONITOR_DEMO_JOBS": "true",
        "MONITOR_DATABASE_URL": url,
        "MONITOR_RETENTION_INTERVAL_SECONDS": "0",
    }
    binary = Path(sys.executable).with_name("uvicorn")
    command = [str(binary)] if binary.exists() else [sys.executable, "-m", "uvicorn"]
    log = (workdir / f"uvicorn-{port}.log").open("w")
    process = subprocess.Popen(
        [
            *command,
            "--factory",
            "level4_production_monitor:create_app",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=paths.SOLUTIONS_DIR,
        env={**clean, **variables},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"uvicorn did not start: see {log.name}")
            with suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


async def load(base: str, path: str, requests: int, clients: int) -> tuple[list[float], float]:
    """``requests`` GETs of ``path`` from ``clients`` concurrent clients: (latencies, seconds)."""
    headers = {"Authorization": f"Bearer {VIEWER}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    remaining = requests
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as c:

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                began = time.perf_counter()
                response = await c.get(path)
                latencies.append(time.perf_counter() - began)
                if response.status_code != 200:
                    raise SystemExit(f"GET {path}: {response.status_code} {response.text[:200]}")

        warm = [c.get(path) for _ in range(min(clients, 50))]  # connections and caches
        await asyncio.gather(*warm)
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return latencies, time.perf_counter() - began


def measure(backend: str, base: str, args: argparse.Namespace) -> list[Result]:
    """Each endpoint at ``--concurrency`` clients, then with one client."""
    results = []
    for path in ENDPOINTS:
        for clients, count in (
            (args.concurrency, args.requests),
            (1, max(args.requests // 10, 100)),
        ):
            latencies, seconds = asyncio.run(load(base, path, count, clients))
            cuts = statistics.quantiles(latencies, n=100, method="inclusive")
            results.append(
                Result(
                    backend, path, clients, count, cuts[49] * 1e3, cuts[98] * 1e3, count / seconds
                )
            )
            print(f"  {path} x{clients}: done", flush=True)
    return results


def run_backend(
    backend: str, url: str, mod: ModuleType, args: argparse.Namespace, workdir: Path
) -> tuple[list[Result], list[str]]:
    """Seed, serve, create the extra jobs, measure, explain."""
    extra = [f"bench-{n:03d}" for n in range(args.jobs)]
    job_ids = ["heartbeat", "flaky", *extra, "deleted-a", "deleted-b"]
    print(f"{backend}: seeding {args.rows:,} runs ...", flush=True)
    seconds = seed(mod, url, args.rows, job_ids)
    print(f"{backend}: seeded {args.rows:,} runs in {seconds:.1f} s", flush=True)
    began = time.perf_counter()
    with uvicorn(url, workdir) as base:
        print(f"{backend}: uvicorn up in {time.perf_counter() - began:.1f} s", flush=True)
        admin = {"Authorization": f"Bearer {ADMIN}"}
        for job_id in extra:
            body = {
                "id": job_id,
                "task": "demo.heartbeat",
                "trigger": {"type": "interval", "seconds": 3600},
            }
            response = httpx.post(f"{base}/api/jobs", json=body, headers=admin, timeout=60)
            assert response.status_code == 201, response.text
        results = measure(backend, base, args)
    return results, [f"{backend}:", *explain(mod, url)]


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A throwaway database of the local PostgreSQL (dropped after), or None if unavailable."""
    try:
        import psycopg
    except ImportError:
        print("postgresql: skipped (no psycopg: pip install -e '.[postgres]')")
        yield None
        return
    name = f"cronkata_bench_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as error:
        print(f"postgresql: skipped (cannot connect as {PG_ADMIN_URL}: {error})")
        yield None
        return
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
            yield url.render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table(results: list[Result]) -> str:
    """The figures as a text table."""
    lines = [
        f"{'backend':<11} {'endpoint':<20} {'clients':>7} {'requests':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'req/s':>7}  goal"
    ]
    for r in results:
        goal = ("ok" if r.p99_ms < GOAL_P99_MS else "MISSED") if r.clients > 1 else ""
        lines.append(
            f"{r.backend:<11} {r.endpoint:<20} {r.clients:>7} {r.requests:>8} "
            f"{r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.per_second:>7.0f}  {goal}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run each backend, print the table and the query plans."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="run rows to seed")
    parser.add_argument("--requests", type=int, default=2_000, help="requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=100, help="concurrent clients")
    parser.add_argument("--jobs", type=int, default=20, help="jobs besides the 2 demo jobs")
    parser.add_argument(
        "--postgres",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also PostgreSQL on 127.0.0.1:5432 when it answers (default: yes)",
    )
    args = parser.parse_args(argv)
    mod = load_file(SOLUTION)
    results: list[Result] = []
    plans: list[str] = []
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="cronkata-bench-") as folder:
        workdir = Path(folder)
        found, plan = run_backend(
            "sqlite", f"sqlite:///{workdir / 'monitor.sqlite'}", mod, args, workdir
        )
        results += found
        plans += plan
        if args.postgres:
            with postgres_database() as url:
                if url is not None:
                    found, plan = run_backend("postgresql", url, mod, args, workdir)
                    results += found
                    plans += plan
    print()
    print(table(results))
    print(f"\nload average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("\nquery plans:")
    print("\n".join(plans))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
