"""Decode a video once into the arrays the quality metrics need.

One pass over every frame (PyAV) yields:

* per-frame temporal statistics at the *working size* (longer side <= ``MAX_SIDE`` px):
  consecutive-frame mean absolute luma difference, a coarse grid of regional luma means, a
  black-frame flag, the share of flat cells and the two-sided temporal outlier level (the
  inputs of ``detectors``);
* per-frame artifact statistics at the native size (``artifacts.blockiness``, ``noise``,
  ``banding``: the 8x8 block grid and 1-level steps only exist there);
* the frames shown at ``samples`` relative time positions ``(i + 0.5) / samples`` of the
  video's presentation interval, as working-size RGB + luma and native-resolution luma.

Sampling by *relative* position means a 2x slow-motion output is sampled at the same content
instants as its input. Target instants come from the container's duration; when that
disagrees with the decoded timeline (broken metadata) the video is decoded a second time with
the measured duration, so the matching never rests on wrong metadata.

Luma is the decoded Y plane itself (8-bit planar YUV), i.e. the signal the encoder coded, in
whatever range it was coded (limited range 16..235 for the H.264 proxies here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import cv2
import numpy as np

from resources.video.probe import NoVideoStream, VideoHeader, open_video, read_header

from . import artifacts

#: Longer side of the working size in px: metrics on <= 320 px frames are fast and still
#: resolve structure (brief: "downscaled to <= 320 px for speed").
MAX_SIDE = 320

#: Regional-luma grid cell (px at working size) used for flicker: coarse enough that pixel
#: noise averages out, fine enough that local brightness pumping does not cancel globally.
GRID_CELL = 16

#: Black frame: at least ``BLACK_RATIO`` of the pixels at or below ``BLACK_LUMA``. These are
#: ffmpeg ``blackdetect``'s defaults (picture_black_ratio_th=0.98, pixel_black_th=0.10),
#: with 0.10 mapped onto limited-range luma: 16 + 0.10 * (235 - 16) = 37.9.
BLACK_LUMA = 38
BLACK_RATIO = 0.98

#: Cell (px at working size) of the per-frame luma mean and standard-deviation maps that the
#: flat-block detector reads.
FLAT_CELL = 8

# Planar 8-bit YUV formats whose plane 0 is the luma we can read without conversion.
_YUV8 = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21"}

# Tolerance when comparing a frame timestamp with a target instant (s): absorbs the rounding
# of pts * time_base so a frame starting exactly at a target is the one shown there.
_EPS_S = 1e-6


class VideoUnreadable(Exception):
    """The file is missing, is not a media file, or has no video stream. ``reason`` is readable."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class VideoMeta:
    """Container/stream metadata of a video (what the file *claims*).

    Attributes:
        path: file path.
        container: demuxer name, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``.
        major_brand: ISO-BMFF major brand (``"isom"``, ``"mp42"``; ``"qt  "`` is QuickTime),
            ``""`` when the container has none.
        codec: decoder name, e.g. ``"h264"``.
        width, height: coded picture size in px.
        fps: average frame rate (frames/s), 0.0 when unknown.
        pix_fmt: pixel format name, e.g. ``"yuv420p"`` (``""`` when unknown).
        bit_rate: video bit rate in bit/s (stream, else container, else size*8/duration; 0
            when unknown).
        declared_frames: frame count from the container index, 0 when unknown.
        duration_s: video duration from metadata in seconds, 0.0 when unknown.
    """

    path: str
    container: str
    major_brand: str
    codec: str
    width: int
    height: int
    fps: float
    pix_fmt: str
    bit_rate: int
    declared_frames: int
    duration_s: float


@dataclass(frozen=True)
class SampledFrame:
    """The frame shown at one sampled relative position.

    Attributes:
        index: decoded frame index (0-based, presentation order).
        rgb: (h, w, 3) uint8 RGB at the working size.
        luma: (h, w) uint8 luma at the working size.
        luma_native: (H, W) uint8 luma at the coded size (block-grid metrics need it).
    """

    index: int
    rgb: np.ndarray
    luma: np.ndarray
    luma_native: np.ndarray


