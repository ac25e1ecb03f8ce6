"""What the benchmarks share: the decode floor of a video, a median timer, and the sections
of docs/performance.md the benches regenerate.

Imported by the scripts beside it (``python bench/<script>.py`` puts this folder on the path).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

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


PERFORMANCE_DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def write_doc_section(key: str, title: str, body: str, doc: Path = PERFORMANCE_DOC) -> None:
    """Replace the section ``key`` of ``doc`` (docs/performance.md) with ``title`` and
    ``body``, between ``<!-- bench:key -->`` and ``<!-- /bench:key -->`` markers, so a
    bench regenerates its own table and leaves the rest of the page alone. A missing
    section is appended, a missing page created."""
    start, end = f"<!-- bench:{key} -->", f"<!-- /bench:{key} -->"
    section = f"{start}\n## {title}\n\n{body.strip()}\n{end}"
    new_page = "# Performance\n\nMeasured by the `bench/` scripts, which rewrite their own sections.\n"
    text = doc.read_text() if doc.exists() else new_page
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(text if text.endswith("\n") else text + "\n")
