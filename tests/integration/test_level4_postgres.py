"""Real PostgreSQL: the level-4 monitor's run history and alerts with
MONITOR_DATABASE_URL=postgresql+psycopg://...

Needs PostgreSQL on 127.0.0.1:5432 (see conftest.py); skipped without it, unless
CRONKATA_REQUIRE_SERVICES=1 (CI): then it fails. The app runs in virtual time, as in
tests/test_level4_solution.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grader import paths
from grader.sim_apscheduler import simulate
from grader.targets import load_file

START = datetime(2026, 1, 5, tzinfo=UTC)
ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
VIEWER = {"Authorization": "Bearer viewer-token-for-tests"}

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def test_the_history_and_alerts_work_on_postgresql(postgres_database: str) -> None:
    mod = load_file(paths.SOLUTIONS_DIR / "level4_production_monitor.py")
    notes: list[Any] = []
    settings = mod.Settings(
        database_url=postgres_database,
        admin_token="admin-token-for-tests",
        viewer_token="viewer-token-for-tests",
        executor="sync",
        history_max_runs_per_job=2,
        retention_interval_seconds=0,
    )
    with simulate(START) as sim:
        app = mod.create_app(settings, notifier=notes.append)
        with TestClient(app) as client:
            create = {
                "id": "pg",
                "task": "demo.fail",
                "trigger": {"type": "interval", "seconds": 10},
                "alerts": {"failing_after": 2},
            }
            assert client.post("/api/jobs", json=create, headers=ADMIN).status_code == 201
            sim.run_for(30)
            runs = client.get("/api/runs", headers=VIEWER).json()
            assert [r["status"] for r in runs] == ["failure"] * 3
            assert runs[0]["run_id"] > runs[1]["run_id"] > runs[2]["run_id"]
            assert runs[0]["scheduled_at"] == "2026-01-05T00:00:30Z"
            assert runs[0]["error_type"] == "RuntimeError"
            assert [n.event for n in notes] == ["firing"]
            assert client.get("/api/jobs/pg", headers=VIEWER).json()["consecutive_failures"] == 3
            assert app.state.monitor.prune_history() == 1
            assert client.delete("/api/jobs/pg", headers=ADMIN).status_code == 204
            kept = client.get("/api/runs", params={"job_id": "pg"}, headers=VIEWER).json()
            assert len(kept) == 2
            [alert] = client.get("/api/alerts", headers=VIEWER).json()
            assert alert["resolution"] == "deleted"
            assert client.get("/healthz").json()["database"] == "ok"
    # a restart against the same database: the history is still there
    with simulate(START) as sim, TestClient(mod.create_app(settings)) as client:
        assert len(client.get("/api/runs", headers=VIEWER).json()) == 2
