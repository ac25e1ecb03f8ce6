"""Two renders of the same thing compared frame by frame: VMAF (with PSNR-Y and SSIM) of one
against the other, through the same libvmaf pass the quality vector uses (``fullref``).

``effectlake rerender`` uses it when a re-render is not bit-identical to the original: both
are outputs of one effect on one input, so they share a timeline (time scale 1) and the
alignment only trims them to the frames both have and scales a different size.
"""

from __future__ import annotations

from . import fullref, pooling
from .align import plan
from .frames import decode


def vmaf_against(reference_path: str, distorted_path: str) -> dict[str, float]:
    """How close ``distorted_path`` is to ``reference_path``.

    Returns:
        ``vmaf_hmean`` (libvmaf's harmonic-mean pool, 0..100: what one number should say),
        ``vmaf_mean``, ``vmaf_min``, ``psnr_y_mean`` (dB, 60 for identical frames),
        ``ssim_mean`` and ``frames`` compared.

    Raises:
        assets.quality.frames.VideoUnreadable: either file is not a readable video.
        resources.ffmpeg.FFmpegError / ValueError: libvmaf failed or compared no frame.
    """
    reference = decode(reference_path, samples=1)
    distorted = decode(distorted_path, samples=1, work_size=reference.work_size)
    # No effect between them: the same timeline (a non-slow-motion type gives time scale 1).
    alignment = plan(reference, distorted, "", {})
    series = fullref.measure(reference_path, distorted_path, alignment)
    return {
        "vmaf_hmean": pooling.harmonic_mean(series.vmaf),
        "vmaf_mean": float(series.vmaf.mean()),
        "vmaf_min": float(series.vmaf.min()),
        "psnr_y_mean": float(series.psnr_y.mean()),
        "ssim_mean": float(series.ssim.mean()),
        "frames": float(len(series.vmaf)),
    }
