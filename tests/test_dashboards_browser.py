"""The dashboard in a real browser: ``effectlake dashboard`` on a free port against the
filled lake (tests/dashboards_lake.py), Debian's headless Chromium driven by Playwright
(never ``playwright install``): sign in, open every page for real and simulated data, approve
one effect, a screenshot per page; any Streamlit exception or error element fails the test.

Needs /usr/bin/chromium (``make system-deps`` installs it) and the playwright package
(the ``test`` extra).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dashboards import auth
from tests import dashboards_lake
from tests.dashboards_lake import PASSWORD
from tests.server import free_port

CHROMIUM = Path("/usr/bin/chromium")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.video,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make system-deps)"),
]

# Flags for a root user in a container, and a browser that talks to nobody but the app.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PAGES = ["Margins", "Providers", "Routing", "Recommendations", "Approval queue", "Bottlenecks & alerts"]
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'
PROBLEM = "Streamlit showed an exception or an error"


@pytest.fixture(scope="module")
def world(tmp_path_factory, warm_bikes, warm_carphone):
    built = dashboards_lake.filled_lake(tmp_path_factory, [warm_bikes], warm_carphone)
    return dashboards_lake.copy_world(built, tmp_path_factory.mktemp("browser-world"))


@pytest.fixture(scope="module")
def dashboard(world, tmp_path_factory):
    """``effectlake dashboard --port N`` as a user starts it; its URL."""
    port = free_port()
    env = {**dashboards_lake.environ_without_settings(), **world.env(auth.hash_password(PASSWORD))}
    log = tmp_path_factory.mktemp("dashboard-log") / "dashboard.log"
    exe = Path(sys.executable).with_name("effectlake")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pipelines.cli"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "dashboard", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not answer in 90 s:\n" + log.read_text()
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # effectlake and its streamlit child
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with playwright.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 2600},
        )
        try:
            yield context
        finally:
            context.close()


def _settle(page, timeout_s: float = 90) -> None:
    """Wait until the script run finished: no running-status widget and no stale element,
    twice in a row (a rerun can start right after one ends)."""
    deadline, calm = time.monotonic() + timeout_s, 0
    while calm < 2:
        busy = page.locator('[data-testid="stStatusWidget"], [data-stale="true"]').count()
        calm = 0 if busy else calm + 1
        assert time.monotonic() < deadline, "the app never finished its run"
        time.sleep(0.4)


def _check(page, what: str) -> None:
    errors = page.locator(ERRORS)
    assert errors.count() == 0, f"{PROBLEM} on {what}: " + " | ".join(errors.all_inner_texts())


def _open(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title, level=2).wait_for(timeout=90_000)
    _settle(page)


def test_every_page_in_chromium_and_approve_one_effect(dashboard, browser, world, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = browser.new_page()
    page.goto(f"{dashboard}/approvals")  # a page's URL shows the sign-in, not the page
    page.get_by_label("Admin password").wait_for(timeout=90_000)
    assert page.get_by_role("heading", name="Approval queue").count() == 0

    page.get_by_label("Your name (recorded with your decisions)").fill("browser-admin")
    page.get_by_label("Admin password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator('[data-testid="stSidebarNav"]').wait_for(timeout=90_000)
    _settle(page)
    _check(page, "sign-in")

    for source in ("Real", "Simulated"):
        page.locator('[data-testid="stSidebar"]').get_by_text(source, exact=True).click()
        _settle(page)
        for title in PAGES:
            _open(page, title)
            _check(page, f"{title} ({source})")
            assert page.locator('[data-testid="stMetric"]').count() >= 4, f"no HUD on {title}"
            page.screenshot(path=str(shots / f"{source.lower()}-{title.split()[0].lower()}.png"))

    _open(page, "Approval queue")
    assert page.locator("video").count() >= 3  # the input and the outputs, side by side
    page.get_by_label("Reason (optional)").first.fill("approved in the browser")
    page.get_by_role("button", name="Approve").first.click()
    page.get_by_text("Nothing waits for approval.").wait_for(timeout=90_000)
    _settle(page)
    _check(page, "the approval")
    page.screenshot(path=str(shots / "approved.png"))
    decisions = world.store.decisions("approval")
    assert [(d["decision"], d["admin"], d["reason"]) for d in decisions] == [
        ("approve", "browser-admin", "approved in the browser")
    ]
    assert len(list(shots.glob("*.png"))) == 2 * len(PAGES) + 1
    print(f"screenshots: {shots}")  # noqa: T201 - tells whoever runs it (pytest -s) where to look
