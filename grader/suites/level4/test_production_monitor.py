"""Hidden suite of `production_monitor` (exercises/level4/level4_production_monitor.py).

Every test builds the learner's app with `create_app(Settings(...), notifier=...,
tasks=..., rng=...)`: an in-memory SQLite history, the synchronous executor, tokens for
both roles, and a task registry of the suite's own (``t.ok``, ``t.fail``, scripted ones).
The app runs behind a TestClient (its lifespan starts the Monitor) in virtual time:
`grader.sim_apscheduler` steps the real BackgroundScheduler and time-machine moves the
clock, so every fire time, retry delay and alert is exact. The suite uses only the stub's
public API (the routes, `Monitor`'s public methods, `backoff_delay`, `authenticate`,
`TaskRegistry`, the models) and reads metrics with prometheus_client's own text parser.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from apscheduler.triggers.cron import CronTrigger
from fastapi.testclient import TestClient
from hypothesis import assume, example, given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from grader.drawing import deterministic, zones
from grader.feedback import expect, expect_equal, fail
from grader.sim_apscheduler import SchedulerSimulation, simulate
from grader.targets import Target
from grader.testing import environment

FILE = "level4_production_monitor.py"
NOTE = "07e_best_practices.md"
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
ADMIN = "admin-token-for-grading"
VIEWER = "viewer-token-for-grading"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
AS_VIEWER = {"Authorization": f"Bearer {VIEWER}"}
TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/="

Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def grading_conditions() -> AbstractContextManager[None]:
    """Every test (and the import of the file): the learner's own MONITOR_* variables
    (like every course variable) unset, so they cannot change what is graded."""
    return environment()


# -- the app in virtual time ------------------------------------------------------------------


@dataclass
class Env:
    """One learner app in virtual time: its client, simulation, monitor and notifications."""

    module: ModuleType
    client: TestClient
    sim: SchedulerSimulation
    monitor: Any
    notes: list[Any]
    scripts: dict[str, list[str]] = field(default_factory=dict)
    _names: Iterator[int] = field(default_factory=itertools.count)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, headers=AS_VIEWER, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, headers=AS_ADMIN, **kwargs)

    def add(self, job_id: str = "j", **fields: Any) -> dict[str, Any]:
        body = job(job_id, **fields)
        response = self.admin("POST", "/api/jobs", json=body)
        expect(
            response.status_code == 201,
            f"POST /api/jobs {json.dumps(body)} answered {response.status_code} "
            f"{response.text[:300]}; a valid job definition is created: 201",
        )
        return dict(response.json())

    def job(self, job_id: str = "j") -> dict[str, Any]:
        response = self.get(f"/api/jobs/{job_id}")
        expect(
            response.status_code == 200,
            f"GET /api/jobs/{job_id} answered {response.status_code} {response.text[:200]}; "
            "an existing job is 200 with its view",
        )
        return dict(response.json())

    def runs(self, **params: Any) -> list[dict[str, Any]]:
        response = self.get("/api/runs", params={"limit": 500, **params})
        expect(
            response.status_code == 200,
            f"GET /api/runs {params} answered {response.status_code} {response.text[:200]}",
        )
        return list(response.json())

    def snapshot(self) -> str:
        """Everything a refused request must leave as it was."""
        parts = [self.get(p).json() for p in ("/api/scheduler", "/api/jobs", "/api/alerts")]
        return json.dumps([*parts, self.runs()], sort_keys=True)

    def events(self, job_id: str | None = None) -> list[tuple[str, str]]:
        return [
            (n.event, n.alert.kind)
            for n in self.notes
            if job_id is None or n.alert.job_id == job_id
        ]

    def scripted(self, outcomes: list[str]) -> str:
        """A new task that fails or succeeds in the order given (then succeeds)."""
        name = f"t.scripted{next(self._names)}"
        script = list(outcomes)
        self.scripts[name] = script

        def scripted() -> None:
            if (script.pop(0) if script else "ok") == "fail":
                raise ValueError("scripted failure")

        self.monitor.tasks.register(name, scripted)
        return name

    def metrics(self) -> Metrics:
        response = self.get("/metrics")
        expect(
            response.status_code == 200,
            f"GET /metrics (viewer) answered {response.status_code}: {response.text[:200]}",
        )
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }


def job(
    job_id: str = "j", *, task: str = "t.ok", seconds: int = 60, **fields: Any
) -> dict[str, Any]:
    """A job definition: an interval trigger unless ``trigger`` is given."""
    return {
        "id": job_id,
        "task": task,
        "trigger": {"type": "interval", "seconds": seconds},
        **fields,
    }


def _registry(module: ModuleType) -> Any:
    def ok() -> str:
        return "ok"

    def fail_always() -> None:
        raise RuntimeError("always fails")

    def echo(x: Any, y: Any = 1) -> Any:
        return x

    tasks = module.TaskRegistry()
    tasks.register("t.ok", ok)
    tasks.register("t.fail", fail_always)
    tasks.register("t.echo", echo)
    return tasks


@contextmanager
def app_env(
    module: ModuleType,
    start: datetime = START,
    *,
    rng: Callable[[], float] | None = None,
    **overrides: Any,
) -> Iterator[Env]:
    """The learner's app, started (lifespan), in virtual time from ``start``."""
    options: dict[str, Any] = {
        "database_url": "sqlite://",
        "admin_token": ADMIN,
        "viewer_token": VIEWER,
        "executor": "sync",
        "retention_interval_seconds": 0,
        **overrides,
    }
    with simulate(start) as sim:
        notes: list[Any] = []
        app = module.create_app(
            module.Settings(**options),
            notifier=notes.append,
            tasks=_registry(module),
            rng=rng or (lambda: 0.0),
        )
        with TestClient(app, raise_server_exceptions=True) as client:
            yield Env(module, client, sim, app.state.monitor, notes)


def at(iso: str | None) -> datetime | None:
    return None if iso is None else datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _load(target: Target) -> ModuleType:
    return target.load(FILE)


def _unchanged(env: Env, before: str, what: str) -> None:
    after = env.snapshot()
    if after != before:
        fail(
            f"{what} changed the state (GET /api/scheduler, /api/jobs, /api/alerts, /api/runs "
            f"differ before and after):\n  before: {before[:400]}\n  after:  {after[:400]}\n"
            "A refused request must change nothing: check everything first, then act."
        )


