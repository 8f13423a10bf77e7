"""Hidden suite of `apscheduler_standalone` (exercises/level1/apscheduler/standalone_app.py).

The shutdown tests start the learner's script as a real process (`python -c BOOTSTRAP`
runs it as `__main__` from its folder, as `python standalone_app.py` would) and signal it
once the script's OWN logger has created its INFO "started" record: APScheduler logs
"Scheduler started" itself, so matching "started" in the output proves nothing. The
bootstrap only observes: it notes every log record created (logger, level, message) in
a side file, and can add one slow job when the scheduler starts. Other tests call
`main()` in the test's own main thread and send the signal from a helper thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from grader.feedback import expect, expect_equal, expect_fire_times, fail
from grader.sim_apscheduler import simulate
from grader.targets import Target
from grader.testing import ForkedPython, environment, machine_zone

NOTE = "07a_ap_scheduler_intro.md"
FILE = "apscheduler/standalone_app.py"
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
EXIT_BOUND = 4.0  # seconds from the signal to the exit that the tests wait
PROMPT_EXIT = 3.0  # ... and within which an idle process must have exited (a 10 s poll misses it)
READY_TIMEOUT = 5.0  # a forked process logs 'started' within milliseconds of its start

BOOTSTRAP = r"""
import json, logging, os, runpy, sys, time
_side = open(os.environ["CRONKATA_SIDE"], "a", buffering=1)
def _note(kind, **data):
    _side.write(json.dumps({"kind": kind, "t": time.monotonic(), **data}) + "\n")
