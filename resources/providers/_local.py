"""What the local (this-machine) adapters share: the task lifecycle, retries, telemetry, the
output encoding, input probing and health checks.

``LocalAdapter`` implements the protocol of ``resources.providers.base``; a subclass only
renders one attempt (``_render``) into a temporary file. Everything else — concurrency slot,
input check, one retry of transient failures, output verification, atomic publish,
``TaskResult`` with measured telemetry — lives here once.

CPU accounting (docs/architecture.md, "Providers" telemetry): tasks run in parallel threads of one process, so
process-wide counters would mix tasks. A task's ``compute_seconds`` is the CPU time of its own
worker thread (``time.thread_time``: in-process decode, transforms, probing) plus the CPU time
of each child process it spawned, taken from ``os.wait4`` rusage of that child alone.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import structlog

from resources.ffmpeg import FFmpegError, ProcessStats, ffmpeg_exe, run_ffmpeg
from resources.providers.base import Health, ProviderTask, TaskResult
from resources.providers.params import ParamError
from resources.retry import transient_failures
from resources.video.probe import NoVideoStream, probe_header

if TYPE_CHECKING:
    from tenacity import RetryCallState

    from resources.providers.registry import ProviderSpec

log = structlog.get_logger("effectlake.providers")

# Output encoding of every local provider: H.264 High, 4:2:0 (plays everywhere), CRF 20
# (visually near-transparent at these sizes), preset veryfast (x264's speed/size trade-off that
# keeps encoding a small share of each effect's cost, so providers differ by their effect work),
# no audio, moov atom first so the gallery can stream it.
ENCODE_ARGS = [
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "20",
    "-pix_fmt",
    "yuv420p",
    "-an",
    "-sn",
    "-dn",
    "-map_metadata",
    "-1",
    "-movflags",
    "+faststart",
]
# 4:2:0 needs even dimensions; a no-op on the (even) normalized proxies, a 1-px crop otherwise.
EVEN_CROP = "crop=trunc(iw/2)*2:trunc(ih/2)*2"
# Raw BGR frames (the opencv adapter's) → 4:2:0: BT.601 limited range, the inverse of the
# adapter's decode (local_opencv.BGR_DECODE), so an unchanged frame comes back as it went in.
# ffmpeg's automatic conversion (bicubic, without accurate_rnd) cost 1.6 dB of luma PSNR on an
# identity pass of the 10 s 480p clip (see local_opencv); bitexact: the same pixels on every CPU.
# setparams then drops the colour tags the explicit matrix adds (BT.470BG, limited range): the
# proxies and the ffmpeg adapter's outputs are untagged, and a player shows an untagged HD
# video as BT.709, so a BT.601 tag would show an unchanged frame in other colours than its input.
BGR_TO_YUV420 = (
    "scale=flags=bicubic+accurate_rnd+bitexact:out_color_matrix=bt601:out_range=tv,format=yuv420p,"
    "setparams=range=unknown:colorspace=unknown"
)

MAX_ATTEMPTS = 2  # one retry, for transient failures only (see classify)
RETRY_PAUSE_S = 0.5  # let a momentary resource shortage (memory, pids) clear before retrying
_RESULTS_KEPT = 10_000  # submit/poll results kept per adapter (oldest dropped first)
_MESSAGE_CHARS = 500


class TaskFailure(Exception):
    """A classified task failure raised inside an attempt.

    Attributes:
        error_class: short machine-readable class (``InputMissing``, ``Timeout``…).
        transient: True when a retry may succeed.
    """

    def __init__(self, error_class: str, message: str, transient: bool = False):
        super().__init__(message)
        self.error_class = error_class
        self.transient = transient


@dataclass(frozen=True)
class Failure:
    """How a failure is reported: class, readable message, and whether to retry."""

    error_class: str
    message: str
    transient: bool


# errno values that mean "this machine, right now" rather than "this task": out of memory,
# processes or file descriptors (fork/exec or pipe creation under load).
_TRANSIENT_ERRNOS = {errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE}


def classify(exc: BaseException) -> Failure:
    """Map an exception from an attempt to a reported failure.

    Transient (retried once): a child killed by a signal that was not our timeout (OOM
    killer, an operator's kill), out of memory/processes/file descriptors, ``MemoryError``.
    Permanent: ffmpeg's own non-zero exits (bad graph, unsupported input — a retry would fail
    the same way), decode errors, invalid params, missing input, timeouts (a retry would double
    an already too long task).
    """
    if isinstance(exc, TaskFailure):
        return Failure(exc.error_class, str(exc), exc.transient)
    if isinstance(exc, FFmpegError):
        killed = exc.returncode < 0
        cls = "FFmpegKilled" if killed else "FFmpegError"
        return Failure(cls, f"ffmpeg exited with {exc.returncode}: {exc.stderr_tail}", killed)
    if isinstance(exc, ParamError):
        return Failure("InvalidParams", str(exc), False)
    if isinstance(exc, av.error.FFmpegError):  # PyAV: unreadable or corrupt input
        return Failure("DecodeError", str(exc), False)
    if isinstance(exc, MemoryError):
        return Failure("MemoryError", "out of memory", True)
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return Failure("ResourceExhausted", str(exc), True)
    return Failure(type(exc).__name__, str(exc) or repr(exc), False)


class CpuMeter:
    """CPU seconds of one task: this thread's CPU since creation plus added child CPU.

    Create and read it on the worker thread that runs the task (``time.thread_time`` is per
    thread). ``add_child`` is thread-safe.
    """

    def __init__(self) -> None:
        self._thread_start = time.thread_time()
        self._children = 0.0
        self._lock = threading.Lock()

    def add_child(self, cpu_seconds: float) -> None:
        """Add a reaped child's user+system CPU seconds."""
        with self._lock:
            self._children += cpu_seconds

    @property
    def seconds(self) -> float:
        """Thread CPU so far + children's CPU (seconds)."""
        return (time.thread_time() - self._thread_start) + self._children