MUTATIONS: list[tuple[str, str, Any]] = [
    ("POST", "/api/scheduler/pause", None),
    ("POST", "/api/scheduler/resume", None),
    ("POST", "/api/jobs", job("new")),
    ("PATCH", "/api/jobs/j", {"trigger": {"type": "interval", "seconds": 5}}),
    ("DELETE", "/api/jobs/j", None),
    ("POST", "/api/jobs/j/pause", None),
    ("POST", "/api/jobs/j/resume", None),
    ("POST", "/api/jobs/j/run", None),
]
READS = [
    "/api/scheduler",
    "/api/tasks",
    "/api/jobs",
    "/api/jobs/j",
    "/api/jobs/j/runs",
    "/api/runs",
    "/api/runs/1",
    "/api/alerts",
    "/metrics",
]


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#admin-auth",
    hint="Check credentials in an HTTP middleware, before routing: no valid token, 401 with "
    "a WWW-Authenticate header, whatever the path or the body.",
    spec=("auth-401-challenge",),
    timeout=40,
)
def test_every_route_without_a_valid_token_is_401_and_changes_nothing(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j")
        env.admin("POST", "/api/jobs/j/run")
        before = env.snapshot()
        wrong = {
            "no Authorization header": {},
            "a wrong bearer token": {"Authorization": "Bearer not-the-token-at-all"},
            "the admin token minus its last character": {"Authorization": f"Bearer {ADMIN[:-1]}"},
            "the admin token plus a character": {"Authorization": f"Bearer {ADMIN}x"},
            "an unknown scheme": {"Authorization": f"Token {ADMIN}"},
            "a bare word": {"Authorization": "x"},
        }
        paths = [(m, p, b) for m, p, b in MUTATIONS] + [("GET", p, None) for p in READS]
        paths.append(("GET", "/api/no-such-route", None))
        for index, (method, path, body) in enumerate(paths):
            variants = list(wrong.items())
            if method == "GET":  # every variant on the changes, two of them per read
                variants = [variants[index % 6], variants[(index + 3) % 6]]
            for what, headers in variants:
                response = env.client.request(method, path, json=body, headers=headers)
                expect(
                    response.status_code == 401,
                    f"{method} {path} with {what} answered {response.status_code}; without a "
                    "valid token every route but /healthz is 401 (unknown paths too: no hint "
                    "of what exists)",
                )
                challenge = response.headers.get("WWW-Authenticate", "")
                expect(
                    "bearer" in challenge.lower(),
                    f"the 401 of {method} {path} has WWW-Authenticate {challenge!r}; it must "
                    'challenge with Bearer (e.g. \'Bearer realm="cronkata", '
                    'Basic realm="cronkata"\')',
                )
        _unchanged(env, before, "requests without a valid token")


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#admin-auth",
    hint="GET/HEAD/OPTIONS need any role; every other method needs the admin role: a viewer "
    "gets 403 (authenticated, not allowed), never 401.",
    spec=("viewer-reads", "viewer-mutation-403"),
    timeout=40,
)
def test_a_viewer_reads_everything_and_changes_nothing(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j")
        env.admin("POST", "/api/jobs/j/run")
        before = env.snapshot()
        for path in READS:
            for role, headers in (("viewer", AS_VIEWER), ("admin", AS_ADMIN)):
                response = env.client.get(path, headers=headers)
                expect(
                    response.status_code == 200,
                    f"GET {path} as {role} answered {response.status_code} "
                    f"{response.text[:200]}; both roles may read",
                )
        for method, path, body in MUTATIONS:
            response = env.client.request(method, path, json=body, headers=AS_VIEWER)
            expect(
                response.status_code == 403,
                f"{method} {path} as a viewer answered {response.status_code}; a viewer's "
                "change is 403 (401 means 'who are you?', 403 'you may not')",
            )
            _unchanged(env, before, f"{method} {path} as a viewer")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#admin-auth",
    hint="In read-only mode refuse every non-GET method with 403, the admin's too.",
    spec=("read-only-403",),
    timeout=30,
)
def test_read_only_mode_refuses_every_change_even_the_admins(target: Target) -> None:
    module = _load(target)
    with app_env(module, read_only=True) as env:
        env.monitor.add_job(module.JobCreate.model_validate(job("j")))
        before = env.snapshot()
        for method, path, body in MUTATIONS:
            response = env.admin(method, path, json=body)
            expect(
                response.status_code == 403,
                f"{method} {path} as the admin in read-only mode answered "
                f"{response.status_code}; read-only mode is 403 for every change",
            )
        _unchanged(env, before, "mutations in read-only mode")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#admin-auth",
    hint="Compare the Origin header's host with the Host header; refuse a mutation (403) "
    "when they differ. No Origin header: fine (curl).",
    spec=("cross-origin-403",),
    timeout=30,
)
def test_a_mutation_from_another_origin_is_403(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j")
        before = env.snapshot()
        for origin in ("https://evil.example", "http://testserver.evil.example", "null"):
            crossed = {"Origin": origin, **AS_ADMIN}
            response = env.client.post("/api/jobs/j/pause", headers=crossed)
            expect(
                response.status_code == 403,
                f"POST /api/jobs/j/pause as the admin with Origin {origin!r} (Host: testserver) "
                f"answered {response.status_code}; a mutation from another origin is 403",
            )
        _unchanged(env, before, "cross-origin mutations")
        same = env.client.post(
            "/api/jobs/j/pause", headers={"Origin": "http://testserver", **AS_ADMIN}
        )
        expect(
            same.status_code == 200,
            f"POST /api/jobs/j/pause with Origin http://testserver (the same host) answered "
            f"{same.status_code}; same-origin requests (the admin page) must work",
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#admin-auth",
    hint="Bearer: the rest of the header is the token, compared whole with "
    "hmac.compare_digest. Basic: base64-decode user:password and compare the password.",
    spec=("authenticate-exact", "basic-auth"),
    timeout=30,
)
def test_authenticate_accepts_exactly_the_tokens(target: Target) -> None:
    module = _load(target)

    @deterministic(max_examples=20)
    @given(
        admin=st.text(TOKEN_CHARS, min_size=8, max_size=40),
        viewer=st.text(TOKEN_CHARS, min_size=8, max_size=40),
        user=st.text("abcdefghijklmnopqrstuvwxyz0123456789", max_size=10),
        scheme=st.sampled_from(["Bearer", "bearer", "BEARER"]),
    )
    def check(admin: str, viewer: str, user: str, scheme: str) -> None:
        assume(admin != viewer)
        settings = module.Settings(database_url="sqlite://", admin_token=admin, viewer_token=viewer)

        def basic(password: str) -> str:
            return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

        cases: list[tuple[str | None, str | None]] = [
            (f"{scheme} {admin}", "admin"),
            (f"{scheme} {viewer}", "viewer"),
            (basic(admin), "admin"),
            (basic(viewer), "viewer"),
            (None, None),
            ("", None),
            (f"{scheme} {admin[:-1]}", None),
            (f"{scheme} {admin}0", None),
            (f"{scheme} {viewer[1:]}", None),
            (basic(viewer + "x"), None),
            ("Basic not*base64", None),
            ("Basic " + base64.b64encode(viewer.encode()).decode(), None),  # no "user:"
            (f"Digest {admin}", None),
        ]
        if admin.swapcase() not in (admin, viewer):
            cases.append((f"{scheme} {admin.swapcase()}", None))
        for header, role in cases:
            presented = (header or "").partition(" ")[2]
            if role is None and presented in (admin, viewer):
                continue  # a drawn "wrong" token that happens to be the other one
            got = module.authenticate(header, settings)
            expect_equal(
                got,
                role,
                f"authenticate({header!r}, settings) with admin token {admin!r} and viewer "
                f"token {viewer!r}",
                "A header proves a role only with the whole token, exactly: no prefix, no "
                "suffix, no other case; Basic auth carries the token as its password.",
            )
        unset = module.Settings(database_url="sqlite://", admin_token=admin)
        got = module.authenticate(f"{scheme} ", unset)
        expect(got is None, f"authenticate({scheme + ' '!r}) with no viewer token returned {got!r}")

    check()


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#admin-auth",
    hint="/healthz (and /openapi.json) skip the auth; /metrics only when settings.metrics_public.",
    spec=("public-paths",),
    timeout=30,
)
def test_healthz_is_public_and_metrics_need_a_token_unless_public(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        health = env.client.get("/healthz")
        expect(
            health.status_code == 200,
            f"GET /healthz without credentials answered {health.status_code}: "
            "probes carry no token",
        )
        metrics = env.client.get("/metrics")
        expect(
            metrics.status_code == 401,
            f"GET /metrics without credentials answered {metrics.status_code}; by default "
            "metrics are behind the auth (they name every job)",
        )
        expect(env.get("/metrics").status_code == 200, "GET /metrics as a viewer must be 200")
    with app_env(module, metrics_public=True) as env:
        metrics = env.client.get("/metrics")
        expect(
            metrics.status_code == 200,
            f"with metrics_public=True, GET /metrics without credentials answered "
            f"{metrics.status_code}; it must be 200",
        )
        jobs = env.client.get("/api/jobs")
        expect(
            jobs.status_code == 401,
            f"with metrics_public=True, GET /api/jobs without credentials answered "
            f"{jobs.status_code}; only /metrics becomes public",
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#admin-page",
    hint="In the middleware, /admin without a valid token answers 401 with "
    "_render_page(request, authenticated=False) and WWW-Authenticate: Bearer only.",
    spec=("admin-page-login",),
    timeout=30,
)
def test_the_admin_page_asks_for_a_token_and_shows_nothing_without_one(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("secretjob")
        page = env.client.get("/admin")
        expect(
            page.status_code == 401,
            f"GET /admin without credentials answered {page.status_code}; it must be 401",
        )
        kind = page.headers.get("content-type", "")
        expect(
            kind.startswith("text/html") and 'id="login"' in page.text,
            f"GET /admin without credentials answered {kind!r}; the 401 carries the login "
            "form (HTML), so that a browser can ask for the token",
        )
        challenge = page.headers.get("WWW-Authenticate", "")
        expect(
            challenge.startswith("Bearer") and "basic" not in challenge.lower(),
            f"the 401 of /admin challenges with {challenge!r}; challenge with Bearer only, "
            "or the browser shows its own Basic dialog instead of the form",
        )
        expect("secretjob" not in page.text, "the login page of /admin shows job data")
        viewer = env.get("/admin")
        expect(
            viewer.status_code == 200 and 'data-job-id="secretjob"' in viewer.text,
            f"GET /admin as a viewer answered {viewer.status_code}; with a token the page "
            "shows the jobs",
        )


# -- creating jobs ------------------------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#admin-api",
    hint="Look the task up in the monitor's registry (self.tasks.get(name)); a name it does "
    "not know is InvalidJobError(('task',), ...), never an import.",
    spec=("registry-only",),
    timeout=40,
)
def test_a_task_outside_the_registry_is_422_and_creates_nothing(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j")
        before = env.snapshot()

        @deterministic(max_examples=11)
        @given(
            task=st.sampled_from(
                [
                    "os:system",
                    "os.system",
                    "builtins:eval",
                    "subprocess:run",
                    "level4_production_monitor:always_fail",
                    "demo.fail",  # in demo_tasks(), not in this app's registry
                    "heartbeat",
                    "t.nope",
                    "t.ok.x",
                    "T.OK",
                    "",
                ]
            )
        )
        def check(task: str) -> None:
            response = env.admin("POST", "/api/jobs", json=job("x", task=task))
            expect(
                response.status_code == 422,
                f"POST /api/jobs with task {task!r} answered {response.status_code} "
                f"{response.text[:200]}; only names of the app's task registry can run: 422",
            )
            expect(
                env.get("/api/jobs/x").status_code == 404,
                f"POST /api/jobs with task {task!r} was refused, yet job x exists now",
            )

        check()
        _unchanged(env, before, "POST /api/jobs with tasks outside the registry")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#admin-api",
    hint="inspect.signature(task.func).bind(*args, **kwargs) raises TypeError when they do "
    "not fit: that is a 422 (_check_arguments does it).",
    spec=("arguments-bind",),
    timeout=30,
)
def test_arguments_that_do_not_fit_the_task_are_422(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        before = env.snapshot()
        for fields in (
            {"task": "t.ok", "args": [1]},
            {"task": "t.ok", "kwargs": {"x": 1}},
            {"task": "t.echo"},
            {"task": "t.echo", "args": [1, 2, 3]},
            {"task": "t.echo", "kwargs": {"z": 1}},
        ):
            response = env.admin("POST", "/api/jobs", json=job("x", **fields))
            expect(
                response.status_code == 422,
                f"POST /api/jobs {fields} answered {response.status_code}; arguments that do "
                "not bind to the task's signature would fail at every run: 422 now",
            )
        _unchanged(env, before, "jobs with arguments that do not fit")
        env.add("e1", task="t.echo", args=[1])
        env.add("e2", task="t.echo", kwargs={"x": 1, "y": 2})


INVALID_BODIES: list[Any] = [
    job(seconds=0),
    job(seconds=-5),
    job(seconds=10**12),
    {**job(), "trigger": {"type": "date", "run_date": "2030-01-01T00:00:00Z"}},
    {**job(), "trigger": {"type": "interval", "seconds": 5, "jitter": 1}},
    {**job(), "trigger": {"type": "interval", "seconds": "60"}},
    {**job(), "extra": 1},
    {**job(), "id": "__retry__:x"},
    {**job(), "id": "a/b"},
    {**job(), "id": ""},
    {**job(), "max_instances": 0},
    {**job(), "retry": {"max_attempts": 0}},
    {**job(), "retry": {"backoff_seconds": 100, "max_backoff_seconds": 10}},
    {**job(), "alerts": {"failing_after": 0}},
    [job()],
    "job",
    None,
]


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#admin-api",
    hint="Declare the body as JobCreate (FastAPI validates it: 422 with detail[].loc); "
    "never take a dict and pick fields from it.",
    spec=("body-validated",),
    timeout=40,
)
def test_an_invalid_body_is_422_and_changes_nothing(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j")
        before = env.snapshot()
        for body in INVALID_BODIES:
            response = env.admin("POST", "/api/jobs", json=body)
            expect(
                response.status_code == 422,
                f"POST /api/jobs {json.dumps(body)[:200]} answered {response.status_code} "
                f"{response.text[:200]}; an invalid definition is 422",
            )
            detail = response.json().get("detail") if isinstance(response.json(), dict) else None
            expect(
                isinstance(detail, list) and all("loc" in d for d in detail),
                f"the 422 of POST /api/jobs {json.dumps(body)[:120]} has detail {detail!r}; "
                "it must be a list of {loc, msg, type}, as FastAPI's own",
            )
        malformed = env.client.post(
            "/api/jobs", content=b"{bad", headers={**AS_ADMIN, "Content-Type": "application/json"}
        )
        expect(
            malformed.status_code == 422,
            f"POST /api/jobs with malformed JSON answered {malformed.status_code}; it is a 422",
        )
        _unchanged(env, before, "invalid job definitions")


CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12))


