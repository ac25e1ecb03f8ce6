"""Texture features of a look, shared by M2 (what the example shows) and M7 (what an output
shows), so the two sides of a style comparison are measured by the same code.

Colour features (colour temperature, saturation, luma, contrast) are ``features.color_metrics``
and ``color.color_temperature_k``; this module adds the two that name a posterized / cartoon
look and the frame-repeat share that names a duplicated-frame slow motion:

* ``palette_colours``: the size of the dominant palette, the fewest distinct colours (RGB
  quantised to COLOUR_BITS bits per channel) that cover PALETTE_COVERAGE of the pixels. The
  coverage keeps the in-between colours that chroma subsampling and the codec smear along every
  colour edge from counting as palette (a 6-level quantised frame has ~20 such colours after
  H.264, ~130 including the fringes).
* ``luma_levels``: the fewest luma bins (LUMA_BIN_LEVELS 8-bit levels each) that cover
  PALETTE_COVERAGE of the pixels: a posterized picture keeps a few bands (a 6-band posterize
  of bikes.mp4 measured 14 after H.264, where its natural footage reads 25-43 and every
  golden-set video at least ...), and the band count estimates the posterize levels.
* ``edge_density``: share of Canny edge pixels (outlines).
* ``repeat_share`` (``features.repeat_share``): share of frame pairs that did not change.
"""

from __future__ import annotations

import cv2
import numpy as np

COLOUR_BITS = 5  # bits kept per RGB channel when counting colours (32768 bins)
PALETTE_COVERAGE = 0.90  # share of pixels the dominant palette must cover
# Canny hysteresis thresholds (8-bit gradient units); the common 1:2 ratio of J. Canny,
# "A Computational Approach to Edge Detection", IEEE TPAMI 8(6), 1986.
CANNY_LOW, CANNY_HIGH = 100, 200
LUMA_BIN_LEVELS = 4  # 8-bit luma levels per bin of luma_levels (64 bins)


def palette_colours(rgb: np.ndarray) -> int:
    """Dominant palette size of an RGB uint8 frame (h, w, 3) (module docstring), >= 1."""
    bins = 1 << COLOUR_BITS
    # A 32^3 histogram (bins of 8 levels = the top COLOUR_BITS bits) in one OpenCV call; only
    # the colours present are sorted (a frame uses a few thousand of the 32768).
    hist = cv2.calcHist([np.ascontiguousarray(rgb)], [0, 1, 2], None, [bins] * 3, [0, 256] * 3).ravel()
    counts = np.sort(hist[hist > 0])[::-1]
    covered = np.cumsum(counts, dtype=np.float64)
    return int(np.searchsorted(covered, PALETTE_COVERAGE * covered[-1]) + 1)


def luma_levels(luma: np.ndarray) -> int:
    """Fewest luma bins (LUMA_BIN_LEVELS levels each) covering PALETTE_COVERAGE of a uint8 luma
    frame (h, w), >= 1 (module docstring)."""
    # One OpenCV histogram of 256 / LUMA_BIN_LEVELS bins: the same counts as a bincount of
    # luma // LUMA_BIN_LEVELS (the bins are whole levels), at a third of the CPU.
    bins = 256 // LUMA_BIN_LEVELS
    counts = np.sort(cv2.calcHist([luma], [0], None, [bins], [0, 256]).ravel())[::-1]
    covered = np.cumsum(counts, dtype=np.float64)
    return int(np.searchsorted(covered, PALETTE_COVERAGE * covered[-1]) + 1)


def edge_density(luma: np.ndarray) -> float:
    """Share 0..1 of Canny edge pixels of a uint8 luma frame (h, w)."""
    return float(np.count_nonzero(cv2.Canny(luma, CANNY_LOW, CANNY_HIGH))) / luma.size


def frame_texture(rgb: np.ndarray, luma: np.ndarray) -> tuple[int, int, float]:
    """``(palette_colours, luma_levels, edge_density)`` of one RGB uint8 frame (h, w, 3) and
    its luma (h, w)."""
    return palette_colours(rgb), luma_levels(luma), edge_density(luma)


def mean_texture(textures: list[tuple[int, int, float]]) -> dict[str, float]:
    """``palette_colours``, ``luma_levels`` and ``edge_density`` averaged over frames'
    ``frame_texture``; all 0.0 for none."""
    if not textures:
        return {"palette_colours": 0.0, "luma_levels": 0.0, "edge_density": 0.0}
    palettes, levels, edges = zip(*textures, strict=True)
    return {
        "palette_colours": float(np.mean(palettes)),
        "luma_levels": float(np.mean(levels)),
        "edge_density": float(np.mean(edges)),
    }


def texture_metrics(frames: list[np.ndarray]) -> dict[str, float]:
    """``palette_colours`` (mean dominant palette size), ``luma_levels`` (mean luma bins) and
    ``edge_density`` (mean share of edge pixels) of RGB uint8 frames (h, w, 3); all 0.0 for no
    frames."""
    return mean_texture([frame_texture(f, cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)) for f in frames])
