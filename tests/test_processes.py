"""``resources.processes.ChildGroup``: children stop with the command that started them, also
when that command was started as a shell's background job (SIGINT ignored) and dies by SIGKILL.

The child imitates ``dagster dev``, which points SIGTERM at whatever SIGINT does
(``dagster._utils.interrupts.setup_interrupt_handlers``): with SIGINT inherited as ignored it
ignored SIGTERM too, and a killed demo left Dagster's webserver, daemon and code servers running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Like dagster dev: SIGTERM does what SIGINT does (KeyboardInterrupt, or nothing if ignored).
CHILD = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))\n"
    "try:\n"
    # Inside the try: the suite may stop it the moment it reads the line.
    "    print('ready', flush=True)\n"
    "    time.sleep(600)\n"
    "except KeyboardInterrupt:\n"
    "    sys.exit(3)\n"
)

PARENT = (
    "import sys, time\n"
    "from resources.processes import ChildGroup\n"
    "with ChildGroup(grace_s=20) as group:\n"
    "    child = group.spawn([sys.executable, '-c', sys.argv[1]])\n"
    "    print(child.pid, flush=True)\n"
    "    if sys.argv[2] == 'wait':\n"
    "        time.sleep(600)\n"
    "    sys.stdin.readline()\n"
    "print(child.returncode, flush=True)\n"
)


def _ignore_sigint() -> None:  # what a non-interactive shell does for `command &`
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_parent(mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, mode],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_ignore_sigint,
    )


def _gone(pid: int, within_s: float) -> bool:
    """Whether ``pid`` has exited (or is a zombie) within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            # /proc/<pid>/stat: "pid (comm) state ...", state Z for an exited, unreaped process.
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def started():
    """(parent, child pid) factory; kills both groups whatever the test did."""
    procs: list[tuple[subprocess.Popen, int]] = []

    def start(mode: str) -> tuple[subprocess.Popen, int]:
        parent = _start_parent(mode)
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "ready"  # the child's handler is in place
        procs.append((parent, child_pid))
        return parent, child_pid

    yield start
    for parent, child_pid in procs:
        for pgid in (parent.pid, child_pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        parent.wait()


def test_child_dies_with_a_parent_killed_by_sigkill(started):
    parent, child_pid = started("wait")
    os.kill(parent.pid, signal.SIGKILL)
    # The kernel sends the child SIGTERM on the parent's death; the bound only keeps a broken
    # build from hanging the suite.
    assert _gone(child_pid, within_s=20), "the child outlived its SIGKILLed parent"


def test_stop_ends_a_child_with_sigterm_not_the_sigkill_fallback(started):
    parent, _child_pid = started("stop")
    out, _ = parent.communicate("\n", timeout=60)
    assert parent.returncode == 0
    # Exit status 3: the child's KeyboardInterrupt path ran (SIGTERM reached a live handler);
    # -9 would be the group's SIGKILL after the grace period.
    assert out.strip() == "3"
