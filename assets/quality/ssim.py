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

Here the same steps run with OpenCV and NumPy in float32 (IQA accumulates each convolution in
double and stores float32, and forms the window terms in float32 too: means, clamped
variances, covariance, denominators; its quotients and their mean are double, here only the
mean is: the values move by at most 4e-9 against a float64 quotient). Per frame the results
agree with libvmaf's to better than 1e-5 (measured: 2-3e-6 at 720p, 2-6e-6 at 320 px on x264
CRF 30; ``tests/test_quality.py`` holds them to 1e-5), below the 4 decimals the per-frame
series are stored with. Computing it here instead of in libvmaf matters for speed: IQA's
scalar 11-tap convolutions cost libvmaf more CPU than VMAF itself at 320 px
(docs/performance.md); OpenCV's take 2-5 ms a frame at 720p.
"""

from __future__ import annotations

import cv2
import numpy as np

#: IQA's ``g_gaussian_window_h``: 11 taps of a sigma-1.5 Gaussian, rounded to 6 decimals.
GAUSSIAN_TAPS = np.array(
    [0.001028, 0.007599, 0.036001, 0.109361, 0.213006, 0.266012, 0.213006, 0.109361, 0.036001, 0.007599, 0.001028],
    dtype=np.float32,
)
_C1 = np.float32((0.01 * 255) ** 2)
_C2 = np.float32((0.03 * 255) ** 2)


def decimation(width: int, height: int) -> int:
    """libvmaf's SSIM decimation factor of a ``width`` x ``height`` frame:
    ``max(1, round(min(w, h) / 256))``, halves rounded up (IQA's ``_round``)."""
    return max(1, int(min(width, height) / 256.0 + 0.5))


def decimated_shape(height: int, width: int, factor: int) -> tuple[int, int]:
    """(h, w) of a ``height`` x ``width`` frame decimated by ``factor`` (``decimate``): IQA's
    ``(h // f + h % 2, w // f + w % 2)``, the frame's own size when ``factor`` is 1."""
    if factor == 1:
        return height, width
    return height // factor + (height & 1), width // factor + (width & 1)


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
    sh, sw = decimated_shape(h, w, factor)
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


class SsimScorer:
    """``frame_ssim`` for many pairs of one size, in arrays allocated once.

    The steps of the module docstring, each NumPy ufunc and OpenCV call writing into an array
    kept from pair to pair (the results are bit-identical to allocating each temporary, which
    ``tests/test_quality.py`` checks). Why: a 320 x 180 pair needs ~20 temporaries of 0.2-0.4
    MB, and glibc serves blocks that size with ``mmap`` unless earlier frees have raised its
    threshold: in that state each pair cost ~650 page faults and 2.0 ms instead of 0.8 ms
    (docs/performance.md). Not thread-safe: one scorer per thread.

    Args:
        width, height: the frames' size in px.
    """

    def __init__(self, width: int, height: int):
        self.shape = (height, width)
        self.factor = decimation(width, height)
        h, w = decimated_shape(height, width, self.factor)
        if min(h, w) < GAUSSIAN_TAPS.size:
            raise ValueError(f"frame {width}x{height} too small for SSIM's 11-px window")
        r = GAUSSIAN_TAPS.size // 2
        valid = (h - 2 * r, w - 2 * r)
        self._r = r
        self._f32 = {k: np.empty((h, w), np.float32) for k in ("x", "y", "xx", "yy", "xy")}
        self._win = {k: np.empty((h, w), np.float32) for k in ("x", "y", "xx", "yy", "xy")}
        self._v32 = {k: np.empty(valid, np.float32) for k in ("mxx", "myy", "mxy", "var_x", "var_y", "cov", "num")}

    def __call__(self, reference: np.ndarray, distorted: np.ndarray) -> float:
        """Mean SSIM of one pair, as ``frame_ssim``.

        Raises:
            ValueError: a frame is not of the scorer's size.
        """
        if reference.shape != self.shape or distorted.shape != self.shape:
            raise ValueError(f"frame sizes differ: {reference.shape} vs {distorted.shape}, expected {self.shape}")
        f, v, r = self._f32, self._v32, self._r
        if self.factor == 1:
            np.copyto(f["x"], reference, casting="unsafe")
            np.copyto(f["y"], distorted, casting="unsafe")
        else:
            f["x"][...], f["y"][...] = decimate(reference, self.factor), decimate(distorted, self.factor)
        x, y = f["x"], f["y"]
        np.multiply(x, x, out=f["xx"])
        np.multiply(y, y, out=f["yy"])
        np.multiply(x, y, out=f["xy"])
        win = {}
        for k in ("x", "y", "xx", "yy", "xy"):
            cv2.sepFilter2D(f[k], cv2.CV_32F, GAUSSIAN_TAPS, GAUSSIAN_TAPS, dst=self._win[k])
            win[k] = self._win[k][r:-r, r:-r]
        # Per window in float32, as IQA forms its window terms (fp32 means, variances and
        # denominators; its quotient is double, which moves no value by more than 4e-9 here);
        # the mean of the map is accumulated in double. Each product is formed once and reused
        # (mu_x mu_y in the numerator, mu_x^2 + mu_y^2 in the denominator), every operation in
        # place: ~15 passes over the map instead of ~25 in float64, and identical frames still
        # give exactly 1 (2 cov = var_x + var_y).
        mxx = np.multiply(win["x"], win["x"], out=v["mxx"])
        myy = np.multiply(win["y"], win["y"], out=v["myy"])
        mxy = np.multiply(win["x"], win["y"], out=v["mxy"])
        var_x = np.maximum(np.subtract(win["xx"], mxx, out=v["var_x"]), 0.0, out=v["var_x"])
        var_y = np.maximum(np.subtract(win["yy"], myy, out=v["var_y"]), 0.0, out=v["var_y"])
        cov = np.subtract(win["xy"], mxy, out=v["cov"])
        if min(var_x.min(), var_y.min()) == 0.0:  # a flat window somewhere: libvmaf's fix
            cov[(cov < 0) & ((var_x == 0) | (var_y == 0))] = 0.0
        # num = (2 mu_x mu_y + C1) (2 cov + C2), den = (mu_x^2 + mu_y^2 + C1) (var_x + var_y + C2)
        num = np.multiply(mxy, 2.0, out=v["num"])
        num += _C1
        cov *= 2.0
        cov += _C2
        num *= cov
        mxx += myy
        mxx += _C1
        var_x += var_y
        var_x += _C2
        mxx *= var_x
        num /= mxx
        return float(num.mean(dtype=np.float64))


def frame_ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """libvmaf ``float_ssim`` of one pair of luma frames (module docstring); for many pairs of
    one size, ``SsimScorer`` reuses its arrays.

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
    return SsimScorer(w, h)(reference, distorted)