class VideoTiming:
    """A video's timeline: its claims (``meta``), frame count and frame timestamps (s), with
    the frame duration and presentation span they give. What ``align.plan`` needs; shared by
    DecodedVideo and PacketTimeline."""

    meta: VideoMeta
    frames: int
    timestamps: np.ndarray

    @property
    def frame_duration_s(self) -> float:
        """Typical frame duration in s: median timestamp step, else 1/fps, else 0."""
        if self.frames >= 2:
            step = float(np.median(np.diff(self.timestamps)))
            if step > 0:
                return step
        return 1.0 / self.meta.fps if self.meta.fps > 0 else 0.0

    @property
    def duration_s(self) -> float:
        """Presentation span in s: last - first timestamp + one frame duration."""
        if self.frames == 0:
            return 0.0
        return float(self.timestamps[-1] - self.timestamps[0]) + self.frame_duration_s


@dataclass(frozen=True)
class PacketTimeline(VideoTiming):
    """A video's frame timestamps read from its packets, nothing decoded (``packet_timeline``).

    For a file that decodes cleanly these are the decoded frames' timestamps, in a few ms
    instead of a decode; they let the full-reference pass start before the decode
    (``score``), and are checked against the decode afterwards.

    Attributes:
        meta: what the container claims.
        frames: packets that carry a frame.
        timestamps: (frames,) float64 presentation times in s, ascending.
    """

    meta: VideoMeta
    frames: int
    timestamps: np.ndarray


@dataclass(frozen=True)
class DecodedVideo(VideoTiming):
    """Everything measured in one decode of a video.

    Attributes:
        meta: what the container claims (see VideoMeta).
        work_size: (width, height) in px of the working-size arrays.
        frames: number of frames decoded.
        decode_errors: number of packets the decoder rejected (0 = decoded cleanly).
        first_error: text of the first decoder error, None when there was none.
        timestamps: (frames,) float64 presentation times in s.
        frame_mad: (frames-1,) float64 mean |luma_t - luma_{t-1}| in 8-bit levels, working size.
        grid_means: (frames, gh, gw) float32 regional luma means (GRID_CELL cells).
        black: (frames,) bool, blackdetect-style black frame flags.
        cell_mean, cell_std: (frames, ch, cw) float32 luma mean and standard deviation
            (levels) of FLAT_CELL px cells at working size.
        outlier: (frames,) float64 two-sided temporal outlier level per frame, in 8-bit
            levels: the largest, over GRID_CELL cells, of min(d(t-1,t), d(t,t+1)) - d(t-1,t+1)
            with d the cell's mean |luma difference|; 0 for the first and last frame. A frame
            unlike both neighbours while they are alike (a glitch) scores high, motion and
            cuts do not.
        blocking, noise, banding: (frames,) float64 ``artifacts.blockiness``/``noise``/
            ``banding`` of every frame's native luma.
        samples: sample slot i -> SampledFrame for slot position ``(i + 0.5) / n``; slots whose
            instant lies outside the decoded timeline are absent.
        n_samples: how many slots were requested.
    """

    meta: VideoMeta
    work_size: tuple[int, int]
    frames: int
    decode_errors: int
    first_error: str | None
    timestamps: np.ndarray
    frame_mad: np.ndarray
    grid_means: np.ndarray
    black: np.ndarray
    cell_mean: np.ndarray
    cell_std: np.ndarray
    outlier: np.ndarray
    blocking: np.ndarray
    noise: np.ndarray
    banding: np.ndarray
    samples: dict[int, SampledFrame]
    n_samples: int


