"""Colour temperature of a video's picture: a gray-world illuminant estimate, as a CCT in kelvin.

Why not mean R − B: green grass and gray road under an overcast sky have R > B (grass reflects
more red than blue), so the old measure called such a street scene "warm". A colour cast is a
property of the light, not of the objects: gray-world (Buchsbaum 1980, "A spatial processor
model for object colour perception") assumes the scene's reflectances average to gray, so the
mean colour in *linear* light is the illuminant's colour. Its chromaticity goes through CIE XYZ
to CIE 1931 xy, and McCamy's formula (McCamy 1992, "Correlated color temperature as an explicit
function of chromaticity coordinates", Color Res. Appl. 17(2)) turns xy into a correlated colour
temperature. A green cast moves xy across the Planckian locus, which McCamy's projection maps
to near-neutral values, so green no longer reads as warm; an orange grade lowers the CCT, a
blue/teal grade raises it.

Pure: NumPy and OpenCV on RGB uint8 arrays, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

# sRGB (IEC 61966-2-1) linear RGB -> CIE XYZ, D65 white.
SRGB_TO_XYZ = np.array(
    [
        [0.4124, 0.3576, 0.1805],
        [0.2126, 0.7152, 0.0722],
        [0.0193, 0.1192, 0.9505],
    ]
)

# Pixels left out of the estimate: blown-out ones (every channel >= 250 of 255) have lost the
# light's colour (a clipped sky reads white whatever the light), and near-black pixels (max
# channel < 20) are mostly codec noise, whose chroma is random. A pixel clipped in one channel
# only (saturated orange is (255, 165, 0)) keeps its hue and stays in.
CLIPPED_LEVEL = 250
BLACK_LEVEL = 20

# McCamy's cubic is fitted on 2000..12500 K; outside, the value only says "warmer / cooler
# than that", so it is clamped to a range that keeps that order and stays finite.
CCT_RANGE_K = (1000.0, 25000.0)

# A picture with no usable pixels (all black or all clipped) gets D65's CCT: no cast measured.
D65_CCT_K = 6504.0


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (any shape, values 0..255) -> linear light float64 0..1 (IEC 61966-2-1 EOTF)."""
    c = rgb.astype(np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


# Linear light of each 8-bit sRGB level.
_LINEAR = srgb_to_linear(np.arange(256, dtype=np.uint8))


def channel_counts(rgb: np.ndarray) -> np.ndarray:
    """Histograms of the R, G and B levels of the usable pixels of an RGB uint8 frame (h, w,
    3): float64 (3, 256) counts, the pixels neither blown out nor near-black
    (CLIPPED_LEVEL, BLACK_LEVEL): what the gray-world estimate pools over frames."""
    channels = cv2.split(np.ascontiguousarray(rgb))
    lowest = cv2.min(cv2.min(channels[0], channels[1]), channels[2])
    highest = cv2.max(cv2.max(channels[0], channels[1]), channels[2])
    usable = ((lowest < CLIPPED_LEVEL) & (highest >= BLACK_LEVEL)).view(np.uint8)
    return np.stack([cv2.calcHist([channel], [0], usable, [256], [0, 256]).ravel() for channel in channels]).astype(
        np.float64
    )


def counts_xy(counts: np.ndarray) -> tuple[float, float] | None:
    """CIE 1931 (x, y) of the gray-world illuminant of ``counts`` (3, 256), the usable pixels'
    level histograms of one or more frames (``channel_counts``, summed: pooled, so a frame with
    more usable pixels weighs more), through XYZ with the sRGB matrix. The mean linear RGB is
    the histograms times each level's linear value (``_LINEAR``): the same sum as converting
    every pixel, without a float per pixel.

    Returns:
        (x, y), or None when no pixel is usable.
    """
    count = counts[0].sum()
    if count == 0:
        return None
    xyz = SRGB_TO_XYZ @ (counts @ _LINEAR / count)
    s = float(xyz.sum())
    return float(xyz[0] / s), float(xyz[1] / s)


def mccamy_cct(x: float, y: float) -> float:
    """Correlated colour temperature in kelvin of CIE 1931 (x, y), McCamy (1992).

    n = (x − 0.3320) / (0.1858 − y); CCT = 449 n³ + 3525 n² + 6823.3 n + 5520.33, clamped to
    CCT_RANGE_K (the cubic is fitted on 2000..12500 K, and diverges for y near 0.1858).
    D65 (0.3127, 0.3290) gives ~6505 K, illuminant A (0.4476, 0.4074) ~2857 K.
    """
    if abs(0.1858 - y) < 1e-9:
        return CCT_RANGE_K[1]
    n = (x - 0.3320) / (0.1858 - y)
    cct = 449.0 * n**3 + 3525.0 * n**2 + 6823.3 * n + 5520.33
    return float(min(max(cct, CCT_RANGE_K[0]), CCT_RANGE_K[1]))


def color_temperature_k(frames: list[np.ndarray]) -> float:
    """CCT in kelvin of the frames' gray-world illuminant (D65_CCT_K when nothing is usable).

    Lower is warmer: a tungsten / golden-hour look is ~2500-4500 K, camera-balanced daylight
    ~5000-7000 K, shade, blue hour and teal grades above ~8000 K.
    """
    return counts_cct(channel_counts(rgb) for rgb in frames)


def counts_cct(counts: Iterable[np.ndarray]) -> float:
    """``color_temperature_k`` of frames from their ``channel_counts`` (each (3, 256)), pooled."""
    xy = counts_xy(sum(counts, np.zeros((3, 256))))
    return D65_CCT_K if xy is None else mccamy_cct(*xy)
