"""Content similarity of a frame pair: perceptual-hash distance (SSIM is ``fullref``'s, from
ffmpeg).

The perceptual hash is the DCT hash of the ``imagehash`` library (``imagehash.phash``, after
N. Krawetz, "Looks Like It", hackerfactor.com 2011): grey image -> 32x32 -> 2-D DCT-II -> the
8x8 lowest-frequency block (DC included) -> bit = coefficient > median of that block.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

_HASH = 8  # 8x8 = 64 bits
_HASH_INPUT = 32  # imagehash: hash_size * highfreq_factor (4)


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
