"""Temporal stability of an output relative to its input's own (1 = as stable as the input).

Two statistics, both per frame step and both compared with the input's value so that the
content's own motion and lighting changes are not held against the output:

* flicker: mean |change| of regional mean luma between consecutive frames (8-bit levels),
  over a grid of ``frames.GRID_CELL`` px cells. A regional rather than a global mean keeps
  local brightness pumping (typical of frame-by-frame generative effects) from cancelling out,
  while the cell averages still ignore pixel noise and fine motion.
* jitter: irregularity of the frame-to-frame change, mean |m_t - m_(t-1)| / mean(m) with m_t
  the mean absolute luma difference between frames t-1 and t. Smooth motion changes m slowly
  (about 0.1 on real footage); a duplicated-frame slow motion alternates m between ~0 and the
  full step (about 2), i.e. judder.

temporal_consistency = 1 - 0.5 * min(1, excess_flicker / 4 levels)
                         - 0.5 * min(1, excess_jitter / 1.0),
equal weights because either defect alone is already visible; 4 levels per frame of regional
brightness change or a doubling of the step irregularity is treated as fully unstable.
"""

from __future__ import annotations

import numpy as np

FLICKER_SCALE = 4.0  # 8-bit levels per frame of excess regional luma change = fully unstable
JITTER_SCALE = 1.0  # excess normalised step irregularity = fully unstable
FLICKER_WEIGHT = 0.5
JITTER_WEIGHT = 0.5

# Floor (levels) on mean(m) for jitter: a near-static shot's m is encoder noise, and dividing
# by it would turn noise into huge "jitter".
_MAD_FLOOR = 0.5


def flicker(grid_means: np.ndarray) -> float:
    """Mean |regional luma change| per frame step in 8-bit levels.

    Args:
        grid_means: (frames, gh, gw) regional mean luma per frame.

    Returns:
        0.0 for fewer than 2 frames.
    """
    if grid_means.shape[0] < 2:
        return 0.0
    return float(np.abs(np.diff(grid_means, axis=0)).mean())


def jitter(frame_mad: np.ndarray) -> float:
    """Normalised irregularity of frame-to-frame change (see module docstring).

    Args:
        frame_mad: (frames-1,) mean |luma difference| of consecutive frames, 8-bit levels.

    Returns:
        mean |diff(frame_mad)| / max(mean(frame_mad), 0.5); 0.0 for fewer than 3 frames.
    """
    if frame_mad.size < 2:
        return 0.0
    return float(np.abs(np.diff(frame_mad)).mean() / max(float(frame_mad.mean()), _MAD_FLOOR))


def consistency(flicker_in: float, flicker_out: float, jitter_in: float, jitter_out: float) -> float:
    """temporal_consistency in 0..1 from input and output flicker/jitter (formula above)."""
    f = min(1.0, max(0.0, flicker_out - flicker_in) / FLICKER_SCALE)
    j = min(1.0, max(0.0, jitter_out - jitter_in) / JITTER_SCALE)
    return 1.0 - FLICKER_WEIGHT * f - JITTER_WEIGHT * j
