"""A worker thread for the part of a decode pass that can overlap the decoding.

The decoding thread hands over calls (the scene detector's frames, the sampled frames'
conversions and measures) and goes on decoding; the calls run one at a time, in the order they
were submitted, on one thread. Their work is swscale, OpenCV and NumPy, which release the GIL,
so it runs on the second core beside the decoder. At most ``backlog`` calls wait: a decoder
that outruns the worker blocks instead of holding every frame in memory.

Calls that need no order (a sampled frame's measures) go to ``SharedJobs`` instead: the worker
runs one per ticket it finds in its queue, and the decoding thread runs them too while the
worker's queue is full (``SerialWorker.submit``'s ``spare``), where it would otherwise wait.
On the Megamind.avi proxy the decoder spent ~37 ms of a 184 ms pass blocked on a worker that
had the detector's frames and every sampled frame to do (docs/performance.md).

A ``queue.Queue`` and a thread rather than a ``ThreadPoolExecutor``: a call is handed over
for every decoded frame, and the executor's future, work item and callback cost ~35 us a call
on the decoding thread (10 ms of a 271-frame analysis), the queue ~5 us.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable
from typing import Any

Call = tuple[Callable[..., Any], tuple[Any, ...]]


class SerialWorker:
    """Runs submitted calls in order on one thread; use as a context manager.

    Args:
        name: the thread's name (shown in profilers and thread dumps).
        backlog: calls that may wait before ``submit`` blocks.
    """

    def __init__(self, name: str, backlog: int):
        self._calls: queue.Queue[Call | None] = queue.Queue(backlog)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any, spare: Callable[[], bool] | None = None) -> None:
        """Queue ``fn(*args)``; while ``backlog`` calls wait, run ``spare()`` on this thread
        until it returns False (nothing left to do), then block. Once a call has raised, later
        ones are dropped (``finish`` raises the first error)."""
        if self._error is not None:
            return
        call = (fn, args)
        while spare is not None:
            try:
                self._calls.put_nowait(call)
                return
            except queue.Full:
                if not spare():
                    break
        self._calls.put(call)

    def finish(self) -> None:
        """Wait for every queued call.

        Raises:
            the first exception a call raised, on the caller's thread.
        """
        self.close()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop the thread once the queued calls have run (idempotent)."""
        if self._thread.is_alive():
            self._calls.put(None)
            self._thread.join()

    def __enter__(self) -> SerialWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while (call := self._calls.get()) is not None:
            if self._error is not None:
                continue  # keep draining so the submitting thread never blocks
            fn, args = call
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised by finish on the caller's thread
                self._error = exc


class SharedJobs:
    """Calls that may run in any order on any thread: each runs once, on whichever thread
    takes it first (``run_one``); ``deque`` appends and pops are atomic, so no lock."""

    def __init__(self) -> None:
        self._jobs: collections.deque[Call] = collections.deque()

    def add(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``."""
        self._jobs.append((fn, args))

    def run_one(self) -> bool:
        """Run the oldest waiting call on this thread; False when none waits. Its exception
        propagates."""
        try:
            fn, args = self._jobs.popleft()
        except IndexError:
            return False
        fn(*args)
        return True

    def drain(self) -> None:
        """Run every waiting call on this thread."""
        while self.run_one():
            pass
