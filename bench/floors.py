"""What the stage benchmarks share: the decode floor of a video and a median timer.

Imported by the scripts beside it (``python bench/<script>.py`` puts this folder on the path).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import av


def decode_once(path: str) -> int:
    """Decode every video frame of ``path`` (the floor of any per-frame measurement); the
    frame count."""
    with av.open(path) as container:
        return sum(1 for _ in container.decode(video=0))


def median_s(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls of ``fn``, seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def report(step: str, started: float, **extra) -> None:
    """Print one JSON line for a bench step run in its own process: its wall time since
    ``started`` (``time.perf_counter()``), its peak RSS (GB) and ``extra``."""
    import json
    import resource

    print(
        json.dumps(
            {
                "step": step,
                "wall_s": round(time.perf_counter() - started, 2),
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
                **extra,
            }
        )
    )


def child(script: str, step: str, *args: str) -> dict:
    """Run ``python script --step=<step> args…`` in a fresh process (its own wall time and
    peak memory) and return the JSON line ``report`` printed last."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, script, f"--step={step}", *args], capture_output=True, text=True, check=True
    ).stdout.strip()
    return json.loads(out.splitlines()[-1])
