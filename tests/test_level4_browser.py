"""The level-4 admin page in a real headless Chromium, driven by Selenium (issue 9).

The solution runs as its header says (uvicorn, one process, demo jobs on, the tokens from
MONITOR_* variables), with its history in a temporary SQLite file and on a free port.
Debian's Chromium and chromedriver (``apt-get install chromium chromium-driver``; .ci/run
installs them) open /admin, and the test does what a person would: log in with the admin
token, see the demo job ``heartbeat``, pause it and see its state change (the API agrees:
paused, no next run), resume it (scheduled again, with a next run), press "Run now" and see
the manual run in the page's recent runs (the API has it too). A screenshot of the page is
saved under the test's tmp_path and, when CRONKATA_ARTIFACTS_DIR is set, copied there;
its path is printed. Without Chromium, chromedriver or Selenium the test is skipped,
unless CRONKATA_REQUIRE_SERVICES=1 (CI): then it fails.

Every wait is an explicit one (WebDriverWait, or the server's own "startup complete" line),
never a sleep; the browser and the server are always stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from grader import paths
from grader.testing import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ADMIN = "admin-token-for-the-browser"
VIEWER = "viewer-token-for-the-browser"
STARTUP_TIMEOUT = 60.0  # seconds for uvicorn to say "Application startup complete"
WAIT = 30.0  # seconds for anything to show up in the page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _missing(reason: str) -> None:
    """Skip the test, or fail it when CRONKATA_REQUIRE_SERVICES=1 (CI), as the tests of
    tests/integration do for their services."""
    if os.environ.get("CRONKATA_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} and CRONKATA_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@dataclass
class Server:
    """The solution under uvicorn: its base URL and what it printed so far."""

    base: str
    output: list[str]

    def api(self, path: str, token: str = VIEWER) -> Any:
        """GET an API path as the viewer; the JSON body (asserting a 200)."""
        response = httpx.get(
            f"{self.base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """The documented uvicorn command on a free port, stopped (SIGTERM, then SIGKILL) after."""
    uvicorn = Path(sys.executable).with_name("uvicorn")
    command = [str(uvicorn)] if uvicorn.exists() else [sys.executable, "-m", "uvicorn"]
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    variables = {
        "MONITOR_ADMIN_TOKEN": ADMIN,
        "MONITOR_VIEWER_TOKEN": VIEWER,
        "MONITOR_DEMO_JOBS": "true",
        "MONITOR_DATABASE_URL": f"sqlite:///{tmp_path / 'monitor.sqlite'}",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [
            *command,
            "--factory",
            "level4_production_monitor:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=paths.SOLUTIONS_DIR,
        env={**clean, **variables},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    started = threading.Event()

    def drain() -> None:  # reads the server's output to the end, so its pipe never fills
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "Application startup complete" in line:
                started.set()
        started.set()  # it exited: stop waiting

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        started.wait(STARTUP_TIMEOUT)
        assert process.poll() is None and any(
            "Application startup complete" in line for line in output
        ), "uvicorn did not start:\n" + "".join(output)
        yield Server(f"http://127.0.0.1:{port}", output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through its chromedriver; quit after the test."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[dev]')")
    chromium = shutil.which("chromium") or str(CHROMIUM)
    chromedriver = shutil.which("chromedriver") or str(CHROMEDRIVER)
    for name, found in (("chromium", chromium), ("chromedriver", chromedriver)):
        if not Path(found).is_file():
            _missing(f"no {name} (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    except WebDriverException as error:
        _missing(f"Chromium does not start through {chromedriver}: {error.msg}")
    try:
        driver.set_page_load_timeout(WAIT)
        yield driver
    finally:
        driver.quit()


def _save_screenshot(driver: Any, folder: Path, name: str) -> Path:
    """Save a PNG of the page under ``folder`` (and in CRONKATA_ARTIFACTS_DIR if set)."""
    shot = folder / name
    assert driver.save_screenshot(str(shot)), "Chromium took no screenshot"
    artifacts = os.environ.get("CRONKATA_ARTIFACTS_DIR")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shot = Path(shutil.copy2(shot, Path(artifacts) / name))
    print(f"screenshot: {shot}")
    return shot


def test_the_admin_page_logs_in_pauses_resumes_and_runs_a_job(
    server: Server, browser: Any, tmp_path: Path
) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # Every action re-renders #app, so elements go stale: find them again on each poll.
    wait = WebDriverWait(
        browser, WAIT, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    )
    row = '#jobs tr[data-job-id="heartbeat"]'

    def state_is(expected: str) -> Any:
        return lambda d: d.find_element(By.CSS_SELECTOR, f"{row} td.state").text == expected

    def click(selector: str) -> None:
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, selector))).click()

    try:
        browser.get(f"{server.base}/admin")
        token = wait.until(ec.visibility_of_element_located((By.ID, "token")))
        assert not browser.find_elements(By.CSS_SELECTOR, "#jobs")  # no data before login
        token.send_keys(ADMIN)
        click("#login-button")

        wait.until(ec.text_to_be_present_in_element((By.ID, "role"), "admin"))
        wait.until(state_is("scheduled"))
        assert browser.find_element(By.CSS_SELECTOR, f"{row} td.next-run").text != "-"

        click(f"{row} button.pause")
        wait.until(state_is("paused"))
        assert browser.find_element(By.CSS_SELECTOR, f"{row} td.next-run").text == "-"
        job = server.api("/api/jobs/heartbeat")
        assert (job["state"], job["next_run_time"], job["health"]) == ("paused", None, "paused")

        click(f"{row} button.resume")
        wait.until(state_is("scheduled"))
        job = server.api("/api/jobs/heartbeat")
        assert job["state"] == "scheduled" and job["next_run_time"] is not None

        click(f"{row} button.run")
        manual = wait.until(
            lambda d: [
                cells
                for tr in d.find_elements(By.CSS_SELECTOR, "#runs tr")
                if (cells := [td.text for td in tr.find_elements(By.TAG_NAME, "td")])[1:3]
                == ["heartbeat", "manual"]
            ]
        )
        runs = server.api("/api/runs?job_id=heartbeat&trigger=manual")
        assert [str(run["run_id"]) for run in runs] == [cells[0] for cells in manual], runs
        assert browser.find_element(By.ID, "flash").text == ""  # no error shown
        shot = _save_screenshot(browser, tmp_path, "level4-admin-page.png")
        assert shot.stat().st_size > 0
    except BaseException:
        _save_screenshot(browser, tmp_path, "level4-admin-page-failure.png")
        print("server output:\n" + "".join(server.output[-50:]))
        raise
