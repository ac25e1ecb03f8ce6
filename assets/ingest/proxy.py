"""The normalized proxy (M1): one small, predictable H.264 file that analysis and providers read.

Uploads arrive in any codec, pixel format, size and rate (cinepak RGB AVIs, 4K phone HEVC, ...);
every later step reads the proxy instead, so it only has to handle one shape of input.
"""

from __future__ import annotations

import os

from resources.ffmpeg import ProcessStats, run_ffmpeg


def proxy_filter(max_side: int) -> str:
    """ffmpeg ``-vf`` that fits the picture in ``max_side`` x ``max_side``, never upscales, keeps
    the aspect ratio and rounds both sides down to even numbers (yuv420p subsamples chroma 2x2,
    so libx264 refuses odd sizes)."""
    return (
        f"scale=w='min({max_side},iw)':h='min({max_side},ih)':force_original_aspect_ratio=decrease:force_divisible_by=2"
    )


def make_proxy(src: str, dst: str, max_side: int = 640, fps_cap: float = 30.0) -> ProcessStats:
    """Encode ``src`` to the proxy at ``dst``.

    Output: MP4 with only the first video stream, H.264 (libx264, preset veryfast, CRF 23 — x264's
    default quality, visually clean at proxy sizes), yuv420p, even dimensions with the longest side
    at most ``max_side`` px (smaller inputs keep their size), frame rate at most ``fps_cap`` (lower
    rates are kept: ffmpeg's ``-fpsmax`` only clamps), no audio, ``+faststart`` (index first, so
    readers can start before the whole file arrives).

    The encode goes to a temporary file renamed onto ``dst`` on success, so a failed or killed
    run never leaves a half-written proxy behind. ``dst``'s directory is created if missing.

    Args:
        src: any video FFmpeg can decode (normally one that passed ``probe_video``).
        dst: output path (``.mp4``).
        max_side: longest side of the output in px.
        fps_cap: highest output frame rate.

    Returns:
        ProcessStats of the ffmpeg run (wall ms, CPU s, peak RSS KiB).

    Raises:
        FFmpegError: ffmpeg failed or timed out.
    """
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    partial = f"{dst}.partial"
    args = [
        "-i", src,
        "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", proxy_filter(max_side),
        "-fpsmax", f"{fps_cap:g}",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-movflags", "+faststart",
        "-f", "mp4", partial,
    ]  # fmt: skip
    try:
        stats = run_ffmpeg(args)
        os.replace(partial, dst)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return stats