def working_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """(w, h) with the aspect of ``width`` x ``height`` and the longer side <= ``max_side``.

    Never upscales; each side is at least 16 px (one ``GRID_CELL``: the flicker grid has a cell).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid frame size {width}x{height}")
    scale = min(1.0, max_side / max(width, height))
    return max(16, round(width * scale)), max(16, round(height * scale))


def sample_positions(n: int) -> np.ndarray:
    """(n,) relative positions ``(i + 0.5) / n`` in (0, 1): centres of n equal time slices."""
    if n <= 0:
        raise ValueError(f"samples must be positive, got {n}")
    return (np.arange(n, dtype=np.float64) + 0.5) / n


def probe(path: str) -> VideoMeta:
    """Read the metadata of the first video stream of ``path``.

    Raises:
        VideoUnreadable: missing file, not a media file, or no video stream.
    """
    container, stream = _open(path)
    with container:
        return _meta(path, read_header(container, stream))


def packet_timeline(path: str) -> PacketTimeline | None:
    """The frame timestamps of ``path`` from a demux-only pass (see PacketTimeline); None when
    the file cannot be read or a packet carries no timestamp (then only a decode can tell)."""
    try:
        container, stream = _open(path)
    except VideoUnreadable:
        return None
    with container:
        meta = _meta(path, read_header(container, stream))
        times = []
        try:
            for packet in container.demux(stream):
                if not packet.size:
                    continue  # the flush packet at the end
                if packet.pts is None or packet.time_base is None:
                    return None
                times.append(float(packet.pts * packet.time_base))
        except av.FFmpegError:
            return None
    return PacketTimeline(meta=meta, frames=len(times), timestamps=np.sort(np.asarray(times, dtype=np.float64)))


def decode(path: str, samples: int, work_size: tuple[int, int] | None = None) -> DecodedVideo:
    """Decode every frame of ``path``; sample ``samples`` relative positions.

    Args:
        path: local video file.
        samples: number of relative positions to keep frames for (>= 1).
        work_size: (w, h) to measure at; default ``working_size`` of the video's own size.
            Pass the *input's* working size when decoding an output so pairs align.

    Returns:
        DecodedVideo. A file whose packets are all rejected has ``frames == 0``.

    Raises:
        VideoUnreadable: missing file, not a media file, or no video stream.
        ValueError: ``samples < 1``.
    """
    positions = sample_positions(samples)
    # One open for the header and the first pass: opening probes the stream (decodes a frame).
    container, stream = _open(path)
    with container:
        meta = _meta(path, read_header(container, stream))
        if work_size is None:
            work_size = working_size(meta.width, meta.height) if meta.width > 0 else (MAX_SIDE, MAX_SIDE)
        span_hint = meta.duration_s
        if span_hint <= 0 and meta.declared_frames > 0 and meta.fps > 0:
            span_hint = meta.declared_frames / meta.fps
        video = _decode_pass(container, stream, meta, positions, work_size, span_hint)
    # Metadata duration off by more than two frames (and 2%) from the decoded timeline: the
    # relative positions would land on the wrong content, so re-sample with the measured span.
    # Not for damaged files, whose decoded span is short because frames were lost.
    tolerance = max(2 * video.frame_duration_s, 0.02 * video.duration_s)
    if video.frames and not video.decode_errors and abs(video.duration_s - span_hint) > tolerance:
        container, stream = _open(path)
        with container:
            video = _decode_pass(container, stream, meta, positions, work_size, video.duration_s)
    return video


def _open(path: str) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """``open_video`` with its failures as VideoUnreadable; the caller closes the container."""
    if not path or not os.path.isfile(path):
        raise VideoUnreadable(str(path), "file does not exist")
    try:
        return open_video(path)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoUnreadable(path, f"cannot open: {exc}") from exc
    except NoVideoStream:
        raise VideoUnreadable(path, "no video stream") from None


def _meta(path: str, header: VideoHeader) -> VideoMeta:
    duration = header.duration_s
    bit_rate = header.bit_rate
    if not bit_rate and duration > 0:
        bit_rate = int(os.path.getsize(path) * 8 / duration)
    return VideoMeta(
        path=path,
        container=header.format_name,
        major_brand=header.major_brand,
        codec=header.codec_name,
        width=header.width,
        height=header.height,
        fps=float(header.frame_rate or 0),
        pix_fmt=header.pix_fmt,
        bit_rate=bit_rate,
        declared_frames=header.nb_frames or 0,
        duration_s=duration,
    )


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """(H, W) uint8 luma of a decoded frame (a copy)."""
    if frame.format.name in _YUV8:
        plane = frame.planes[0]
        # memoryview: no copy, and a type NumPy's stubs take as a buffer on Python 3.11.
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(frame.height, plane.line_size)
        return rows[:, : frame.width].copy()
    return frame.to_ndarray(format="gray", threads=1)


def _decode_pass(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    meta: VideoMeta,
    positions: np.ndarray,
    work_size: tuple[int, int],
    span_s: float,
) -> DecodedVideo:
    w, h = work_size
    grid = (max(1, w // GRID_CELL), max(1, h // GRID_CELL))
    timestamps: list[float] = []
    mads: list[float] = []
    grids: list[np.ndarray] = []
    blacks: list[bool] = []
    cell_stats: list[tuple[np.ndarray, np.ndarray]] = []
    outliers: list[float] = [0.0]
    native_stats: list[tuple[float, float, float]] = []
    cells: list[np.ndarray] = []  # the last two frames' working-size luma (outlier needs t-1, t+1)
    # The last consecutive pair's cell differences, d(t-1, t): the outlier test of frame t
    # needs it again as d(t-1, t) beside d(t, t+1), so each pair's is computed once.
    prev_cells: np.ndarray | None = None
    samples: dict[int, SampledFrame] = {}
    errors = 0
    first_error: str | None = None
    targets: np.ndarray | None = None  # absolute instants, known once the first pts is
    next_slot = 0
    prev: tuple[int, av.VideoFrame, np.ndarray] | None = None  # (index, frame, native luma)
    prev_small: np.ndarray | None = None
    converted: dict[int, SampledFrame] = {}

    def keep(slot: int, index: int, frame: av.VideoFrame, native: np.ndarray) -> None:
        # Several slots can land on one frame (short videos): convert it once.
        if index not in converted:
            rgb = cv2.resize(frame.to_ndarray(format="rgb24", threads=1), (w, h), interpolation=cv2.INTER_AREA)
            small = cv2.resize(native, (w, h), interpolation=cv2.INTER_AREA)
            converted[index] = SampledFrame(index, rgb, small, native)
        samples[slot] = converted[index]

    # One thread per decode: where the vector is scored, every core is busy already (libvmaf's
    # ffmpeg process beside this decode, several outputs scored at once by the quality asset),
    # and frame threads cost more CPU for the same frames (29 against 18 ms for 75 frames at
    # 320 px) without a shorter wall there (docs/performance.md).
    stream.thread_type = "NONE"
    # Make the decoder reject damaged packets instead of silently concealing them (h264
    # otherwise patches broken macroblocks and returns a frame): the rejected packets are
    # the integrity evidence the gate needs. Valid streams never trigger it.
    stream.codec_context.options = {"err_detect": "explode"}
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:
            # Keep going: later keyframes may decode, and the count of rejected packets
            # is the integrity evidence.
            errors += 1
            first_error = first_error or str(exc)
            continue
        for frame in frames:
            index = len(timestamps)
            t = frame.time
            if t is None:
                t = timestamps[-1] + (1.0 / meta.fps if meta.fps else 0.04) if timestamps else 0.0
            timestamps.append(float(t))
            native = _luma(frame)
            # A same-size resize is a copy (OpenCV's shortcut): share the array instead;
            # nothing writes to either.
            small = native if native.shape == (h, w) else _resize(native, (w, h))
            pair_cells = None
            if prev_small is not None:
                # One difference image for the frame's MAD and its cell differences.
                diff = cv2.absdiff(small, prev_small)
                # The exact integer sum over the pixel count: what ``diff.mean()`` gives, in a
                # twentieth of its time.
                mads.append(cv2.sumElems(diff)[0] / diff.size)
                pair_cells = _cells(diff, grid)
            prev_small = small
            grids.append(cv2.resize(small, grid, interpolation=cv2.INTER_AREA).astype(np.float32))
            blacks.append(bool(np.count_nonzero(small <= BLACK_LUMA) >= BLACK_RATIO * small.size))
            cell_stats.append(_cell_stats(small))
            native_stats.append((artifacts.blockiness(native), artifacts.noise(native), artifacts.banding(native)))
            if len(cells) == 2 and prev_cells is not None and pair_cells is not None:
                outliers.append(_outlier(prev_cells, pair_cells, _cells(cv2.absdiff(cells[0], small), grid)))
            cells = [*cells[-1:], small]
            prev_cells = pair_cells
            if targets is None:
                targets = float(t) + positions * span_s
            # The frame shown at instant x is the last one starting at or before x: every
            # target before this frame's start belongs to the previous frame.
            while next_slot < len(targets) and targets[next_slot] < t - _EPS_S and prev:
                keep(next_slot, *prev)
                next_slot += 1
            prev = (index, frame, native)
    if prev is not None and targets is not None:
        end = timestamps[-1] + (
            float(np.median(np.diff(timestamps))) if len(timestamps) > 1 else (1.0 / meta.fps if meta.fps else 0.0)
        )
        while next_slot < len(targets) and targets[next_slot] < end - _EPS_S:
            keep(next_slot, *prev)
            next_slot += 1
    n = len(timestamps)
    outlier = np.zeros(n, dtype=np.float64)
    outlier[: min(n, len(outliers))] = outliers[:n]
    stats = np.asarray(native_stats, dtype=np.float64).reshape(-1, 3)
    cells_shape = (max(1, h // FLAT_CELL), max(1, w // FLAT_CELL))
    return DecodedVideo(
        meta=meta,
        work_size=(w, h),
        frames=n,
        decode_errors=errors,
        first_error=first_error,
        timestamps=np.asarray(timestamps, dtype=np.float64),
        frame_mad=np.asarray(mads, dtype=np.float64),
        grid_means=np.stack(grids) if grids else np.zeros((0, grid[1], grid[0]), np.float32),
        black=np.asarray(blacks, dtype=bool),
        cell_mean=_stack([m for m, _ in cell_stats], cells_shape),
        cell_std=_stack([sd for _, sd in cell_stats], cells_shape),
        outlier=outlier,
        blocking=stats[:, 0],
        noise=stats[:, 1],
        banding=stats[:, 2],
        samples=samples,
        n_samples=len(positions),
    )


def _stack(maps: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    return np.stack(maps) if maps else np.zeros((0, *shape), np.float32)


def _cell_stats(small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ch, cw) float32 luma mean and std (levels) of the FLAT_CELL cells of a working-size frame."""
    h, w = small.shape
    gw, gh = max(1, w // FLAT_CELL), max(1, h // FLAT_CELL)
    crop = small[: gh * FLAT_CELL, : gw * FLAT_CELL].astype(np.float32)
    mean = cv2.resize(crop, (gw, gh), interpolation=cv2.INTER_AREA)
    mean_sq = cv2.resize(crop * crop, (gw, gh), interpolation=cv2.INTER_AREA)
    return mean, np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))


def _cells(diff: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(gh, gw) float32 GRID_CELL means of an (h, w) uint8 absolute luma difference, levels."""
    return cv2.resize(diff.astype(np.float32), grid, interpolation=cv2.INTER_AREA)


def _resize(luma: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(luma, size, interpolation=cv2.INTER_AREA)


def _outlier(before_frame: np.ndarray, frame_after: np.ndarray, before_after: np.ndarray) -> float:
    """Two-sided temporal outlier level of a frame (see DecodedVideo.outlier), levels, from
    the cell differences (``_cells``) of (t-1, t), (t, t+1) and (t-1, t+1)."""
    excess = np.minimum(before_frame, frame_after) - before_after
    return max(0.0, float(excess.max()))
