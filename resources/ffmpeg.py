"""Running ffmpeg as a child process with its real resource usage measured.

The binary is the one the ``imageio-ffmpeg`` wheel ships (ffmpeg with libx264 and libvmaf), so
a fresh machine needs nothing from the OS; ``FFMPEG_BINARY`` overrides it.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from resources.settings import get_settings


class FFmpegError(RuntimeError):
    """ffmpeg exited non-zero. ``stderr_tail`` holds its last lines (the useful part)."""

    def __init__(self, returncode: int, stderr_tail: str):
        super().__init__(f"ffmpeg exited with {returncode}: {stderr_tail}")
        self.returncode = returncode
        self.stderr_tail = stderr_tail


@dataclass(frozen=True)
class ProcessStats:
    """Measured cost of one child process.

    Attributes:
        wall_ms: wall-clock milliseconds from spawn to exit.
        cpu_seconds: user + system CPU seconds of that child alone (from ``os.wait4``, so
            parallel children in other threads are not mixed in).
        max_rss_kb: peak resident set size of the child in KiB (Linux ``ru_maxrss``).
    """

    wall_ms: int
    cpu_seconds: float
    max_rss_kb: int


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: ``Settings.ffmpeg_binary`` (``$FFMPEG_BINARY``) or the one
    inside imageio-ffmpeg."""
    override = get_settings().ffmpeg_binary
    if override:
        return override
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _command(args: list[str]) -> list[str]:
    """``ffmpeg -hide_banner -nostdin -loglevel error -y <args>``."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]


def _failure(returncode: int, stderr: str) -> FFmpegError:
    """The error of a child that exited with ``returncode``: its stderr's last 5 lines."""
    return FFmpegError(returncode, "\n".join(stderr.strip().splitlines()[-5:]) or "no output")


def run_ffmpeg(args: list[str], timeout_s: float = 600.0) -> ProcessStats:
    """Run ``ffmpeg -hide_banner -nostdin -y <args>`` and measure it.

    Args:
        args: ffmpeg arguments after the global flags (inputs, filters, outputs).
        timeout_s: the child is killed after this many seconds.

    Returns:
        ProcessStats of the child.

    Raises:
        FFmpegError: non-zero exit (with the stderr tail), or timeout (returncode -9).
    """
    return run_measured(_command(args), timeout_s=timeout_s)


def run_measured(cmd: list[str], timeout_s: float = 600.0) -> ProcessStats:
    """Run any command, returning its own CPU time via ``os.wait4`` (see ProcessStats).

    Raises:
        FFmpegError: on non-zero exit or timeout.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # A timer kills a hung child; reading stderr to EOF then reaping with wait4 (not
    # Popen.wait) keeps the child's own rusage, which Popen would discard.
    killer = threading.Timer(timeout_s, proc.kill)
    killer.start()
    try:
        assert proc.stderr is not None
        stderr_bytes = proc.stderr.read()
    finally:
        killer.cancel()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall_ms = int((time.perf_counter() - started) * 1000)
    stderr = stderr_bytes.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise _failure(proc.returncode, stderr)
    return ProcessStats(
        wall_ms=wall_ms,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        max_rss_kb=usage.ru_maxrss,
    )
