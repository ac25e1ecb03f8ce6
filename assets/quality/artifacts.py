"""Visible artifacts of an output, each measured as the excess over its input's own level.

Measuring the *excess* over the input matters: a proxy that is already a little noisy or has a
static shot must not make every output look broken. Per-frame statistics are taken on the
native-resolution luma of the sampled frames (the 8x8 block grid only exists at the coded
size); sequence statistics (frozen, black) on every decoded frame.

Components, each mapped to 0..1 as clip((excess - tolerance) / full_scale, 0, 1):

=========  ====================================================  =========  ==========  ========
component  raw statistic                                          tolerance  full scale  severity
=========  ====================================================  =========  ==========  ========
blocking   8x8 boundary/interior gradient ratio (``blockiness``)  0.05       0.30        0.7
noise      Immerkaer noise sigma in 8-bit levels (``noise``)      0.5        8 levels    0.7
banding    false-contour pixel share (``banding``)                0.001      0.02        0.4
frozen     share of consecutive near-identical frames             0          1.0         0.3
black      share of black frames (blackdetect defaults)           0          1.0         1.0
=========  ====================================================  =========  ==========  ========

The tolerances absorb generation loss: re-encoding a proxy with x264 at CRF 18 raises the
block ratio by ~0.02-0.03, noise by < 0.1 level and contour share by < 0.001 on real footage,
which is not a visible defect. Full scales were set on the same footage: x264 at CRF 45
(clearly blocky) reaches +0.23 block ratio, an unreadable mid-stream corruption +0.28;
``noise=alls=40`` adds ~20 levels of sigma.

Severity is the most a component can contribute on its own; they are combined as a noisy-OR,
``1 - prod(1 - severity * component)``, so one severe defect dominates and the total stays
within 0..1. Frozen frames weigh little (0.3): slow motion by frame duplication repeats every
frame on purpose, which is a mild defect (judder) rather than a broken output; an all-black
output weighs fully.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

BLOCK = 8
#: Consecutive frames whose working-size mean |luma difference| is below this (8-bit levels)
#: count as repeats. Measured on x264 output: a duplicated frame differs by ~0.05 levels,
#: real motion by >= 1 level; 0.25 leaves margin for encoder noise on repeats.
FROZEN_MAD = 0.25

#: Tolerance, full-scale excess and severity per component; see the module table.
TOLERANCE = {"blocking": 0.05, "noise": 0.5, "banding": 0.001, "frozen": 0.0, "black": 0.0}
SCALES = {"blocking": 0.30, "noise": 8.0, "banding": 0.02, "frozen": 1.0, "black": 1.0}
SEVERITY = {"blocking": 0.7, "noise": 0.7, "banding": 0.4, "frozen": 0.3, "black": 1.0}

# Gradient regulariser (levels) for blockiness: keeps flat frames at ratio ~1 instead of 0/0.
_GRAD_FLOOR = 0.5
# Banding: a false contour is a step of 2..4 levels flanked on both sides by this many
# perfectly flat neighbours (steps > 4 levels are real edges or intended posterisation). A
# 1-level step is the finest 8-bit quantum, what every smooth gradient shows; counting it made
# a blur (which turns texture into smooth gradients) read as banding: on bikes.mp4 at 320 px,
# gaussian blur sigma 4 raised the 1..3-level/4-px share by +0.004 (4x the tolerance), the
# 2..4-level/6-px share by +0.0003 (a third of it), while a 3-level posterisation still
# raises it by +0.0007.
_BAND_STEP_MIN = 2
_BAND_STEP_MAX = 4
_BAND_FLANK = 6


def blockiness(luma: np.ndarray) -> float:
    """8x8 block-boundary gradient ratio of one luma frame.

    Mean |horizontal difference| across the columns 8k-1|8k (block boundaries) divided by the
    mean across all other columns, likewise for rows, averaged. About 1.0 for natural or
    well-deblocked images, > 1 when block edges are visible. The boundary-vs-interior
    comparison follows the generalized block-edge impairment metric (GBIM) of H.R. Wu and
    M. Yuen, IEEE Signal Processing Letters 4(11), 1997, without its luminance masking.

    Args:
        luma: (H, W) uint8 luma, H and W >= 16.
    """
    horizontal = cv2.absdiff(luma[:, 1:], luma[:, :-1])  # [:, x]: step between columns x and x+1
    vertical = cv2.absdiff(luma[1:, :], luma[:-1, :])  # [y, :]: step between rows y and y+1
    # Boundaries at x (or y) = 7, 15, ...; every sum is an exact integer (float64 holds it).
    # Boundary columns are strided (NumPy sums them); boundary rows are whole rows (OpenCV).
    columns, rows = horizontal[:, BLOCK - 1 :: BLOCK], vertical[BLOCK - 1 :: BLOCK]
    sums = (
        (horizontal, float(columns.sum(dtype=np.int64)), columns.size),
        (vertical, cv2.sumElems(rows)[0], rows.size),
    )
    ratios = []
    for diff, on, n_on in sums:
        total = cv2.sumElems(diff)[0]
        n_off = diff.size - n_on
        ratios.append((on / n_on + _GRAD_FLOOR) / ((total - on) / n_off + _GRAD_FLOOR))
    return (ratios[0] + ratios[1]) / 2  # np.mean of two, without its per-call overhead


#: Immerkaer's N = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] is this second difference applied
#: along both axes.
_SECOND_DIFFERENCE = np.array([1, -2, 1], dtype=np.float32)


def noise(luma: np.ndarray) -> float:
    """Noise standard deviation (8-bit levels) of one luma frame.

    J. Immerkaer, "Fast Noise Variance Estimation", Computer Vision and Image Understanding
    64(2), 1996: sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N| with N the 3x3 difference
    of two Laplacians (above). Fine texture reads as noise too, hence only the excess over the
    input is scored.
    """
    # N is the outer product of [1, -2, 1] with itself: two 3-tap passes instead of one 9-tap
    # pass (half the CPU at 720p). Exact: every partial sum is an integer below 2^24 (|row
    # response| <= 4 x 255, |response| <= 16 x 255), so float accumulation loses nothing, and
    # 16-bit signed output holds it.
    response = cv2.sepFilter2D(luma, cv2.CV_16S, _SECOND_DIFFERENCE, _SECOND_DIFFERENCE)[1:-1, 1:-1]
    h, w = luma.shape
    total = float(cv2.norm(response, cv2.NORM_L1))
    return float(math.sqrt(math.pi / 2) * total / (6 * (w - 2) * (h - 2)))


def banding(luma: np.ndarray) -> float:
    """Share of pixels lying on false contours (colour banding) in one luma frame.

    A false contour pixel is a small step (2..4 levels) between two perfectly flat runs of
    ``_BAND_FLANK`` pixels, horizontally or vertically: the staircase a smooth gradient turns
    into when quantisation or compression removes its dither. Same idea as the banding-edge
    detection of the BBAND index (Z. Tu et al., "BBAND index: a no-reference banding artifact
    predictor", ICASSP 2020), reduced to the step-between-plateaus test.

    Args:
        luma: (H, W) uint8 luma.

    Returns:
        Contour pixels / all pixels, averaged over both axes; 0 for noisy or flat images.
    """
    k = _BAND_FLANK
    run = np.ones((1, k), np.uint8)
    shares = []
    for axis in (1, 0):
        a, b = (luma[:, 1:], luma[:, :-1]) if axis == 1 else (luma[1:, :], luma[:-1, :])
        diff = cv2.absdiff(a, b)
        step = cv2.inRange(diff, _BAND_STEP_MIN, _BAND_STEP_MAX)  # 255 on a small step
        flat = cv2.threshold(diff, 0, 1, cv2.THRESH_BINARY_INV)[1]  # 1 where the step is 0
        # run[i] = 1 when the k steps i .. i+k-1 are all flat (an erosion: each is one SIMD
        # pass over the frame, and at 720p the passes are what costs). Step i is flanked when
        # run[i - k] (steps i-k .. i-1) and run[i + 1] (i+1 .. i+k) both hold. Zero padding:
        # runs cut by the frame border do not count, and steps closer than k to either border
        # cannot be flanked, so only i in [k, n - 1) is looked at.
        kernel = run if axis == 1 else run.T
        runs = cv2.erode(flat, kernel, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT, borderValue=0)
        if axis == 1:
            centre, before, after = step[:, k:-1], runs[:, : -k - 1], runs[:, k + 1 :]
        else:
            centre, before, after = step[k:-1], runs[: -k - 1], runs[k + 1 :]
        if centre.size == 0:
            shares.append(0.0)
            continue
        flanked = cv2.bitwise_and(cv2.bitwise_and(centre, before), after)
        shares.append(cv2.countNonZero(flanked) / luma.size)
    return (shares[0] + shares[1]) / 2


def frozen_share(frame_mad: np.ndarray) -> float:
    """Share of consecutive frame pairs that are repeats (mean |diff| < FROZEN_MAD); 0 if < 2 frames."""
    return float(np.mean(frame_mad < FROZEN_MAD)) if frame_mad.size else 0.0


def black_share(black: np.ndarray) -> float:
    """Share of frames flagged black; 0 for no frames."""
    return float(np.mean(black)) if black.size else 0.0


def combine(excess: dict[str, float]) -> tuple[float, dict[str, float]]:
    """Artifact score 0 (clean) .. 1 from per-component excesses over the input.

    Args:
        excess: component name (keys of SCALES) -> output stat minus input stat, raw units.

    Returns:
        (score, components) where components are the 0..1 normalised values.
    """
    components = {name: min(1.0, max(0.0, (excess[name] - TOLERANCE[name]) / SCALES[name])) for name in SCALES}
    clean = 1.0
    for name, value in components.items():
        clean *= 1.0 - SEVERITY[name] * value
    return 1.0 - clean, components
