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
