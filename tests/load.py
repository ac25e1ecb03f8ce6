"""Concurrent upload load against a live API (127.0.0.1 only, bounded): distinct real clips
from many users and identical bytes from one user, all at once; every answer timed.

Used by ``tests/test_upload_load.py`` (small, bounded, checks the invariants) and
``bench/upload_load.py`` (the issue's sizes, prints latency percentiles and throughput).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from resources.ffmpeg import run_ffmpeg

MARK = b"effectlake-load-000000"


def distinct_clips(source: Path, out_dir: Path, count: int) -> list[bytes]:
    """``count`` real MP4 files that differ only in a metadata comment: ``source`` remuxed
    once (no re-encode) with a marker comment, then the marker's digits rewritten in place —
    the same length, so every copy stays a valid file, with its own sha256."""
    base = out_dir / "load_base.mp4"
    run_ffmpeg(["-i", str(source), "-c", "copy", "-metadata", f"comment={MARK.decode()}", str(base)])
    data = base.read_bytes()
    if data.count(MARK) != 1:
        raise RuntimeError("the marker comment is not in the remuxed file exactly once")
    return [data.replace(MARK, f"effectlake-load-{i:06d}".encode()) for i in range(count)]


@dataclass(frozen=True)
class Answer:
    """One request's outcome: HTTP ``status`` (0 = no answer: a transport error), latency
    in seconds, and the ``video_id`` of an accepted upload."""

    status: int
    seconds: float
    video_id: str | None
    error: str | None = None


async def _post(client: httpx.AsyncClient, headers: dict, name: str, data: bytes) -> Answer:
    started = time.perf_counter()
    try:
        r = await client.post("/v1/uploads", headers=headers, files={"file": (name, data, "video/mp4")})
    except httpx.HTTPError as exc:
        return Answer(0, time.perf_counter() - started, None, f"{type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - started
    return Answer(r.status_code, elapsed, r.json().get("video_id") if r.status_code == 202 else None)


async def _burst(base: str, requests: list[tuple[dict, str, bytes]], timeout_s: float) -> list[Answer]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=timeout_s, limits=limits) as client:
        return list(await asyncio.gather(*(_post(client, h, n, d) for h, n, d in requests)))


def burst(base: str, requests: list[tuple[dict, str, bytes]], timeout_s: float = 120.0) -> tuple[list[Answer], float]:
    """Send every (headers, filename, bytes) upload at once; (answers in order, wall seconds)."""
    if not base.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError("load is only ever sent to this machine (127.0.0.1)")
    started = time.perf_counter()
    answers = asyncio.run(_burst(base, requests, timeout_s))
    return answers, time.perf_counter() - started


def summary(answers: list[Answer], wall_s: float) -> dict:
    """p50 / p95 / max latency (ms), accepted uploads per second and the status counts."""
    ms = sorted(a.seconds * 1000 for a in answers)
    statuses: dict[int, int] = {}
    for a in answers:
        statuses[a.status] = statuses.get(a.status, 0) + 1
    return {
        "requests": len(answers),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[max(0, int(0.95 * len(ms)) - 1)], 1),
        "max_ms": round(ms[-1], 1),
        "uploads_per_s": round(sum(a.status == 202 for a in answers) / wall_s, 1),
        "statuses": dict(sorted(statuses.items())),
    }
