"""The C heap's policy for the large, short-lived arrays of video work (glibc ``mallopt``).

Every per-frame measure (M2's analysis, M7's quality statistics and SSIM, the OpenCV
providers) makes NumPy and OpenCV temporaries of 0.1-10 MB, frame after frame. glibc serves a
block above its mmap threshold (128 kB at start, raised by the frees of larger mmapped blocks,
at most 32 MB) with a fresh ``mmap`` and unmaps it on free, and gives the top of its heap back
to the kernel once more than the trim threshold is free there: either way the next frame's
arrays touch new pages, one page fault per 4 kB. Measured on M7's decode pass of a 3 s 720p
pair: 38,000-274,000 page faults and 0.55-1.0 CPU s a run, depending on how far earlier
frees had raised the threshold; SSIM at 320 px 0.8 or 2.0 ms a frame (docs/performance.md).

``keep_freed_pages`` fixes the mmap threshold at glibc's maximum (32 MB: a 4K RGB frame and
every smaller array come from the heap) and the trim threshold at 256 MB, so freed arrays are
reused in place. The cost is memory the process keeps after a peak instead of returning it:
at most the trim threshold per allocation arena, which suits the platform's processes (Dagster
runs that last one job; servers whose arrays are small). Polars and DuckDB bring their own
allocators and are not affected.
"""

from __future__ import annotations

import ctypes
import sys

# <malloc.h>: mallopt parameters.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: glibc's largest accepted mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX, 4 MiB x 8).
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024


def keep_freed_pages() -> bool:
    """Apply the heap policy of the module docstring to this process (idempotent).

    Returns:
        True when glibc accepted both settings; False elsewhere (another C library, or a
        platform without ``mallopt``), where nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    # The symbols already loaded into this process (libc's among them), as resources/processes.py
    # reaches libc: ctypes.util.find_library would run ``ldconfig -p`` in a subprocess, at the
    # start of every run process.
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
