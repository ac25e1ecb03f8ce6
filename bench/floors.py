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