_make = logging.getLogRecordFactory()
def _factory(*args, **kwargs):
    record = _make(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:
        message = str(record.msg)
    _note("record", name=record.name, level=record.levelno, message=message)
    return record
logging.setLogRecordFactory(_factory)
if os.environ.get("CRONKATA_SLOW_JOB"):
    from datetime import datetime, timezone
    from apscheduler.schedulers.background import BackgroundScheduler
    _start = BackgroundScheduler.start
    from grader.testing import run_until_waited_for
    def _slow_job():
        _note("job-start")
        run_until_waited_for()
        _note("job-end")
    def _start_with_a_slow_job(self, *args, **kwargs):
        _start(self, *args, **kwargs)
        self.add_job(_slow_job, "date", run_date=datetime.now(timezone.utc), id="grader_slow_job")
    BackgroundScheduler.start = _start_with_a_slow_job
sys.argv = [os.environ["CRONKATA_SCRIPT"]]
runpy.run_path(os.environ["CRONKATA_SCRIPT"], run_name="__main__")
"""


@contextmanager
def grading_conditions() -> Iterator[None]:
    """Every test (and the import of the file): the machine in Los Angeles, the scheduler's
    zone UTC."""
    with machine_zone("America/Los_Angeles"), environment({"SCHEDULER_TIMEZONE": "UTC"}):
        yield


def _own(event: dict[str, Any], word: str, logger_name: str = "__main__") -> bool:
    return (
        event.get("kind") == "record"
        and event.get("name") == logger_name
        and event.get("level") == logging.INFO
        and word in str(event.get("message", "")).lower()
    )


def _tail(stderr: str, stdout: str) -> str:
    return f"stderr:\n{stderr[-1200:] or '(nothing)'}\nstdout:\n{stdout[-400:] or '(nothing)'}"


# -- the real process -----------------------------------------------------------------------


@dataclass
class Run:
    """What a signalled run of the script did."""

    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    signalled_at: float | None = None
    seconds_to_exit: float | None = None

    def own(self, word: str) -> list[dict[str, Any]]:
        return [e for e in self.events if _own(e, word)]

    def tail(self) -> str:
        return _tail(self.stderr, self.stdout)


def _pump(stream: Any, sink: list[bytes]) -> None:
    for chunk in iter(lambda: stream.read1(1 << 16), b""):
        sink.append(chunk)


def _read_events(side: Path) -> list[dict[str, Any]]:
    events = []
    for line in side.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a kill
    return events


def run_script(target: Target, sig: signal.Signals, tmp_path: Path, slow_job: bool = False) -> Run:
    """Start the script, wait until it logged its own "started" (and the slow job runs),
    send ``sig``, wait up to EXIT_BOUND for the exit. Fails if it never gets ready."""
    script = target.path(FILE)
    side = tmp_path / f"events-{sig.name}.jsonl"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CRONKATA_SIDE": str(side),
        "CRONKATA_SCRIPT": script.name,
    }
    if slow_job:
        env["CRONKATA_SLOW_JOB"] = "1"
    process = ForkedPython(BOOTSTRAP, cwd=script.parent, env=env)
    out: list[bytes] = []
    err: list[bytes] = []
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, out), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, err), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    run = Run()

    def ready() -> bool:
        events = _read_events(side) if side.exists() else []
        started = any(_own(e, "started") for e in events)
        return started and (not slow_job or any(e["kind"] == "job-start" for e in events))

    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if ready() and process.poll() is None:
            run.signalled_at = time.monotonic()
            process.send_signal(sig)
            try:
                process.wait(timeout=EXIT_BOUND)
                run.seconds_to_exit = time.monotonic() - run.signalled_at
            except subprocess.TimeoutExpired:
                pass
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pump in pumps:
            pump.join(2)
    run.returncode = process.returncode if run.seconds_to_exit is not None else None
    run.stdout = b"".join(out).decode(errors="replace")
    run.stderr = b"".join(err).decode(errors="replace")
    run.events = _read_events(side) if side.exists() else []
    if run.signalled_at is None:
        what = "exited" if process.returncode is not None and not run.own("started") else "ran"
        fail(
            f"{script.name} {what} without logging, with its own logger at INFO level, a line "
            f"containing 'started' within {READY_TIMEOUT:g} s (APScheduler's own "
            "'Scheduler started' does not count: log yours after scheduler.start(), with "
            f"logging configured at INFO).\n{run.tail()}"
        )
    return run


def _check_graceful_exit(run: Run, sig: signal.Signals) -> None:
    expect(
        run.seconds_to_exit is not None,
        f"After {sig.name} the process was still running {EXIT_BOUND:g} s later: wait for the "
        "handler's request (requests.get(timeout=0.5) in a loop, or an Event), not in long "
        f"sleeps, and stop as soon as it arrives.\n{run.tail()}",
    )
    took = run.seconds_to_exit or 0.0
    expect(
        took < PROMPT_EXIT,
        f"After {sig.name} the process took {took:.1f} s to exit, with no job running: wait "
        "for the request itself (requests.get(timeout=0.5) in a loop), not in long sleeps.",
    )
    expect_equal(
        run.returncode,
        0,
        f"exit code after {sig.name}",
        "A negative code means the signal killed it (install a handler for it); "
        f"128 + n is a shell convention, not a graceful stop: return 0.\n{run.tail()}",
    )
    stopped = [e for e in run.own("stopped") if e["t"] >= (run.signalled_at or 0)]
    expect(
        stopped,
        "After the signal the script's logger logged no INFO line containing 'stopped'.\n"
        f"{run.tail()}",
    )


@pytest.mark.grade(
    points=3,
    note=f"{NOTE}#standalone-process",
    hint="signal.signal(signal.SIGTERM, handler): the handler puts the signal on a "
    "queue.SimpleQueue that main() waits on (get(timeout=0.5) in a loop).",
    timeout=30,
    spec=("sigterm-graceful", "stopped-logged", "waits-on-event"),
)
def test_sigterm_shuts_down_gracefully_with_exit_code_0(target: Target, tmp_path: Path) -> None:
    _check_graceful_exit(run_script(target, signal.SIGTERM, tmp_path), signal.SIGTERM)


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#standalone-process",
    hint="Ctrl+C sends SIGINT: handle it like SIGTERM.",
    timeout=30,
    spec=("sigint-graceful", "stopped-logged", "waits-on-event"),
)
def test_sigint_shuts_down_gracefully_with_exit_code_0(target: Target, tmp_path: Path) -> None:
    _check_graceful_exit(run_script(target, signal.SIGINT, tmp_path), signal.SIGINT)


@pytest.mark.grade(
    points=2,
    note=f"{NOTE}#standalone-process",
    hint="scheduler.shutdown(wait=True) returns once running jobs are done; then log 'stopped'.",
    timeout=30,
    spec=("shutdown-waits-for-jobs",),
)
def test_a_running_job_finishes_before_stopped(target: Target, tmp_path: Path) -> None:
    run = run_script(target, signal.SIGTERM, tmp_path, slow_job=True)
    ends = [e["t"] for e in run.events if e.get("kind") == "job-end"]
    stopped = [e["t"] for e in run.own("stopped")]
    expect(
        ends,
        "A job that was running when SIGTERM arrived never finished: shut down with "
        f"wait=True.\n{run.tail()}",
    )
    expect(
        stopped and stopped[-1] >= ends[0],
        "The 'stopped' line was logged while a job was still running: shutdown(wait=False) "
        "returns at once. Use scheduler.shutdown(wait=True), then log 'stopped'.",
    )
    expect_equal(run.returncode, 0, "exit code after SIGTERM with a job running")


# -- main() in this process -----------------------------------------------------------------


class InProcess:
    """Calls ``main()`` in this (main) thread; a helper thread signals it once it is ready."""

    def __init__(self, module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
        self.module = module
        self.logger_name = module.logger.name
        self.schedulers: list[Any] = []
        self.ready = threading.Event()
        self.at_started: dict[str, object] = {}
        self.in_handler = threading.Event()
        self.handler_raised: list[str] = []
        self.shutdowns: list[dict[str, object]] = []
        self.messages: list[tuple[str, int, str]] = []
        original = module.build_scheduler

        def spy(*args: Any, **kwargs: Any) -> Any:
            scheduler = original(*args, **kwargs)
            self.schedulers.append(scheduler)
            shutdown = scheduler.shutdown

            def watched_shutdown(*a: Any, **k: Any) -> Any:
                self.shutdowns.append(
                    {"in_handler": self.in_handler.is_set(), "main_thread": _in_main_thread()}
                )
                return shutdown(*a, **k)

            scheduler.shutdown = watched_shutdown
            return scheduler

        monkeypatch.setattr(module, "build_scheduler", spy)

    def _wrap_handler(self, sig: signal.Signals) -> bool:
        handler = signal.getsignal(sig)
        if not callable(handler) or handler is signal.default_int_handler:
            return False

        def watched(signum: int, frame: FrameType | None) -> Any:
            self.in_handler.set()
            try:
                return handler(signum, frame)
            except BaseException as error:
                self.handler_raised.append(type(error).__name__)
                raise
            finally:
                self.in_handler.clear()

        signal.signal(sig, watched)
        return True

    def _on_record(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # bad arguments: logging reports them itself
            self.messages.append((record.name, record.levelno, record.getMessage()))
        if self.ready.is_set() or record.name != self.logger_name:
            return
        if record.levelno != logging.INFO or "started" not in record.getMessage().lower():
            return
        scheduler = self.schedulers[0] if self.schedulers else None
        self.at_started = {
            "running": bool(getattr(scheduler, "running", False)),
            "jobs": sorted(job.id for job in scheduler.get_jobs()) if scheduler else [],
            "zone": str(getattr(scheduler, "timezone", None)),
        }
        if _in_main_thread():
            self.at_started["handlers"] = {
                sig.name: self._wrap_handler(sig) for sig in (signal.SIGTERM, signal.SIGINT)
            }
        self.ready.set()

    def call(self, sig: signal.Signals = signal.SIGTERM) -> object:
        make = logging.getLogRecordFactory()
        returned = threading.Event()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            self._on_record(record)
            return record

        def send() -> None:  # once ready (or after READY_TIMEOUT: main() then fails cleanly)
            self.ready.wait(READY_TIMEOUT)
            time.sleep(0.1)
            if not returned.is_set():
                os.kill(os.getpid(), sig)

        sender = threading.Thread(target=send, daemon=True)
        saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        root = logging.getLogger()
        saved_handlers, saved_level = root.handlers[:], root.level
        root.handlers[:] = []  # as in a fresh `python standalone_app.py`
        root.setLevel(logging.WARNING)
        logging.setLogRecordFactory(factory)
        sender.start()
        try:
            return self.module.main()
        finally:
            returned.set()
            self.ready.set()
            sender.join()
            logging.setLogRecordFactory(make)
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)
            for s, handler in saved.items():
                signal.signal(s, handler)
            for scheduler in self.schedulers:
                if scheduler.running:
                    scheduler.shutdown(wait=False)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _call_main(target: Target, monkeypatch: pytest.MonkeyPatch) -> tuple[InProcess, object]:
    run = InProcess(target.load(FILE), monkeypatch)
    try:
        result = run.call()
    except SystemExit as exit_:
        fail(
            f"main() raised SystemExit({exit_.code!r}) instead of returning 0: the handler "
            "must only hand the request to main() (sys.exit in a handler skips the shutdown)."
        )
    expect(
        run.ready.is_set() and run.at_started,
        "main() returned without logging, with the module's logger at INFO, a line containing "
        "'started'.",
    )
    return run, result


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#standalone-process",
    hint="After the shutdown: logger.info('scheduler stopped'); return 0",
    timeout=20,
    spec=("returns-0",),
)
def test_main_returns_0_after_sigterm(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    _, result = _call_main(target, monkeypatch)
    expect(
        result == 0 and isinstance(result, int) and not isinstance(result, bool),
        f"main() returned {result!r} after SIGTERM: return 0 (sys.exit(main()) turns it into "
        "the exit status).",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#standalone-process",
    hint="Order: build + register, install the handlers, scheduler.start(), then log 'started'.",
    timeout=20,
    spec=("builds-and-registers", "handlers-before-start", "started-logged-after-start"),
)
def test_started_is_logged_once_everything_is_ready(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    with environment({"SCHEDULER_TIMEZONE": "Europe/Berlin"}):
        run, _ = _call_main(target, monkeypatch)
    expect(
        run.schedulers, "main() should build its scheduler with build_scheduler(load_settings())."
    )
    expect_equal(
        run.at_started,
        {
            "running": True,
            "jobs": ["heartbeat"],
            "zone": "Europe/Berlin",
            "handlers": {"SIGTERM": True, "SIGINT": True},
        },
        "the state when main() logs 'started' (SCHEDULER_TIMEZONE=Europe/Berlin)",
        "'started' tells the operator (and the tests) that a signal is now handled gracefully: "
        "log it after register_jobs(), the handlers for SIGTERM and SIGINT and scheduler.start(), "
        "from the main thread.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#standalone-process",
    hint="def handler(signum, frame): requests.put(signum) - nothing else; shutdown() runs "
    "in main() once requests.get() returned.",
    timeout=20,
    spec=("handler-only-sets-event",),
)
def test_signal_handler_only_sets_the_event(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, _ = _call_main(target, monkeypatch)
    expect(
        not run.handler_raised,
        f"The signal handler raised {run.handler_raised}: it must only set the Event.",
    )
    expect(run.shutdowns, "main() never called scheduler.shutdown() after the signal.")
    expect(
        not any(s["in_handler"] for s in run.shutdowns),
        "scheduler.shutdown() was called inside the signal handler: a handler interrupts the "
        "main thread anywhere; let it set the Event and shut down from main() after wait().",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint="logging.basicConfig(level=logging.INFO, stream=sys.stderr): the root logger at INFO, "
    "so APScheduler's own INFO lines show too.",
    timeout=20,
    spec=("logging-info-to-stderr",),
)
def test_logs_at_info_level_to_stderr(
    target: Target, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = _call_main(target, monkeypatch)
    captured = capsys.readouterr()
    own = [m for m in run.messages if m[0] == run.logger_name and m[1] == logging.INFO]
    library = [m for m in run.messages if m[0].startswith("apscheduler") and m[1] == logging.INFO]
    missing = [m[2] for m in own if m[2] not in captured.err]
    tail = _tail(captured.err, captured.out)
    expect(not missing, f"These INFO lines of main() are not on stderr: {missing}\n{tail}")
    on_stdout = [m[2] for m in own if m[2] in captured.out]
    expect(not on_stdout, f"Log lines went to stdout, not stderr: {on_stdout}")
    expect(
        any(m[2] in captured.err for m in library),
        "APScheduler's own INFO lines (e.g. 'Added job', 'Scheduler started') are not on "
        "stderr: configure the root logger at INFO (basicConfig(level=logging.INFO)), not only "
        f"this module's logger.\n{tail}",
    )


# -- heartbeat and register_jobs ------------------------------------------------------------


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#hello-world",
    hint='def heartbeat() -> None: logger.info("heartbeat"): one INFO record, module logger.',
    spec=("heartbeat-logs-one-info-record",),
)
def test_heartbeat_logs_one_info_record_with_the_module_logger(
    target: Target, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    module = target.load(FILE)
    with caplog.at_level(logging.DEBUG):
        result = module.heartbeat()
    printed = capsys.readouterr().out
    shown = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records]
    expect(
        len(shown) == 1,
        f"heartbeat() should log exactly one record; it logged {shown}"
        + (f" and printed {printed.strip()!r} (use logger.info, not print)" if printed else ""),
    )
    record = caplog.records[0]
    expect_equal(
        (record.levelname, record.name, "heartbeat" in record.getMessage()),
        ("INFO", module.logger.name, True),
        "heartbeat()'s record (level, logger, contains 'heartbeat')",
    )
    expect(result is None, f"heartbeat() should return nothing; it returned {result!r}")


def _run_registered_twice(module: ModuleType, zone: ZoneInfo) -> list[datetime]:
    with simulate(T0) as sim:
        scheduler = BackgroundScheduler(timezone=zone)
        module.register_jobs(scheduler)
        module.register_jobs(scheduler)
        scheduler.start()
        sim.run_for(timedelta(seconds=30))
        scheduler.shutdown()
    return sim.fire_times("heartbeat")


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#interval-trigger",
    hint="register_jobs adds heartbeat every 10 s with id='heartbeat' and replace_existing=True.",
    spec=("heartbeat-every-10-seconds", "register-twice-keeps-one-job"),
)
def test_register_jobs_runs_heartbeat_every_10_seconds_once(target: Target) -> None:
    module = target.load(FILE)
    fire_times = _run_registered_twice(module, ZoneInfo("UTC"))
    expect_fire_times(
        fire_times,
        [T0 + timedelta(seconds=s) for s in (10, 20, 30)],
        what="job 'heartbeat' over 30 s after register_jobs() was called twice",
        tz=UTC,
        why="Twice as many runs means the job was added twice: "
        "use a fixed id and replace_existing.",
    )


@pytest.mark.grade(
    points=1,
    note=f"{NOTE}#timezone",
    hint="IntervalTrigger(seconds=..., timezone=scheduler.timezone), or the 'interval' alias.",
    spec=("trigger-in-scheduler-zone",),
)
def test_register_jobs_uses_the_scheduler_zone(target: Target) -> None:
    module = target.load(FILE)
    with simulate(T0):
        scheduler = BackgroundScheduler(timezone=ZoneInfo("Europe/Berlin"))
        scheduler.start(paused=True)
        module.register_jobs(scheduler)
        job = scheduler.get_job(module.HEARTBEAT_JOB_ID)
        zone = str(getattr(getattr(job, "trigger", None), "timezone", None))
        func = getattr(job, "func", None)
        scheduler.shutdown()
    expect(func is module.heartbeat, f"The job should call heartbeat itself; it calls {func!r}.")
    expect_equal(
        zone,
        "Europe/Berlin",
        "the heartbeat trigger's zone (scheduler in Europe/Berlin, machine in Los Angeles)",
        "A trigger object built without timezone= uses the machine's zone.",
    )