@st.composite
def bad_crons(draw: st.DrawFn) -> tuple[str, str | None, str]:
    """(expression, timezone, the loc field expected): crontabs that cannot work."""
    kind = draw(st.sampled_from(["range", "fields", "never", "zone", "junk"]))
    fields = ["0", "3", "*", "*", "*"]
    if kind == "range":
        index = draw(st.integers(0, 3))
        _, lo, hi = CRON_FIELDS[index]
        fields[index] = str(draw(st.sampled_from([hi + 1, hi + 7, lo - 1 if lo else hi + 40])))
        return " ".join(fields), None, "expression"
    if kind == "fields":
        count = draw(st.sampled_from([1, 3, 4, 6, 7]))
        return " ".join((fields * 2)[:count]), None, "expression"
    if kind == "never":
        day, month = draw(st.sampled_from([(31, 2), (30, 2), (31, 4), (31, 6), (31, 11)]))
        return f"0 0 {day} {month} *", None, "expression"
    if kind == "zone":
        zone = draw(st.sampled_from(["Mars/Base", "Europe/Nowhere", "UTC+8", "../etc"]))
        return "0 3 * * *", zone, "timezone"
    return (
        draw(st.sampled_from(["every day", "* * * * funday", "*/0 * * * *", "a b c d e"])),
        None,
        "expression",
    )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#dynamic-schedules",
    hint="Wrap CronTrigger.from_crontab(...) in try/except Exception and check "
    "get_next_fire_time(None, now) is not None; an unknown zone is a 422 on ('trigger', "
    "'timezone').",
    spec=("cron-invalid-422",),
    timeout=40,
)
def test_a_cron_trigger_that_cannot_work_is_422(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        before = env.snapshot()

        @deterministic(max_examples=10)
        @given(bad=bad_crons())
        def check(bad: tuple[str, str | None, str]) -> None:
            expression, zone, field_name = bad
            trigger = {"type": "cron", "expression": expression, "timezone": zone}
            response = env.admin("POST", "/api/jobs", json={**job("c"), "trigger": trigger})
            expect(
                response.status_code == 422,
                f"POST /api/jobs with trigger {trigger} answered {response.status_code} "
                f"{response.text[:200]}; a cron trigger that cannot fire is a 422",
            )
            detail = response.json().get("detail")
            loc = detail[0].get("loc") if isinstance(detail, list) and detail else None
            expect(
                isinstance(loc, list) and loc[-1:] == [field_name],
                f"the 422 for trigger {trigger} has detail[0].loc {loc!r}; it must end with "
                f"{field_name!r} (the field to fix)",
            )
            expect(
                env.get("/api/jobs/c").status_code == 404,
                f"POST /api/jobs with trigger {trigger} was refused, yet job c exists now",
            )

        check()
        _unchanged(env, before, "POST /api/jobs with cron triggers that cannot work")


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#dynamic-schedules",
    hint="201 with Location: /api/jobs/{id}; IntervalTrigger(seconds=...) starts now + seconds; "
    "CronTrigger.from_crontab(expr, timezone=spec zone or the scheduler's).",
    spec=("create-201-location", "interval-from-now", "cron-in-zone", "create-paused"),
    timeout=60,
)
def test_a_created_job_answers_201_with_its_next_run(target: Target) -> None:
    module = _load(target)
    with app_env(module, timezone="Asia/Shanghai") as env:
        names = itertools.count()

        @deterministic(max_examples=10)
        @given(
            later=st.integers(0, 90 * 24 * 3600),
            seconds=st.integers(1, 3 * 24 * 3600),
            minute=st.integers(0, 59),
            hour=st.integers(0, 23),
            dow=st.sampled_from(["*", "mon", "1-5", "sun", "sat"]),
            zone=st.one_of(st.none(), zones()),
        )
        def check(
            later: int, seconds: int, minute: int, hour: int, dow: str, zone: ZoneInfo | None
        ) -> None:
            env.sim.clock.advance(later)
            now = env.sim.clock.now()
            interval_id = f"i{next(names)}"
            response = env.admin("POST", "/api/jobs", json=job(interval_id, seconds=seconds))
            expect(
                response.status_code == 201,
                f"POST /api/jobs (interval {seconds} s) answered {response.status_code} "
                f"{response.text[:200]}; a new job is 201 Created",
            )
            location = response.headers.get("Location")
            expect_equal(location, f"/api/jobs/{interval_id}", "the 201's Location header")
            expect_equal(
                at(response.json().get("next_run_time")),
                now + timedelta(seconds=seconds),
                f"next_run_time of a job every {seconds} s created at {now.isoformat()}",
                "An interval job first runs one interval after it was created.",
            )
            expression = f"{minute} {hour} * * {dow}"
            cron_id = f"c{next(names)}"
            trigger = {"type": "cron", "expression": expression, "timezone": zone and str(zone)}
            view = env.admin("POST", "/api/jobs", json={**job(cron_id), "trigger": trigger})
            expect(view.status_code == 201, f"POST /api/jobs cron {trigger}: {view.status_code}")
            expected = CronTrigger.from_crontab(
                expression, timezone=zone or ZoneInfo("Asia/Shanghai")
            ).get_next_fire_time(None, now)
            expect_equal(
                at(view.json().get("next_run_time")),
                expected.astimezone(UTC),
                f"next_run_time of cron {expression!r} in "
                f"{zone or 'the scheduler zone Asia/Shanghai'}"
                f" created at {now.isoformat()}",
                "The cron expression is read in the trigger's timezone, or the scheduler's "
                "when it is null, never the machine's or UTC.",
            )
            paused_id = f"p{next(names)}"
            paused = env.admin("POST", "/api/jobs", json=job(paused_id, paused=True)).json()
            expect(
                paused.get("state") == "paused" and paused.get("next_run_time") is None,
                f"a job created with paused=true shows state {paused.get('state')!r} and "
                f"next_run_time {paused.get('next_run_time')!r}; it must be paused, no next run",
            )

        check()


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#admin-api",
    hint="Validate first, then: an id that exists, or max_jobs jobs, is ConflictError (409).",
    spec=("duplicate-409", "max-jobs-409"),
    timeout=30,
)
def test_a_duplicate_id_or_too_many_jobs_is_409_and_the_original_stays(target: Target) -> None:
    module = _load(target)
    with app_env(module, max_jobs=2) as env:
        env.add("j", seconds=60)
        before = env.snapshot()
        response = env.admin("POST", "/api/jobs", json=job("j", task="t.fail", seconds=5))
        expect(
            response.status_code == 409,
            f"POST /api/jobs with the id of an existing job answered {response.status_code}; "
            "a duplicate id is 409 Conflict (never a silent replace)",
        )
        _unchanged(env, before, "a POST with a duplicate id")
        env.add("k")
        before = env.snapshot()
        third = env.admin("POST", "/api/jobs", json=job("m"))
        expect(
            third.status_code == 409,
            f"with max_jobs=2 and two jobs, POST /api/jobs answered {third.status_code}; 409",
        )
        _unchanged(env, before, "a POST beyond max_jobs")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#admin-api",
    hint="list_jobs: sorted(self._jobs), filter by view.state, then [offset:offset + limit].",
    spec=("jobs-listed",),
    timeout=30,
)
def test_jobs_are_listed_by_id_filtered_and_paged(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        for job_id in ("b", "d", "a", "c"):
            env.add(job_id, paused=job_id in ("c", "d"))

        def ids(**params: Any) -> list[str]:
            return [v["id"] for v in env.get("/api/jobs", params=params).json()]

        expect_equal(ids(), ["a", "b", "c", "d"], "GET /api/jobs ids", "Jobs are sorted by id.")
        expect_equal(ids(state="paused"), ["c", "d"], "GET /api/jobs?state=paused ids")
        expect_equal(ids(state="scheduled"), ["a", "b"], "GET /api/jobs?state=scheduled ids")
        expect_equal(ids(limit=2, offset=1), ["b", "c"], "GET /api/jobs?limit=2&offset=1 ids")


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#admin-api",
    hint="Every route under /jobs/{id} looks the job up first (NotFoundError: 404), the runs "
    "list of a job too; /runs/{run_id} likewise.",
    spec=("unknown-id-404", "get-job-404", "get-run-404"),
    timeout=30,
)
def test_every_route_under_an_unknown_id_is_404_and_changes_nothing(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j")
        env.admin("POST", "/api/jobs/j/run")
        before = env.snapshot()
        for method, path, body in [
            ("GET", "/api/jobs/nope", None),
            ("PATCH", "/api/jobs/nope", {"name": "x"}),
            ("DELETE", "/api/jobs/nope", None),
            ("POST", "/api/jobs/nope/pause", None),
            ("POST", "/api/jobs/nope/resume", None),
            ("POST", "/api/jobs/nope/run", None),
            ("GET", "/api/jobs/nope/runs", None),
            ("GET", "/api/runs/424242", None),
        ]:
            response = env.admin(method, path, json=body)
            expect(
                response.status_code == 404,
                f"{method} {path} answered {response.status_code} {response.text[:200]}; an "
                "unknown id is 404 (an empty list of runs would hide a typo)",
            )
        _unchanged(env, before, "requests for unknown ids")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#run-history",
    hint="Declare the query parameters with bounds: Query(ge=1, le=500) for limit, ge=0 for "
    "offset, Literal[...] for status and trigger; a naive since is a 422.",
    spec=("query-validated",),
    timeout=30,
)
def test_query_values_out_of_range_are_422(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j")
        for path in [
            "/api/runs?limit=501",
            "/api/runs?limit=0",
            "/api/runs?offset=-1",
            "/api/runs?status=done",
            "/api/runs?trigger=cron",
            "/api/runs?since=yesterday",
            "/api/runs?since=2026-01-01T00:00:00",
            "/api/runs/0",
            "/api/runs/abc",
            "/api/jobs?limit=501",
            "/api/jobs?state=broken",
            "/api/jobs/j/runs?limit=501",
            "/api/alerts?state=maybe",
        ]:
            response = env.get(path)
            expect(
                response.status_code == 422,
                f"GET {path} answered {response.status_code}; a query value out of range or "
                "of the wrong kind is 422 (limit 1..500: a client cannot ask for a million rows)",
            )


# -- PATCH, pause, resume -----------------------------------------------------------------------

VALID_PATCHES: list[dict[str, Any]] = [
    {"name": "renamed"},
    {"trigger": {"type": "interval", "seconds": 5}},
    {"trigger": {"type": "cron", "expression": "*/5 * * * *"}},
    {"max_instances": 3},
    {"misfire_grace_time": None},
    {"retry": {"max_attempts": 3}},
    {"alerts": {"failing_after": 2}},
    {"task": "t.echo", "args": [7]},
]
INVALID_PATCHES: list[dict[str, Any]] = [
    {"trigger": {"type": "interval", "seconds": 0}},
    {"trigger": {"type": "cron", "expression": "61 * * * *"}},
    {"trigger": {"type": "cron", "expression": "0 0 31 2 *"}},
    {"trigger": None},
    {"task": "os:system"},
    {"kwargs": {"nope": 1}},
    {"args": [1, 2, 3]},
    {"id": "other"},
    {"paused": True},
    {"max_instances": 0},
    {"retry": {"backoff_seconds": 100, "max_backoff_seconds": 1}},
    {"alerts": {"failing_after": -1}},
]


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#dynamic-schedules",
    hint="Merge the patch into the current definition, validate the merged whole "
    "(JobCreate.model_validate, then the task, arguments and trigger), and only then call "
    "reschedule_job / modify_job.",
    spec=("patch-atomic",),
    timeout=60,
)
def test_a_patch_with_one_invalid_field_changes_nothing(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j")
        env.admin("POST", "/api/jobs/j/run")
        before = env.snapshot()
        view = env.job("j")

        @deterministic(max_examples=15)
        @given(valid=st.sampled_from(VALID_PATCHES), invalid=st.sampled_from(INVALID_PATCHES))
        @example(valid=VALID_PATCHES[1], invalid={"task": "os:system"})
        @example(valid=VALID_PATCHES[2], invalid={"kwargs": {"nope": 1}})
        @example(valid=VALID_PATCHES[0], invalid={"trigger": {"type": "interval", "seconds": 0}})
        @example(valid=VALID_PATCHES[3], invalid={"args": [1, 2, 3]})
        @example(valid=VALID_PATCHES[5], invalid=INVALID_PATCHES[2])
        def check(valid: dict[str, Any], invalid: dict[str, Any]) -> None:
            assume(not set(valid) & set(invalid))
            patch = {**valid, **invalid}
            response = env.admin("PATCH", "/api/jobs/j", json=patch)
            expect(
                response.status_code == 422,
                f"PATCH /api/jobs/j {json.dumps(patch)} answered {response.status_code} "
                f"{response.text[:200]}; one invalid field makes the whole patch a 422",
            )
            after = env.job("j")
            changed = sorted(k for k in set(view) | set(after) if view.get(k) != after.get(k))
            expect(
                not changed,
                f"PATCH /api/jobs/j {json.dumps(patch)} was refused (422) but changed the "
                f"job's {', '.join(changed)}: before {[view.get(k) for k in changed]}, after "
                f"{[after.get(k) for k in changed]}. Validate the merged definition completely, "
                "then apply it; never apply the valid part first.",
            )

        check()
        _unchanged(env, before, "refused PATCH requests")


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#dynamic-schedules",
    hint="A new trigger goes through scheduler.reschedule_job(job_id, trigger=...): "
    "modify_job(trigger=...) keeps the old next_run_time.",
    spec=("patch-reschedules", "patch-keeps-next-run"),
    timeout=60,
)
def test_a_patched_trigger_recomputes_the_next_run_time(target: Target) -> None:
    module = _load(target)
    with app_env(module, alert_check_interval_seconds=0) as env:
        names = itertools.count()

        @deterministic(max_examples=8)
        @given(
            elapsed=st.integers(1, 3599),
            seconds=st.integers(1, 7200),
            minute=st.integers(0, 59),
            hour=st.sampled_from(["*", "3", "*/6", "22"]),
        )
        def check(elapsed: int, seconds: int, minute: int, hour: str) -> None:
            job_id = f"j{next(names)}"
            env.add(job_id, seconds=3600)
            env.sim.clock.advance(elapsed)
            now = env.sim.clock.now()
            patch = {"trigger": {"type": "interval", "seconds": seconds}}
            view = env.admin("PATCH", f"/api/jobs/{job_id}", json=patch)
            expect(
                view.status_code == 200,
                f"PATCH {patch} answered {view.status_code} {view.text[:200]}",
            )
            expect_equal(
                at(view.json().get("next_run_time")),
                now + timedelta(seconds=seconds),
                f"next_run_time after PATCH to every {seconds} s at {now.isoformat()} (the job "
                f"was every 3600 s, next due "
                f"{(now - timedelta(seconds=elapsed) + timedelta(hours=1)).isoformat()})",
                "The new schedule counts from now: the old next run time belongs to the old "
                "trigger (flask-apscheduler #132).",
            )
            expect_equal(
                env.job(job_id).get("trigger"),
                patch["trigger"],
                "the job's trigger after the PATCH",
            )
            expression = f"{minute} {hour} * * *"
            cron = {"trigger": {"type": "cron", "expression": expression, "timezone": None}}
            view = env.admin("PATCH", f"/api/jobs/{job_id}", json=cron)
            expected = CronTrigger.from_crontab(expression, timezone=UTC).get_next_fire_time(
                None, now
            )
            expect_equal(
                at(view.json().get("next_run_time")),
                expected,
                f"next_run_time after PATCH to cron {expression!r} (UTC) at {now.isoformat()}",
            )
            renamed = env.admin("PATCH", f"/api/jobs/{job_id}", json={"name": "renamed"}).json()
            expect_equal(
                (renamed.get("name"), renamed.get("next_run_time")),
                ("renamed", view.json().get("next_run_time")),
                "name and next_run_time after PATCH {'name': 'renamed'}",
                "A patch without a trigger changes what it names and keeps the schedule.",
            )
            env.admin("DELETE", f"/api/jobs/{job_id}")

        check()
        env.add("r", seconds=3600)
        env.admin("PATCH", "/api/jobs/r", json={"trigger": {"type": "interval", "seconds": 30}})
        begin = env.sim.clock.now()
        env.sim.run_for(65)
        times = [at(r["scheduled_at"]) for r in reversed(env.runs(job_id="r"))]
        expect_equal(
            times,
            [begin + timedelta(seconds=30), begin + timedelta(seconds=60)],
            "scheduled_at of job r's runs in the 65 s after its PATCH to every 30 s",
            "The scheduler must run the new schedule, not only show it.",
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#dynamic-schedules",
    hint="For a paused job (next_run_time None) give the trigger to modify_job: "
    "reschedule_job would resume it.",
    spec=("patch-paused-stays",),
    timeout=30,
)
def test_a_trigger_patch_keeps_a_paused_job_paused(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j")
        env.admin("POST", "/api/jobs/j/pause")
        view = env.admin(
            "PATCH", "/api/jobs/j", json={"trigger": {"type": "interval", "seconds": 5}}
        ).json()
        expect(
            view.get("state") == "paused" and view.get("next_run_time") is None,
            f"after a trigger PATCH of a paused job: state {view.get('state')!r}, next_run_time "
            f"{view.get('next_run_time')!r}; a paused job stays paused (the new trigger waits)",
        )
        env.sim.run_for(32)
        expect(env.runs(job_id="j") == [], "the paused job ran after its trigger was patched")
        resumed = env.admin("POST", "/api/jobs/j/resume").json()
        expect_equal(
            at(resumed.get("next_run_time")),
            START + timedelta(seconds=35),
            "next_run_time when the job, patched to every 5 s at 00:00:00 while paused, is "
            "resumed at 00:00:32",
            "Resumed, it runs the new trigger: its next fire time after now.",
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#dynamic-schedules",
    hint="pause_job only if next_run_time is set; resume_job only if it is None: "
    "scheduler.resume_job computes the next fire time from now.",
    spec=("pause-idempotent", "resume-next-fire"),
    timeout=30,
)
def test_pause_and_resume_are_idempotent(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j", seconds=60)
        for attempt in (1, 2):
            response = env.admin("POST", "/api/jobs/j/pause")
            view = response.json()
            expect(
                response.status_code == 200
                and view.get("next_run_time") is None
                and view.get("state") == "paused"
                and view.get("health") == "paused",
                f"pause #{attempt}: {response.status_code} {response.text[:200]}; a paused job "
                "is 200 with state and health 'paused' and no next_run_time, every time",
            )
        env.sim.run_for(90)
        expect(env.runs(job_id="j") == [], "a paused job ran")
        first = env.admin("POST", "/api/jobs/j/resume").json()
        expect_equal(
            at(first.get("next_run_time")),
            START + timedelta(seconds=120),
            "next_run_time on resume at 00:01:30 of a job every 60 s since 00:00:00",
            "Resume takes the trigger's next fire time after now; the 00:01:00 run that fell "
            "in the pause is not made up.",
        )
        second = env.admin("POST", "/api/jobs/j/resume").json()
        expect_equal(
            second.get("next_run_time"),
            first.get("next_run_time"),
            "next_run_time after a second resume",
            "Resuming a running job changes nothing.",
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#dynamic-schedules",
    hint="scheduler.pause() only when it is running, resume() only when it is paused.",
    spec=("scheduler-pause-resume",),
    timeout=30,
)
def test_the_scheduler_pauses_and_resumes_idempotently(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j", seconds=10)
        for attempt in (1, 2):
            state = env.admin("POST", "/api/scheduler/pause").json().get("state")
            expect_equal(state, "paused", f"state after scheduler pause #{attempt}")
        env.sim.run_for(60)
        ran = [r for r in env.runs(job_id="j") if r["status"] == "success"]
        expect(ran == [], f"{len(ran)} run(s) while the scheduler was paused")
        for attempt in (1, 2):
            state = env.admin("POST", "/api/scheduler/resume").json().get("state")
            expect_equal(state, "running", f"state after scheduler resume #{attempt}")
        env.sim.run_for(30)
        ran = [r for r in env.runs(job_id="j") if r["status"] == "success"]
        expect(len(ran) >= 2, f"{len(ran)} run(s) in the 30 s after resuming a job every 10 s")


# -- run now, delete ----------------------------------------------------------------------------


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#admin-api",
    hint="Record a run with trigger 'manual' and submit a copy of the job to its executor; "
    "never modify_job(next_run_time=now), which moves the schedule.",
    spec=("run-now-202", "run-now-manual", "run-now-keeps-next-run"),
    timeout=30,
)
def test_run_now_is_202_manual_and_keeps_the_next_run_time(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j", seconds=600)
        env.add("p", seconds=600, paused=True)
        env.sim.run_for(17)
        for job_id in ("j", "p"):
            before = env.job(job_id).get("next_run_time")
            response = env.admin("POST", f"/api/jobs/{job_id}/run")
            expect(
                response.status_code == 202,
                f"POST /api/jobs/{job_id}/run answered {response.status_code} "
                f"{response.text[:200]}; run-now is 202 Accepted",
            )
            run_id = response.json().get("run_id")
            expect_equal(
                response.headers.get("Location"), f"/api/runs/{run_id}", "the 202's Location header"
            )
            run = env.get(f"/api/runs/{run_id}").json()
            expect_equal(
                {k: run.get(k) for k in ("job_id", "trigger", "attempt", "status", "scheduled_at")},
                {
                    "job_id": job_id,
                    "trigger": "manual",
                    "attempt": 1,
                    "status": "success",
                    "scheduled_at": "2026-01-05T00:00:17Z",
                },
                f"the run recorded by run-now of {'paused ' if job_id == 'p' else ''}job {job_id}",
                "A manual run is recorded as such (trigger 'manual', attempt 1, scheduled_at "
                "the request's time) and runs on the executor (the sync executor: done on return).",
            )
            expect_equal(
                env.job(job_id).get("next_run_time"),
                before,
                f"next_run_time of job {job_id} after run-now",
                "Run-now leaves the schedule alone (a paused job stays paused).",
            )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#admin-api",
    hint="Count the runs in progress (your own counter and the executor's _instances[job_id]) "
    "and raise ConflictError at max_instances before recording anything.",
    spec=("run-now-409",),
    timeout=30,
)
def test_run_now_at_max_instances_is_409_and_records_nothing(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("j", seconds=600)
        env.add("two", seconds=600, max_instances=2)
        env.sim.hold("j", timedelta(minutes=5))
        env.sim.hold("two", timedelta(minutes=5))
        before = env.snapshot()
        response = env.admin("POST", "/api/jobs/j/run")
        expect(
            response.status_code == 409,
            f"POST /api/jobs/j/run while a run of j (max_instances 1) is going answered "
            f"{response.status_code}; at max_instances run-now is 409",
        )
        _unchanged(env, before, "a run-now refused at max_instances")
        second = env.admin("POST", "/api/jobs/two/run")
        expect(
            second.status_code == 202,
            f"POST /api/jobs/two/run with one run going and max_instances 2 answered "
            f"{second.status_code}; the limit is max_instances, not 1",
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#run-history",
    hint="DELETE answers 204 with no body; remove the scheduler job but never the runs: the "
    "history has no foreign key to the job.",
    spec=("delete-204", "delete-keeps-history", "job-stats"),
    timeout=30,
)
def test_delete_is_204_and_the_history_stays(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        script = env.scripted(["ok", "fail", "fail"])
        env.add("j", task=script, seconds=10)
        env.sim.run_for(35)
        view = env.job("j")
        expect_equal(
            (view.get("consecutive_failures"), (view.get("last_run") or {}).get("status")),
            (2, "failure"),
            "consecutive_failures and last_run.status after success, failure, failure",
        )
        response = env.admin("DELETE", "/api/jobs/j")
        expect(
            response.status_code == 204 and response.content == b"",
            f"DELETE /api/jobs/j answered {response.status_code} {response.content[:100]!r}; "
            "it is 204 No Content",
        )
        expect(env.get("/api/jobs/j").status_code == 404, "GET of a deleted job must be 404")
        runs = env.runs(job_id="j")
        expect(
            len(runs) == 3, f"GET /api/runs?job_id=j after the delete lists {len(runs)} runs, not 3"
        )
        env.sim.run_for(60)
        expect(len(env.runs(job_id="j")) == 3, "a deleted job kept running")
        again = env.add("j", task="t.ok", seconds=10)
        expect_equal(
            (
                again.get("consecutive_failures"),
                (again.get("last_run") or {}).get("status"),
                again.get("last_success_at"),
                again.get("last_failure_at"),
            ),
            (2, "failure", "2026-01-05T00:00:10Z", "2026-01-05T00:00:30Z"),
            "consecutive_failures, last_run.status, last_success_at, last_failure_at of a job "
            "created again under a deleted job's id",
            "The statistics come from the history (Store.job_stats), which outlives the job.",
        )


# -- history ------------------------------------------------------------------------------------

RUN_FIELDS = {
    "run_id", "job_id", "trigger", "attempt", "scheduled_at", "started_at", "finished_at",
    "duration_seconds", "status", "error_type", "error_message", "traceback",
}  # fmt: skip


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#run-history",
    hint="Insert a 'running' row when the run starts, update it when it ends: status, "
    "finished_at, duration, and for a failure type(error).__name__, str(error), the traceback.",
    spec=("run-recorded", "run-fields"),
    timeout=30,
)
def test_each_run_is_recorded_with_its_fields(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:

        def noisy() -> None:
            raise KeyError("k" * 5000)

        env.monitor.tasks.register("t.noisy", noisy)
        env.add("ok", seconds=10)
        env.add("bad", task="t.fail", seconds=15)
        env.add("noisy", task="t.noisy", seconds=3600)
        noisy_run = env.admin("POST", "/api/jobs/noisy/run").json()["run_id"]
        env.sim.run_for(30)
        runs = [r for r in env.runs() if r["job_id"] != "noisy"]
        got = sorted((r["job_id"], r["scheduled_at"], r["status"]) for r in runs)
        expect_equal(
            got,
            [
                ("bad", "2026-01-05T00:00:15Z", "failure"),
                ("bad", "2026-01-05T00:00:30Z", "failure"),
                ("ok", "2026-01-05T00:00:10Z", "success"),
                ("ok", "2026-01-05T00:00:20Z", "success"),
                ("ok", "2026-01-05T00:00:30Z", "success"),
            ],
            "(job, scheduled_at, status) of every run in the first 30 s",
            "Every fire time gives one run record, scheduled_at being the fire time.",
        )
        for run in runs:
            expect_equal(set(run), RUN_FIELDS, "the fields of a run record")
            expect(
                (run["trigger"], run["attempt"]) == ("scheduled", 1)
                and run["started_at"] == run["scheduled_at"]
                and run["finished_at"] == run["started_at"]
                and run["duration_seconds"] == 0,
                f"run {run}: a scheduled run is trigger 'scheduled', attempt 1, started at its "
                "fire time here, finished_at - started_at = duration_seconds (virtual time "
                "stands still while a task runs)",
            )
        failure = env.runs(job_id="bad")[0]
        expect_equal(
            (failure["error_type"], failure["error_message"]),
            ("RuntimeError", "always fails"),
            "error_type and error_message of a run that raised RuntimeError('always fails')",
        )
        expect(
            "RuntimeError: always fails" in (failure["traceback"] or ""),
            f"the traceback of a failed run is {failure['traceback']!r}; store the formatted "
            "traceback (traceback.format_exc())",
        )
        success = env.runs(job_id="ok")[0]
        expect_equal(
            (success["error_type"], success["error_message"], success["traceback"]),
            (None, None, None),
            "error fields of a successful run",
        )
        big = env.get(f"/api/runs/{noisy_run}").json()
        message = big["error_message"] or ""
        expect(
            len(message) == module.MAX_ERROR_MESSAGE
            and message == str(KeyError("k" * 5000))[: len(message)],
            f"a 5,000-character error message was stored as {len(message)} characters; keep "
            f"its first MAX_ERROR_MESSAGE ({module.MAX_ERROR_MESSAGE})",
        )
        trace = big["traceback"] or ""
        expect(
            len(trace) <= module.MAX_TRACEBACK and trace.rstrip().endswith("k'"),
            f"the traceback was stored as {len(trace)} characters ending {trace[-40:]!r}; keep "
            f"its last MAX_TRACEBACK ({module.MAX_TRACEBACK}): the end says what failed",
        )


def _history(env: Env) -> None:
    """A history of 16 runs: scheduled, failures, manual runs, of three jobs."""
    env.add("a", seconds=10)
    env.add("b", task="t.fail", seconds=15)
    env.add("m", seconds=3600)
    env.sim.run_for(31)
    for _ in range(3):
        env.admin("POST", "/api/jobs/m/run")
        env.admin("POST", "/api/jobs/a/run")
    env.sim.run_for(30)


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#run-history",
    hint="ORDER BY id DESC (the run id grows as runs are recorded), then OFFSET and LIMIT.",
    spec=("runs-newest-first", "runs-paging"),
    timeout=40,
)
def test_runs_are_newest_first_and_paged(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        _history(env)
        full = env.runs()
        ids = [r["run_id"] for r in full]
        expect(len(ids) == 16, f"the history should hold 16 runs, GET /api/runs lists {len(ids)}")
        expect(
            ids == sorted(ids, reverse=True),
            f"GET /api/runs lists run ids {ids}; newest first is descending run_id",
        )

        @deterministic(max_examples=12)
        @given(
            limit=st.integers(1, 20),
            offset=st.integers(0, 18),
            job_id=st.sampled_from([None, "a", "m"]),
        )
        def check(limit: int, offset: int, job_id: str | None) -> None:
            params: dict[str, Any] = {"limit": limit, "offset": offset}
            if job_id:
                params["job_id"] = job_id
            page = [r["run_id"] for r in env.get("/api/runs", params=params).json()]
            mine = [r["run_id"] for r in full if job_id is None or r["job_id"] == job_id]
            expect_equal(
                page,
                mine[offset : offset + limit],
                f"run ids of GET /api/runs?{'&'.join(f'{k}={v}' for k, v in params.items())}",
                "Paging skips `offset` runs of the newest-first list, then returns `limit`.",
            )

        check()


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#run-history",
    hint="One WHERE per filter given, combined; since keeps scheduled_at >= since (inclusive).",
    spec=("runs-filters",),
    timeout=40,
)
def test_runs_filter_by_job_status_trigger_and_since(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        _history(env)
        full = env.runs()
        instants = sorted({r["scheduled_at"] for r in full})
        for since in instants[1::4]:
            got = [r["run_id"] for r in env.get("/api/runs", params={"since": since}).json()]
            want = [r["run_id"] for r in full if r["scheduled_at"] >= since][:50]
            expect_equal(
                got,
                want,
                f"run ids of GET /api/runs?since={since} (runs are scheduled at exactly {since})",
                "since is inclusive: a run scheduled exactly at since is listed.",
            )

        @deterministic(max_examples=15)
        @given(
            job_id=st.sampled_from([None, "a", "b", "m", "gone"]),
            status=st.sampled_from([None, "success", "failure", "missed"]),
            trigger=st.sampled_from([None, "scheduled", "manual", "retry"]),
            since=st.one_of(st.none(), st.sampled_from(instants)),
            shift=st.sampled_from([-1, 0, 0, 1]),
            nested=st.booleans(),
        )
        def check(
            job_id: str | None,
            status: str | None,
            trigger: str | None,
            since: str | None,
            shift: int,
            nested: bool,
        ) -> None:
            params: dict[str, Any] = {"limit": 500}
            bound: datetime | None = None
            moment = at(since)
            if moment is not None:
                bound = moment + timedelta(seconds=shift)
                params["since"] = bound.isoformat()
            for name, value in (("status", status), ("trigger", trigger)):
                if value is not None:
                    params[name] = value
            want = [
                r["run_id"]
                for r in full
                if (job_id is None or r["job_id"] == job_id)
                and (status is None or r["status"] == status)
                and (trigger is None or r["trigger"] == trigger)
                and (bound is None or at(r["scheduled_at"]) >= bound)  # type: ignore[operator]
            ]
            if nested and job_id is not None and job_id != "gone":
                path = f"/api/jobs/{job_id}/runs"
            else:
                path = "/api/runs"
                if job_id is not None:
                    params["job_id"] = job_id
            response = env.get(path, params=params)
            expect(response.status_code == 200, f"GET {path} {params}: {response.status_code}")
            expect_equal(
                [r["run_id"] for r in response.json()],
                want,
                f"run ids of GET {path} with {params}",
                "Every filter given applies (AND); since is inclusive: scheduled_at >= since.",
            )

        check()


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#run-history",
    hint="Delete runs scheduled before now - max_age; then per job id everything older than "
    "its N-th newest run (by run id).",
    spec=("retention-age", "retention-per-job"),
    timeout=60,
)
def test_retention_prunes_by_age_and_per_job(target: Target) -> None:
    module = _load(target)

    with app_env(module, history_max_age_seconds=3600) as env:
        names = itertools.count()

        @deterministic(max_examples=6)
        @given(keep=st.integers(1, 4), count=st.integers(0, 6), other=st.integers(0, 3))
        def check(keep: int, count: int, other: int) -> None:
            env.monitor.settings.history_max_runs_per_job = keep
            j, k = f"j{next(names)}", f"k{next(names)}"
            env.add(j, seconds=600, paused=True)
            env.add(k, seconds=600, paused=True)
            ids = [env.admin("POST", f"/api/jobs/{j}/run").json()["run_id"] for _ in range(count)]
            others = [
                env.admin("POST", f"/api/jobs/{k}/run").json()["run_id"] for _ in range(other)
            ]
            deleted = env.monitor.prune_history()
            expected = max(0, count - keep) + max(0, other - keep)
            expect_equal(
                deleted,
                expected,
                f"prune_history() with {count} runs of {j}, {other} of {k}, "
                f"history_max_runs_per_job={keep}",
            )
            kept = [r["run_id"] for r in env.runs()]
            expect_equal(
                kept,
                sorted(ids[-keep:] + others[-keep:], reverse=True),
                f"run ids kept (newest first) with history_max_runs_per_job={keep}",
                "Each job keeps its newest runs.",
            )
            env.sim.clock.advance(timedelta(hours=1, seconds=1))
            newer = env.admin("POST", f"/api/jobs/{j}/run").json()["run_id"]
            expect_equal(
                env.monitor.prune_history(),
                len(kept),
                "prune_history() one hour and a second later (history_max_age_seconds=3600)",
            )
            expect_equal(
                [r["run_id"] for r in env.runs()], [newer], "run ids left after that prune"
            )
            env.sim.clock.advance(timedelta(hours=1, seconds=1))
            env.monitor.prune_history()  # the next example starts from an empty history

        check()


# -- retries ------------------------------------------------------------------------------------


def _delay(policy: dict[str, float], attempt: int, r: float) -> float:
    base = policy["backoff_seconds"] * policy["factor"] ** (attempt - 1)
    return min(policy["max_backoff_seconds"], base + policy["jitter_seconds"] * r)


@st.composite
def policies(draw: st.DrawFn) -> dict[str, float]:
    backoff = draw(st.sampled_from([0.5, 1.0, 2.0, 5.0, 10.0, 30.0]))
    return {
        "backoff_seconds": backoff,
        "factor": draw(st.sampled_from([1.0, 1.5, 2.0, 3.0, 10.0])),
        "max_backoff_seconds": backoff * draw(st.sampled_from([1, 2, 5, 40, 1000])),
        "jitter_seconds": draw(st.sampled_from([0.0, 0.0, 1.0, 4.0, 30.0])),
    }


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#retries",
    hint="min(max_backoff_seconds, backoff_seconds * factor ** (attempt - 1) + "
    "jitter_seconds * r); ValueError below attempt 1; cap the exponent against overflow.",
    spec=("backoff-formula", "backoff-attempt-checked"),
    timeout=30,
)
def test_backoff_delay_follows_the_formula(target: Target) -> None:
    module = _load(target)

    @deterministic(max_examples=60)
    @given(policy=policies(), attempt=st.integers(1, 25), r=st.floats(0, 0.999))
    def check(policy: dict[str, float], attempt: int, r: float) -> None:
        model = module.RetryPolicy(max_attempts=5, **policy)
        got = module.backoff_delay(model, attempt, r)
        want = _delay(policy, attempt, r)
        expect(
            math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9),
            f"backoff_delay({policy}, attempt={attempt}, r={r}) = {got!r}; expected {want!r}: "
            "min(cap, backoff * factor ** (attempt - 1) + jitter * r) (jitter before the cap)",
        )
        huge = module.backoff_delay(model, 10**6, r)
        expect(
            0 < huge <= policy["max_backoff_seconds"],
            f"backoff_delay(..., attempt=10**6) = {huge!r}; it must stay within the cap",
        )
        for bad in (0, -1):
            try:
                module.backoff_delay(model, bad, r)
            except ValueError:
                continue
            fail(
                f"backoff_delay(policy, attempt={bad}) did not raise ValueError: "
                "attempts start at 1"
            )

    check()


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#retries",
    hint="After attempt n failed: if n < max_attempts, add a one-off DateTrigger job due "
    "backoff_delay(policy, n, self.rng()) later that runs attempt n + 1 as trigger 'retry'.",
    spec=("retry-attempts", "retry-delays", "metric-retries"),
    timeout=80,
)
def test_a_failing_job_is_retried_max_attempts_with_backoff(target: Target) -> None:
    module = _load(target)
    with app_env(module, alert_check_interval_seconds=0) as env:
        names = itertools.count()

        @deterministic(max_examples=8)
        @given(
            attempts=st.integers(1, 5),
            policy=policies(),
            r=st.sampled_from([0.0, 0.25, 0.5, 0.999]),
            succeed_at=st.one_of(st.none(), st.integers(2, 5)),
        )
        def check(
            attempts: int, policy: dict[str, float], r: float, succeed_at: int | None
        ) -> None:
            policy = {**policy, "max_backoff_seconds": min(policy["max_backoff_seconds"], 300)}
            policy["backoff_seconds"] = min(
                policy["backoff_seconds"], policy["max_backoff_seconds"]
            )
            env.monitor.rng = lambda: r
            job_id = f"f{next(names)}"
            outcomes = ["fail"] * 5 if succeed_at is None else ["fail"] * (succeed_at - 1) + ["ok"]
            task = env.scripted(outcomes)
            env.add(job_id, task=task, seconds=3600, retry={"max_attempts": attempts, **policy})
            env.sim.run_for(3600 + 5 * 300 + 10)
            runs = sorted(env.runs(job_id=job_id), key=lambda run: run["run_id"])
            last = attempts if succeed_at is None else min(attempts, succeed_at)
            want = [("scheduled", 1)] + [("retry", n) for n in range(2, last + 1)]
            story = "always failing" if succeed_at is None else f"succeeds on attempt {succeed_at}"
            expect_equal(
                [(run["trigger"], run["attempt"]) for run in runs],
                want,
                f"(trigger, attempt) of job {job_id}'s runs in its first hour (max_attempts "
                f"{attempts}, {story})",
                "Each retry is a run of its own, attempt n + 1 after attempt n failed, until "
                "max_attempts or the first success.",
            )
            for n, (before, after) in enumerate(itertools.pairwise(runs), start=1):
                waited = (at(after["started_at"]) - at(before["finished_at"])).total_seconds()  # type: ignore[operator]
                expect(
                    math.isclose(waited, _delay(policy, n, r), abs_tol=1e-3),
                    f"attempt {n + 1} of job {job_id} started {waited} s after attempt {n} "
                    f"failed; with {policy} and rng() = {r} the delay is "
                    f"{_delay(policy, n, r)} s (backoff_delay(policy, {n}, rng()))",
                )
            retries = env.metrics().get(("scheduler_job_retries_total", (("job_id", job_id),)), 0)
            expect_equal(
                retries,
                float(len(runs) - 1),
                f"scheduler_job_retries_total{{job_id={job_id!r}}} after "
                f"{len(runs) - 1} retry run(s)",
            )
            env.admin("DELETE", f"/api/jobs/{job_id}")

        check()


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#retries",
    hint="pause_job and remove_job cancel the pending retry (remove its one-off scheduler job).",
    spec=("retry-cancelled-on-pause",),
    timeout=30,
)
def test_pausing_or_deleting_cancels_the_pending_retry(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        retry = {"max_attempts": 3, "backoff_seconds": 30}
        env.add("p", task="t.fail", seconds=60, retry=retry)
        env.add("d", task="t.fail", seconds=60, retry=retry)
        env.sim.run_for(61)
        expect_equal(
            at(env.job("p").get("retry_at")),
            START + timedelta(seconds=90),
            "retry_at of job p, whose 00:01:00 run failed (backoff 30 s)",
        )
        paused = env.admin("POST", "/api/jobs/p/pause").json()
        expect(paused.get("retry_at") is None, "a paused job still shows a pending retry_at")
        env.admin("DELETE", "/api/jobs/d")
        env.sim.run_for(600)
        for job_id in ("p", "d"):
            count = len(env.runs(job_id=job_id))
            expect(
                count == 1,
                f"job {job_id} has {count} runs after being "
                f"{'paused' if job_id == 'p' else 'deleted'}"
                " with a retry pending; the retry must be cancelled (1 run)",
            )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#retries",
    hint="Compare the retry's due time with the job's next fire time: due >= next run, drop it.",
    spec=("retry-before-next-run",),
    timeout=40,
)
def test_a_retry_never_piles_onto_the_next_scheduled_run(target: Target) -> None:
    module = _load(target)
    with app_env(module, alert_check_interval_seconds=0) as env:
        for job_id, seconds, backoff in (("c", 20, 8), ("e", 30, 5), ("g", 10, 10)):
            env.add(
                job_id,
                task="t.fail",
                seconds=seconds,
                retry={"max_attempts": 5, "backoff_seconds": backoff},
            )
        env.sim.run_for(100)
        for job_id, seconds, backoff in (("c", 20, 8), ("e", 30, 5), ("g", 10, 10)):
            runs = sorted(env.runs(job_id=job_id), key=lambda run: run["run_id"])
            fires = [r for r in runs if r["trigger"] == "scheduled"]
            expect(
                len(fires) == 100 // seconds,
                f"job {job_id} (every {seconds} s) has {len(fires)} scheduled runs in 100 s",
            )
            for run in runs:
                if run["trigger"] != "retry":
                    continue
                started = at(run["started_at"])
                offset = (started - START).total_seconds()  # type: ignore[operator]
                expect(
                    offset % seconds != 0,
                    f"a retry of job {job_id} (every {seconds} s, backoff {backoff} s) ran at "
                    f"+{offset:g} s, on a scheduled fire time: a retry due at or after the "
                    "next run is dropped, that run is the next attempt",
                )
            want = {
                "c": [("scheduled", 1), ("retry", 2), ("scheduled", 1)],
                "e": [("scheduled", 1), ("retry", 2), ("retry", 3), ("scheduled", 1)],
                "g": [("scheduled", 1), ("scheduled", 1)],
            }[job_id]
            expect_equal(
                [(r["trigger"], r["attempt"]) for r in runs[: len(want)]],
                want,
                f"(trigger, attempt) of job {job_id}'s first runs (every {seconds} s, "
                f"backoff {backoff} s, factor 2)",
            )


