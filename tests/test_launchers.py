"""Commands that start children leave none behind: ``effectlake dashboard`` and ``effectlake
demo``, stopped with SIGTERM or killed with SIGKILL, take every process they started (and
those processes' own children) with them and free their ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api_users import ADMIN_KEY
from tests.server import free_port

pytestmark = pytest.mark.slow


def _children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc: each process's parent id)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # exited while we looked
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


def _env(tmp_path: Path) -> dict[str, str]:
    return os.environ | {
        "LAKE_URI": str(tmp_path / "lake"),
        "MEDIA_URI": str(tmp_path / "media"),
        "MANIFEST_URI": str(tmp_path / "manifest.json"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "EFFECTLAKE_ADMIN_KEY": ADMIN_KEY,
    }


def _launch(args: list[str], tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli.main", *args],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the test's own group is never signalled
    )


def _stop_and_check(launcher: subprocess.Popen, sig: int, ports: list[int]) -> None:
    started = _children_of(launcher.pid)
    assert started, "the launcher started no child"
    os.kill(launcher.pid, sig)
    launcher.wait(timeout=60)
    try:
        _wait(lambda: not any(_alive(p) for p in started), 60, "the launcher's children to exit")
        _wait(lambda: all(_port_free(p) for p in ports), 30, f"ports {ports} to be free")
    finally:  # never leave a server behind, whatever the assertion said
        for pid in started:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_dashboard_launcher_takes_streamlit_with_it(tmp_path, sig):
    port = free_port()
    launcher = _launch(["dashboard", "--port", str(port)], tmp_path)
    _wait(lambda: _up(f"http://127.0.0.1:{port}/_stcore/health"), 90, "the dashboard")
    _stop_and_check(launcher, sig, [port])


def test_demo_stops_api_dagster_and_dashboard_on_sigterm(tmp_path):
    api, dagster, dashboard = free_port(), free_port(), free_port()
    launcher = _launch(
        ["demo", "--api-port", str(api), "--dagster-port", str(dagster), "--dashboard-port", str(dashboard)],
        tmp_path,
    )
    _wait(lambda: _up(f"http://127.0.0.1:{api}/healthz"), 90, "the demo's API")
    _wait(lambda: _up(f"http://127.0.0.1:{dagster}/server_info"), 180, "the demo's Dagster webserver")
    _stop_and_check(launcher, signal.SIGTERM, [api, dagster, dashboard])
