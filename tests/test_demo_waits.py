"""The demo's waits for its servers and for a video's stage (pipelines/cli/demo.py)."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest

from pipelines.cli.demo import _wait_http, _wait_stage


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/healthz"  # nothing listens there any more


def test_wait_http_times_out_while_nothing_listens():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(TimeoutError, match=r"the API did not answer .* within 1 s"):
            _wait_http(_closed_port_url(), 1, "the API", proc)
    finally:
        proc.kill()
        proc.wait()


def test_wait_http_stops_at_once_when_the_server_exited():
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(RuntimeError, match="the API exited with 3"):
        _wait_http(_closed_port_url(), 60, "the API", proc)


def _client(stages: list[str]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        stage = stages.pop(0) if len(stages) > 1 else stages[0]
        return httpx.Response(200, json={"video_id": "v1", "stage": stage})

    return httpx.Client(base_url="http://api", transport=httpx.MockTransport(answer))


def test_wait_stage_returns_the_status_that_reached_a_stage():
    status = _wait_stage(_client(["ingesting", "awaiting_approval"]), "v1", {"awaiting_approval"}, timeout_s=10)
    assert status == {"video_id": "v1", "stage": "awaiting_approval"}


def test_wait_stage_names_the_stage_it_is_stuck_at():
    with pytest.raises(TimeoutError, match="video v1 stuck at stage scoring after 0 s"):
        _wait_stage(_client(["scoring"]), "v1", {"published"}, timeout_s=0.1)
