"""Content similarity of a frame pair: SSIM and perceptual-hash distance.

SSIM follows Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error
visibility to structural similarity", IEEE Trans. Image Processing 13(4), 2004: Gaussian
window 11x11 with sigma 1.5, K1 = 0.01, K2 = 0.03, dynamic range L = 255, and the mean of the
SSIM map over the window-valid region (as the authors' reference ``ssim_index.m`` does with
``filter2(..., 'valid')``).

The perceptual hash is the DCT hash of the ``imagehash`` library (``imagehash.phash``, after
N. Krawetz, "Looks Like It", hackerfactor.com 2011): grey image -> 32x32 -> 2-D DCT-II -> the
8x8 lowest-frequency block (DC included) -> bit = coefficient > median of that block.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

_WIN = 11
_SIGMA = 1.5
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2

_HASH = 8  # 8x8 = 64 bits
_HASH_INPUT = 32  # imagehash: hash_size * highfreq_factor (4)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two equally sized 8-bit luma images (Wang et al. 2004).

    Args:
        a, b: (h, w) arrays, values 0..255 (any real dtype), h and w >= 11.

    Returns:
        Mean SSIM in [-1, 1]; 1.0 for identical images.

    Raises:
        ValueError: shapes differ or are smaller than the 11x11 window.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two equal 2-D images, got {a.shape} and {b.shape}")
    if min(a.shape) < _WIN:
        raise ValueError(f"image {a.shape} smaller than the {_WIN}x{_WIN} SSIM window")
    x = a.astype(np.float32)
    y = b.astype(np.float32)

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (_WIN, _WIN), _SIGMA, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x = blur(x * x) - mu_xx
    var_y = blur(y * y) - mu_yy
    cov = blur(x * y) - mu_xy
    num = (2 * mu_xy + _C1) * (2 * cov + _C2)
    den = (mu_xx + mu_yy + _C1) * (var_x + var_y + _C2)
    pad = _WIN // 2  # drop the border where the window would hang over the edge ('valid')
    return float((num / den)[pad:-pad, pad:-pad].mean())


def phash(gray: np.ndarray) -> np.ndarray:
    """64-bit DCT perceptual hash of a grey image, as ``imagehash.phash`` computes it.

    Args:
        gray: (h, w) grey image (0..255).

    Returns:
        (64,) bool array, row-major over the 8x8 low-frequency DCT block.

    Notes:
        ``imagehash`` resizes with PIL's Lanczos filter and uses the unnormalised DCT of
        ``scipy.fftpack.dct``; here cv2's area resize and cv2's orthonormal DCT are used, with
        row 0 and column 0 rescaled by sqrt(2) so the coefficients are proportional to
        scipy's (the median comparison is scale-invariant, not row-scale-invariant).
    """
    small = cv2.resize(gray.astype(np.float32), (_HASH_INPUT, _HASH_INPUT), interpolation=cv2.INTER_AREA)
    coeffs = cv2.dct(small)[:_HASH, :_HASH].astype(np.float32)  # a float32 copy (the DCT of float32)
    coeffs[0, :] *= math.sqrt(2)
    coeffs[:, 0] *= math.sqrt(2)
    return (coeffs > np.median(coeffs)).reshape(-1)


def phash_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised Hamming distance of two 64-bit hashes from ``phash``: 0 equal .. 1 all bits differ."""
    return float(np.count_nonzero(a != b)) / a.size
