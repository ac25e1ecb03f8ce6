"""Reading a video file with PyAV: its header's claims and its decoded timeline.

Every stage that opens a video starts here: M1 ingest (measures an upload and rejects what is
unusable), M7 quality (decodes outputs and proxies into metric arrays) and the local providers
(fill a workflow with the input's size, rate and duration). This module only reads and
measures; whether a video is acceptable is each stage's own rule.

* :func:`open_video` opens a file and finds its first video stream;
* :class:`VideoHeader` (:func:`read_header`, :func:`probe_header`) is what the container and
  the stream declare, nothing decoded: headers are claims (a truncated upload keeps the
  header of the complete file);
* :class:`Timeline` (:func:`decode_timeline`) is what decoding every frame measures.

Names follow ffprobe's fields (``format_name``, ``codec_name``, ``pix_fmt``, ``nb_frames``,
``bit_rate``), with units in the name where ffprobe's are implicit (``_s`` = seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av


class NoVideoStream(Exception):
    """The file opens as media but holds no video stream.

    Attributes:
        path: the file.
        stream_types: sorted types of the streams it does hold, e.g. ``["audio"]``; empty
            when it holds none.
    """

    def __init__(self, path: str, stream_types: list[str]):
        super().__init__(f"{path} has no video stream")
        self.path = path
        self.stream_types = stream_types


class MissingTimestamps(Exception):
    """Decoded frames carry no timestamps and the header declares no frame rate to place
    them by, so the video has no timeline at all."""


@dataclass(frozen=True)
class VideoHeader:
    """What a file's container and first video stream declare (no frame decoded).

    Attributes:
        format_name: demuxer name, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"avi"``, ``"png_pipe"``.
        major_brand: ISO-BMFF major brand (``"isom"``, ``"mp42"``; ``"qt  "`` is QuickTime),
            ``""`` when the container has none.
        codec_name: video decoder name, e.g. ``"h264"`` (``""`` when unknown).
        width, height: coded picture size in px (0 when unknown).
        pix_fmt: pixel format name, e.g. ``"yuv420p"`` (``""`` when unknown).
        frame_rate: average frame rate, else FFmpeg's guessed rate, in frames/s as an exact
            fraction (e.g. 30000/1001); None when the stream declares neither.
        nb_frames: frame count from the container index; None when it declares none.
        stream_duration_s: the video stream's own duration in s; None when it has none
            (Matroska streams never do).
        tag_duration_s: the video stream's Matroska ``DURATION`` tag in s (written by FFmpeg
            and mkvmerge as ``HH:MM:SS.nnnnnnnnn``); None when absent or in another form.
        format_duration_s: the container's duration in s (that of its longest stream); None
            when unknown.
        bit_rate: declared bit rate in bit/s, the stream's else the container's; 0 when
            neither is declared.
        stream_types: type of every stream in file order, e.g. ``("video", "audio")``.
    """

    format_name: str
    major_brand: str
    codec_name: str
    width: int
    height: int
    pix_fmt: str
    frame_rate: Fraction | None
    nb_frames: int | None
    stream_duration_s: float | None
    tag_duration_s: float | None
    format_duration_s: float | None
    bit_rate: int
    stream_types: tuple[str, ...]

    @property
    def has_audio(self) -> bool:
        """The container has at least one audio stream."""
        return "audio" in self.stream_types

    @property
    def duration_s(self) -> float:
        """Best-effort duration in s: the stream's own, else the container's, else 0.0."""
        if self.stream_duration_s is not None:
            return self.stream_duration_s
        return self.format_duration_s if self.format_duration_s is not None else 0.0

    @property
    def video_duration_s(self) -> float | None:
        """Duration declared for the video track itself in s, None when it declares none.

        In order: the stream's own duration (MP4, AVI); its Matroska ``DURATION`` tag (MKV
        streams carry no duration); the container's duration, but only when video is the
        file's only stream, because otherwise it is the longest track's and a soundtrack that
        outlasts the picture would pass for part of the video.
        """
        if self.stream_duration_s:
            return self.stream_duration_s
        if self.tag_duration_s is not None:
            return self.tag_duration_s
        if self.format_duration_s and len(self.stream_types) == 1:
            return self.format_duration_s
        return None


@dataclass(frozen=True)
class Timeline:
    """What decoding every frame of a video stream measured.

    Times are seconds on the file's timeline (``pts * time_base``).

    Attributes:
        frame_count: frames decoded.
        first_s, last_s: earliest and latest frame timestamp (0.0 when no frame decoded).
        last_frame_s: how long the latest frame is shown: its own duration, else the mean
            frame interval.
        width, height, pix_fmt: picture size (px) and pixel format of the first decoded frame
            (0, 0, ``""`` when none decoded).
        error: the FFmpeg error that stopped decoding early; None when it reached the end.
    """

    frame_count: int
    first_s: float
    last_s: float
    last_frame_s: float
    width: int
    height: int
    pix_fmt: str
    error: str | None

    @property
    def span_s(self) -> float:
        """Seconds from the first frame's timestamp to the last's."""
        return self.last_s - self.first_s

    @property
    def duration_s(self) -> float:
        """Presentation duration in s: span plus the last frame's own duration; 0.0 when no
        frame decoded."""
        return self.span_s + self.last_frame_s if self.frame_count else 0.0


def open_video(
    path: str, max_pixels: int | None = None
) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open ``path`` and find its first video stream.

    Opening already decodes a frame or more: FFmpeg's stream probe decodes until it knows each
    stream's parameters, at the size the header declares (a 16000x16000 H.264 header costs
    ~500 MB and ~1 s there). ``max_pixels`` hands FFmpeg's own decoder cap (the codec option
    of that name, width x height in px) to that probe, so a frame larger than it fails to
    allocate instead. A size the bitstream's own header declares (an H.264 sequence parameter
    set) is still reported, for the caller to refuse; one that only the container claims is
    dropped and learned by decoding under the cap.

    Args:
        path: local file path.
        max_pixels: largest frame area the decoders may allocate; None = FFmpeg's default
            (no practical cap).

    Returns:
        ``(container, stream)``; the caller closes the container (``with container:``).

    Raises:
        av.FFmpegError: FFmpeg cannot open the file as media (damaged, or not media at all;
            a missing file is ``av.error.FileNotFoundError``, also an ``OSError``).
        NoVideoStream: it opens but has no video stream (the container is closed).
    """
    options = {} if max_pixels is None else {"max_pixels": str(max_pixels)}
    container = av.open(path, options=options)
    if not container.streams.video:
        types = sorted({s.type for s in container.streams})
        container.close()
        raise NoVideoStream(path, types)
    return container, container.streams.video[0]


