"""The C heap policy for video work (resources/allocator.py)."""

from __future__ import annotations

import resource

import numpy as np

from resources.allocator import keep_freed_pages


def _page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def test_freed_frame_arrays_are_reused_without_new_page_faults():
    # Three 3 MB arrays made and freed twenty times, as a decode pass makes a frame's
    # temporaries: glibc's defaults give the freed top of the heap back (or unmap the blocks),
    # and every round faults its 9 MB in again (~2,300 faults); with the policy the pages stay.
    assert keep_freed_pages()
    for _ in range(2):  # the heap grows to its size once
        arrays = [np.ones(3 << 20, np.uint8) for _ in range(3)]
        del arrays
    before = _page_faults()
    for _ in range(20):
        arrays = [np.ones(3 << 20, np.uint8) for _ in range(3)]
        del arrays
    assert _page_faults() - before < 500
