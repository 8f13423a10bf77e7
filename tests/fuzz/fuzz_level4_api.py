"""Schemathesis fuzzes the level-4 solution's admin API from its own OpenAPI schema.

Issue 9, "Beyond the suite": no generated request, valid (positive) or invalid (negative),
gets a 5xx, and a rejected request (4xx) leaves the state as it was. The app runs
in-process (ASGI) in virtual time: grader.sim_apscheduler steps its real scheduler and
time-machine holds the clock, so no job fires between two snapshots and next_run_time
only moves when a request moves it.

For every operation of /openapi.json and each role (admin, viewer token), a fresh app with
a job ``j`` and one manual run; then Schemathesis draws requests (derandomized, a fixed
number of examples) and each one is checked:
    * not a 5xx (``not_a_server_error``);
    * a 2xx matches its response model, a documented response has its content type;
    * a negative request (data the schema forbids) is rejected with a 4xx;
    * after a 4xx, the scheduler, the jobs (next_run_time included), the alerts and the
      run history are exactly as before.
Path parameters are steered to the ids that exist (``j``, run 1) half of the time and
job bodies to a registered task, so the happy paths are fuzzed too, not only the 404s.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
)
from schemathesis.python.asgi import get_client

from grader import paths
from grader.sim_apscheduler import simulate
from grader.targets import load_file

SOLUTION = paths.SOLUTIONS_DIR / "level4_production_monitor.py"
START = datetime(2026, 1, 5, tzinfo=UTC)
TOKENS = {"admin": "admin-token-for-fuzzing", "viewer": "viewer-token-for-fuzzing"}
# Examples per operation and role: the whole file takes about 25 s of CPU. To hunt longer by
# hand: CRONKATA_FUZZ_EXAMPLES=500 CRONKATA_FUZZ_COVERAGE=1 .venv/bin/pytest
# -p schemathesis.pytest.plugin tests/fuzz/fuzz_level4_api.py
# (the coverage phase adds Schemathesis' boundary and structure cases: hundreds per operation).
EXAMPLES = int(os.environ.get("CRONKATA_FUZZ_EXAMPLES", "15"))
PHASES = ["examples", "fuzzing"] + (
    ["coverage"] if os.environ.get("CRONKATA_FUZZ_COVERAGE") else []
)
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    negative_data_rejection,
]

mod = load_file(SOLUTION)


def _schema_source() -> dict[str, Any]:
    """The app's OpenAPI document (built from its routes; no lifespan, no scheduler)."""
    app = mod.create_app(mod.Settings(database_url="sqlite://"))
    return dict(app.openapi())


schema = schemathesis.openapi.from_dict(_schema_source())
TASK_MAX_LENGTH = 200  # JobCreate.task and JobPatch.task: maxLength in the schema
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    with_security_parameters=False,  # the tests send the role's token themselves
    allow_x00=True,
)
schema.config.phases.update(phases=PHASES)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Two times out of three, aim at a job and a run that exist rather than at a 404.

    Only parameters that the schema allows are steered: when one of them is the invalid
    part of a negative case, steering it would turn that case into a valid request.
    """
    if not path_parameters:
        return st.just(path_parameters)
    run_id = path_parameters.get("run_id", 1)
    valid_run_id = type(run_id) is int and 1 <= run_id <= 2**63 - 1
    if not valid_run_id or not isinstance(path_parameters.get("job_id", ""), str):
        return st.just(path_parameters)
    known = [dict(path_parameters), dict(path_parameters)]
    for index, (job_id, run_id) in enumerate((("j", 1), ("f", 2))):
        if "job_id" in path_parameters:
            known[index]["job_id"] = job_id
        if "run_id" in path_parameters:
            known[index]["run_id"] = run_id
    return st.sampled_from([path_parameters, *known])


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Half of the time, name a registered task, so that a job body can be accepted.

    Only a task that the schema allows is swapped: when the task itself is the invalid part
    of a negative case, swapping it would turn that case into a valid request.
    """
    task = body.get("task") if isinstance(body, dict) else None
    if isinstance(task, str) and len(task) <= TASK_MAX_LENGTH:
        return st.sampled_from([body, {**body, "task": "t.ok"}])
    return st.just(body)