@dataclass(frozen=True)
class VideoFacts:
    """What a workflow may need to know about its input.

    Attributes:
        width, height: pixels.
        fps: average frame rate as an exact fraction (e.g. 25, 30000/1001).
        duration: seconds (stream duration, else container duration, else 0).
        frames: frame count from the container header, or None when it does not say.
    """

    width: int
    height: int
    fps: Fraction
    duration: float
    frames: int | None

    def names(self) -> dict[str, Any]:
        """Names for workflow params and graphs: ``width``, ``height``, ``fps`` (rational
        string for ffmpeg options), ``fps_value`` (float), ``duration`` (s)."""
        return {
            "width": self.width,
            "height": self.height,
            "fps": f"{self.fps.numerator}/{self.fps.denominator}",
            "fps_value": float(self.fps),
            "duration": self.duration,
        }


def probe_video(path: str) -> VideoFacts:
    """Facts of the first video stream of ``path`` (PyAV; reads headers only).

    Raises:
        TaskFailure: ``DecodeError`` when there is no video stream or no frame rate.
        av.error.FFmpegError: the file cannot be opened as media.
    """
    try:
        header = probe_header(path)
    except NoVideoStream:
        raise TaskFailure("DecodeError", f"{path} has no video stream") from None
    if header.frame_rate is None:
        raise TaskFailure("DecodeError", f"{path}: video stream has no frame rate")
    return VideoFacts(
        width=header.width,
        height=header.height,
        fps=header.frame_rate,
        duration=header.duration_s,
        frames=header.nb_frames,
    )