# -- alerts -------------------------------------------------------------------------------------


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#alerts",
    hint="Open 'failing' once, when consecutive failures reach the threshold and none is "
    "open; resolve it on the first success. Notify on opening and resolving only.",
    spec=("failing-opens-once", "failing-resolves-on-success"),
    timeout=80,
)
def test_a_failing_job_alerts_once_and_resolves_once(target: Target) -> None:
    module = _load(target)
    with app_env(module, alert_check_interval_seconds=15) as env:
        names = itertools.count()

        @deterministic(max_examples=8)
        @given(threshold=st.integers(1, 4), failures=st.integers(0, 6), successes=st.integers(1, 2))
        def check(threshold: int, failures: int, successes: int) -> None:
            job_id = f"a{next(names)}"
            task = env.scripted(["fail"] * failures + ["ok"] * successes)
            env.add(job_id, task=task, seconds=10, alerts={"failing_after": threshold})
            seen: list[list[tuple[str, str]]] = []
            for _ in range(failures + successes):
                env.sim.run_for(10)
                seen.append(env.events(job_id))
            expected: list[list[tuple[str, str]]] = []
            for k in range(1, failures + successes + 1):
                opened = failures >= threshold and k >= threshold
                events = [("firing", "failing")] if opened else []
                if opened and k > failures:
                    events.append(("resolved", "failing"))
                expected.append(events)
            expect_equal(
                seen,
                expected,
                f"notifications of job {job_id} after each of its runs (failing_after "
                f"{threshold}: {failures} failure(s), then {successes} success(es))",
                "One 'firing' when the threshold is reached, none for further failures, one "
                "'resolved' on the first success: an alert that pages on every failure is noise.",
            )
            alerts = env.get("/api/alerts", params={"job_id": job_id}).json()
            if failures >= threshold:
                expect(
                    len(alerts) == 1
                    and alerts[0].get("state") == "resolved"
                    and alerts[0].get("resolution") == "recovered"
                    and alerts[0].get("notifications_sent") == 2,
                    f"GET /api/alerts?job_id={job_id} after the recovery: {alerts}; one incident, "
                    "resolved, resolution 'recovered', 2 notifications",
                )
            else:
                expect(
                    alerts == [],
                    f"job {job_id} never reached its threshold yet has alerts {alerts}",
                )
            env.admin("DELETE", f"/api/jobs/{job_id}")

        check()


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#alerts",
    hint="In check_alerts: for each open alert, if now - last_notified_at >= "
    "alert_reminder_seconds, notify 'reminder' (and only if the setting is not None).",
    spec=("reminder-interval",),
    timeout=80,
)
def test_reminders_come_at_most_every_reminder_interval(target: Target) -> None:
    module = _load(target)

    @deterministic(max_examples=4)
    @given(reminder=st.sampled_from([15, 30, 45, 60, 90]), window=st.integers(0, 200))
    def check(reminder: int, window: int) -> None:
        with app_env(
            module, alert_reminder_seconds=reminder, alert_check_interval_seconds=15
        ) as env:
            env.add("a", task="t.fail", seconds=3600, alerts={"failing_after": 1})
            env.sim.run_until(START + timedelta(seconds=3600))
            env.sim.run_for(window)
            expect_equal(
                env.events("a"),
                [("firing", "failing")] + [("reminder", "failing")] * (window // reminder),
                f"notifications {window} s after a failing alert opened, alert_reminder_seconds "
                f"{reminder}, checks every 15 s",
                "A reminder once the last notification is reminder seconds old, never more often.",
            )

    check()
    with app_env(module, alert_check_interval_seconds=15) as env:
        env.add("a", task="t.fail", seconds=3600, alerts={"failing_after": 1})
        env.sim.run_until(START + timedelta(seconds=3600 + 600))
        expect_equal(
            env.events("a"),
            [("firing", "failing")],
            "notifications 10 min after a failing alert opened, without alert_reminder_seconds",
        )


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#alerts",
    hint="A fire time more than late_after_seconds in the past with no run started opens one "
    "'late' alert; the next run that starts resolves it.",
    spec=("late-alert",),
    timeout=80,
)
def test_a_fire_time_without_a_run_raises_one_late_alert(target: Target) -> None:
    module = _load(target)

    @deterministic(max_examples=5)
    @given(grace=st.integers(0, 40), gap=st.integers(61, 119))
    def check(grace: int, gap: int) -> None:
        with app_env(module, alert_check_interval_seconds=0) as env:
            env.add("l", seconds=60, misfire_grace_time=None, alerts={"late_after_seconds": grace})
            env.sim.clock.advance(gap)  # the scheduler is stuck: the 00:01:00 run never starts
            env.monitor.check_alerts()
            late = gap > 60 + grace
            expect_equal(
                env.events("l"),
                [("firing", "late")] if late else [],
                f"notifications at +{gap} s of a job every 60 s whose 00:01:00 run never "
                f"started (late_after_seconds {grace})",
                "Late means now > fire time + late_after_seconds without a run: "
                "a dead man's switch.",
            )
            env.monitor.check_alerts()
            if late:
                expect_equal(env.job("l").get("health"), "late", "health of a late job")
            env.sim.run_for(1)  # the scheduler wakes up: the overdue run starts
            env.monitor.check_alerts()
            expect_equal(
                env.events("l"),
                [("firing", "late"), ("resolved", "late")] if late else [],
                "notifications once the overdue run started",
                "A run that starts resolves the late alert, once.",
            )

    check()
    with app_env(module, alert_check_interval_seconds=15) as env:
        env.add("m", seconds=60, misfire_grace_time=1, alerts={"late_after_seconds": 10})
        env.sim.clock.advance(90)
        env.sim.process()  # 00:01:00 is missed (grace 1 s)
        env.sim.run_for(15)
        expect_equal(
            env.events("m"), [("firing", "late")], "notifications after a missed fire time"
        )
        env.sim.run_for(30)
        expect_equal(
            env.events("m"),
            [("firing", "late"), ("resolved", "late")],
            "notifications once the 00:02:00 run of the job with a missed fire time started",
        )


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#alerts",
    hint="Skip paused jobs in every alert check; pause_job resolves the open alerts "
    "(resolution 'paused').",
    spec=("paused-no-alert", "pause-resolves-alerts"),
    timeout=40,
)
def test_a_paused_job_never_alerts_and_pausing_resolves(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add(
            "p", task="t.fail", seconds=60, alerts={"failing_after": 1, "late_after_seconds": 0}
        )
        env.admin("POST", "/api/jobs/p/pause")
        for _ in range(3):
            env.admin("POST", "/api/jobs/p/run")
        env.sim.run_for(600)
        env.monitor.check_alerts()
        expect_equal(env.events("p"), [], "notifications of a paused job that failed 3 manual runs")
        expect_equal(
            env.job("p").get("consecutive_failures"), 3, "consecutive_failures of that job"
        )
        env.add("q", task="t.fail", seconds=10, alerts={"failing_after": 1})
        env.sim.run_for(10)
        env.admin("POST", "/api/jobs/q/pause")
        expect_equal(
            env.events("q"),
            [("firing", "failing"), ("resolved", "failing")],
            "notifications of a failing job that was then paused",
            "Pausing resolves the open incident (one 'resolved'): a paused job never alerts.",
        )
        [alert] = env.get("/api/alerts", params={"job_id": "q"}).json()
        expect_equal(alert.get("resolution"), "paused", "the resolution of the incident")
        env.sim.run_for(120)
        env.monitor.check_alerts()
        expect_equal(len(env.events("q")), 2, "notifications of job q after two paused minutes")


# -- metrics ------------------------------------------------------------------------------------


def _series(name: str, job_id: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted({"job_id": job_id, **labels}.items())))


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#metrics",
    hint="In _finish: _runs_total.labels(job_id, status).inc() once and "
    "_duration.labels(job_id).observe(duration) once per finished run.",
    spec=("metric-runs-total", "metric-duration"),
    timeout=40,
)
def test_each_finished_run_counts_once_by_status(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        task = env.scripted(["fail", "ok", "fail", "fail", "ok"])
        env.add("m", task=task, seconds=10)
        counts = {"success": 0, "failure": 0}
        for outcome in ["failure", "success", "failure", "failure", "success"]:
            env.sim.run_for(10)
            counts[outcome] += 1
            values = env.metrics()
            for status, count in counts.items():
                got = values.get(_series("scheduler_job_runs_total", "m", status=status), 0)
                expect_equal(
                    got,
                    float(count),
                    f"scheduler_job_runs_total{{job_id='m', status={status!r}}} after "
                    f"{sum(counts.values())} run(s)",
                    "Each finished run adds exactly 1 to its status's counter.",
                )
            got = values.get(_series("scheduler_job_run_duration_seconds_count", "m"), 0)
            expect_equal(
                got,
                float(sum(counts.values())),
                "scheduler_job_run_duration_seconds_count{job_id='m'}",
                "Every finished run observes its duration once.",
            )
        env.admin("POST", "/api/jobs/m/run")
        got = env.metrics().get(_series("scheduler_job_runs_total", "m", status="success"), 0)
        expect_equal(got, 3.0, "scheduler_job_runs_total success after a manual run too")


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#metrics",
    hint="Compute the gauges when scraped (a Collector): next_run_time.timestamp() of the "
    "APScheduler job, finished_at of the last success/failure, 1/0 for paused.",
    spec=("metric-gauges",),
    timeout=40,
)
def test_the_gauges_match_the_api(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        task = env.scripted(["fail", "ok", "fail"])
        env.add("m", task=task, seconds=10, alerts={"failing_after": 1})

        def check(step: str) -> Metrics:
            values = env.metrics()
            view = env.job("m")
            want = {
                "scheduler_job_next_run_timestamp_seconds": view.get("next_run_time"),
                "scheduler_job_last_success_timestamp_seconds": view.get("last_success_at"),
                "scheduler_job_last_failure_timestamp_seconds": view.get("last_failure_at"),
            }
            for name, iso in want.items():
                got = values.get(_series(name, "m"))
                expected = None if iso is None else at(iso).timestamp()  # type: ignore[union-attr]
                expect_equal(
                    got,
                    expected,
                    f"{name}{{job_id='m'}} {step} (the API shows {iso})",
                    "Gauges read the monitor at scrape time; no sample while there is no value.",
                )
            expect_equal(
                values.get(_series("scheduler_job_consecutive_failures", "m")),
                float(view.get("consecutive_failures", -1)),
                f"scheduler_job_consecutive_failures{{job_id='m'}} {step}",
            )
            expect_equal(
                values.get(_series("scheduler_job_paused", "m")),
                1.0 if view.get("state") == "paused" else 0.0,
                f"scheduler_job_paused{{job_id='m'}} {step}",
            )
            expect_equal(
                values.get(_series("scheduler_job_running", "m")), 0.0, "scheduler_job_running"
            )
            return values

        check("at the start")
        env.sim.run_for(10)
        values = check("after a failure")
        expect_equal(
            (
                values.get(("scheduler_alerts_open", (("kind", "failing"),))),
                values.get(("scheduler_alerts_open", (("kind", "late"),))),
            ),
            (1.0, 0.0),
            "scheduler_alerts_open{kind='failing'} and {kind='late'} "
            "with one failing incident open",
        )
        env.sim.run_for(10)
        check("after a success")
        env.sim.run_for(10)
        check("after another failure")
        env.admin("POST", "/api/jobs/m/pause")
        check("once paused")
        expect_equal(values.get(("scheduler_running", ())), 1.0, "scheduler_running while it runs")
        env.admin("POST", "/api/scheduler/pause")
        expect_equal(
            env.metrics().get(("scheduler_running", ())),
            0.0,
            "scheduler_running while the scheduler is paused",
        )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#metrics",
    hint="remove_job: metric.remove(job_id, ...) for every labelled series of the job (the "
    "given _forget_label).",
    spec=("metric-labels-bounded",),
    timeout=30,
)
def test_a_deleted_job_leaves_no_series_behind(target: Target) -> None:
    module = _load(target)
    with app_env(module) as env:
        env.add("r", task="t.fail", seconds=10, retry={"max_attempts": 2, "backoff_seconds": 1})
        env.add("s", seconds=10)
        env.sim.run_for(12)
        values = env.metrics()
        expect(
            any(("job_id", "r") in key[1] for key in values),
            "no series with job_id='r' while job r exists and has run",
        )
        env.admin("DELETE", "/api/jobs/r")
        left = sorted({key[0] for key in env.metrics() if ("job_id", "r") in key[1]})
        expect(
            left == [],
            f"after DELETE /api/jobs/r the metrics still have series with job_id='r': {left}; "
            "remove a deleted job's labels, or jobs created and deleted at runtime grow the "
            "registry without bound",
        )
        expect(
            any(("job_id", "s") in key[1] for key in env.metrics()),
            "deleting job r removed job s's series too",
        )


