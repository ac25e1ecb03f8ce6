"""Stage 1 of the economic engine: signal detection on one metric series (docs/signals.md).

Four detectors, each for one way a metric goes wrong, each a pure function of a NumPy array
(one value per interval, oldest first; NaN = no data in that interval) returning the indices
where it fires:

* **gradual drift** — ``cusum``: the tabular (two-sided) CUSUM of Page (1954) as Montgomery,
  "Introduction to Statistical Quality Control", 7th ed., §9.1 states it:

      C⁺_t = max(0, x_t − (μ₀ + K) + C⁺_{t−1}),   C⁻_t = max(0, (μ₀ − K) − x_t + C⁻_{t−1})

  with reference value K = k·σ and decision interval H = h·σ; an alarm is raised when either
  sum exceeds H, and both sums restart at 0 (a fresh run after each alarm). μ₀ and σ are
  estimated robustly from a baseline (median, MAD·1.4826), so the outliers the spike detector
  exists for do not inflate σ. Defaults k = 0.5 (tuned to a 1σ shift, the optimal reference
  value is half the shift) and h = 5: Montgomery's Table 9.3 gives an in-control average run
  length ARL₀ = 465 intervals (≈ 39 h at 5 minutes) and ARL₁ = 10.4 intervals (≈ 52 min)
  for a 1σ shift. ``siegmund_arl`` computes these from Siegmund's approximation and
  ``calibrate_h`` solves it for the h that gives a wanted ARL₀ (so a different false-alarm
  budget is a calculation, not a guess).
* **sudden spikes** — ``robust_z``: the modified z-score of Iglewicz & Hoaglin (1993),
  z = (x − median) / (1.4826·MAD), over the trailing ``window`` intervals before each point
  (causal: a point never judges itself); |z| > 3.5 is their recommended outlier cut.
  MAD as ``scipy.stats.median_abs_deviation(scale="normal")`` computes it.
* **seasonal** — ``holt_winters``: additive Holt-Winters as the ETS(A,A,A) state-space model
  (statsmodels ``ETSModel``; Hyndman & Athanasopoulos, "Forecasting: Principles and
  Practice", 3rd ed., §8.5), parameters fitted on a training prefix, then run over the whole
  series with those parameters, so each fitted value is the one-step-ahead prediction from
  the data before it. A point outside prediction ± z·σ (σ the training residuals' standard
  deviation; z = 3, a 99.7 % band for normal errors) fires. The season is a day: 288
  five-minute intervals for the platform's streams.
* **thresholds** — ``hysteresis``: a static limit with hysteresis (raise when the value
  exceeds ``raise_above``; clear only after ``clear_after`` consecutive intervals below
  ``clear_below``), so a metric hovering at the limit raises one alert, not one per interval.

No library offers tabular CUSUM with restarts or the hysteresis state machine (statsmodels'
``breaks_cusumolsresid`` is a one-shot structural-break test, ruptures segments offline), so
those two are short own code; the robust scale and the Holt-Winters model come from
scipy/statsmodels. Validation on labelled public series: ``economics.detection_scores`` and
docs/signals.md.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# Montgomery's defaults for a 1σ shift (Table 9.3: ARL₀ = 465, ARL₁ = 10.4).
CUSUM_K = 0.5
CUSUM_H = 5.0
# Iglewicz & Hoaglin's cut for the modified z-score.
ROBUST_Z_LIMIT = 3.5
# Trailing window of the robust z-score: 2 hours of 5-minute intervals.
ROBUST_Z_WINDOW = 24
# MAD of a standard normal, Φ⁻¹(3/4): MAD / this estimates σ (scipy's scale="normal"; the
# standard library's inverse CDF gives the same float as scipy.special.ndtri).
NORMAL_MAD = NormalDist().inv_cdf(0.75)
# A day of 5-minute intervals: the platform's season.
DAILY_SEASON_5MIN = 288
# Width of the Holt-Winters prediction band in residual standard deviations (≈ 99.7 %).
HW_BAND_Z = 3.0


def robust_location_scale(x: np.ndarray) -> tuple[float, float]:
    """(median, 1.4826·MAD) of the finite values of ``x``; the scale is the normal-consistent
    MAD, falling back to the standard deviation when MAD is 0 (over half the values equal),
    and (nan, nan) with no finite values."""
    v = x[np.isfinite(x)]
    if v.size == 0:
        return math.nan, math.nan
    med = float(np.median(v))
    # scipy.stats.median_abs_deviation(v, scale="normal"), without its per-call overhead.
    sigma = float(np.median(np.abs(v - med)) / NORMAL_MAD)
    if sigma == 0.0:
        sigma = float(np.std(v))
    return med, sigma


@dataclass(frozen=True)
class Cusum:
    """A tabular CUSUM run: the upper and lower sums per interval (in σ units) and the alarms.

    Attributes:
        upper, lower: C⁺_t / σ and C⁻_t / σ (after each alarm's restart), length n.
        alarms: indices where a sum exceeded h.
        directions: +1 (upward shift) or −1 per alarm.
        target, sigma: μ₀ and σ used.
    """

    upper: np.ndarray
    lower: np.ndarray
    alarms: list[int]
    directions: list[int]
    target: float
    sigma: float


def cusum(
    x: np.ndarray,
    baseline: int | None = None,
    k: float = CUSUM_K,
    h: float = CUSUM_H,
    target: float | None = None,
    sigma: float | None = None,
    rebaseline: bool = True,
) -> Cusum:
    """Two-sided tabular CUSUM of ``x`` (see the module docstring).

    Args:
        x: the series, oldest first; NaN intervals leave the sums unchanged.
        baseline: μ₀ and σ are estimated (median, MAD) from ``x[:baseline]`` and monitoring
            starts after it; default: the whole series, all monitored (retrospective).
        k, h: reference value and decision interval in σ units.
        target, sigma: given μ₀ and σ instead of the estimate.
        rebaseline: after an alarm, monitoring pauses for ``baseline`` intervals and μ₀ is
            re-estimated from them (σ is kept): the shift was signalled, and the new level is
            the process to watch — otherwise a lasting shift alarms again every few
            intervals. Only with an estimated ``baseline``.

    Returns:
        ``Cusum``; no alarms when σ is 0 or undefined (a constant baseline has no scale).
    """
    x = np.asarray(x, dtype=float)
    mu, s = robust_location_scale(x[:baseline] if baseline else x)
    mu = mu if target is None else target
    s = s if sigma is None else sigma
    n = x.size
    upper, lower = np.zeros(n), np.zeros(n)
    alarms: list[int] = []
    directions: list[int] = []
    if not (s > 0 and math.isfinite(s)):
        return Cusum(upper, lower, alarms, directions, mu, s)
    cp = cm = 0.0
    # Monitoring starts after the baseline (the in-control reference, "phase I") and restarts
    # there after each re-baselining pause.
    resume = baseline or 0
    for t in range(n):
        if t < resume:
            continue
        if baseline and t == resume and t > baseline:
            fresh = robust_location_scale(x[t - baseline : t])[0]
            mu = fresh if math.isfinite(fresh) else mu
        if math.isfinite(x[t]):
            z = (x[t] - mu) / s
            cp = max(0.0, z - k + cp)
            cm = max(0.0, -k - z + cm)
        upper[t], lower[t] = cp, cm
        if cp > h or cm > h:
            alarms.append(t)
            directions.append(1 if cp > h else -1)
            cp = cm = 0.0
            if rebaseline and baseline and target is None:
                resume = t + 1 + baseline
    return Cusum(upper, lower, alarms, directions, mu, s)


def siegmund_arl(k: float, h: float, shift: float = 0.0) -> float:
    """Average run length of a one-sided CUSUM by Siegmund's approximation (Montgomery §9.1.5):

        ARL = (exp(−2Δb) + 2Δb − 1) / (2Δ²),  Δ = shift − k,  b = h + 1.166
        (Δ = 0: ARL = b²)

    Args:
        k, h: reference value and decision interval in σ units.
        shift: the mean shift in σ units (0 = in control, giving ARL₀).

    Returns:
        The expected number of intervals to an alarm of one sum (one-sided). The two-sided
        ARL combines both sums, 1/ARL = 1/ARL⁺ + 1/ARL⁻ (``two_sided_arl0``): for k = 0.5,
        h = 5 this gives 938 one-sided and 469 two-sided, against the 465 of Montgomery's
        Table 9.3 by exact computation; for a 1σ shift 10.3 (table: 10.4).
    """
    b = h + 1.166
    delta = shift - k
    if abs(delta) < 1e-12:
        return b * b
    return (math.exp(-2 * delta * b) + 2 * delta * b - 1) / (2 * delta * delta)


def two_sided_arl0(k: float, h: float) -> float:
    """In-control ARL of the two-sided CUSUM (both sums watching): half the one-sided one."""
    return siegmund_arl(k, h) / 2


def calibrate_h(arl0: float, k: float = CUSUM_K) -> float:
    """The decision interval h (σ units) whose in-control two-sided ARL (``two_sided_arl0``)
    is ``arl0`` intervals, for reference value ``k`` (e.g. a false alarm per stream per week
    at 5 minutes: arl0 = 2016 → h ≈ 6.4).

    Raises:
        ValueError: ``arl0`` ≤ 1.
    """
    if arl0 <= 1:
        raise ValueError(f"ARL0 must exceed 1 interval, got {arl0}")
    # Imported here: scipy.optimize takes ~0.6 s to import, and this module is imported (for
    # its schemas' sake) by every Dagster run process, few of which calibrate a CUSUM.
    from scipy.optimize import brentq

    return float(brentq(lambda h: two_sided_arl0(k, h) - arl0, 0.0, 100.0))


@dataclass(frozen=True)
class RobustZ:
    """Trailing modified z-scores and where |z| passed the limit.

    Attributes:
        z: per interval (NaN until the window has ``min_points`` finite values, or where the
            window's scale is 0 and the value equals its median).
        alarms: indices with |z| > limit; directions: sign of z there.
    """

    z: np.ndarray
    alarms: list[int]
    directions: list[int]


def _row_nanmedian(w: np.ndarray) -> np.ndarray:
    """Median of the finite values of each row (every row has at least one): NaN sorts last,
    so the middle of the first ``count`` sorted values (np.nanmedian's result, without its
    masked-array path for short rows)."""
    ordered = np.sort(w, axis=1)
    count = np.isfinite(w).sum(axis=1)
    rows = np.arange(w.shape[0])
    return (ordered[rows, (count - 1) // 2] + ordered[rows, count // 2]) / 2


def robust_z(
    x: np.ndarray, window: int = ROBUST_Z_WINDOW, limit: float = ROBUST_Z_LIMIT, min_points: int | None = None
) -> RobustZ:
    """Modified z-score of each point against the ``window`` points before it.

    Args:
        x: the series, oldest first (NaN = no data, skipped in the windows).
        window: trailing intervals each point is compared with.
        limit: |z| above which a point is a spike.
        min_points: finite values a window needs (default: half the window).
    """
    x = np.asarray(x, dtype=float)
    need = min_points or max(3, window // 2)
    z = np.full(x.size, np.nan)
    if x.size < 2:
        return RobustZ(z, [], [])
    # Row t of ``past`` is x[t − window : t] (NaN before the series starts): every trailing
    # window at once, so the medians and MADs are two vectorised nanmedians instead of a
    # Python loop (the same numbers as robust_location_scale window by window).
    padded = np.concatenate([np.full(window, np.nan), x[:-1]])
    past = np.lib.stride_tricks.sliding_window_view(padded, window)
    count = np.isfinite(past).sum(axis=1)
    judged = np.isfinite(x) & (count >= need)
    judged[0] = False
    if judged.any():
        w = past[judged]
        med = _row_nanmedian(w)
        s = _row_nanmedian(np.abs(w - med[:, None])) / NORMAL_MAD
        s = np.where(s == 0.0, np.nanstd(w, axis=1), s)
        v = x[judged]
        zj = np.full(v.size, np.nan)
        pos = s > 0
        zj[pos] = (v[pos] - med[pos]) / s[pos]
        off = ~pos & (v != med)
        zj[off] = np.copysign(np.inf, v[off] - med[off])
        z[judged] = zj
    hit = np.flatnonzero(np.abs(np.nan_to_num(z, nan=0.0)) > limit)
    return RobustZ(z, hit.tolist(), np.sign(z[hit]).astype(int).tolist())


@dataclass(frozen=True)
class SeasonalFit:
    """One-step-ahead Holt-Winters predictions, the band and where the series left it.

    Attributes:
        predicted, lower, upper: per interval (NaN before the model has a prediction).
        alarms: indices at or after ``train`` outside [lower, upper]; directions: +1 above.
        sigma: residual standard deviation on the training prefix.
    """

    predicted: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alarms: list[int]
    directions: list[int]
    sigma: float


def holt_winters(
    x: np.ndarray,
    season: int = DAILY_SEASON_5MIN,
    train: int | None = None,
    band_z: float = HW_BAND_Z,
    robust_passes: int = 5,
) -> SeasonalFit | None:
    """Additive Holt-Winters (ETS(A,A,A), damped trend) prediction band (module docstring).

    Args:
        x: the series, oldest first; NaN intervals are filled by linear interpolation (the
            state-space filter needs a value per interval).
        season: intervals per season (288 = a day of 5-minute intervals).
        train: length of the prefix the parameters are fitted on (default: all but the last
            season); at least two seasons.
        band_z: band half-width in residual standard deviations.
        robust_passes: re-filtering passes with out-of-band points replaced by their
            prediction (0 = plain one-step-ahead predictions).

    Returns:
        ``SeasonalFit``, or None when there are fewer than two seasons of training data or
        fewer than 3 finite values (nothing to fit).
    """
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # heavy import, only here

    y = np.asarray(x, dtype=float)
    finite = np.isfinite(y)
    if finite.sum() < 3:
        return None
    idx = np.arange(y.size)
    y = np.interp(idx, idx[finite], y[finite])
    train = train if train is not None else y.size - season
    if train < 2 * season:
        return None
    spec = {"error": "add", "trend": "add", "damped_trend": True, "seasonal": "add", "seasonal_periods": season}
    with warnings.catch_warnings():
        # Convergence chatter from the optimiser on short or flat series; the band judges the fit.
        warnings.simplefilter("ignore")
        fitted = ETSModel(y[:train], initialization_method="heuristic", **spec).fit(disp=False)
        smoothed = ETSModel(y, initialization_method="heuristic", **spec).smooth(fitted.params)
        predicted = np.asarray(smoothed.fittedvalues, dtype=float)
        sigma = float(np.std(y[:train] - predicted[:train]))
        observed = y.copy()
        # A point outside the band is fed to the filter as its prediction, so one outage does
        # not bend the level and season the next points are judged by (the alarms would
        # otherwise run on for a season). Each pass settles the earliest changed point; a few
        # passes settle a series with a handful of anomalies.
        for _ in range(robust_passes):
            outside = np.abs(observed - predicted) > band_z * sigma
            outside[:train] = False
            cleaned = np.where(outside, predicted, observed)
            if np.array_equal(cleaned, y):
                break
            y = cleaned
            smoothed = ETSModel(y, initialization_method="heuristic", **spec).smooth(fitted.params)
            predicted = np.asarray(smoothed.fittedvalues, dtype=float)
    lower, upper = predicted - band_z * sigma, predicted + band_z * sigma
    outside = (observed > upper) | (observed < lower)
    outside[:train] = False
    hit = np.flatnonzero(outside)
    directions = np.where(observed[hit] > predicted[hit], 1, -1).tolist()
    return SeasonalFit(predicted, lower, upper, hit.tolist(), directions, sigma)


@dataclass(frozen=True)
class Hysteresis:
    """A static limit with hysteresis over a series.

    Attributes:
        active: per interval, whether the alert is raised.
        raised: indices where it was raised; cleared: indices where it cleared.
    """

    active: np.ndarray
    raised: list[int]
    cleared: list[int]


def hysteresis(
    x: np.ndarray, raise_above: float, clear_below: float, clear_after: int = 3, initially_active: bool = False
) -> Hysteresis:
    """Raise when x > ``raise_above``; clear after ``clear_after`` consecutive intervals with
    x < ``clear_below``. NaN intervals (no data) neither raise nor count toward clearing, and
    break a clearing run.

    Args:
        x: the series, oldest first.
        raise_above: the limit (e.g. the p95-latency SLO, or a 5 % error rate).
        clear_below: the lower limit; must not exceed ``raise_above``.
        clear_after: K, consecutive intervals below ``clear_below`` needed to clear.
        initially_active: the state carried in from the previous evaluation.

    Raises:
        ValueError: ``clear_below > raise_above`` or ``clear_after < 1``.
    """
    if clear_below > raise_above:
        raise ValueError(f"clear_below {clear_below} exceeds raise_above {raise_above}")
    if clear_after < 1:
        raise ValueError("clear_after must be at least 1")
    x = np.asarray(x, dtype=float)
    active = np.zeros(x.size, dtype=bool)
    raised: list[int] = []
    cleared: list[int] = []
    on, calm = initially_active, 0
    for t, v in enumerate(x):
        if not math.isfinite(v):
            calm = 0
        elif not on and v > raise_above:
            on, calm = True, 0
            raised.append(t)
        elif on:
            calm = calm + 1 if v < clear_below else 0
            if calm >= clear_after:
                on, calm = False, 0
                cleared.append(t)
        active[t] = on
    return Hysteresis(active, raised, cleared)