def verify_output(path: str) -> None:
    """Check an output is what we promise: an H.264 yuv420p video stream with even size
    and at least one decodable frame.

    Raises:
        TaskFailure: ``OutputInvalid`` describing what is wrong.
    """
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise TaskFailure("OutputInvalid", f"{path} has no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            if ctx.name != "h264" or ctx.pix_fmt != "yuv420p" or ctx.width % 2 or ctx.height % 2:
                raise TaskFailure(
                    "OutputInvalid",
                    f"{path}: {ctx.name} {ctx.pix_fmt} {ctx.width}x{ctx.height}, "
                    "expected h264 yuv420p with even dimensions",
                )
            if next(container.decode(stream), None) is None:
                raise TaskFailure("OutputInvalid", f"{path}: no decodable frame")
    except av.error.FFmpegError as exc:
        raise TaskFailure("OutputInvalid", f"{path} is not readable media: {exc}") from None


def call_ffmpeg(args: list[str], timeout_s: float, meter: CpuMeter) -> ProcessStats:
    """``run_ffmpeg`` that adds the child's CPU to ``meter`` and tells a timeout apart.

    Raises:
        TaskFailure: ``Timeout`` (killed by our timer; not retried).
        FFmpegError: any other non-zero exit (``classify`` decides on retry).

    Note: a failed child's CPU is not in ``FFmpegError``, so failed attempts count only
    the worker thread's CPU.
    """
    started = time.perf_counter()
    try:
        stats = run_ffmpeg(args, timeout_s=timeout_s)
    except FFmpegError as exc:
        if exc.returncode < 0 and time.perf_counter() - started >= timeout_s:
            raise TaskFailure("Timeout", f"ffmpeg did not finish within {timeout_s:g} s") from None
        raise
    meter.add_child(stats.cpu_seconds)
    return stats


def raw_frame_shape(pix_fmt: str, width: int, height: int) -> tuple[int, ...]:
    """Array shape of one raw frame as PyAV's ``to_ndarray`` gives it: ``bgr24`` →
    ``(height, width, 3)``, ``yuv420p`` → ``(3·height/2, width)`` (I420 planes stacked).

    Raises:
        ValueError: another format, or ``yuv420p`` with an odd size (PyAV refuses it).
    """
    if pix_fmt == "bgr24":
        return (height, width, 3)
    if pix_fmt == "yuv420p":
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p frames need even sizes, got {width}x{height}")
        return (height * 3 // 2, width)
    raise ValueError(f"unsupported raw pixel format {pix_fmt!r}")


class RawVideoEncoder:
    """An ffmpeg libx264 child fed raw frames on stdin (``ENCODE_ARGS`` output).

    Use as a context manager; ``write`` each frame, then ``close``. The child's own CPU
    (``os.wait4`` rusage) is added to ``meter`` when it is reaped, whether it succeeded or not.

    Args:
        output_path: mp4 to write.
        width, height: frame size in pixels.
        fps: frame rate (exact fraction), stamped on the constant-rate output.
        timeout_s: the child is killed after this many seconds.
        meter: receives the child's CPU seconds.
        pix_fmt: ``bgr24`` (frames ``height x width x 3`` uint8) or ``yuv420p`` (I420,
            ``3·height/2 x width`` uint8, even sizes), as PyAV's ``to_ndarray`` gives them.
    """

    def __init__(
        self,
        output_path: str,
        width: int,
        height: int,
        fps: Fraction,
        timeout_s: float,
        meter: CpuMeter,
        pix_fmt: str = "bgr24",
    ):
        self.shape = raw_frame_shape(pix_fmt, width, height)
        self._meter = meter
        self._timeout_s = timeout_s
        self._timed_out = False
        args = self.args(width, height, fps, output_path, pix_fmt)
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._stderr: deque[str] = deque(maxlen=5)
        # Drain stderr on a thread so a chatty child can never block on a full pipe while we
        # block writing frames to it.
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        self._killer = threading.Timer(timeout_s, self._kill_on_timeout)
        self._killer.start()
        self._reaped = False

    @staticmethod
    def args(width: int, height: int, fps: Fraction, output_path: str, pix_fmt: str = "bgr24") -> list[str]:
        """The encoder's ffmpeg arguments: raw ``pix_fmt`` frames of ``width x height`` at
        ``fps`` on stdin, cropped to even dimensions (BGR converted by ``BGR_TO_YUV420``),
        encoded with ``ENCODE_ARGS`` to an mp4."""
        graph = EVEN_CROP if pix_fmt == "yuv420p" else f"{EVEN_CROP},{BGR_TO_YUV420}"
        return [
            "-f",
            "rawvideo",
            "-pix_fmt",
            pix_fmt,
            "-s",
            f"{width}x{height}",
            "-framerate",
            f"{fps.numerator}/{fps.denominator}",
            "-i",
            "pipe:0",
            "-vf",
            graph,
            *ENCODE_ARGS,
            "-f",
            "mp4",
            output_path,
        ]

    def _drain(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line.decode("utf-8", "replace").rstrip())

    def _kill_on_timeout(self) -> None:
        self._timed_out = True
        self._kill()

    def _kill(self) -> None:
        # os.kill, not Popen.kill: Popen polls first, and that poll could reap an exited child
        # and rob wait4 of its rusage. An unreaped child's pid cannot be reused, so this is safe
        # until _reap, which stops the timer before waiting.
        os.kill(self._proc.pid, signal.SIGKILL)

    def write(self, frame: np.ndarray) -> None:
        """Send one frame.

        Raises:
            ValueError: wrong shape or dtype.
            TaskFailure / FFmpegError: the encoder died (see ``close``).
        """
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype}, encoder expects {self.shape} uint8")
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data.cast("B"))  # .data: the array's memoryview
        except BrokenPipeError:
            self._finish()  # raises with the child's own error when it failed
            raise TaskFailure("EncoderError", "the encoder exited before the last frame") from None

    def close(self) -> ProcessStats:
        """End the stream and wait for the encoder.

        Raises:
            TaskFailure: ``Timeout`` when our timer killed it.
            FFmpegError: any other non-zero exit, with its stderr tail.
        """
        return self._finish()

    def _finish(self) -> ProcessStats:
        started = time.perf_counter()
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        returncode, cpu, rss = self._reap()
        if returncode != 0:
            if self._timed_out:
                raise TaskFailure("Timeout", f"encoder did not finish within {self._timeout_s:g} s")
            raise FFmpegError(returncode, "\n".join(self._stderr) or "no output")
        return ProcessStats(wall_ms=int((time.perf_counter() - started) * 1000), cpu_seconds=cpu, max_rss_kb=rss)

    def _reap(self) -> tuple[int, float, int]:
        if self._reaped:
            return self._proc.returncode, 0.0, 0
        self._drainer.join()  # stderr at EOF: the child has exited (or is exiting)
        assert self._proc.stderr is not None
        self._proc.stderr.close()
        self._killer.cancel()
        self._killer.join()  # no kill can land after the pid is reaped (and maybe reused)
        # wait4, not Popen.wait: only wait4 hands back this child's own rusage.
        _, status, usage = os.wait4(self._proc.pid, 0)
        self._reaped = True
        self._proc.returncode = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        self._meter.add_child(cpu)
        return self._proc.returncode, cpu, usage.ru_maxrss

    def abort(self) -> None:
        """Kill and reap the child (after a failure upstream); its CPU still counts."""
        if not self._reaped:
            self._kill()
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            except OSError:
                pass
            self._reap()

    def __enter__(self) -> RawVideoEncoder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def ffmpeg_health(filters: tuple[str, ...] = (), encoder: str = "libx264") -> Health:
    """Cheap check that the ffmpeg binary runs and has ``encoder`` and every filter in
    ``filters`` (two ``ffmpeg -hide_banner -filters/-encoders`` listings, ~50 ms).

    Never raises: problems come back as ``Health(ok=False, detail=...)``.
    """
    started = time.perf_counter()
    try:
        listings = {
            flag: subprocess.run(
                [ffmpeg_exe(), "-hide_banner", flag], capture_output=True, text=True, timeout=15, check=True
            ).stdout
            for flag in ("-filters", "-encoders")
        }
    except (OSError, subprocess.SubprocessError) as exc:
        return Health(
            False, f"ffmpeg does not run: {type(exc).__name__}: {exc}", int((time.perf_counter() - started) * 1000)
        )
    latency = int((time.perf_counter() - started) * 1000)
    have_filters = _listed_names(listings["-filters"])
    have_encoders = _listed_names(listings["-encoders"])
    missing = sorted(set(filters) - have_filters)
    if encoder not in have_encoders:
        missing.append(f"encoder {encoder}")
    if missing:
        return Health(False, f"ffmpeg lacks: {', '.join(missing)}", latency)
    return Health(True, f"ffmpeg ok ({', '.join([encoder, *sorted(set(filters))])})", latency)


