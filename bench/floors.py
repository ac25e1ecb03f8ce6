"""What the stage benchmarks share: the decode floor of a video, timers, and the docs tables
they regenerate.

Imported by the scripts beside it (``python bench/<script>.py`` puts this folder on the path).
"""

from __future__ import annotations

import json
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import av

from resources.allocator import keep_freed_pages

# The stages run in processes set up as the platform's are (pipelines/definitions.py): with
# the C heap keeping freed pages, so a bench's repetitions do not differ from a fresh run's by
# how far glibc's threshold has drifted.
keep_freed_pages()

DOCS = Path(__file__).resolve().parents[1] / "docs"


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


def cpu_s() -> float:
    """CPU seconds so far of this process (every thread) and of its reaped children (ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def side_by_side(fns: Sequence[Callable[[], object]], repeat: int) -> list[tuple[float, float]]:
    """(median wall s, median CPU s) of each of ``fns``, called in turn ``repeat`` times after
    one warm-up call each.

    Interleaved rather than one after the other, so on a shared machine every function sees the
    same load. CPU is this process's threads plus the child processes it reaped (``cpu_s``): the
    steadier of the two when other work competes for the cores.
    """
    for fn in fns:
        fn()
    walls: list[list[float]] = [[] for _ in fns]
    cpus: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            wall, cpu = time.perf_counter(), cpu_s()
            fn()
            walls[i].append(time.perf_counter() - wall)
            cpus[i].append(cpu_s() - cpu)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(walls, cpus, strict=True)]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A Markdown table (first column left-aligned, the others right-aligned)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":--", *["--:"] * (len(header) - 1)]) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def write_doc_block(doc: str, name: str, lines: Sequence[str]) -> Path:
    """Replace the generated block ``name`` of ``docs/<doc>`` with ``lines``.

    The block sits between ``<!-- bench:<name> -->`` and ``<!-- /bench:<name> -->``; the text
    around it is the page's own and is left alone.

    Raises:
        ValueError: the page has no such block.
    """
    path = DOCS / doc
    text = path.read_text(encoding="utf-8")
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{path} has no {start} ... {end} block")
    path.write_text(pattern.sub(lambda _: "\n".join([start, *lines, end]), text), encoding="utf-8")
    return path


def peak_rss_gb() -> float:
    """This process's own peak resident set size in GB (``VmHWM``). Not getrusage's
    ``ru_maxrss``, which a child inherits from its parent at exec (Linux keeps the larger of
    the two), so a child of a parent holding a prepared lake would report the parent's size."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1e6


def report(step: str, started: float, **extra) -> None:
    """Print one JSON line for a bench step run in its own process: its wall time since
    ``started`` (``time.perf_counter()``), its peak RSS (GB, ``peak_rss_gb``) and ``extra``."""
    print(
        json.dumps(
            {
                "step": step,
                "wall_s": round(time.perf_counter() - started, 2),
                "peak_rss_gb": round(peak_rss_gb(), 2),
                **extra,
            }
        )
    )


def child(script: str, step: str, *args: str) -> dict:
    """Run ``python script --step=<step> args…`` in a fresh process (its own wall time and
    peak memory) and return the JSON line ``report`` printed last."""
    out = subprocess.run(
        [sys.executable, script, f"--step={step}", *args], capture_output=True, text=True, check=True
    ).stdout.strip()
    return json.loads(out.splitlines()[-1])
