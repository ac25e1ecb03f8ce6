"""How ``make test`` shares the test files among its pytest-xdist workers (``--dist loadfile``).

The files that start a whole demo stack (the API, ``dagster dev`` or the daemon with its code
and web servers, a process per run or step, ffmpeg) each keep more than one core busy. xdist's
default order hands out files by their number of tests, most first, so these one-test files
came last and ran side by side on the 2 cores, each slowed by the other (load ~20): the suite's
tail. Here they form one work unit, handed out first: one worker runs the stacks one after the
other while the others take the rest of the files.
"""

from __future__ import annotations

from xdist.scheduler import LoadFileScheduling

# Test files (paths from the repository root, as in node ids) that start a demo stack.
STACK_FILES = frozenset(
    {
        "tests/test_chaos.py",
        "tests/test_demo_daemon.py",
        "tests/test_launchers.py",
        "tests/test_prod_profile.py",
    }
)
STACKS = "demo stacks"


class StacksFirstScheduling(LoadFileScheduling):
    """``--dist loadfile`` with the ``STACK_FILES`` as one work unit, assigned before any other."""

    def _split_scope(self, nodeid: str) -> str:
        scope = super()._split_scope(nodeid)
        return STACKS if scope in STACK_FILES else scope

    def _assign_work_unit(self, node) -> None:
        if STACKS in self.workqueue:
            self.workqueue.move_to_end(STACKS, last=False)
        super()._assign_work_unit(node)
