"""What an uploaded file really is (M1): decode it, measure it, reject what is not a usable video.

Headers are only claims: container frame counts and rates are what the muxer wrote, and a
truncated upload keeps the header of the complete file. So every number on :class:`VideoProbe`
except the ``header_*`` fields comes from decoding every video frame
(``resources.video.probe.decode_timeline``); this module holds M1's rules for what is not a
usable video.

Before decoding, :func:`check_header` compares the header's declared size, frame count and
duration with the :class:`IngestLimits`: decoding allocates every frame at the size the header
declares, so a few-KB file that declares 16000x16000 pixels would otherwise cost a gigabyte of
memory and seconds of CPU before the decoded-size rule could refuse it.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import av

from resources.video.probe import (
    MissingTimestamps,
    NoVideoStream,
    Timeline,
    VideoHeader,
    decode_timeline,
    open_video,
    read_header,
)

# A decoded video whose frame timestamps cover less than this share of the duration its header
# declares is treated as cut off. Complete files cover ~100 % (every sample video here is within
# one frame); 10 % of slack absorbs headers that count a few trailing frames, while an
# interrupted upload loses far more than that. Duration, not frame count: AVI stores unchanged
# frames as empty chunks that decode to nothing (tree.avi declares 444 frames and holds 68
# pictures over the same 29.6 s), so a frame-count rule would reject valid captures.
TRUNCATION_COVERAGE = 0.9

# Demuxers that read single images: FFmpeg opens a PNG or JPEG as a one-frame "video".
_IMAGE_DEMUXER_SUFFIX = "_pipe"
_IMAGE_DEMUXERS = {"image2"}

# Leading bytes of the container formats users upload. When FFmpeg cannot open a file that starts
# like one of these, the file is a damaged or incomplete video, not some other kind of file.
_CONTAINER_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", "MP4/MOV"),
    (4, b"moov", "MP4/MOV"),
    (4, b"mdat", "MP4/MOV"),
    (4, b"free", "MP4/MOV"),
    (4, b"wide", "MP4/MOV"),
    (0, b"RIFF", "AVI"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"FLV", "FLV"),
    (0, b"OggS", "Ogg"),
    (0, b"\x00\x00\x01\xba", "MPEG-PS"),
    (0, b"\x30\x26\xb2\x75", "ASF/WMV"),
)


class VideoRejected(Exception):
    """The upload cannot be used; ``reason`` can be shown to the user as is.

    Attributes:
        code: machine-readable cause, one of ``empty_file``, ``not_a_video``, ``truncated``,
            ``still_image``, ``too_large``, ``too_long``, ``too_short``, ``bad_resolution``,
            ``too_many_frames``, ``no_video_stream``.
        reason: one plain sentence, e.g. ``"The file is 0 bytes: nothing was uploaded."``.
    """

    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class VideoProbe:
    """Measured facts about one video file.

    Attributes:
        container: PyAV/FFmpeg demuxer name as given, e.g. ``'mov,mp4,m4a,3gp,3g2,mj2'``, ``'avi'``.
        codec: video decoder name, e.g. ``'h264'``, ``'mpeg4'``, ``'cinepak'``.
        width, height: decoded picture size in pixels.
        fps: decoded frames per second, ``(frame_count - 1) / (last_pts - first_pts)`` in seconds.
            For variable-rate files this is the rate of distinct pictures, not the header rate.
        frame_count: frames actually decoded.
        duration_ms: ``last_pts - first_pts`` plus the last frame's own duration, in ms.
        bitrate: whole-file bits per second, ``bytes * 8 / duration`` (audio included).
        bytes: file size.
        pix_fmt: pixel format of the decoded frames, e.g. ``'yuv420p'``.
        has_audio: the container has at least one audio stream.
        header_fps: average frame rate the container declares (None when it declares none).
        header_frame_count: frame count the container declares (None when it declares none).
    """

    container: str
    codec: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_ms: int
    bitrate: int
    bytes: int
    pix_fmt: str
    has_audio: bool
    header_fps: float | None
    header_frame_count: int | None

    def to_dict(self) -> dict:
        """Plain ``{field: value}`` dict (JSON- and Arrow-friendly scalars only)."""
        return asdict(self)


def probe_video(path: str, limits: IngestLimits | None = None) -> VideoProbe:
    """Decode every video frame of ``path`` and measure it.

    Args:
        path: local file path.
        limits: when given, the header is checked against them (:func:`check_header`) before
            a frame is decoded; None (a file the platform made itself, e.g. a proxy) skips it.

    Returns:
        VideoProbe with decoded (not header) numbers.

    Raises:
        VideoRejected: ``empty_file`` (0 bytes); ``not_a_video`` (FFmpeg cannot read it, or it
            has no usable timestamps); ``truncated`` (it starts like a known container but cannot
            be opened, decoding fails part way, or the decoded frames cover less than
            ``TRUNCATION_COVERAGE`` of the duration the header declares); ``no_video_stream``;
            ``still_image`` (an image file, or a single decoded frame); with ``limits``, also
            ``bad_resolution``, ``too_many_frames`` or ``too_long`` from the header alone.
        OSError: the path itself cannot be read (a caller error, not bad input).
    """
    size = os.path.getsize(path)
    if size == 0:
        raise VideoRejected("empty_file", "The file is 0 bytes: nothing was uploaded.")
    try:
        container, stream = open_video(path, None if limits is None else limits.max_pixels)
    except av.FFmpegError:
        raise _unopenable(path) from None
    except NoVideoStream as exc:
        found = f"only {', '.join(exc.stream_types)}" if exc.stream_types else "no streams at all"
        raise VideoRejected("no_video_stream", f"The file has no video stream ({found}).") from None
    with container:
        header = read_header(container, stream)
        if _is_image_demuxer(header.format_name):
            kind = header.format_name.removesuffix(_IMAGE_DEMUXER_SUFFIX)  # png_pipe -> png
            if kind in _IMAGE_DEMUXERS:
                kind = header.codec_name
            raise VideoRejected("still_image", f"The file is a still image ({kind.upper()}), not a video.")
        if limits is not None:
            check_header(header, limits)
        header_fps = float(header.frame_rate) if header.frame_rate else None
        try:
            decoded = decode_timeline(container, stream, header_fps)
        except MissingTimestamps:
            raise VideoRejected("not_a_video", "The video has no timestamps and no frame rate.") from None
    return _measure(size, header, decoded)


def _measure(size: int, header: VideoHeader, decoded: Timeline) -> VideoProbe:
    """Turn the decode pass into a VideoProbe, rejecting truncated and one-frame files."""
    header_s = header.video_duration_s
    if decoded.error is not None:
        claimed = f" of the {header_s:.1f} s its header declares" if header_s else ""
        raise VideoRejected(
            "truncated",
            f"Decoding stopped with an error after {decoded.frame_count} frames "
            f"({decoded.duration_s:.1f} s{claimed}): the file is cut off or damaged.",
        )
    if decoded.frame_count == 0:
        raise VideoRejected("truncated", "The file declares a video stream but not one frame of it decodes.")
    if decoded.frame_count == 1:
        raise VideoRejected(
            "still_image",
            "The video has a single frame: it is a still image, not a video.",
        )
    span_s = decoded.span_s
    if span_s <= 0:
        raise VideoRejected("not_a_video", f"The {decoded.frame_count} frames all carry the same timestamp.")
    duration_s = decoded.duration_s
    if header_s and duration_s < TRUNCATION_COVERAGE * header_s:
        raise VideoRejected(
            "truncated",
            f"Only {duration_s:.1f} s of video could be decoded but the header declares "
            f"{header_s:.1f} s: the file is cut off.",
        )
    return VideoProbe(
        container=header.format_name,
        codec=header.codec_name,
        width=decoded.width,
        height=decoded.height,
        fps=round((decoded.frame_count - 1) / span_s, 3),  # 3 decimals keep 29.97/23.976, drop float noise
        frame_count=decoded.frame_count,
        duration_ms=round(duration_s * 1000),
        bitrate=round(size * 8 / duration_s),
        bytes=size,
        pix_fmt=decoded.pix_fmt,
        has_audio=header.has_audio,
        header_fps=float(header.frame_rate) if header.frame_rate else None,
        header_frame_count=header.nb_frames,
    )


def _is_image_demuxer(format_name: str) -> bool:
    return format_name.endswith(_IMAGE_DEMUXER_SUFFIX) or format_name in _IMAGE_DEMUXERS


def _unopenable(path: str) -> VideoRejected:
    """Classify a file FFmpeg cannot open: damaged container (truncated) or not a video at all."""
    with open(path, "rb") as f:
        head = f.read(16)
    for offset, magic, name in _CONTAINER_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return VideoRejected(
                "truncated",
                f"The file starts like a video ({name}) but cannot be read: it is incomplete or "
                "damaged (an interrupted upload usually loses the index at the end).",
            )
    return VideoRejected("not_a_video", "The file is not a video: no known video format could read it.")


@dataclass(frozen=True)
class IngestLimits:
    """Accepted range of an upload.

    Attributes:
        max_bytes: largest file size in bytes.
        max_duration_ms / min_duration_ms: accepted duration range in ms.
        min_frames: fewest decoded frames (2: one frame is a still image).
        min_side: smallest allowed width/height in px (64: below it analysis and providers have
            nothing to work with).
        max_side: largest allowed width/height in px (4096: DCI 4K, the largest that H.264
            level 5.2 decoders and the providers accept).
        max_pixels: largest picture area, width x height in px (4096x2304 = 9,437,184: the
            largest 16:9 picture within ``max_side``; H.264 level 5.2 allows 8,912,896 luma
            samples, so a 4096x4096 square would not decode on such hardware either).
        max_fps: highest frame rate in frames/s that a declared frame count is judged by (240:
            phone slow-motion capture); ``max_frames`` follows from it.
    """

    max_bytes: int
    max_duration_ms: int
    min_duration_ms: int = 500
    min_frames: int = 2
    min_side: int = 64
    max_side: int = 4096
    max_pixels: int = 4096 * 2304
    max_fps: float = 240.0

    @property
    def max_frames(self) -> int:
        """Most frames a video may declare: ``max_duration_ms`` at ``max_fps`` (28,800 for
        120 s at 240 frames/s)."""
        return math.ceil(self.max_duration_ms / 1000 * self.max_fps)


def check_header(header: VideoHeader, limits: IngestLimits) -> None:
    """Refuse a video whose header alone declares more than the limits, before any decoding.

    Checked in order: each declared side against ``max_side`` and the declared area against
    ``max_pixels``; the declared frame count (``nb_frames``) against ``limits.max_frames``;
    the video track's declared duration against ``max_duration_ms / TRUNCATION_COVERAGE``.
    That duration threshold keeps every decision the decoded checks would take: a file
    declaring more than it decodes to over ``max_duration_ms`` (too long) or to under
    ``TRUNCATION_COVERAGE`` of its declaration (truncated), so it was rejected anyway. Unknown
    values (0 or None) pass; decoding measures them.

    Raises:
        VideoRejected: ``bad_resolution``, ``too_many_frames`` or ``too_long``, with the
            declared number and the limit, e.g. ``"The video declares 16000x16000 pixels; the
            limit is 4096 pixels a side and 9,437,184 pixels a frame."``.
    """
    width, height = header.width, header.height
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise VideoRejected(
            "bad_resolution",
            f"The video declares {width}x{height} pixels; the limit is {limits.max_side} pixels a side "
            f"and {limits.max_pixels:,} pixels a frame.",
        )
    if header.nb_frames is not None and header.nb_frames > limits.max_frames:
        raise VideoRejected(
            "too_many_frames",
            f"The video declares {header.nb_frames:,} frames; the limit is {limits.max_frames:,} "
            f"({limits.max_duration_ms / 1000:.1f} s at {limits.max_fps:g} frames/s).",
        )
    declared_s = header.video_duration_s
    if declared_s is not None and declared_s * 1000 > limits.max_duration_ms / TRUNCATION_COVERAGE:
        raise VideoRejected(
            "too_long",
            f"The video declares {declared_s:.1f} s; the limit is {limits.max_duration_ms / 1000:.1f} s.",
        )


def validate(probe: VideoProbe, limits: IngestLimits) -> None:
    """Check a probed video against the limits; the first broken limit is raised.

    Raises:
        VideoRejected: ``too_large``, ``bad_resolution`` (a side or the area), ``still_image`` (fewer than
            ``min_frames``), ``too_short`` or ``too_long``, with the measured number and the
            limit in the reason, e.g. ``"The video is 185.2 s long; the limit is 120.0 s."``.
    """
    mib = 1024 * 1024
    if probe.bytes > limits.max_bytes:
        raise VideoRejected(
            "too_large",
            f"The file is {probe.bytes / mib:.1f} MiB; the limit is {limits.max_bytes / mib:.1f} MiB.",
        )
    sides = (probe.width, probe.height)
    if min(sides) < limits.min_side or max(sides) > limits.max_side:
        raise VideoRejected(
            "bad_resolution",
            f"The video is {probe.width}x{probe.height} pixels; each side must be between "
            f"{limits.min_side} and {limits.max_side} pixels.",
        )
    if probe.width * probe.height > limits.max_pixels:
        raise VideoRejected(
            "bad_resolution",
            f"The video is {probe.width}x{probe.height} pixels; the limit is {limits.max_pixels:,} pixels a frame.",
        )
    if probe.frame_count < limits.min_frames:
        raise VideoRejected(
            "still_image",
            f"The video has {probe.frame_count} frame(s); at least {limits.min_frames} are needed.",
        )
    if probe.duration_ms < limits.min_duration_ms:
        raise VideoRejected(
            "too_short",
            # Two decimals: short clips sit within tenths of a second of the limit.
            f"The video is {probe.duration_ms / 1000:.2f} s long; the minimum is "
            f"{limits.min_duration_ms / 1000:.2f} s.",
        )
    if probe.duration_ms > limits.max_duration_ms:
        raise VideoRejected(
            "too_long",
            f"The video is {probe.duration_ms / 1000:.1f} s long; the limit is {limits.max_duration_ms / 1000:.1f} s.",
        )
