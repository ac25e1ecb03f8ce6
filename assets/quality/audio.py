"""The audio check of the technical gate: presence, sync and duration of the soundtrack.

* presence: when the input has an audio stream, the output must have one (an effect must not
  drop the soundtrack);
* sync: the audio starts within ``SYNC_LEAD_S`` before / ``SYNC_LAG_S`` after the video -
  the detectability thresholds of ITU-R BT.1359-1 (1998): sound ahead of picture by more than
  45 ms or behind it by more than 125 ms is noticed;
* duration: the audio lasts the video's duration within the gate's duration tolerance
  (``gate.DURATION_TOLERANCE``).

An output with audio whose input had none is still checked for sync and duration; a silent
input and a silent output pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import av

SYNC_LEAD_S = 0.045
SYNC_LAG_S = 0.125


@dataclass(frozen=True)
class Track:
    """Where a file's first audio and video streams start and how long they last (s)."""

    video_start_s: float
    audio_start_s: float | None
    audio_duration_s: float | None


def probe_track(path: str) -> Track:
    """Start/duration of the first audio stream relative to the first video stream.

    Durations come from the demuxed packets (first pts to last pts + duration), not from
    headers that a muxer may leave empty.

    Raises:
        av.FFmpegError, OSError: the file cannot be opened.
    """
    with av.open(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        video_start = 0.0
        if video is not None and video.start_time is not None and video.time_base is not None:
            video_start = float(video.start_time * video.time_base)
        if audio is None:
            return Track(video_start, None, None)
        first = last = None
        for packet in container.demux(audio):
            if packet.pts is None or packet.time_base is None:
                continue
            start = float(packet.pts * packet.time_base)
            end = start + float((packet.duration or 0) * packet.time_base)
            first = start if first is None else min(first, start)
            last = end if last is None else max(last, end)
        if first is None or last is None:
            return Track(video_start, None, 0.0)
        return Track(video_start, first, last - first)


def failures(input_path: str, output_path: str, video_duration_s: float, tolerance: float) -> list[str]:
    """Readable audio failures of ``output_path`` (empty list = pass).

    Args:
        input_path: the input the output was made from (decides whether audio is required).
        output_path: the output.
        video_duration_s: the output's decoded video duration in s.
        tolerance: relative duration tolerance (the gate's).
    """
    try:
        has_in = probe_track(input_path).audio_start_s is not None
        out = probe_track(output_path)
    except (av.FFmpegError, OSError) as exc:
        return [f"audio: cannot read streams ({exc})"]
    if out.audio_start_s is None:
        return ["audio: missing (the input has a soundtrack)"] if has_in else []
    problems = []
    offset = out.audio_start_s - out.video_start_s  # > 0: sound lags the picture
    if offset > SYNC_LAG_S or -offset > SYNC_LEAD_S:
        problems.append(
            f"audio: starts {offset * 1000:+.0f} ms from the video "
            f"(allowed -{SYNC_LEAD_S * 1000:.0f}..+{SYNC_LAG_S * 1000:.0f} ms, ITU-R BT.1359)"
        )
    if video_duration_s > 0 and abs((out.audio_duration_s or 0.0) / video_duration_s - 1.0) > tolerance:
        problems.append(
            f"audio: lasts {out.audio_duration_s or 0.0:.2f}s, video {video_duration_s:.2f}s "
            f"(tolerance {tolerance:.0%})"
        )
    return problems