def read_header(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> VideoHeader:
    """The :class:`VideoHeader` of an open container and one of its video streams."""
    ctx = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate
    stream_duration = None
    if stream.duration is not None and stream.time_base is not None:
        stream_duration = float(stream.duration * stream.time_base)
    return VideoHeader(
        format_name=container.format.name or "",
        major_brand=str(container.metadata.get("major_brand", "")),
        codec_name=ctx.name or "",
        width=int(ctx.width or 0),
        height=int(ctx.height or 0),
        pix_fmt=ctx.pix_fmt or "",
        frame_rate=Fraction(rate) if rate else None,
        nb_frames=stream.frames or None,
        stream_duration_s=stream_duration,
        tag_duration_s=_matroska_duration_s(stream.metadata.get("DURATION", "")),
        # Container durations are in AV_TIME_BASE units (microseconds).
        format_duration_s=None if container.duration is None else container.duration / av.time_base,
        bit_rate=int(stream.bit_rate or container.bit_rate or 0),
        stream_types=tuple(s.type for s in container.streams),
    )


def probe_header(path: str) -> VideoHeader:
    """Open ``path`` and read its :class:`VideoHeader` (headers only, nothing decoded).

    Raises:
        av.FFmpegError, NoVideoStream: as :func:`open_video`.
    """
    container, stream = open_video(path)
    with container:
        return read_header(container, stream)


def decode_timeline(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, fallback_fps: float | None
) -> Timeline:
    """Decode every frame of ``stream``, keeping only counts, first/last timestamps and size.

    Decoding stops at the first FFmpeg error, which is returned in ``Timeline.error`` (a cut
    off or damaged file). Decode only, no pixel conversion: a 10 s 640x272 H.264 clip takes
    about 0.1 s.

    Frames come out in presentation order but some demuxers (AVI with packed B-frames) stamp
    them slightly out of order, so first/last are the min/max timestamp. Raw elementary
    streams carry no pts; their frames are then placed every ``1 / fallback_fps`` s.

    Args:
        container, stream: from :func:`open_video`.
        fallback_fps: frame rate (frames/s) that places frames without pts; normally the
            header's ``frame_rate``.

    Raises:
        MissingTimestamps: frames have no pts and ``fallback_fps`` is None or 0.
    """
    # PyAV's default slice threading, not "AUTO": frame threading is ~25 % faster on 720p H.264
    # but swallows the decoder's errors on a cut-off packet, which callers need to see.
    tb = stream.time_base or Fraction(0)
    count, first, last, last_dur = 0, None, None, 0.0
    width = height = 0
    pix_fmt = ""
    error = None
    try:
        for frame in container.decode(stream):
            if frame.pts is None:
                if not fallback_fps:
                    raise MissingTimestamps("the video has no timestamps and no frame rate")
                t, dur = count / fallback_fps, 1 / fallback_fps
            else:
                t, dur = float(frame.pts * tb), float((frame.duration or 0) * tb)
            if count == 0:
                width, height, pix_fmt = frame.width, frame.height, frame.format.name
            count += 1
            first = t if first is None else min(first, t)
            if last is None or t >= last:
                last, last_dur = t, dur
    except av.FFmpegError as exc:
        error = str(exc)
    if count >= 2 and not last_dur:
        last_dur = (last - first) / (count - 1)  # decoder gave no duration: use the mean interval
    return Timeline(count, first or 0.0, last or 0.0, last_dur, width, height, pix_fmt, error)


def _matroska_duration_s(tag: str) -> float | None:
    """Seconds of an ``HH:MM:SS.nnnnnnnnn`` tag; None when empty or in another form."""
    try:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None
