"""One decode pass of an example video (M2): its scene cuts, its sampled frame pairs, its length.

Every frame is decoded once, with PyAV (``resources.video.probe.open_video``, the reader every
stage shares), and

* converted to BGR at the size the library's ``SceneManager`` would shrink it to and handed
  to PySceneDetect's ``ContentDetector`` (``scenes.SceneCuts``, on a worker thread) with a
  ``FrameTimecode`` of the frame's own timestamp (``scenes.StreamClock``), so the detector sees
  the frames and clock it would see through the library's own decoder, without a second decode;
* converted to RGB at ``ANALYSIS_MAX_SIDE`` when it is a sampled frame or a sampled frame's
  partner (the motion / colour / texture measures read those, ``features``).

Before, PySceneDetect opened the file again with its OpenCV backend (about half of the
analysis time); the cut times are the same (the frame's timestamp from the stream's start, the
clock of both PySceneDetect backends, and the detector's frames differ only by the downscaling
filter: see ``scenes``); every field of the analysis of the 14 golden videos and their proxies
came out unchanged, and ``tests/test_analysis.py`` holds a real MP4 and AVI to it.

Conversions run on the calling thread (``threads=1``): swscale's automatic slice threads cost
more than they save on frames this small (twice the CPU, and on a busy machine up to 10x the
wall time of a conversion, waiting for the pool), and give identical pixels. Each kind of
conversion keeps one swscale context for the whole pass (a ``VideoReformatter``; PyAV's
``VideoFrame.to_ndarray`` sets one up per frame), with identical pixels.

Which frames are sampled depends on the frame count, which a demux-only pass reads first
(packets, not decoded: a few ms, and not the header's claim).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from assets.analysis.scenes import SceneCuts, StreamClock
from resources.video.probe import open_video

# Sampled frames are scaled so their longest side is at most this many px: color means and
# frame differences barely change with resolution, and conversion cost falls with the square.
ANALYSIS_MAX_SIDE = 320

# Motion is measured between a sampled frame and the first frame at least MIN_PAIR_GAP_S later
# (see features.motion_level). 1/30 s is the proxy's shortest frame interval (M1 caps the proxy
# at 30 fps) minus 1 ms of timestamp rounding.
MIN_PAIR_GAP_S = 1 / 30 - 0.001

Pair = tuple[float, np.ndarray, float, np.ndarray]


@dataclass(frozen=True)
class ExampleFrames:
    """What one decode pass of an example video measured.

    Attributes:
        cuts_s: start of every shot after the first, s from the stream's start (``scenes``:
            ``ContentDetector`` with its defaults); the stream's start is the first frame's
            time but for files whose first frame is stamped later (an AVI at 1/fps).
        pairs: ``(t_s, rgb, partner_t_s, partner_rgb)`` by ascending ``t_s``, times from the
            first decoded frame, RGB uint8 (h, w, 3) with the longest side <= ANALYSIS_MAX_SIDE;
            the partner is the first frame at least MIN_PAIR_GAP_S after the sampled one.
        duration_s: span of the decoded timestamps plus one frame (1 / fps).
        frames: frames decoded.
    """

    cuts_s: list[float]
    pairs: list[Pair]
    duration_s: float
    frames: int


def decode_example(path: str, sample_frames: int, fps: float) -> ExampleFrames:
    """Decode ``path`` once: scene cuts, ``sample_frames`` evenly spaced frames with a partner
    each, and the duration.

    Args:
        path: local video file (normally the M1 proxy).
        sample_frames: frames sampled, evenly spread by index over the real frame count.
        fps: the decoded frame rate (``VideoProbe.fps``): places frames that carry no
            timestamp and is the detector's rate when the stream declares none.

    Raises:
        ValueError: fewer than 2 frames decoded, or no two frames MIN_PAIR_GAP_S apart.
        av.FFmpegError / OSError: the file cannot be read (it should have passed M1's probe).
    """
    starts = _pair_starts(_packet_count(path), sample_frames)
    pairs: list[Pair] = []
    waiting: list[tuple[float, np.ndarray]] = []  # sampled frames whose partner is not decoded yet
    times: list[float] = []
    cuts_s: list[float] = []
    container, stream = open_video(path)
    with container:
        # Frame threading (~25 % faster on 720p H.264) hides decode errors; M1's probe has
        # already rejected files that have any.
        stream.thread_type = "AUTO"
        rate = Fraction(stream.average_rate or stream.guessed_rate or Fraction(fps).limit_denominator(1001))
        clock = StreamClock(stream, rate)
        to_detector, to_sample = VideoReformatter(), VideoReformatter()
        scenes: SceneCuts | None = None
        sample_size = (0, 0)
        t0 = None
        try:
            for index, frame in enumerate(container.decode(stream)):
                if scenes is None:
                    scenes = SceneCuts(frame.width, frame.height)
                    sample_size = _analysis_size(frame.width, frame.height)
                # Times from the first frame: a container's start offset (MPEG-PS, edit lists)
                # would otherwise misplace cuts among the pairs.
                t = frame.time if frame.time is not None else index / fps
                t0 = t if t0 is None else t0
                t -= t0
                times.append(t)
                scenes.feed(clock(frame, index), frame, to_detector)
                partners = [w for w in waiting if t >= w[0] + MIN_PAIR_GAP_S]
                if index not in starts and not partners:
                    continue
                rgb = to_sample.reformat(
                    frame, width=sample_size[0], height=sample_size[1], format="rgb24", threads=1
                ).to_ndarray()
                pairs += [(w_t, w_rgb, t, rgb) for w_t, w_rgb in partners]
                waiting = [w for w in waiting if t < w[0] + MIN_PAIR_GAP_S]
                if index in starts:
                    waiting.append((t, rgb))
            cuts_s = scenes.finish() if scenes is not None else []
        finally:
            if scenes is not None:
                scenes.close()
    if len(times) < 2:
        raise ValueError(f"{path}: {len(times)} frame(s) decoded, at least 2 are needed")
    if not pairs:  # e.g. 2 frames 1 ms apart
        raise ValueError(f"{path}: no two frames are {MIN_PAIR_GAP_S:.3f} s apart")
    return ExampleFrames(
        cuts_s=cuts_s,
        pairs=sorted(pairs, key=lambda p: p[0]),
        duration_s=max(times) - min(times) + 1 / fps,
        frames=len(times),
    )


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