@dataclass
class App:
    """One app in virtual time: a TestClient (its lifespan ran) for the snapshots, and the
    Schemathesis ASGI session that sends the generated requests to the same app."""

    client: TestClient
    session: Any
    headers: dict[str, str]

    def snapshot(self) -> str:
        """What a rejected request must leave as it was: the scheduler, every job (its
        next_run_time too), every alert and the run history, read from the monitor."""
        monitor = self.client.app.state.monitor
        parts = [
            monitor.scheduler_info(),
            *monitor.list_jobs(limit=10_000),
            *monitor.list_alerts(limit=10_000),
            *monitor.list_runs(limit=10_000),
        ]
        return json.dumps([part.model_dump(mode="json") for part in parts], sort_keys=True)


@pytest.fixture(params=sorted(TOKENS))
def app(request: pytest.FixtureRequest) -> Iterator[App]:
    """A started app for one role, with job ``j`` (its manual run 1 succeeded) and job
    ``f`` (its manual run 2 failed, so a ``failing`` alert is open)."""
    with simulate(START):
        tasks = mod.TaskRegistry()
        tasks.register("t.ok", lambda: "ok")
        tasks.register("t.fail", _fail)
        settings_ = mod.Settings(
            database_url="sqlite://",
            admin_token=TOKENS["admin"],
            viewer_token=TOKENS["viewer"],
            executor="sync",
            retention_interval_seconds=0,
            alert_check_interval_seconds=0,
        )
        application = mod.create_app(
            settings_, notifier=lambda note: None, tasks=tasks, rng=lambda: 0.0
        )
        with TestClient(application, raise_server_exceptions=False) as client:
            admin = {"Authorization": f"Bearer {TOKENS['admin']}"}
            every_minute = {"type": "interval", "seconds": 60}
            for job in (
                {"id": "j", "task": "t.ok", "trigger": every_minute},
                {
                    "id": "f",
                    "task": "t.fail",
                    "trigger": every_minute,
                    "alerts": {"failing_after": 1},
                },
            ):
                assert client.post("/api/jobs", json=job, headers=admin).status_code == 201
                assert client.post(f"/api/jobs/{job['id']}/run", headers=admin).status_code == 202
            alerts = application.state.monitor.list_alerts(state="open")
            assert [(a.job_id, a.kind) for a in alerts] == [("f", "failing")]
            role = str(request.param)
            yield App(client, get_client(application), {"Authorization": f"Bearer {TOKENS[role]}"})


def _fail() -> None:
    raise RuntimeError("fails on purpose")


@pytest.mark.timeout(120)
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_no_5xx_and_a_rejected_request_changes_nothing(case: Any, app: App) -> None:
    before = app.snapshot()
    response = case.call(base_url="http://testserver", session=app.session, headers=app.headers)
    case.validate_response(response, checks=CHECKS)
    if 400 <= response.status_code < 500:
        assert app.snapshot() == before, (
            f"{case.method} {case.formatted_path} -> {response.status_code} changed the state"
        )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", ["/api/runs?since=0.5", "/api/jobs/j/runs?since=1700000000"])
def test_since_takes_only_rfc3339_date_times(app: App, path: str) -> None:
    response = app.client.get(path, headers=app.headers)
    assert response.status_code == 422, response.text


@pytest.mark.timeout(60)
def test_a_since_without_an_offset_is_422_located_in_the_query(app: App) -> None:
    response = app.client.get("/api/runs?since=2026-03-29T01:00:00", headers=app.headers)
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["detail"]] == [["query", "since"]]
