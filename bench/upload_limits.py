"""A 1 GiB upload against the real API: how soon it is refused and what it costs the server.

Usage: ``python bench/upload_limits.py [--gib 1] [--baseline]``.

Starts uvicorn (``SERVER`` below: the real ``create_app`` with the default 200 MB
upload limit) in a child process on 127.0.0.1, then sends ``POST /v1/uploads`` a multipart
body of ``--gib`` GiB with an httpx client, twice: with its ``Content-Length`` declared, and
chunked (no length, so the server can only count). For each it prints the status, the
seconds until the answer, how many bytes the client had sent by then, and the server's peak
resident memory (``VmHWM``, against its value before the request) and the most bytes it
held in temporary files at once.
``--baseline`` also runs the same app without ``api.limits.BodyGuard`` (what the API did
before): the body is received and spooled whole before the route refuses it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from resources.store import Store

ROOT = Path(__file__).resolve().parents[1]
BOUNDARY = "benchboundary"
PART_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
    "Content-Type: video/mp4\r\n\r\n"
).encode()
PART_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
CHUNK = 1 << 20

# The child process: the real app, optionally without the guard.
SERVER = """
import os, sys, uvicorn
from api.app import create_app
from api.limits import BodyGuard
app = create_app()
if os.environ.get("BENCH_BASELINE") == "1":
    app.user_middleware = [m for m in app.user_middleware if m.cls is not BodyGuard]
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _open_temp_bytes(pid: int, tmp: Path) -> int:
    """Bytes in the files under ``tmp`` that process ``pid`` holds open — deleted ones too
    (a spooled upload is an unlinked temporary file, invisible in the directory)."""
    total = 0
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir() if fds.is_dir() else []:
        try:
            if os.readlink(fd).startswith(str(tmp)):
                total += fd.stat().st_size
        except OSError:
            continue  # closed meanwhile
    return total


class Server:
    """uvicorn in a child process with its own data and temporary directories."""

    def __init__(self, work: Path, baseline: bool):
        self.port = _free_port()
        self.tmp = work / "tmp"
        self.tmp.mkdir(parents=True)
        database_url = f"sqlite:///{work / 'store.db'}"
        store = Store(database_url)  # migrated here, so the uploader exists before the server starts
        _, self.api_key = store.create_user(store.create_workspace("bench")["workspace_id"], welcome_tokens=100)
        store.close()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TMPDIR": str(self.tmp),
            "LAKE_URI": str(work / "lake"),
            "MEDIA_URI": str(work / "media"),
            "MANIFEST_URI": str(work / "manifest.json"),
            "DATABASE_URL": database_url,
            "BENCH_BASELINE": "1" if baseline else "0",
        }
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(self.port)], cwd=ROOT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        self.peak_tmp = 0
        self._watching = True
        self._watcher = threading.Thread(target=self._watch_tmp, daemon=True)
        self._watcher.start()

    def _watch_tmp(self) -> None:
        while self._watching:
            self.peak_tmp = max(self.peak_tmp, _open_temp_bytes(self.proc.pid, self.tmp))
            time.sleep(0.01)

    def stop(self) -> None:
        self._watching = False
        self._watcher.join()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def send(url: str, api_key: str, total: int, declare: bool) -> tuple[int | str, float, int]:
    """POST a ``total``-byte multipart body; (status, seconds to the answer, bytes sent)."""
    sent = 0

    def body():
        nonlocal sent
        yield PART_HEAD
        zeros = b"\0" * CHUNK
        left = total
        while left > 0:
            chunk = zeros[: min(CHUNK, left)]
            left -= len(chunk)
            sent += len(chunk)
            yield chunk
        yield PART_TAIL

    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Authorization": f"Bearer {api_key}"}
    if declare:
        headers["Content-Length"] = str(len(PART_HEAD) + total + len(PART_TAIL))
    started = time.perf_counter()
    try:
        status = httpx.post(f"{url}/v1/uploads", content=body(), headers=headers, timeout=600).status_code
    except httpx.HTTPError as exc:  # the server closed before an answer could be read
        status = f"error: {type(exc).__name__}"
    return status, time.perf_counter() - started, sent


def run(baseline: bool, total: int) -> None:
    label = "without BodyGuard (before)" if baseline else "with BodyGuard"
    for declare in (True, False):
        work = Path(tempfile.mkdtemp(prefix="bench_upload_"))
        server = Server(work, baseline)
        try:
            idle_kib = _vm_hwm_kib(server.proc.pid)
            status, seconds, sent = send(server.url, server.api_key, total, declare)
            time.sleep(0.2)
            peak_kib = _vm_hwm_kib(server.proc.pid)
        finally:
            server.stop()
            shutil.rmtree(work, ignore_errors=True)
        mode = "Content-Length" if declare else "chunked"
        print(
            f"{label:28s} {mode:14s} status {status}  {seconds:6.2f} s  client sent {sent / 2**20:7.1f} MiB  "
            f"server peak RSS {peak_kib / 1024:6.1f} MiB (idle {idle_kib / 1024:.1f})  "
            f"server temp files peak {server.peak_tmp / 2**20:7.1f} MiB"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--baseline", action="store_true", help="also run without the guard")
    args = ap.parse_args()
    total = int(args.gib * 2**30)
    run(False, total)
    if args.baseline:
        run(True, total)


if __name__ == "__main__":
    main()
