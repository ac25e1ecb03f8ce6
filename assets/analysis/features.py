"""Content analysis of an example video (M2): cuts, motion, color, texture, style, the looks it
shows and the effect types a job builds from them (``targets``).

One PyAV decode pass (``analysis/decode.py``) feeds every frame to PySceneDetect's
``ContentDetector`` for the cuts and converts only the sampled frames (downscaled to at most
320 px) to RGB for the motion, colour and texture measures, taken as each frame is decoded
(``measure_sample``, ``motion_luma``) and pooled at the end. Style names come from ``data/style_taxonomy.yaml`` and
effect eligibility from the rules in ``data/effects.yaml``; both arrive as parsed dicts, and
nothing here is specific to one style or one effect.

The example is where the user shows the effect they want: its detected looks (and the
uploader's description) name the job's target effects, whose parameters are estimated from its
measurements (assets/analysis/targets.py).

Callers should pass the M1 proxy (<= 640 px, <= 30 fps H.264): the decode pass reads every frame.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from assets.analysis.bands import Decision, classify
from assets.analysis.color import channel_counts, counts_cct
from assets.analysis.decode import decode_example
from assets.analysis.look import frame_texture, mean_texture
from assets.analysis.targets import target_effects

# HSV saturation (max - min) / max is unstable near black: codec noise of +-2 levels on a pixel
# of value 3 reads as saturation ~1. Pixels with V below this (12.5 % of full scale) are left out
# of mean_saturation so a dark scene is not mistaken for a vivid one.
SATURATION_MIN_VALUE = 32

# Motion is measured between a sampled frame and the first frame at least MIN_PAIR_GAP_S later
# (analysis/decode.py), scaled to a REFERENCE_INTERVAL_S step: the same instants and the same
# units whatever the frame rate, so a 60 fps upload and its 30 fps proxy (M1 caps the proxy at
# 30 fps) measure alike (adjacent frames of the 60 fps file are half as far apart, and differ
# about half as much). The reference is 1/25 s so 25 fps footage keeps the values the
# thresholds below were set on.
REFERENCE_INTERVAL_S = 1 / 25
# Frame differences are taken on luma area-averaged to this many px (longest side): codec noise
# and fine texture, which the proxy's re-encode smooths, would otherwise count as motion (at
# 320 px a carphone proxy read 19 % less motion than its source, at 160 px 16 %, 160 px keeps
# the thresholds' calibration within ~10 %).
MOTION_MAX_SIDE = 160
# Share of the frame pairs dropped at each end before averaging (see motion_level).
MOTION_TRIM = 0.1
# A frame pair "repeats" when its mean |delta luma| (160 px, unscaled) is below this many 8-bit
# levels: an H.264 re-encode of a duplicated frame differs by ~0.1-0.3 levels, while frames of
# a scene that moves at all (low motion and up, MOTION_CLASSES) differ by more than 0.4.
REPEAT_LEVEL = 0.35

# motion_class upper bounds on motion_level (mean |delta luma| / 255 per 1/25 s, 160 px luma).
# static < 0.0015 (~0.4 luma level: compression flicker of a still shot, a lavfi color source
#   measures 0.0); low < 0.01 (~2.5 levels: talking heads, a fixed camera on small walkers, e.g.
#   bigbuckbunny 0.006, Megamind 0.005, vtest 0.002); medium < 0.03 (walking subjects, moving
#   background, e.g. carphone 0.015, bikes 0.020); high above (fast action, whole-frame change).
#   Values from the golden set (data/golden/).
MOTION_CLASSES: tuple[tuple[str, float], ...] = (
    ("static", 0.0015),
    ("low", 0.01),
    ("medium", 0.03),
    ("high", float("inf")),
)

# Relative half-width of the borderline band around a motion threshold (the motion classes).
# Measured on the golden set (data/golden/, docs/analysis.md): the
# uploaded file and its proxy differ by up to ~8 % in motion_level (proxy compression smooths
# fine texture); twice that is called borderline.
MOTION_MARGIN = 0.15

# temperature_class upper bounds on color_temperature (CCT in kelvin, see analysis/color.py):
# warm below 4500 K (tungsten 2700-3200 K, golden hour ~3500 K, candle-lit Megamind.avi 3000 K),
# cool from 8000 K (shade / blue hour, teal night grades: cityCC0.mpg 9600 K); camera-balanced
# daylight sits between (D65 = 6504 K; the overcast street of vtest.avi 5500 K).
TEMPERATURE_CLASSES: tuple[tuple[str, float], ...] = (
    ("warm", 4500.0),
    ("neutral", 8000.0),
    ("cool", float("inf")),
)
# ±10 % in kelvin is ~±10 % in mired: about the shift a viewer starts to notice as a cast.
TEMPERATURE_MARGIN = 0.10


@dataclass(frozen=True)
class ContentAnalysis:
    """What an example video looks like and which effects it can get.

    Attributes:
        scene_count: number of shots (cuts + 1).
        scene_cuts_ms: start of every shot after the first, ms from the first frame (frame
            number / fps, PySceneDetect's clock).
        motion_level: 0..1, mean |luma difference| / 255 between a sampled frame and the first
            frame at least MIN_PAIR_GAP_S later, scaled to a REFERENCE_INTERVAL_S step, averaged
            over the samples (pairs spanning a cut are left out).
        motion_class: ``static`` | ``low`` | ``medium`` | ``high`` (see MOTION_CLASSES).
        temperature_class: ``warm`` | ``neutral`` | ``cool`` (see TEMPERATURE_CLASSES).
        mean_luma: 0..255, BT.601 luma of the sampled frames.
        mean_saturation: 0..1, HSV saturation of their non-black pixels.
        color_temperature: correlated colour temperature in kelvin of the gray-world illuminant
            estimate (analysis/color.py); lower is warmer.
        contrast: mean per-frame standard deviation of luma / 255.
        palette_colours: mean dominant palette size of the sampled frames (analysis/look.py).
        luma_levels: mean count of 4-level luma bins covering 90 % of the pixels
            (analysis/look.py): few for a posterized picture.
        edge_density: mean share 0..1 of Canny edge pixels (analysis/look.py).
        repeat_share: 0..1, share of frame pairs that did not change (``repeat_share``): a
            duplicated-frame slow motion repeats about 1 - 1/factor of its frames.
        dominant_style: highest-scoring taxonomy style (first listed wins ties).
        style_scores: every taxonomy style -> score 0..1.
        detected_effects: taxonomy ``detected_effects`` present in the video, in taxonomy order.
        target_effect_types: the catalog effect types the job builds, primary first
            (``targets.target_effects``: shown by the example or asked for in the description).
        target_params: effect type → its parameters (catalog defaults with the estimates from
            the example).
        target_reasons: effect type → why it is a target (``example:<look>``,
            ``description:<keyword>``, ``gemini``).
        borderline: decisions whose measure lies inside the margin of a threshold, so another
            encoding of the same video may decide them the other way: ``motion_class`` and/or
            ``temperature_class``.
        analysis_ms: wall time of analyze_video.
    """

    scene_count: int
    scene_cuts_ms: list[int]
    motion_level: float
    motion_class: str
    temperature_class: str
    mean_luma: float
    mean_saturation: float
    color_temperature: float
    contrast: float
    palette_colours: float
    luma_levels: float
    edge_density: float
    repeat_share: float
    dominant_style: str
    style_scores: dict[str, float]
    detected_effects: list[str]
    target_effect_types: list[str]
    target_params: dict[str, dict]
    target_reasons: dict[str, list[str]]
    borderline: list[str]
    analysis_ms: int

    def to_dict(self) -> dict:
        """Plain dict of the fields (lists and dicts copied)."""
        return asdict(self)


def analyze_video(
    path: str,
    fps: float,
    style_taxonomy: dict,
    effect_catalog: dict,
    sample_frames: int = 48,
    description: str | None = None,
) -> ContentAnalysis:
    """Measure ``path`` and name its style.

    Sampling: ``sample_frames`` frames evenly spaced over the video by frame index, each paired
    with the frame decoded right after it. Color metrics come from the sampled frames, motion
    from the pairs, so motion is a frame-to-frame measure whatever the video's length.

    Args:
        path: local video file (normally the M1 proxy).
        fps: decoded frame rate from ``VideoProbe.fps``, used for the duration behind
            ``cuts_per_minute`` and the cut tolerance of the motion pairs.
        style_taxonomy: parsed ``data/style_taxonomy.yaml``.
        effect_catalog: parsed ``data/effects.yaml``.
        sample_frames: number of sampled frames (pairs).
        description: the uploader's description of the effect they want, or None.

    Returns:
        ContentAnalysis.

    Raises:
        ValueError: ``fps`` <= 0, fewer than 2 decodable frames, or a taxonomy rule naming an
            unknown metric or a malformed range.
        av.FFmpegError / OSError: the file cannot be read (it should have passed M1's probe).
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    started = time.perf_counter()
    decoded = decode_example(path, sample_frames, fps, measure_sample, motion_luma)
    cuts_s, pairs, duration_s = decoded.cuts_s, decoded.pairs, decoded.duration_s
    metrics = pooled_color([sample.color for _, sample, _, _ in pairs])
    differences = pair_differences(
        [(t, sample.motion_luma, t2, partner) for t, sample, t2, partner in pairs], cuts_s, cut_tolerance_s=1.5 / fps
    )
    metrics["motion_level"] = motion_level(differences)
    metrics["repeat_share"] = repeat_share(differences)
    metrics.update(mean_texture([sample.texture for _, sample, _, _ in pairs]))
    metrics["cuts_per_minute"] = len(cuts_s) * 60.0 / duration_s
    scores = score_styles(metrics, style_taxonomy)
    dominant = dominant_style(scores)
    detected = detect_effects(metrics, style_taxonomy)
    motion = classify_motion(metrics["motion_level"])
    temperature = classify_temperature(metrics["color_temperature"])
    targets = target_effects(detected, description, metrics, effect_catalog["effects"])
    borderline = [name for name, d in (("motion_class", motion), ("temperature_class", temperature)) if d.borderline]
    return ContentAnalysis(
        scene_count=len(cuts_s) + 1,
        scene_cuts_ms=[round(c * 1000) for c in cuts_s],
        motion_level=metrics["motion_level"],
        motion_class=motion.name,
        temperature_class=temperature.name,
        mean_luma=metrics["mean_luma"],
        mean_saturation=metrics["mean_saturation"],
        color_temperature=metrics["color_temperature"],
        contrast=metrics["contrast"],
        palette_colours=metrics["palette_colours"],
        luma_levels=metrics["luma_levels"],
        edge_density=metrics["edge_density"],
        repeat_share=metrics["repeat_share"],
        dominant_style=dominant,
        style_scores=scores,
        detected_effects=detected,
        target_effect_types=[t.effect_type for t in targets],
        target_params={t.effect_type: t.params for t in targets},
        target_reasons={t.effect_type: t.reasons for t in targets},
        borderline=borderline,
        analysis_ms=round((time.perf_counter() - started) * 1000),
    )


# --- measuring ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameColor:
    """The colour statistics of one frame that ``pooled_color`` combines.

    Attributes:
        luma_mean: 0..255, mean BT.601 luma.
        luma_std: 0..1, luma standard deviation / 255.
        saturation_sum: sum of the HSV saturation (0..255) of the pixels with V >=
            SATURATION_MIN_VALUE.
        saturation_pixels: how many pixels that is.
        channel_counts: float64 (3, 256), ``color.channel_counts`` (the gray-world estimate's).
    """

    luma_mean: float
    luma_std: float
    saturation_sum: float
    saturation_pixels: int
    channel_counts: np.ndarray


def frame_color(rgb: np.ndarray, luma: np.ndarray) -> FrameColor:
    """``FrameColor`` of an RGB uint8 frame (h, w, 3) and its BT.601 luma (h, w)."""
    _, saturation, value = cv2.split(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV))
    lit = (value >= SATURATION_MIN_VALUE).view(np.uint8)  # 1 where lit, else 0
    return FrameColor(
        luma_mean=float(luma.mean()),
        luma_std=float(luma.std()) / 255,
        # Integer sums, exact in float64: the same as a NumPy masked sum, at half the CPU.
        saturation_sum=cv2.sumElems(cv2.multiply(saturation, lit))[0],
        saturation_pixels=cv2.countNonZero(lit),
        channel_counts=channel_counts(rgb),
    )


def pooled_color(colors: list[FrameColor]) -> dict[str, float]:
    """Colour statistics of frames from their ``frame_color``.

    Returns:
        ``mean_luma`` (0..255, BT.601 weights via OpenCV), ``contrast`` (mean per-frame luma
        std / 255), ``mean_saturation`` (0..1, HSV S pooled over pixels with V >=
        SATURATION_MIN_VALUE; 0 when every pixel is darker), ``color_temperature`` (CCT in
        kelvin of the gray-world illuminant, analysis/color.py).
    """
    saturation_sum = sum(c.saturation_sum for c in colors)
    saturation_pixels = sum(c.saturation_pixels for c in colors)
    return {
        "mean_luma": float(np.mean([c.luma_mean for c in colors])),
        "contrast": float(np.mean([c.luma_std for c in colors])),
        "mean_saturation": saturation_sum / saturation_pixels / 255 if saturation_pixels else 0.0,
        "color_temperature": counts_cct(c.channel_counts for c in colors),
    }


def color_metrics(frames: list[np.ndarray]) -> dict[str, float]:
    """``pooled_color`` of RGB uint8 frames (h, w, 3)."""
    return pooled_color([frame_color(rgb, _luma(rgb)) for rgb in frames])


@dataclass(frozen=True)
class SampleMeasures:
    """What ``analyze_video`` reads of one sampled frame, measured as it is decoded.

    Attributes:
        color: its ``frame_color``.
        texture: its ``look.frame_texture``.
        motion_luma: its luma at MOTION_MAX_SIDE (``motion_luma``), for its pair's difference.
    """

    color: FrameColor
    texture: tuple[int, int, float]
    motion_luma: np.ndarray


def measure_sample(rgb: np.ndarray) -> SampleMeasures:
    """``SampleMeasures`` of a sampled RGB uint8 frame (h, w, 3), its luma converted once."""
    luma = _luma(rgb)
    return SampleMeasures(frame_color(rgb, luma), frame_texture(rgb, luma), _shrink_for_motion(luma))


def motion_luma(rgb: np.ndarray) -> np.ndarray:
    """Luma uint8 of an RGB uint8 frame area-averaged to MOTION_MAX_SIDE (longest side), for
    frame differences."""
    return _shrink_for_motion(_luma(rgb))


def _shrink_for_motion(luma: np.ndarray) -> np.ndarray:
    h, w = luma.shape[:2]
    scale = min(1.0, MOTION_MAX_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(luma, size, interpolation=cv2.INTER_AREA)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma (0.299 R + 0.587 G + 0.114 B) of an RGB uint8 frame, uint8 (h, w)."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def pair_differences(
    pairs: list[tuple[float, np.ndarray, float, np.ndarray]], cuts_s: list[float], cut_tolerance_s: float = 0.001
) -> list[tuple[float, float]]:
    """``(mean |partner - frame| in luma levels, gap in s)`` of each pair ``(t_s, luma,
    partner_t_s, partner_luma)`` within one shot, the lumas uint8 at MOTION_MAX_SIDE
    (``motion_luma``): what ``motion_level`` and ``repeat_share`` read, measured once.

    Pairs whose two frames lie in different shots are skipped (a cut is an edit, measured by
    ``cuts_per_minute``, not motion) unless every pair does. ``cut_tolerance_s`` widens each
    pair for that test: cut times count frames (frame number / fps) while pair times are
    timestamps, and a file with a timestamp gap (a dropped frame in an AVI) puts the two clocks
    a frame apart.
    """
    within = [
        p for p in pairs if not any(p[0] - cut_tolerance_s < c <= p[2] + cut_tolerance_s for c in cuts_s)
    ] or pairs
    return [(float(cv2.absdiff(a, b).mean()), t_b - t_a) for t_a, a, t_b, b in within]


def motion_level(differences: list[tuple[float, float]]) -> float:
    """Trimmed mean of the pairs' luma differences (``pair_differences``) / 255, each scaled to
    a REFERENCE_INTERVAL_S step (x REFERENCE_INTERVAL_S / gap; small differences grow about
    linearly with the gap), 0..1; 0.0 without pairs.

    The mean is trimmed by MOTION_TRIM at each end, so one flash, fade-in from black or cut
    PySceneDetect did not report (shorter than its 15-frame minimum shot) does not decide the
    class: which pair lands on such a frame depends on the frame count, which a file and its
    proxy need not share.
    """
    scaled = [diff * REFERENCE_INTERVAL_S / max(gap, 0.001) for diff, gap in differences]
    return min(1.0, trimmed_mean(scaled, MOTION_TRIM) / 255) if scaled else 0.0


def trimmed_mean(values: list[float], proportion: float) -> float:
    """Mean of ``values`` without the ``int(proportion * n)`` smallest and largest, computed
    exactly as ``scipy.stats.trim_mean`` does for a 1-D list (the same partition and mean, so
    the same float; ``tests/test_analysis.py`` compares them).

    Why not scipy's: importing ``scipy.stats`` takes ~0.8 s of CPU, and every Dagster run
    process imports this module with the definitions (the analysis itself takes ~0.3 s).

    Args:
        values: n >= 1 numbers.
        proportion: share cut at each end, 0 <= proportion < 0.5.
    """
    a = np.asarray(values, dtype=np.float64)
    low = int(proportion * a.size)
    high = a.size - low
    return float(np.mean(np.partition(a, (low, high - 1))[low:high]))


def repeat_share(differences: list[tuple[float, float]]) -> float:
    """Share 0..1 of the pairs (``pair_differences``: within one shot) whose luma difference,
    not scaled to a time step, is below REPEAT_LEVEL levels: the partner is a repeat of the
    frame; 0.0 without pairs. A still shot repeats every frame too: callers read it together
    with motion_level."""
    if not differences:
        return 0.0
    return sum(diff < REPEAT_LEVEL for diff, _ in differences) / len(differences)


def classify_motion(level: float) -> Decision:
    """``static`` | ``low`` | ``medium`` | ``high`` for a motion_level (see MOTION_CLASSES), with
    its confidence (borderline within MOTION_MARGIN of a bound)."""
    return classify(level, MOTION_CLASSES, MOTION_MARGIN)


def classify_temperature(cct_k: float) -> Decision:
    """``warm`` | ``neutral`` | ``cool`` for a CCT in kelvin (see TEMPERATURE_CLASSES), with its
    confidence (borderline within TEMPERATURE_MARGIN of a bound)."""
    return classify(cct_k, TEMPERATURE_CLASSES, TEMPERATURE_MARGIN)


# --- naming the style -----------------------------------------------------------------------


def score_styles(metrics: dict[str, float], style_taxonomy: dict) -> dict[str, float]:
    """Score every taxonomy style 0..1: the minimum of its rules' trapezoid memberships.

    Args:
        metrics: metric name -> value (see the metric list in style_taxonomy.yaml).
        style_taxonomy: parsed YAML with ``styles: {name: {rules: {metric: [a, b, c, d]}}}``.

    Returns:
        style -> score rounded to 4 decimals, in taxonomy order.

    Raises:
        ValueError: a rule names an unknown metric or is not a valid trapezoid.
    """
    scores = {}
    for style, spec in style_taxonomy["styles"].items():
        memberships = [
            trapezoid(_metric(metrics, metric, style), bounds, f"{style}.{metric}")
            for metric, bounds in spec["rules"].items()
        ]
        scores[style] = round(min(memberships, default=0.0), 4)
    return scores


def dominant_style(scores: dict[str, float]) -> str:
    """Highest-scoring style; among equal scores the one listed first in the taxonomy."""
    return max(scores, key=scores.__getitem__)  # max() keeps the first of equal maxima


def trapezoid(x: float, bounds: list, where: str = "rule") -> float:
    """Fuzzy trapezoid membership of ``x`` in ``[a, b, c, d]`` (see style_taxonomy.yaml).

    0 at or below a, linear to 1 at b, 1 up to c, linear to 0 at d; ``None`` for a and b (or c and
    d) opens that side.

    Raises:
        ValueError: not 4 bounds, only one of a pair is None, or the bounds are not ascending.
    """
    if len(bounds) != 4 or (bounds[0] is None) != (bounds[1] is None) or (bounds[2] is None) != (bounds[3] is None):
        raise ValueError(f"{where}: expected [a, b, c, d] with a/b and c/d both set or both null, got {bounds}")
    a, b, c, d = bounds
    present = [v for v in bounds if v is not None]
    if present != sorted(present):
        raise ValueError(f"{where}: bounds must ascend, got {bounds}")
    if b is not None and x < b:
        return max(0.0, (x - a) / (b - a)) if b > a else 0.0
    if c is not None and x > c:
        return max(0.0, (d - x) / (d - c)) if d > c else 0.0
    return 1.0


def detect_effects(metrics: dict[str, float], style_taxonomy: dict) -> list[str]:
    """Names of the taxonomy's ``detected_effects`` whose every ``{min, max}`` range holds.

    Raises:
        ValueError: a range names an unknown metric.
    """
    found = []
    for effect, ranges in style_taxonomy.get("detected_effects", {}).items():
        if all(
            rng.get("min", -np.inf) <= _metric(metrics, metric, effect) <= rng.get("max", np.inf)
            for metric, rng in ranges.items()
        ):
            found.append(effect)
    return found


def _metric(metrics: dict[str, float], name: str, owner: str) -> float:
    if name not in metrics:
        raise ValueError(f"{owner}: unknown metric {name!r}; known: {sorted(metrics)}")
    return metrics[name]