# -- the monitor without HTTP -------------------------------------------------------------------


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#production-monitor",
    hint="Monitor methods raise NotFoundError, ConflictError and InvalidJobError (the HTTP "
    "layer only maps them) and take their times from the injected clock.",
    spec=("get-job-404", "get-run-404", "duplicate-409", "registry-only", "run-now-manual"),
    timeout=30,
)
def test_the_monitor_works_without_http_with_an_injected_clock(target: Target) -> None:
    module = _load(target)
    fixed = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    notes: list[Any] = []
    settings = module.Settings(
        database_url="sqlite://", executor="sync", alert_check_interval_seconds=0
    )
    monitor = module.Monitor(
        settings, clock=lambda: fixed, notifier=notes.append, tasks=_registry(module)
    )
    with simulate(START):
        _without_http(module, monitor, fixed, notes)


def _without_http(module: ModuleType, monitor: Any, fixed: datetime, notes: list[Any]) -> None:
    monitor.start()
    try:
        spec = module.JobCreate.model_validate(job("x", task="t.fail", alerts={"failing_after": 1}))
        monitor.add_job(spec)
        run = monitor.get_run(monitor.run_now("x"))
        expect_equal(
            (run.trigger, run.status, run.started_at, run.finished_at),
            ("manual", "failure", fixed, fixed),
            "trigger, status, started_at, finished_at of Monitor.run_now's run with clock "
            f"fixed at {fixed.isoformat()}",
            "The monitor stamps runs with its injected clock.",
        )
        expect_equal(
            [n.event for n in notes],
            ["firing"],
            "notifications after one failure (failing_after 1)",
        )
        for call, error in (
            (lambda: monitor.get_job("y"), "NotFoundError"),
            (lambda: monitor.pause_job("y"), "NotFoundError"),
            (lambda: monitor.run_now("y"), "NotFoundError"),
            (lambda: monitor.get_run(999), "NotFoundError"),
            (lambda: monitor.add_job(spec), "ConflictError"),
            (
                lambda: monitor.add_job(spec.model_copy(update={"id": "z", "task": "os:system"})),
                "InvalidJobError",
            ),
        ):
            try:
                call()
            except getattr(module, error):
                continue
            except Exception as other:
                fail(f"a Monitor call raised {type(other).__name__}: {other}; expected {error}")
            fail(f"a Monitor call that must raise {error} returned normally")
        expect_equal([v.id for v in monitor.list_jobs()], ["x"], "the jobs after the refused calls")
    finally:
        monitor.shutdown()