def _listed_names(listing: str) -> set[str]:
    # ffmpeg listing lines look like " TS colortemperature  V->V  Adjust ..." (flags, name, …).
    return {parts[1] for parts in (line.split() for line in listing.splitlines()) if len(parts) > 2}


class LocalAdapter:
    """Base of adapters that do the work on this machine, inside ``execute``.

    ``submit`` runs the task synchronously and returns its ``task_id`` as the handle; ``poll``
    returns the stored result. ``execute`` waits for one of ``spec.concurrency`` slots (the
    wait is ``queue_wait_ms``), checks the input, runs up to ``MAX_ATTEMPTS`` attempts of
    ``_render`` (a second only after a transient failure), verifies the output and moves it
    to ``task.output_path``. It never raises for a task failure.

    Subclasses set ``adapter_kind`` (the registry's ``adapter`` value they run) and implement
    ``_render(task, out_path, meter, timings)`` (write an mp4 to ``out_path``; raise on
    failure), ``recipe(task)`` (what ``_render`` runs, as data) and ``health_check``.

    Raises:
        ValueError: ``spec`` is a provider of another adapter kind.
    """

    adapter_kind: str  # set by each subclass, e.g. "ffmpeg"

    def __init__(self, spec: ProviderSpec):
        if spec.adapter != self.adapter_kind:
            raise ValueError(f"{spec.provider_id} is an {spec.adapter} provider, not {self.adapter_kind}")
        self.spec = spec
        self.provider_id = spec.provider_id
        self.provider = spec.model_dump(mode="json")
        self._slots = threading.BoundedSemaphore(spec.concurrency)
        self._results: OrderedDict[str, TaskResult] = OrderedDict()
        self._results_lock = threading.Lock()

    # -- protocol ------------------------------------------------------------------------------

    def supports(self, effect_type: str) -> bool:
        """True when the registry declares ``effect_type`` for this provider."""
        return effect_type in self.spec.effect_types

    def submit(self, task: ProviderTask) -> str:
        """Run the task now (local work is synchronous); the handle is ``task.task_id``."""
        result = self.execute(task)
        with self._results_lock:
            self._results[task.task_id] = result
            self._results.move_to_end(task.task_id)
            while len(self._results) > _RESULTS_KEPT:
                self._results.popitem(last=False)
        return task.task_id

    def poll(self, handle: str) -> TaskResult | None:
        """The result stored by ``submit`` (never pending: submit already finished).

        Raises:
            KeyError: the handle was not submitted to this adapter instance (results live in
                the submitting process's memory).
        """
        with self._results_lock:
            if handle not in self._results:
                raise KeyError(
                    f"{self.provider_id}: unknown handle {handle!r} (local results "
                    "live in the adapter instance that ran submit)"
                )
            return self._results[handle]

    def health_check(self) -> Health:  # pragma: no cover - subclasses implement
        raise NotImplementedError

    def execute(self, task: ProviderTask) -> TaskResult:
        """Run ``task`` to completion and report it (see class docstring). Never raises for
        task failure."""
        waited = time.perf_counter()
        with self._slots:
            queue_wait_ms = int((time.perf_counter() - waited) * 1000)
            return self._execute(task, queue_wait_ms)

    # -- lifecycle -----------------------------------------------------------------------------

    def _execute(self, task: ProviderTask, queue_wait_ms: int) -> TaskResult:
        started = time.perf_counter()
        meter = CpuMeter()
        timings: dict[str, int] = {}
        attempts = ran = 0  # tries, and tries that got past the input check (billed)

        def attempt() -> None:
            nonlocal attempts, ran
            attempts += 1
            self._check_task(task)
            ran += 1
            self._attempt(task, meter, timings)

        def log_retry(state: RetryCallState) -> None:
            failure = classify(state.outcome.exception())  # type: ignore[union-attr, arg-type]
            log.warning(
                "provider_task_retry",
                provider_id=self.provider_id,
                task_id=task.task_id,
                error_class=failure.error_class,
                error_message=failure.message[:_MESSAGE_CHARS],
                event_type="provider_task_retry",
                economic_impact_usd=0.0,  # the attempt's CPU time is in the task's measured compute
                urgency="low",
                operator_action="None if the retry succeeds; else check host memory and processes.",
                runbook="docs/runbooks/platform-logs.md#provider_task_retry",
            )

        retrying = transient_failures(
            lambda exc: classify(exc).transient, MAX_ATTEMPTS, RETRY_PAUSE_S, before_sleep=log_retry
        )
        try:
            retrying(attempt)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a failed result
            return self._result(task, "failed", started, meter, queue_wait_ms, attempts, ran, timings, classify(exc))
        return self._result(task, "succeeded", started, meter, queue_wait_ms, attempts, ran, timings)

    def _check_task(self, task: ProviderTask) -> None:
        if not self.supports(task.effect_type):
            raise TaskFailure(
                "UnsupportedEffect",
                f"{self.provider_id} does not run {task.effect_type!r} (it runs {', '.join(self.spec.effect_types)})",
            )
        if not os.path.isfile(task.input_path):
            raise TaskFailure("InputMissing", f"input {task.input_path} does not exist")

    def _attempt(self, task: ProviderTask, meter: CpuMeter, timings: dict[str, int]) -> None:
        out = Path(task.output_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Render beside the target and rename: a reader never sees a half-written output, and
        # a failed attempt leaves nothing at output_path.
        partial = out.with_name(f".{out.name}.partial")
        try:
            self._render(task, str(partial), meter, timings)
            t0 = time.perf_counter()
            verify_output(str(partial))
            timings["verify"] = int((time.perf_counter() - t0) * 1000)
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)

    def _render(
        self, task: ProviderTask, out_path: str, meter: CpuMeter, timings: dict[str, int]
    ) -> None:  # pragma: no cover - subclasses implement
        raise NotImplementedError

    def _result(
        self,
        task: ProviderTask,
        status: str,
        started: float,
        meter: CpuMeter,
        queue_wait_ms: int,
        attempts: int,
        ran: int,
        timings: dict[str, int],
        failure: Failure | None = None,
    ) -> TaskResult:
        ok = status == "succeeded"
        return TaskResult(
            task_id=task.task_id,
            status=status,
            output_path=task.output_path if ok else None,
            duration_ms=int((time.perf_counter() - started) * 1000),
            compute_seconds=round(meter.seconds, 4),
            instance_type=self.spec.instance_type,
            queue_wait_ms=queue_wait_ms,
            # Billed per call that reached the provider (0 for the shipped local providers).
            partner_cost_usd=self.spec.cost.partner_cost_usd_per_call * ran,
            attempts=attempts,
            error_class=None if ok else failure.error_class,  # type: ignore[union-attr]
            error_message=None if ok else failure.message[:_MESSAGE_CHARS],  # type: ignore[union-attr]
            node_timings=dict(timings),
        )


def workflow_names(task: ProviderTask, facts: VideoFacts) -> dict[str, Any]:
    """The scope of workflow expressions: the input's facts, then the task's effect params
    (params win: an effect may legitimately have a param called ``duration``)."""
    return {**facts.names(), **task.params}
