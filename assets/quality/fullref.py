"""Full-reference metrics per frame from libvmaf, in one ffmpeg pass.

ffmpeg's ``libvmaf`` filter (the ffmpeg that ``imageio-ffmpeg`` ships is built with it)
computes, per frame of the aligned pair, at the input's native resolution:

* ``vmaf``: VMAF v0.6.1 (Netflix; Li et al., "Toward a practical perceptual video quality
  metric", 2016), 0..100;
* ``psnr_y``: luma PSNR in dB (libvmaf's ``psnr`` feature extractor; capped at 60 dB for
  8-bit identical frames);
* ``float_ssim``: luma SSIM (libvmaf's ``float_ssim``, Wang et al. 2004, 0..1).

All three come from the same decode of both videos. The output is first put on the input's
timeline and size by ``align.Alignment`` (explicit time scale, frame-rate conversion, trim,
scale), so frame ``i`` of every series is input frame ``i``.
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
        ssim: (n,) float64, luma SSIM, -1..1 (practically 0..1).
    """

    vmaf: np.ndarray
    psnr_y: np.ndarray
    ssim: np.ndarray


def measure(input_path: str, output_path: str, alignment: Alignment, threads: int = THREADS) -> FrameSeries:
    """Run libvmaf (with psnr and float_ssim) on ``output_path`` against ``input_path``.

    Args:
        input_path: the reference (proxy) video.
        output_path: the distorted/processed video.
        alignment: how the output is put on the input's timeline (``align.plan``).
        threads: libvmaf worker threads.

    Returns:
        FrameSeries of ``alignment.compared`` frames (fewer if a stream ends early).

    Raises:
        resources.ffmpeg.FFmpegError: ffmpeg failed (unreadable file).
        ValueError: libvmaf logged no frame.
    """
    fd, log = tempfile.mkstemp(suffix=".vmaf.json")
    os.close(fd)
    try:
        graph = (
            f"[0:v]{alignment.output_filter()}[dist];[1:v]{alignment.input_filter()}[ref];"
            f"[dist][ref]libvmaf=log_fmt=json:log_path={log}:n_threads={threads}"
            ":feature=name=psnr|name=float_ssim:shortest=1"
        )
        run_ffmpeg(["-i", output_path, "-i", input_path, "-lavfi", graph, "-f", "null", "-"])
        with open(log, encoding="utf-8") as fh:
            frames = json.load(fh)["frames"]
    finally:
        os.unlink(log)
    if not frames:
        raise ValueError(f"libvmaf compared no frames of {output_path}")
    frames.sort(key=lambda f: f["frameNum"])

    def series(name: str) -> np.ndarray:
        return np.asarray([f["metrics"][name] for f in frames], dtype=np.float64)

    return FrameSeries(vmaf=series("vmaf"), psnr_y=series("psnr_y"), ssim=series("float_ssim"))
