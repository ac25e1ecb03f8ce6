"""Full-reference metrics per frame, in one ffmpeg pass.

One ffmpeg filter graph (the ffmpeg that ``imageio-ffmpeg`` ships is built with libvmaf) puts
the output on the input's timeline and size (``align.Alignment``: explicit time scale,
frame-rate conversion, trim, scale), so frame ``i`` of every series is input frame ``i``, and
gives per frame of the aligned pair, at the input's native resolution:

* ``vmaf``: VMAF v0.6.1 (Netflix; Li et al., "Toward a practical perceptual video quality
  metric", 2016), 0..100, from ffmpeg's ``libvmaf``;
* ``psnr_y``: luma PSNR in dB (libvmaf's ``psnr`` feature extractor; capped at 60 dB for
  8-bit identical frames);
* ``ssim``: luma SSIM (Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error
  visibility to structural similarity", IEEE TIP 13(4), 2004) from ffmpeg's ``ssim`` filter in
  the same graph: x264's form of the index, the mean over 8x8 windows every 4 px with uniform
  weights (K1 = 0.01, K2 = 0.03), 0..1 in practice, on the pair first shrunk by
  ``ssim_decimation`` (a box average; by 1 while the shorter side is under 384 px).

Why that form of SSIM and not libvmaf's ``float_ssim`` (an 11x11 Gaussian window, IQA's
code, which shrinks the same way): both are the same index (0.002 apart on the mean of an x264
CRF 30 clip at 320 px; on a heavy blur with noise, SSIM 0.4-0.7, the smaller uniform window
reads up to 0.07 higher at 320 px and 0.03 at 540 lines, correlation 0.998 frame by frame),
and ffmpeg's SIMD filter costs ~5 CPU ms for 75 frames at 320 px, where ``float_ssim`` costs
more than VMAF itself, and the Gaussian window computed in this process cost ~50 CPU ms, ~60
with the pipe that carried the pairs to it (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from resources.ffmpeg import run_ffmpeg

from .align import Alignment

#: libvmaf's PSNR of identical 8-bit frames (its ``psnr`` extractor caps at 6 x bit depth + 12 dB).
PSNR_MAX_DB = 60.0
#: libvmaf threads: the metric is the costliest part of scoring and parallelises by frame.
THREADS = 2


@dataclass(frozen=True)
class FrameSeries:
    """Per-frame full-reference metrics, index = input frame on the common timeline.

    Attributes:
        vmaf: (n,) float64, 0..100.
        psnr_y: (n,) float64, dB.
        ssim: (n,) float64, luma SSIM (module docstring), -1..1 (practically 0..1).
    """

    vmaf: np.ndarray
    psnr_y: np.ndarray
    ssim: np.ndarray


def measure(input_path: str, output_path: str, alignment: Alignment, threads: int = THREADS) -> FrameSeries:
    """VMAF, PSNR-Y (libvmaf) and SSIM (ffmpeg's ``ssim``) of ``output_path`` against
    ``input_path``, from one ffmpeg process.

    Args:
        input_path: the reference (proxy) video.
        output_path: the distorted/processed video.
        alignment: how the output is put on the input's timeline (``align.plan``).
        threads: libvmaf worker threads.

    Returns:
        FrameSeries of ``alignment.compared`` frames (fewer if a stream ends early).

    Raises:
        resources.ffmpeg.FFmpegError: ffmpeg failed (unreadable file).
        ValueError: libvmaf logged no frame, or not as many as the SSIM filter.
    """
    log, stats = _temp_path(".vmaf.json"), _temp_path(".ssim.txt")
    factor = ssim_decimation(*alignment.size)
    width, height = alignment.size
    scale = f"scale={width // factor}:{height // factor}:flags=area" if factor > 1 else "null"
    try:
        # One graph, two sinks: libvmaf (VMAF, PSNR) to its JSON log and ffmpeg's SSIM to its
        # stats file. Both pair their inputs behind the same frame sync (shortest), so line i
        # of the stats file is libvmaf's frame i.
        graph = (
            f"[0:v]{alignment.output_filter()},split[dist][dist_s];"
            f"[1:v]{alignment.input_filter()},split[ref][ref_s];"
            f"[dist][ref]libvmaf=log_fmt=json:log_path={log}:n_threads={threads}"
            ":feature=name=psnr:shortest=1[vmaf];"
            f"[dist_s]{scale}[dist_d];[ref_s]{scale}[ref_d];"
            f"[dist_d][ref_d]ssim=stats_file={stats}:shortest=1[ssim]"
        )
        # One decoder thread per input and one filter-graph thread: libvmaf has its own
        # threads, and more would only add CPU to a pass that is bound by it (~10 % of its
        # CPU at 320 px, docs/performance.md).
        args = ["-filter_complex_threads", "1", "-threads", "1", "-i", output_path, "-threads", "1", "-i", input_path]
        args += ["-filter_complex", graph]
        for sink in ("[vmaf]", "[ssim]"):
            args += ["-map", sink, "-fps_mode", "passthrough", "-f", "null", "-"]
        run_ffmpeg(args)
        with open(log, encoding="utf-8") as fh:
            frames = json.load(fh)["frames"]
        with open(stats, encoding="utf-8") as fh:
            ssim = ssim_y(fh.read())
    finally:
        os.unlink(log)
        os.unlink(stats)
    if not frames:
        raise ValueError(f"libvmaf compared no frames of {output_path}")
    frames.sort(key=lambda f: f["frameNum"])
    if len(ssim) != len(frames):
        raise ValueError(f"{len(ssim)} SSIM frames but {len(frames)} libvmaf frames for {output_path}")

    def series(name: str) -> np.ndarray:
        return np.asarray([f["metrics"][name] for f in frames], dtype=np.float64)

    return FrameSeries(vmaf=series("vmaf"), psnr_y=series("psnr_y"), ssim=np.asarray(ssim, dtype=np.float64))


def ssim_decimation(width: int, height: int) -> int:
    """The factor SSIM's frames are shrunk by first: ``max(1, round(min(w, h) / 256))``, halves
    up. Wang et al.'s recommendation for viewing at a distance (their reference code, and
    libvmaf's ``float_ssim``, decimate so): at 720p and above the index otherwise charges
    pixel noise a viewer does not see."""
    return max(1, int(min(width, height) / 256.0 + 0.5))


def ssim_y(stats: str) -> list[float]:
    """The per-frame luma SSIM of an ffmpeg ``ssim`` stats file, in frame order.

    Args:
        stats: the file's text, one line per frame pair, e.g.
            ``n:1 Y:0.977140 U:0.990933 V:0.991240 All:0.981789 (17.396584)``.

    Raises:
        ValueError: a line without a ``Y:`` value.
    """
    values = []
    for line in stats.splitlines():
        y = next((token[2:] for token in line.split() if token.startswith("Y:")), None)
        if y is None:
            raise ValueError(f"ffmpeg ssim stats line without Y: {line!r}")
        values.append(float(y))
    return values


def _temp_path(suffix: str) -> str:
    """A new empty file's path (the caller removes it): where a filter writes its log."""
    fd, path = tempfile.mkstemp(suffix=suffix)
    os.close(fd)
    return path
