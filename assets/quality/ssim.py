"""Luma SSIM of one frame pair, computed as libvmaf's ``float_ssim`` feature computes it.

libvmaf's ``float_ssim`` (its copy of Tom Distler's IQA library, ``iqa/ssim_tools.c``) is SSIM
(Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
structural similarity", IEEE TIP 13(4), 2004) with:

* the frames first low-passed and decimated by ``f = max(1, round(min(w, h) / 256))``: the
  output pixel (x, y) is the mean of the f x f block starting ``f // 2`` px above-left of
  (f x, f y) in the full frame (edges mirrored, ``KBND_SYMMETRIC``); the decimated size is
  ``(w // f + w % 2, h // f + h % 2)`` (IQA's own rounding);
* an 11-tap separable Gaussian window (sigma 1.5, IQA's 6-decimal taps) applied only where
  it lies wholly inside the frame ("valid" convolution: 10 px fewer each way);
* K1 = 0.01, K2 = 0.03, L = 255; variances clamped at 0; the mean of the SSIM map;
* libvmaf's fix for flat windows: a negative covariance where either variance is 0 counts
  as 0.

Here the same steps run with OpenCV in float32 (IQA accumulates each convolution in double
and stores float32). Per frame the results agree with libvmaf's to better than 1e-5 (measured:
2e-6 at 720p, 6e-6 at 320 px on x264 CRF 30; ``tests/test_quality.py`` holds them to 1e-5),
below the 4 decimals the per-frame series are stored with. Computing it here instead of in
libvmaf matters for speed: IQA's scalar 11-tap convolutions cost libvmaf more CPU than VMAF
itself at 320 px (docs/performance.md); OpenCV's take 2-5 ms a frame at 720p.
"""

from __future__ import annotations

import cv2
import numpy as np

#: IQA's ``g_gaussian_window_h``: 11 taps of a sigma-1.5 Gaussian, rounded to 6 decimals.
GAUSSIAN_TAPS = np.array(
    [0.001028, 0.007599, 0.036001, 0.109361, 0.213006, 0.266012, 0.213006, 0.109361, 0.036001, 0.007599, 0.001028],
    dtype=np.float32,
)
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def decimation(width: int, height: int) -> int:
    """libvmaf's SSIM decimation factor of a ``width`` x ``height`` frame:
    ``max(1, round(min(w, h) / 256))``, halves rounded up (IQA's ``_round``)."""
    return max(1, int(min(width, height) / 256.0 + 0.5))


def decimate(luma: np.ndarray, factor: int) -> np.ndarray:
    """IQA's ``_iqa_decimate`` with its ``factor`` x ``factor`` box low-pass, float32.

    Args:
        luma: (H, W) uint8.
        factor: decimation factor (>= 1; 1 returns the frame as float32).

    Returns:
        (H // f + H % 2, W // f + W % 2) float32 block means (module docstring).
    """
    if factor == 1:
        return luma.astype(np.float32)
    h, w = luma.shape
    sh, sw = h // factor + (h & 1), w // factor + (w & 1)
    lead = factor // 2  # the block of output (x, y) starts at (f x - f // 2, f y - f // 2)
    padded = cv2.copyMakeBorder(
        luma,
        lead,
        max(0, sh * factor - h - lead),
        lead,
        max(0, sw * factor - w - lead),
        cv2.BORDER_REFLECT,  # "fedcba|abcdef", IQA's KBND_SYMMETRIC
    )[: sh * factor, : sw * factor]
    # Exact integer block sums: the f rows of each block, then the f columns (uint16 holds
    # f^2 x 255 for f <= 16).
    rows = padded[0::factor].astype(np.uint16)
    for i in range(1, factor):
        rows += padded[i::factor].astype(np.uint16)
    sums = rows[:, 0::factor].copy()
    for i in range(1, factor):
        sums += rows[:, i::factor]
    # IQA multiplies by the float32 tap 1/f^2 and sums in double: exact integer sums times it.
    return (sums * float(np.float32(1.0 / (factor * factor)))).astype(np.float32)


def frame_ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """libvmaf ``float_ssim`` of one pair of luma frames (module docstring).

    Args:
        reference, distorted: (H, W) uint8 luma of the same size, H and W large enough that
            the decimated frame is at least 11 px each way.

    Returns:
        Mean SSIM, -1..1 (1 for identical frames).

    Raises:
        ValueError: the frames differ in size or are too small for the window.
    """
    if reference.shape != distorted.shape:
        raise ValueError(f"frame sizes differ: {reference.shape} vs {distorted.shape}")
    h, w = reference.shape
    factor = decimation(w, h)
    x, y = decimate(reference, factor), decimate(distorted, factor)
    if min(x.shape) < GAUSSIAN_TAPS.size:
        raise ValueError(f"frame {w}x{h} too small for SSIM's 11-px window")
    r = GAUSSIAN_TAPS.size // 2

    def window(img: np.ndarray) -> np.ndarray:
        # "Valid" convolution: keep only where the whole window is inside the frame.
        return cv2.sepFilter2D(img, cv2.CV_32F, GAUSSIAN_TAPS, GAUSSIAN_TAPS)[r:-r, r:-r]

    mu_x, mu_y = window(x), window(y)
    var_x = np.maximum(window(x * x) - mu_x * mu_x, 0.0)
    var_y = np.maximum(window(y * y) - mu_y * mu_y, 0.0)
    cov = window(x * y) - mu_x * mu_y
    # libvmaf's fix for flat windows (its #796): where either variance is 0, a covariance
    # that rounding made negative counts as 0 (else identical flat areas score below 1).
    cov[(cov < 0) & ((var_x == 0) | (var_y == 0))] = 0.0
    # IQA's l * c * s with C3 = C2 / 2 reduces to Wang et al.'s two-factor form.
    mu_x, mu_y, var_x, var_y, cov = (a.astype(np.float64) for a in (mu_x, mu_y, var_x, var_y, cov))
    num = (2.0 * mu_x * mu_y + _C1) * (2.0 * cov + _C2)
    den = (mu_x * mu_x + mu_y * mu_y + _C1) * (var_x + var_y + _C2)
    return float(np.mean(num / den))
