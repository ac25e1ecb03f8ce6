"""The ``opencv`` adapter: an effect is a per-frame transform run in this process.

Pipeline per task: PyAV decodes the input on the worker thread → ``cv2.cvtColor`` turns each
I420 frame into BGR (``BgrFrames``) → the registered transform (``opencv_transforms``) maps it
→ raw BGR frames are piped into an ffmpeg libx264 child, which converts them back with the same
BT.601 matrix (``_local.BGR_TO_YUV420``).
A retiming transform (``opencv_transforms.RETIMING``, e.g. slow motion) takes the place of the
per-frame map: it consumes the decoded frames (in its own pixel format, e.g. I420) and yields
the output's, which run through the same loop, encoder and accounting at the input's frame
rate.

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
from collections.abc import Callable, Iterator
from typing import Any

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation, VideoReformatter

from resources.providers._local import (
    CpuMeter,
    LocalAdapter,
    RawVideoEncoder,
    TaskFailure,
    ffmpeg_health,
    probe_video,
    raw_frame_shape,
    workflow_names,
)
from resources.providers.base import Health, ProviderTask
from resources.providers.opencv_flow import StreamTransform
from resources.providers.opencv_transforms import RETIMING, TRANSFORMS, TransformFactory
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


# YUV → BGR of the per-frame path. Its inverse is the encoder's (``_local.BGR_TO_YUV420``): both BT.601
# limited range (the matrix and range swscale assumes for the untagged proxies), so an unchanged
# frame comes back as it went in. Measured on an identity pass, libx264 CRF 20 (luma PSNR
# against the input; the ffmpeg adapter's `-vf null` is 46.15 dB on the 10 s 480p Megamind clip,
# 43.51 dB on bikes.mp4): PyAV's default to_ndarray (swscale's fast SIMD converter, chroma not
# interpolated, no accurate rounding) with ffmpeg's default RGB → YUV gave 42.72 / 41.03 dB;
# cv2.cvtColor I420 → BGR (fixed-point BT.601, chroma replicated 2x2) with an accurately
# rounded encoder side gives 45.96 / 43.50 dB, at less CPU than swscale's default (0.26 against
# 0.31 s a 10 s 480p pass). swscale with ACCURATE_RND | FULL_CHR_H_INT matched its luma at
# twice the CPU (0.60 s) and 1 dB less chroma PSNR; it remains the path for what cvtColor cannot
# take (other pixel formats, full range, odd sizes).
_SWSCALE_TO_BGR = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
BGR_DECODE = {
    "yuv420p, even size, limited range": "cv2.cvtColor COLOR_YUV2BGR_I420 (BT.601 limited range)",
    "other": "swscale BILINEAR|ACCURATE_RND|FULL_CHR_H_INT, BT.601",
}


class BgrFrames:
    """Decoded frames → BGR ``(height, width, 3)`` uint8 arrays, on the calling thread, for one
    decode pass (one swscale context for the pass, used only by the fallback).

    Even-sized limited-range ``yuv420p`` frames (every normalized proxy) go through
    ``cv2.cvtColor(COLOR_YUV2BGR_I420)``; anything else through swscale with accurate rounding
    and interpolated chroma, BT.601 (``BGR_DECODE``; why: the comment above it).
    """

    def __init__(self) -> None:
        self._reformatter = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        """One frame as BGR ``(frame.height, frame.width, 3)`` uint8."""
        if (
            frame.format.name == "yuv420p"
            and frame.color_range != ColorRange.JPEG
            and not (frame.width % 2 or frame.height % 2)
        ):
            # No conversion: the three planes stacked as I420 (3H/2 x W).
            return cv2.cvtColor(frame.to_ndarray(format="yuv420p", threads=1), cv2.COLOR_YUV2BGR_I420)
        bgr = self._reformatter.reformat(
            frame, format="bgr24", src_colorspace=Colorspace.ITU601, interpolation=_SWSCALE_TO_BGR, threads=1
        )
        return bgr.to_ndarray()


def _check_frame(name: str, shape: tuple[int, ...], out: object) -> None:
    """A transform must return frames like its input's (``shape``, uint8)."""
    if isinstance(out, np.ndarray) and out.shape == shape and out.dtype == np.uint8:
        return
    got = f"{out.shape} {out.dtype}" if isinstance(out, np.ndarray) else type(out).__name__
    raise TaskFailure("TransformError", f"{name} returned {got} for a {shape} uint8 frame")


def _per_frame(factory: TransformFactory) -> Callable[..., StreamTransform]:
    """A frame-transform factory as a stream-transform factory: the frame transform mapped
    over the frames."""

    def build(**kwargs: Any) -> StreamTransform:
        transform = factory(**kwargs)
        return lambda frames: map(transform, frames)

    return build


