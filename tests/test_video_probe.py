"""The shared video reader (resources/video/probe.py) and the stages that read through it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from assets.ingest import probe_video as ingest_probe
from assets.quality import frames
from resources.ffmpeg import run_ffmpeg
from resources.providers import _local
from resources.video.probe import (
    MissingTimestamps,
    NoVideoStream,
    VideoHeader,
    decode_timeline,
    open_video,
    probe_header,
)
from tests.clips import lavfi_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    """60 frames (2.002 s) of 30000/1001 fps H.264 with 2 s of AAC sound."""
    dst = tmp_path_factory.mktemp("probe") / "clip.mp4"
    run_ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=320x240:r=30000/1001",
            "-f",
            "lavfi",
            "-i",
            "sine=d=2",
            "-frames:v",
            "60",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            str(dst),
        ],
        timeout_s=60,
    )
    return str(dst)


def test_header_reads_the_claims(clip):
    header = probe_header(clip)
    assert header.format_name == "mov,mp4,m4a,3gp,3g2,mj2" and header.major_brand == "isom"
    assert (header.codec_name, header.pix_fmt, header.width, header.height) == ("h264", "yuv420p", 320, 240)
    assert header.frame_rate == Fraction(30000, 1001)
    assert header.nb_frames == 60
    assert header.stream_duration_s == pytest.approx(2.0, abs=0.05)
    assert header.has_audio and header.stream_types == ("video", "audio")
    assert header.bit_rate > 0


def test_every_stage_reports_the_same_header(clip):
    header = probe_header(clip)
    assert ingest_probe(clip).header_fps == float(header.frame_rate)
    assert ingest_probe(clip).header_frame_count == header.nb_frames
    meta = frames.probe(clip)
    assert (meta.fps, meta.declared_frames, meta.duration_s) == (
        float(header.frame_rate),
        header.nb_frames,
        header.duration_s,
    )
    facts = _local.probe_video(clip)
    assert (facts.fps, facts.frames, facts.duration) == (header.frame_rate, header.nb_frames, header.duration_s)


def _header(**claims) -> VideoHeader:
    base = {
        "format_name": "matroska,webm",
        "major_brand": "",
        "codec_name": "h264",
        "width": 64,
        "height": 64,
        "pix_fmt": "yuv420p",
        "frame_rate": Fraction(25),
        "nb_frames": None,
        "stream_duration_s": None,
        "tag_duration_s": None,
        "format_duration_s": None,
        "bit_rate": 0,
        "stream_types": ("video",),
    }
    return VideoHeader(**{**base, **claims})


def test_video_duration_prefers_the_tracks_own_claim():
    assert _header(stream_duration_s=4.0, tag_duration_s=3.0, format_duration_s=5.0).video_duration_s == 4.0
    assert _header(tag_duration_s=3.0, format_duration_s=5.0).video_duration_s == 3.0
    # The container's duration stands for the video only when nothing else is in the file.
    assert _header(format_duration_s=5.0).video_duration_s == 5.0
    assert _header(format_duration_s=5.0, stream_types=("video", "audio")).video_duration_s is None
    # The best-effort duration takes the container's whatever else is in the file.
    assert _header(format_duration_s=5.0, stream_types=("video", "audio")).duration_s == 5.0
    assert _header().duration_s == 0.0


def test_matroska_duration_tag_is_read(tmp_path):
    path = lavfi_clip(tmp_path / "v.mkv", "testsrc2=s=160x120:r=25:d=3", "-c:v", "libx264")
    header = probe_header(path)
    assert header.stream_duration_s is None  # Matroska streams carry no duration of their own
    assert header.tag_duration_s == pytest.approx(3.0, abs=0.05)


def test_audio_only_file_names_its_streams(tmp_path):
    path = lavfi_clip(tmp_path / "voice.m4a", "sine=d=1")
    with pytest.raises(NoVideoStream) as info:
        open_video(path)
    assert info.value.stream_types == ["audio"]


def test_timeline_places_frames_without_timestamps_by_the_header_rate(tmp_path):
    # A raw H.264 elementary stream has no container timestamps: every frame's pts is None.
    path = lavfi_clip(tmp_path / "raw.h264", "testsrc2=s=160x120:r=25:d=1", "-c:v", "libx264", "-f", "h264")
    container, stream = open_video(path)
    with container:
        timeline = decode_timeline(container, stream, fallback_fps=25.0)
    assert (timeline.frame_count, timeline.width, timeline.height) == (25, 160, 120)
    assert timeline.span_s == pytest.approx(0.96) and timeline.duration_s == pytest.approx(1.0)
    assert timeline.error is None
    container, stream = open_video(path)
    with container, pytest.raises(MissingTimestamps):
        decode_timeline(container, stream, fallback_fps=None)


def test_timeline_reports_the_error_that_stopped_decoding(tmp_path):
    # Index first (faststart), so a copy cut inside a frame still opens and decodes part way.
    path = lavfi_clip(
        tmp_path / "fs.mp4", "testsrc2=s=160x120:r=25:d=4", "-c:v", "libx264", "-g", "25", "-movflags", "+faststart"
    )
    container, stream = open_video(path)
    with container:
        whole = decode_timeline(container, stream, fallback_fps=None)
    assert (whole.frame_count, whole.error) == (100, None)
    assert (whole.first_s, whole.duration_s) == (0.0, pytest.approx(4.0))
    data = Path(path).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 60 // 100])
    container, stream = open_video(str(cut))
    with container:
        timeline = decode_timeline(container, stream, fallback_fps=None)
    assert timeline.error and 0 < timeline.frame_count < 100
    assert probe_header(str(cut)).stream_duration_s == pytest.approx(4.0)  # the header still claims all
