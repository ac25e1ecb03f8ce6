"""One decode pass of an example video (M2): its scene cuts, its sampled frame pairs, its length.

Every frame is decoded once, with PyAV (``resources.video.probe.open_video``, the reader every
stage shares), and

* converted to BGR at the size the library's ``SceneManager`` would shrink it to and scored by
  PySceneDetect's ``ContentDetector`` (``scenes.SceneCuts``) with a ``FrameTimecode`` of the
  frame's own timestamp (``scenes.StreamClock``), so the detector sees the frames and clock it
  would see through the library's own decoder, without a second decode;
* converted to RGB at ``ANALYSIS_MAX_SIDE`` when it is a sampled frame or a sampled frame's
  partner, and measured (the caller's ``measure_sample`` / ``measure_partner``: the motion,
  colour and texture measures of ``features``) as it is decoded, not kept until the end.

The decoding thread decodes and hands each frame over: the detector's conversions and scores
run on one worker thread (``worker.SerialWorker``), in frame order, so on the second core they
overlap the decoding instead of following it. The sampled frames' conversions and measures need
no order (``worker.SharedJobs``): the worker takes them between the detector's frames, and the
decoding thread takes them whenever the worker is behind, instead of waiting for it. The
decoder runs without frame threads, whose extra threads would compete with the worker for that
core.

Before, PySceneDetect opened the file again with its OpenCV backend (about half of the
analysis time); the cut times are the same (the frame's timestamp from the stream's start, the
clock of both PySceneDetect backends, and the detector's frames differ only by the downscaling
filter: see ``scenes``); every field of the analysis of the 14 golden videos and their proxies
came out unchanged, and ``tests/test_analysis.py`` holds a real MP4 and AVI to it.

Conversions run with ``threads=1``: swscale's automatic slice threads cost more than they save
on frames this small (twice the CPU, and on a busy machine up to 10x the wall time of a
conversion, waiting for the pool), and give identical pixels. Each kind of conversion keeps
one swscale context for the whole pass (a ``VideoReformatter``; PyAV's
``VideoFrame.to_ndarray`` sets one up per frame), with identical pixels.

Which frames are sampled depends on the frame count, which a demux-only pass reads first
(packets, not decoded: a few ms, and not the header's claim).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Generic, TypeVar

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from assets.analysis.scenes import SceneCuts, StreamClock
from assets.analysis.worker import SerialWorker, SharedJobs
from resources.video.probe import open_video

# Sampled frames are scaled so their longest side is at most this many px: color means and
# frame differences barely change with resolution, and conversion cost falls with the square.
ANALYSIS_MAX_SIDE = 320

# Motion is measured between a sampled frame and the first frame at least MIN_PAIR_GAP_S later
# (see features.motion_level). 1/30 s is the proxy's shortest frame interval (M1 caps the proxy
# at 30 fps) minus 1 ms of timestamp rounding.
MIN_PAIR_GAP_S = 1 / 30 - 0.001

# Calls that may wait for the worker: enough to ride out a slow frame on either side (a
# detector frame is ~100 kB, a sampled frame ~130 kB).
WORKER_BACKLOG = 8

S = TypeVar("S")
P = TypeVar("P")


def _keep(rgb: np.ndarray) -> np.ndarray:
    return rgb


@dataclass(frozen=True)
class ExampleFrames(Generic[S, P]):
    """What one decode pass of an example video measured.

    Attributes:
        cuts_s: start of every shot after the first, s from the stream's start (``scenes``:
            ``ContentDetector`` with its defaults); the stream's start is the first frame's
            time but for files whose first frame is stamped later (an AVI at 1/fps).
        pairs: ``(t_s, sample, partner_t_s, partner)`` by ascending ``t_s``, times from the
            first decoded frame; ``sample`` and ``partner`` are what ``measure_sample`` and
            ``measure_partner`` gave for the two frames' RGB uint8 (h, w, 3), longest side <=
            ANALYSIS_MAX_SIDE (the RGB frames themselves by default); the partner is the first
            frame at least MIN_PAIR_GAP_S after the sampled one.
        duration_s: span of the decoded timestamps plus one frame (1 / fps).
        frames: frames decoded.
    """

    cuts_s: list[float]
    pairs: list[tuple[float, S, float, P]]
    duration_s: float
    frames: int


def decode_example(
    path: str,
    sample_frames: int,
    fps: float,
    measure_sample: Callable[[np.ndarray], S] = _keep,  # type: ignore[assignment]
    measure_partner: Callable[[np.ndarray], P] = _keep,  # type: ignore[assignment]
) -> ExampleFrames[S, P]:
    """Decode ``path`` once: scene cuts, ``sample_frames`` evenly spaced frames with a partner
    each, measured as they are decoded, and the duration.

    Args:
        path: local video file (normally the M1 proxy).
        sample_frames: frames sampled, evenly spread by index over the real frame count.
        fps: the decoded frame rate (``VideoProbe.fps``): places frames that carry no
            timestamp and is the detector's rate when the stream declares none.
        measure_sample, measure_partner: called with each sampled frame / partner frame, RGB
            uint8 (h, w, 3), on the worker thread or on the calling one and in any order (they
            must not share state); a frame that is both gets both calls. Frames wait for them
            in memory no longer than ``WORKER_BACKLOG`` calls: a job waits only beside its
            ticket in the worker's queue.

    Raises:
        ValueError: fewer than 2 frames decoded, or no two frames MIN_PAIR_GAP_S apart.
        av.FFmpegError / OSError: the file cannot be read (it should have passed M1's probe).
        whatever a measure or the detector raised.
    """
    starts = _pair_starts(_packet_count(path), sample_frames)
    paired: list[tuple[float, int, float, int]] = []  # (t, sampled index, partner t, partner index)
    waiting: list[tuple[float, int]] = []  # sampled frames whose partner is not decoded yet
    times: list[float] = []
    container, stream = open_video(path)
    jobs = SharedJobs()  # the sampled frames' conversions and measures, taken by either thread
    with container, SerialWorker("analysis", WORKER_BACKLOG) as worker:
        # No frame threading: its threads would take the core the worker needs (the decode
        # alone is faster with them, the whole pass slower).
        rate = Fraction(stream.average_rate or stream.guessed_rate or Fraction(fps).limit_denominator(1001))
        clock = StreamClock(stream, rate)
        scenes: SceneCuts | None = None
        sampler: _Sampler[S, P] | None = None
        t0 = None
        for index, frame in enumerate(container.decode(stream)):
            if scenes is None or sampler is None:
                scenes = SceneCuts(frame.width, frame.height)
                sampler = _Sampler(frame.width, frame.height, measure_sample, measure_partner)
            # Times from the first frame: a container's start offset (MPEG-PS, edit lists)
            # would otherwise misplace cuts among the pairs.
            t = frame.time if frame.time is not None else index / fps
            t0 = t if t0 is None else t0
            t -= t0
            times.append(t)
            worker.submit(scenes.feed, clock(frame, index), frame, spare=jobs.run_one)
            done = [w for w in waiting if t >= w[0] + MIN_PAIR_GAP_S]
            if index not in starts and not done:
                continue
            jobs.add(sampler.measure, index, frame, index in starts, bool(done))
            worker.submit(jobs.run_one, spare=jobs.run_one)  # a ticket: the worker runs one if any is left
            if done:
                paired += [(w_t, w_index, t, index) for w_t, w_index in done]
                waiting = [w for w in waiting if t < w[0] + MIN_PAIR_GAP_S]
            if index in starts:
                waiting.append((t, index))
        jobs.drain()
        worker.finish()
    cuts_s = scenes.finish() if scenes is not None else []
    if len(times) < 2 or sampler is None:
        raise ValueError(f"{path}: {len(times)} frame(s) decoded, at least 2 are needed")
    if not paired:  # e.g. 2 frames 1 ms apart
        raise ValueError(f"{path}: no two frames are {MIN_PAIR_GAP_S:.3f} s apart")
    return ExampleFrames(
        cuts_s=cuts_s,
        pairs=[(t, sampler.samples[i], t2, sampler.partners[j]) for t, i, t2, j in sorted(paired, key=lambda p: p[0])],
        duration_s=max(times) - min(times) + 1 / fps,
        frames=len(times),
    )


class _Sampler(Generic[S, P]):
    """The sampled frames and partners of one pass, converted to RGB at ANALYSIS_MAX_SIDE and
    measured on whichever thread takes the job; the results by frame index. One swscale
    context per thread: a context is not safe to share."""

    def __init__(
        self,
        width: int,
        height: int,
        measure_sample: Callable[[np.ndarray], S],
        measure_partner: Callable[[np.ndarray], P],
    ):
        self._size = _analysis_size(width, height)
        self._local = threading.local()
        self._measure_sample, self._measure_partner = measure_sample, measure_partner
        self.samples: dict[int, S] = {}
        self.partners: dict[int, P] = {}

    def measure(self, index: int, frame: av.VideoFrame, sampled: bool, partnered: bool) -> None:
        """Convert frame ``index`` and measure it as a sampled frame and/or a partner."""
        reformatter = getattr(self._local, "reformatter", None)
        if reformatter is None:
            reformatter = self._local.reformatter = VideoReformatter()
        rgb = reformatter.reformat(
            frame, width=self._size[0], height=self._size[1], format="rgb24", threads=1
        ).to_ndarray()
        if sampled:
            self.samples[index] = self._measure_sample(rgb)
        if partnered:
            self.partners[index] = self._measure_partner(rgb)


def _packet_count(path: str) -> int:
    """Video packets that carry data: the frame count, from a demux-only pass."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        return sum(1 for p in container.demux(stream) if p.size)


def _pair_starts(frame_count: int, sample_frames: int) -> set[int]:
    """Indices of the first frame of each pair, evenly spread over 0..frame_count-2."""
    last = max(frame_count - 2, 0)
    if sample_frames <= 1:
        return {last // 2}
    return {round(k * last / (sample_frames - 1)) for k in range(sample_frames)}


def _analysis_size(width: int, height: int) -> tuple[int, int]:
    """(w, h) with the longest side <= ANALYSIS_MAX_SIDE, aspect kept, never upscaled."""
    scale = min(1.0, ANALYSIS_MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
