"""The ``opencv`` adapter: an effect is a per-frame transform run in this process.

Pipeline per task: PyAV decodes the input on the worker thread → the registered transform
(``opencv_transforms``) maps each BGR frame → raw frames are piped into an ffmpeg libx264 child.

Why PyAV to decode: its decoder can be held to the calling thread (``thread_count = 1``), so
``time.thread_time()`` sees all the decoding CPU; ``cv2.VideoCapture`` decodes on FFmpeg worker
threads of its own that no per-thread clock can attribute to a task. It also gives the exact
frame rate fraction.

Why an ffmpeg child to encode (not PyAV's encoder): libx264 runs its own thread pool, which
inside this process would be invisible to ``thread_time`` and mixed with other tasks in any
process-wide counter; as a child its CPU is measured exactly by ``os.wait4``. It is also the
very binary and ``ENCODE_ARGS`` the ffmpeg adapter uses, so outputs of both adapters are
encoded identically and compare on the effect alone. The pipe lets the encoder work on frame
*n* while Python transforms frame *n+1*.

``compute_seconds`` = worker-thread CPU (decode + transform + colour conversion) + encoder
child CPU. Constructing an adapter calls ``cv2.setNumThreads(0)`` for the whole process so
OpenCV runs on the calling thread and its CPU lands in that thread's clock; parallelism comes
from running tasks on parallel threads instead.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import av
import cv2
import numpy as np

from resources.providers._local import (
    CpuMeter,
    LocalAdapter,
    RawVideoEncoder,
    TaskFailure,
    ffmpeg_health,
    probe_video,
    workflow_names,
)
from resources.providers.base import Health, ProviderTask
from resources.providers.opencv_transforms import TRANSFORMS, FrameTransform
from resources.providers.params import resolve
from resources.providers.registry import ProviderSpec

_pin_lock = threading.Lock()
_pinned = False


def _pin_opencv_to_calling_thread() -> None:
    """``cv2.setNumThreads(0)``, once per process: OpenCV functions then run sequentially on
    the thread that calls them (OpenCV docs, ``cv::setNumThreads``), which is what makes
    per-thread CPU accounting complete."""
    global _pinned
    with _pin_lock:
        if not _pinned:
            cv2.setNumThreads(0)
            _pinned = True


def _check_frame(name: str, image: np.ndarray, out: object) -> None:
    """A transform must return a frame like its input (same shape, uint8)."""
    if isinstance(out, np.ndarray) and out.shape == image.shape and out.dtype == np.uint8:
        return
    got = f"{out.shape} {out.dtype}" if isinstance(out, np.ndarray) else type(out).__name__
    raise TaskFailure("TransformError", f"{name} returned {got} for a {image.shape} uint8 frame")


class OpenCVAdapter(LocalAdapter):
    """Runs ``spec.workflow.transform`` frame by frame (protocol: ``resources.providers.base``).

    Output: H.264 yuv420p mp4 at the input's size and constant frame rate (the input's average
    rate: the normalized proxies are constant-rate), video only. Failures come back as failed
    ``TaskResult``s: ``InputMissing``, ``InvalidParams`` (the transform rejects its params),
    ``DecodeError``, ``TransformError`` (wrong frame shape out), ``FFmpegError`` (encoder),
    ``Timeout``, ``OutputInvalid``.

    Raises:
        ValueError: ``spec`` is not an opencv provider.
    """

    adapter_kind = "opencv"

    def __init__(self, spec: ProviderSpec):
        super().__init__(spec)
        self.workflow = spec.opencv_workflow()
        self.factory = TRANSFORMS[self.workflow.transform]
        _pin_opencv_to_calling_thread()

    def health_check(self) -> Health:
        """OpenCV is importable with the transform registered, and the encoder (ffmpeg with
        libx264) runs."""
        t0 = time.perf_counter()
        encoder = ffmpeg_health(("crop",))
        latency = int((time.perf_counter() - t0) * 1000)
        cv = f"cv2 {cv2.__version__}, transform {self.workflow.transform}"
        return Health(encoder.ok, f"{cv}; {encoder.detail}", latency)

    def _kwargs(self, task: ProviderTask, names: dict) -> dict[str, Any]:
        exprs = self.workflow.params.get(task.effect_type)
        return resolve(exprs, names) if exprs is not None else dict(task.params)

    def _transform_for(self, task: ProviderTask, names: dict) -> FrameTransform:
        kwargs = self._kwargs(task, names)
        try:
            return self.factory(**kwargs)
        except (TypeError, ValueError) as exc:
            raise TaskFailure("InvalidParams", f"{self.workflow.transform}({kwargs}): {exc}") from None

    def recipe(self, task: ProviderTask) -> dict[str, Any]:
        """``{"kind": "opencv", "transform", "kwargs", "decode", "encoder_args", "seeds"}``:
        the registered frame transform and the arguments it is built with, how frames are
        decoded (PyAV, BGR, one thread) and the encoder's arguments (``RawVideoEncoder.args``
        at the input's size and rate; ``{output}`` for the path). Transforms are
        deterministic: no seeds."""
        facts = probe_video(task.input_path)
        return {
            "kind": "opencv",
            "transform": self.workflow.transform,
            "kwargs": self._kwargs(task, workflow_names(task, facts)),
            "decode": {"library": "pyav", "format": "bgr24", "thread_count": 1},
            "encoder_args": RawVideoEncoder.args(facts.width, facts.height, facts.fps, "{output}"),
            "seeds": {},
        }

    def _render(self, task: ProviderTask, out_path: str, meter: CpuMeter, timings: dict[str, int]) -> None:
        facts = probe_video(task.input_path)
        transform = self._transform_for(task, workflow_names(task, facts))
        decode_s = transform_s = encode_s = 0.0
        with av.open(task.input_path) as container:
            stream = container.streams.video[0]
            # One decoder thread = this thread: its CPU is then in thread_time (see module doc).
            stream.codec_context.thread_count = 1
            encoder: RawVideoEncoder | None = None
            try:
                t = time.perf_counter()
                for frame in container.decode(stream):
                    # swscale on this thread too (its automatic slice threads would escape
                    # thread_time, and cost more than they save on frames this small).
                    image = frame.to_ndarray(format="bgr24", threads=1)
                    t1 = time.perf_counter()
                    out = transform(image)
                    t2 = time.perf_counter()
                    _check_frame(self.workflow.transform, image, out)
                    if encoder is None:
                        encoder = RawVideoEncoder(
                            out_path, image.shape[1], image.shape[0], facts.fps, self.spec.timeout_seconds, meter
                        )
                    encoder.write(out)
                    t3 = time.perf_counter()
                    decode_s += t1 - t
                    transform_s += t2 - t1
                    encode_s += t3 - t2
                    t = t3
                if encoder is None:
                    raise TaskFailure("DecodeError", f"{task.input_path}: no frames decoded")
                t = time.perf_counter()
                encoder.close()
                encode_s += time.perf_counter() - t
            except BaseException:
                if encoder is not None:
                    encoder.abort()
                raise
        timings.update(decode=int(decode_s * 1000), transform=int(transform_s * 1000), encode=int(encode_s * 1000))
