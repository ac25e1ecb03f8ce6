"""Pooling a per-frame quality series into one number.

The plain mean lets a handful of ruined frames vanish (five frames at VMAF 0-42 in a clip at
95 still average 88), while a viewer remembers them. The pooled score is the harmonic mean as
libvmaf defines it for its ``harmonic_mean`` pool (libvmaf ``feature_collector``:
``n / sum(1 / (x_i + 1)) - 1`` on the 0..100 scale): it equals the mean when frames agree
and is pulled towards the worst frames when they do not - 3 frames at 0 among 72 at 100 pool
to 19, not 96. Series on 0..1 (SSIM, cleanliness) are pooled on the same 0..100 scale so the
+1 offset means the same thing for every metric.

``summary`` also reports the mean, the 5th percentile (the low-percentile pooling of Moorthy &
Bovik, "Visual importance pooling for image quality assessment", IEEE JSTSP 3(2), 2009) and
the minimum, for audit.
"""

from __future__ import annotations

import numpy as np

LOW_PERCENTILE = 5.0


def harmonic_mean(values: np.ndarray, full_scale: float = 100.0) -> float:
    """libvmaf's harmonic-mean pool of ``values`` in 0..full_scale, returned on the same scale.

    Values are clipped to 0..full_scale first (SSIM can be slightly negative).

    Raises:
        ValueError: empty series.
    """
    x = np.clip(np.asarray(values, dtype=np.float64), 0.0, full_scale) * (100.0 / full_scale)
    if x.size == 0:
        raise ValueError("cannot pool an empty series")
    pooled = x.size / float(np.sum(1.0 / (x + 1.0))) - 1.0
    return pooled * full_scale / 100.0


def summary(name: str, values: np.ndarray, full_scale: float = 100.0) -> dict[str, float]:
    """``{name}_mean, _hmean, _p5, _min`` of a non-empty series (raw units)."""
    x = np.asarray(values, dtype=np.float64)
    return {
        f"{name}_mean": float(x.mean()),
        f"{name}_hmean": harmonic_mean(x, full_scale),
        f"{name}_p5": float(np.percentile(x, LOW_PERCENTILE)),
        f"{name}_min": float(x.min()),
    }
