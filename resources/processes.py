"""Child processes that never outlive the command that started them.

``ChildGroup`` starts each child in its own process group (so a child's own children —
``dagster dev``'s webserver, daemon and code servers; Streamlit's — are stopped with it) and
stops every group: when the ``with`` block ends, normally or by an exception; when this process
gets SIGTERM or SIGHUP (turned into ``SystemExit`` so the block unwinds; SIGINT is Python's
``KeyboardInterrupt`` already); and, on Linux, when this process dies without a chance to clean
up (``kill -9``): each child asks the kernel for SIGTERM on its parent's death
(``prctl(PR_SET_PDEATHSIG)``). Children start with SIGINT, SIGQUIT and SIGTERM at their default
action whatever this process inherited (a background job of a shell ignores SIGINT; ``dagster
dev`` would then ignore SIGTERM as well and outlive everything above).

Stopping sends SIGTERM to the group, waits ``grace_s``, then SIGKILLs what is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType

PR_SET_PDEATHSIG = 1  # linux/prctl.h
SIG_DFL = 0  # signal.h: the default action
HANDLED = (signal.SIGTERM, signal.SIGHUP)
# libc's functions looked up here, in the parent: in the forked child a dlopen/dlsym could
# wait forever on a loader lock another parent thread held at the fork.
_LIBC = ctypes.CDLL(None, use_errno=True)
_SIGNAL = _LIBC.signal
_PRCTL = _LIBC.prctl if sys.platform == "linux" else None


def _child_setup() -> None:  # runs in the child between fork and exec
    # A shell starts background jobs with SIGINT and SIGQUIT ignored, and an ignored signal
    # stays ignored across exec. Python then installs no KeyboardInterrupt handler, and
    # `dagster dev` copies SIGINT's handler to SIGTERM: it would ignore both our SIGTERM and
    # the parent-death signal below, and outlive this command.
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        _SIGNAL(sig, SIG_DFL)
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


class ChildGroup:
    """The children of one command; use as a context manager (see the module docstring).

    Args:
        grace_s: seconds a child's group gets between SIGTERM and SIGKILL.
    """

    def __init__(self, grace_s: float = 30.0):
        self.grace_s = grace_s
        self.children: list[subprocess.Popen] = []
        self._previous: dict[int, object] = {}

    def spawn(
        self, cmd: Sequence[str], *, env: dict | None = None, cwd: str | Path | None = None, log: Path | None = None
    ) -> subprocess.Popen:
        """Start ``cmd`` in a new process group (output appended to ``log`` when given,
        else inherited) and keep it to stop later."""
        out = open(log, "ab") if log else None  # noqa: SIM115 - the child keeps its own copy
        try:
            proc = subprocess.Popen(
                list(cmd),
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
                # Runs between fork and exec: only libc calls, no locks that another thread may hold.
                preexec_fn=_child_setup,
            )
        finally:
            if out:
                out.close()
        self.children.append(proc)
        return proc

    def stop(self) -> None:
        """SIGTERM every live child's group, wait up to ``grace_s``, SIGKILL the rest."""
        for proc in self.children:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        for proc in self.children:
            try:
                proc.wait(timeout=self.grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            # The leader may be gone while group members linger (a server's workers).
            _signal_group(proc, signal.SIGKILL)

    def __enter__(self) -> ChildGroup:
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, _exit_on_signal)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has exited
        os.killpg(proc.pid, sig)