class OpenCVAdapter(LocalAdapter):
    """Runs ``spec.workflow.transform`` frame by frame, or over the stream for a retiming
    transform (protocol: ``resources.providers.base``).

    Output: H.264 yuv420p mp4 at the input's size and constant frame rate (the input's average
    rate: the normalized proxies are constant-rate), video only; as many frames as the input,
    or as the retiming transform yields. Failures come back as failed
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
        retiming = RETIMING.get(self.workflow.transform)
        # factory(**kwargs) -> frames in → frames out; pixel_format: what frames are decoded
        # as, handed to the transform and piped to the encoder.
        self.factory: Callable[..., StreamTransform]
        if retiming is not None:
            self.factory, self.pixel_format = retiming.factory, retiming.pixel_format
        else:
            self.factory, self.pixel_format = _per_frame(TRANSFORMS[self.workflow.transform]), "bgr24"
        _pin_opencv_to_calling_thread()

    def health_check(self) -> Health:
        """OpenCV is importable with the transform registered, and the encoder (ffmpeg with
        libx264) runs."""
        t0 = time.perf_counter()
        encoder = ffmpeg_health(("crop", "scale", "format", "setparams"))  # RawVideoEncoder.args' filters
        latency = int((time.perf_counter() - t0) * 1000)
        cv = f"cv2 {cv2.__version__}, transform {self.workflow.transform}"
        return Health(encoder.ok, f"{cv}; {encoder.detail}", latency)

    def _kwargs(self, task: ProviderTask, names: dict) -> dict[str, Any]:
        exprs = self.workflow.params.get(task.effect_type)
        return resolve(exprs, names) if exprs is not None else dict(task.params)

    def _transform_for(self, task: ProviderTask, names: dict) -> StreamTransform:
        """The task's transform as frames in → frames out (a frame transform mapped over them)."""
        kwargs = self._kwargs(task, names)
        try:
            return self.factory(**kwargs)
        except (TypeError, ValueError) as exc:
            raise TaskFailure("InvalidParams", f"{self.workflow.transform}({kwargs}): {exc}") from None

    def recipe(self, task: ProviderTask) -> dict[str, Any]:
        """``{"kind": "opencv", "transform", "kwargs", "decode", "encoder_args", "seeds"}``:
        the registered transform (per frame, or retiming) and the arguments it is built with, how frames are
        decoded (PyAV, one thread; BGR through ``BGR_DECODE``, or the retiming transform's
        format) and the encoder's arguments (``RawVideoEncoder.args`` at the input's size and
        rate; ``{output}`` for the path). Transforms are deterministic: no seeds."""
        facts = probe_video(task.input_path)
        decode: dict[str, Any] = {"library": "pyav", "format": self.pixel_format, "thread_count": 1}
        if self.pixel_format == "bgr24":
            decode["to_bgr"] = BGR_DECODE
        return {
            "kind": "opencv",
            "transform": self.workflow.transform,
            "kwargs": self._kwargs(task, workflow_names(task, facts)),
            "decode": decode,
            "encoder_args": RawVideoEncoder.args(facts.width, facts.height, facts.fps, "{output}", self.pixel_format),
            "seeds": {},
        }

    def _render(self, task: ProviderTask, out_path: str, meter: CpuMeter, timings: dict[str, int]) -> None:
        facts = probe_video(task.input_path)
        transform = self._transform_for(task, workflow_names(task, facts))
        decode_s = encode_s = 0.0
        size: tuple[int, int] = (0, 0)  # width, height of the first decoded frame
        shape: tuple[int, ...] = ()  # its array shape in self.pixel_format
        with av.open(task.input_path) as container:
            stream = container.streams.video[0]
            # One decoder thread = this thread: its CPU is then in thread_time (see module doc).
            stream.codec_context.thread_count = 1
            to_bgr = BgrFrames() if self.pixel_format == "bgr24" else None

            def decoded() -> Iterator[np.ndarray]:
                nonlocal decode_s, size, shape
                t = time.perf_counter()
                for frame in container.decode(stream):
                    if not shape:
                        size = (frame.width, frame.height)
                        try:
                            shape = raw_frame_shape(self.pixel_format, *size)
                        except ValueError as exc:
                            raise TaskFailure("DecodeError", f"{task.input_path}: {exc}") from None
                    # Conversions on this thread too (swscale's automatic slice threads would
                    # escape thread_time, and cost more than they save on frames this small).
                    image = to_bgr(frame) if to_bgr else frame.to_ndarray(format=self.pixel_format, threads=1)
                    decode_s += time.perf_counter() - t
                    yield image
                    t = time.perf_counter()

            encoder: RawVideoEncoder | None = None
            started = time.perf_counter()
            try:
                # Time between the decoder's yields and the encoder's writes is the transform's.
                for out in transform(decoded()):
                    t = time.perf_counter()
                    _check_frame(self.workflow.transform, shape, out)
                    if encoder is None:
                        encoder = RawVideoEncoder(
                            out_path,
                            *size,
                            facts.fps,
                            self.spec.timeout_seconds,
                            meter,
                            self.pixel_format,
                        )
                    encoder.write(out)
                    encode_s += time.perf_counter() - t
                if encoder is None:
                    raise TaskFailure("DecodeError", f"{task.input_path}: no frames decoded")
                t = time.perf_counter()
                encoder.close()
                encode_s += time.perf_counter() - t
            except BaseException:
                if encoder is not None:
                    encoder.abort()
                raise
            transform_s = time.perf_counter() - started - decode_s - encode_s
        timings.update(decode=int(decode_s * 1000), transform=int(transform_s * 1000), encode=int(encode_s * 1000))
