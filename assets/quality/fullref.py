"""Full-reference metrics per frame, in one ffmpeg pass.

One ffmpeg filter graph (the ffmpeg that ``imageio-ffmpeg`` ships is built with libvmaf) puts
the output on the input's timeline and size (``align.Alignment``: explicit time scale,
frame-rate conversion, trim, scale), so frame ``i`` of every series is input frame ``i``, and
gives per frame of the aligned pair, at the input's native resolution:

* ``vmaf``: VMAF v0.6.1 (Netflix; Li et al., "Toward a practical perceptual video quality
  metric", 2016), 0..100, from ffmpeg's ``libvmaf``;
* ``psnr_y``: luma PSNR in dB (libvmaf's ``psnr`` feature extractor; capped at 60 dB for
  8-bit identical frames);
* ``ssim``: luma SSIM as libvmaf's ``float_ssim`` defines it (Wang et al. 2004, 0..1),
  computed by this process (``ssim.SsimScorer``) on the pair's luma planes, which the same
  graph writes to a pipe: libvmaf's own ``float_ssim`` runs IQA's scalar convolutions and cost
  more CPU than VMAF at 320 px (0.25 s against 0.16 s for 75 frames) and 40-60 % of it at 720p;
  OpenCV's take a few ms a frame. Values agree with libvmaf's to 1e-5
  (``tests/test_quality.py``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from resources.ffmpeg import stream_ffmpeg

from .align import Alignment
from .ssim import SsimScorer

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
    """VMAF, PSNR-Y (libvmaf) and SSIM (``ssim.SsimScorer``) of ``output_path`` against
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
        ValueError: libvmaf logged no frame, or not as many as the graph gave pairs.
    """
    fd, log = tempfile.mkstemp(suffix=".vmaf.json")
    os.close(fd)
    width, height = alignment.size
    try:
        # One graph, two outputs: libvmaf (VMAF, PSNR) to its log, and each pair's luma planes
        # stacked (output above input) to our stdout for SSIM. The split pairs sit behind the
        # same frame sync (shortest) as libvmaf's, so pair i is libvmaf's frame i.
        graph = (
            f"[0:v]{alignment.output_filter()},split[dist][dist_y];"
            f"[1:v]{alignment.input_filter()},split[ref][ref_y];"
            f"[dist][ref]libvmaf=log_fmt=json:log_path={log}:n_threads={threads}"
            ":feature=name=psnr:shortest=1[vmaf];"
            "[dist_y]extractplanes=y[dl];[ref_y]extractplanes=y[rl];[dl][rl]vstack=shortest=1[pair]"
        )
        # One decoder thread per input and one filter-graph thread: libvmaf has its own
        # threads, and more would only add CPU to a pass that is bound by it (~10 % of its
        # CPU at 320 px, docs/performance.md).
        args = ["-filter_complex_threads", "1", "-threads", "1", "-i", output_path, "-threads", "1", "-i", input_path]
        args += ["-filter_complex", graph]
        args += ["-map", "[vmaf]", "-fps_mode", "passthrough", "-f", "null", "-"]
        args += ["-map", "[pair]", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]
        ssim = []
        scorer = SsimScorer(width, height)
        for chunk in stream_ffmpeg(args, chunk_bytes=width * height * 2):
            pair = np.frombuffer(chunk, np.uint8).reshape(2 * height, width)
            ssim.append(scorer(pair[height:], pair[:height]))
        with open(log, encoding="utf-8") as fh:
            frames = json.load(fh)["frames"]
    finally:
        os.unlink(log)
    if not frames:
        raise ValueError(f"libvmaf compared no frames of {output_path}")
    frames.sort(key=lambda f: f["frameNum"])
    if len(ssim) != len(frames):
        raise ValueError(f"{len(ssim)} SSIM pairs but {len(frames)} libvmaf frames for {output_path}")

    def series(name: str) -> np.ndarray:
        return np.asarray([f["metrics"][name] for f in frames], dtype=np.float64)

    return FrameSeries(vmaf=series("vmaf"), psnr_y=series("psnr_y"), ssim=np.asarray(ssim, dtype=np.float64))
