"""Video clips made with the real ffmpeg for tests: cut from a sample, or rendered from a
lavfi test source."""

from __future__ import annotations

from pathlib import Path

import yaml

from resources.ffmpeg import run_ffmpeg


def h264_clip(source: Path, out: Path, seconds: str, *options: str) -> Path:
    """The first ``seconds`` of ``source`` re-encoded to ``out`` as audio-free H.264 (x264
    ``veryfast``), with extra output ``options`` (a scale filter, a pixel format)."""
    run_ffmpeg(["-i", str(source), "-t", seconds, *options, "-c:v", "libx264", "-preset", "veryfast", "-an", str(out)])
    return out


def lavfi_clip(dst: Path, source: str, *output_args: str) -> str:
    """Render the lavfi ``source`` (e.g. ``testsrc2=s=320x240:r=25:d=2``) to ``dst``."""
    run_ffmpeg(["-f", "lavfi", "-i", source, *output_args, str(dst)], timeout_s=60)
    return str(dst)


def one_clip_suite(dst: Path, name: str, clip: Path) -> Path:
    """Write to ``dst`` a benchmark reference suite of the one video ``clip`` (as ``name``,
    cut to 1 s), for ``EFFECTLAKE_REFERENCE_SUITE``."""
    suite = {
        "version": 1,
        "max_seconds": 1,
        "videos": [{"name": name, "source": "path", "file": str(clip).lstrip("/")}],
    }
    dst.write_text(yaml.safe_dump(suite))
    return dst


def declared_width_mkv(dst: Path, width: int) -> Path:
    """A real 8192x16 H.264 Matroska (cheap to encode) that declares ``width`` px instead, in
    both the track's ``PixelWidth`` and the sequence parameter set (the size FFmpeg reads
    without decoding); ``width`` must be 8192..16368 in steps of 16, so that its Exp-Golomb
    code is as long as 8192's and no byte of the file moves."""
    clip = dst.with_name(f"{dst.stem}-8192x16.mkv")
    lavfi_clip(
        clip, "color=black:s=8192x16:r=10:d=0.3",
        "-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast",
    )  # fmt: skip
    data = clip.read_bytes()
    sps_at = data.index(b"\x67\x42")  # NAL type 7 (SPS), baseline profile, inside avcC
    prefix = data[sps_at : sps_at + 9]
    assert b"\x00\x00\x03" not in prefix  # no emulation-prevention byte inside the rewrite
    data = data.replace(prefix, _rewrite_sps_width(prefix, width))
    pixel_width = b"\xb0\x82"  # EBML id of PixelWidth, 2-byte value
    assert data.count(pixel_width + (8192).to_bytes(2, "big")) == 1
    data = data.replace(pixel_width + (8192).to_bytes(2, "big"), pixel_width + width.to_bytes(2, "big"))
    dst.write_bytes(data)
    return dst


def _ue(bits: str, at: int) -> tuple[int, int]:
    """H.264 Exp-Golomb ue(v) code starting at bit ``at``: (value, bit after it)."""
    zeros = bits.index("1", at) - at
    return int(bits[at + zeros : at + 2 * zeros + 1], 2) - 1, at + 2 * zeros + 1


def _rewrite_sps_width(sps: bytes, width: int) -> bytes:
    """A baseline-profile H.264 SPS prefix with ``pic_width_in_mbs_minus1`` set for ``width``
    px (ITU-T H.264 7.3.2.1.1). The new code must be as long as the old, so nothing moves."""
    bits = "".join(f"{byte:08b}" for byte in sps)
    assert sps[1] == 66  # profile_idc baseline: no chroma or scaling fields before the size
    at = 32  # NAL header, profile_idc, constraint flags, level_idc
    _, at = _ue(bits, at)  # seq_parameter_set_id
    _, at = _ue(bits, at)  # log2_max_frame_num_minus4
    poc_type, at = _ue(bits, at)
    if poc_type == 0:
        _, at = _ue(bits, at)  # log2_max_pic_order_cnt_lsb_minus4
    assert poc_type in (0, 2)
    _, at = _ue(bits, at)  # max_num_ref_frames
    start = at + 1  # after gaps_in_frame_num_value_allowed_flag
    _, end = _ue(bits, start)
    code = f"{width // 16:b}"  # ue(v) of mbs - 1 is the binary of mbs behind len - 1 zeros
    code = "0" * (len(code) - 1) + code
    assert len(code) == end - start
    bits = bits[:start] + code + bits[end:]
    return int(bits, 2).to_bytes(len(sps), "big")
