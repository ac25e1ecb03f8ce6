"""The quality vector of one output, its composite, and the per-effect ranking.

``score_output`` decodes the input (cached: several providers' outputs are scored against the
same proxy) and the output once each (per-frame statistics, ``samples`` frames at relative
positions for style and pHash), puts the output on the input's timeline (``align``), runs
one ffmpeg graph for per-frame VMAF, PSNR and SSIM at native resolution (``fullref``), runs the
per-frame artifact detectors (``detectors``) and the technical gate, and pools the per-frame
series (``pooling``: libvmaf's harmonic mean, so a handful of ruined frames counts).

libvmaf (one ffmpeg filter graph, which decodes both videos itself) does not wait for the
decode: on a worker thread, the alignment its graph needs is planned from the packets'
timestamps (``frames.packet_timeline``, a demux without decoding) and libvmaf starts on it in a
child process, while this thread decodes from the start. The alignment planned from the decode
is compared with it afterwards; libvmaf runs again only if the two graphs differ (a file whose
packets do not all decode), so the series are always those of the decoded timeline. Everything
that does not need libvmaf's series (artifacts, temporal consistency, style, pHash) is measured
before waiting for it: on two cores the scoring is CPU-bound, and work done after the child
exits would run on one.

Fidelity is measured on what the effect must preserve (``FIDELITY_METRIC``):

===========================  ===========  ===================================================
effect type                  metric       why
===========================  ===========  ===================================================
warm_grade, cool_grade       SSIM         a grade changes luma levels on purpose, which VMAF
                                          charges (a 3500 K grade reads VMAF 56 on an
                                          otherwise untouched clip); SSIM keeps the structure
                                          term and tolerates the level change (0.97)
cartoon                      SSIM         texture loss is the effect; the structure (edges,
                                          shapes) must survive
slow_motion                  VMAF         on the output frames that carry the input's
                                          instants (time scale = factor): content and timing
any other (incl. none)       VMAF         the output should look like the input
===========================  ===========  ===================================================

Artifacts = 1 - pooled per-frame cleanliness (``detectors`` level, pooled like fidelity).
PSNR-Y is reported per frame and pooled in ``measurements`` for every effect type; it decides
nothing.

Composite (0..1, higher is better), when the gate passes::

    0.35 style_adherence + 0.40 fidelity + 0.10 (1 - artifacts) + 0.15 temporal_consistency

Style weighs much because an output that does not apply the requested effect is useless
however clean it is; fidelity as much, because it is a perceptual full-reference metric (VMAF)
that already charges blur, blocking and noise the way viewers do; artifacts and temporal
consistency add what it cannot see (localized damage - which also fails the gate - repeats,
flicker, judder). With equal shares for the last three (0.25/0.20/0.20) a blur the artifact
detectors rightly ignore outranked x264 CRF 45 although VMAF puts it far below (6 vs 30 on
bikes.mp4): fidelity must carry more than the other two together for the composite to order
degradations as VMAF does. When style is None (effect type with no defined
adherence) the other weights are renormalised to sum to 1. A failed gate sets composite 0 (the
vector is still reported); an output that cannot be scored at all gets status ``unknown``,
confidence 0 and None metrics - never a made-up number.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from resources.ffmpeg import FFmpegError

from . import artifacts, fullref, pooling, similarity, style, temporal
from .align import Alignment, plan
from .detectors import COMPONENTS, FrameArtifacts, detect
from .frames import DecodedVideo, VideoUnreadable, decode, packet_timeline
from .fullref import FrameSeries
from .gate import GateResult, QualityInputError, decode_input_or_raise, evaluate

FIDELITY_METRIC = {"warm_grade": "ssim", "cool_grade": "ssim", "cartoon": "ssim"}
DEFAULT_FIDELITY_METRIC = "vmaf"
WEIGHTS = {"style_adherence": 0.35, "fidelity": 0.40, "cleanliness": 0.10, "temporal_consistency": 0.15}
DEFAULT_SAMPLES = 16
# Weight of the vision judge (Gemini) at full confidence, against the composite's 1.0: small,
# because it is one model's opinion beside measured metrics (docs/gemini.md).
JUDGE_WEIGHT = 0.10


@dataclass(frozen=True)
class QualityVector:
    """Quality of one provider output against its input.

    Attributes:
        status: ``"scored"`` or ``"unknown"`` (output missing/undecodable, or input unreadable).
        fidelity: 0..1, the effect type's full-reference metric (VMAF / 100 or SSIM, module
            table) per aligned frame, harmonic-mean pooled.
        artifacts: 0 (clean) .. 1, 1 - pooled per-frame cleanliness (``detectors``).
        style_adherence: 0..1 effect-specific, None for effect types without a definition.
        temporal_consistency: 0..1, 1 = as stable as the input.
        perceptual_hash_distance: mean pHash Hamming distance / 64 over pairs (0 = same).
        composite: 0..1 weighted score; 0 when the gate fails; None when unknown.
        confidence: distinct matched pairs / requested samples (0 when unknown).
        gate_passed: technical gate outcome.
        gate_failures: readable gate failure reasons.
        measurements: raw statistics used (names -> float; units in the module docstrings).
        scoring_ms: wall milliseconds spent scoring.
        frame_vmaf, frame_psnr_y, frame_ssim: per input frame on the common timeline (index =
            input frame), VMAF 0..100, PSNR-Y dB, SSIM; empty when not measured.
        frame_artifacts: per output frame artifact level 0..1 (``detectors``).
        damaged_frames: output frame indices with localized corruption (gate check).
    """

    status: str
    fidelity: float | None
    artifacts: float | None
    style_adherence: float | None
    temporal_consistency: float | None
    perceptual_hash_distance: float | None
    composite: float | None
    confidence: float
    gate_passed: bool
    gate_failures: list[str] = field(default_factory=list)
    measurements: dict[str, float] = field(default_factory=dict)
    scoring_ms: int = 0
    frame_vmaf: list[float] = field(default_factory=list)
    frame_psnr_y: list[float] = field(default_factory=list)
    frame_ssim: list[float] = field(default_factory=list)
    frame_artifacts: list[float] = field(default_factory=list)
    damaged_frames: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready; lists and dicts are copies)."""
        return asdict(self)


@dataclass(frozen=True)
class ScoredFrames:
    """The matched sample frames a vector was measured on, RGB uint8 at the working size, in
    time order (empty when the output was not scored): what the vision judge looks at, taken
    from the same decode (``assets/quality/asset.py``)."""

    reference: list[np.ndarray]
    output: list[np.ndarray]


_NO_FRAMES = ScoredFrames([], [])


def score_output(
    input_path: str,
    output_path: str | None,
    effect_type: str,
    params: dict,
    samples: int = DEFAULT_SAMPLES,
    example_look: dict[str, float] | None = None,
) -> QualityVector:
    """Score one provider output against its input (``score_output_with_frames`` without the
    frames)."""
    return score_output_with_frames(input_path, output_path, effect_type, params, samples, example_look)[0]


def score_output_with_frames(
    input_path: str,
    output_path: str | None,
    effect_type: str,
    params: dict,
    samples: int = DEFAULT_SAMPLES,
    example_look: dict[str, float] | None = None,
) -> tuple[QualityVector, ScoredFrames]:
    """Score one provider output against its input; also the sample frames it was scored on.

    Args:
        input_path: normalized H.264 proxy (local mp4).
        output_path: provider output (local mp4); None when the provider produced nothing.
        effect_type: catalog effect type (``warm_grade``, ``cool_grade``, ``slow_motion``,
            ``cartoon``; others get style_adherence None).
        params: effect parameters (``strength``, ``factor``, ``levels``); may be empty.
        samples: frame pairs to compare (>= 1).
        example_look: the job's example's look (``style.LOOK_FEATURES`` from M2) when the
            example shows this effect: style adherence is then the output's closeness to it
            (``style.look_adherence``; the effect-specific score stays in measurements as
            ``effect_adherence``).

    Returns:
        (QualityVector, ScoredFrames); status ``unknown`` (and no frames) when the output (or
        the input) cannot be decoded.

    Raises:
        ValueError: ``samples < 1``.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    started = time.perf_counter()
    params = params or {}
    # libvmaf runs in its own ffmpeg process while this one decodes (module docstring); the
    # demux that plans its graph runs in the pool too, so the decode starts at once.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="libvmaf") as pool:
        early = pool.submit(_early_fullref, input_path, output_path, effect_type, params)
        try:
            inp = _decode_input(input_path, samples)
        except QualityInputError as exc:
            return _unknown([f"input unreadable: {exc}"], started), _NO_FRAMES
        if not output_path:
            return _unknown(["output missing: no output path"], started), _NO_FRAMES
        try:
            out = decode(output_path, samples=samples, work_size=inp.work_size)
        except VideoUnreadable as exc:
            return _unknown([f"integrity: output unreadable ({exc.reason})"], started), _NO_FRAMES
        if out.frames == 0:
            return _unknown(evaluate(inp, out, effect_type, params).failures, started), _NO_FRAMES
        alignment = plan(inp, out, effect_type, params)
        found = detect(inp, out, alignment.to_input, effect_type)
        gate = evaluate(inp, out, effect_type, params, damaged=found.reasons)
        pairs = _matched_slots(inp, out)
        if not pairs:
            return _unknown(gate.failures or ["no frame pairs could be matched"], started), _NO_FRAMES
        # Everything that does not need libvmaf's series is measured while it still runs.
        m = alignment.measurements()
        content = _content(inp, out, pairs, effect_type, params, found, m, example_look)
        series = _full_reference(early, input_path, output_path, alignment)
    vector = _vector(content, series, effect_type, gate, len(pairs), samples, started, found, m)
    return vector, ScoredFrames([inp.samples[s].rgb for s in pairs], [out.samples[s].rgb for s in pairs])


def _early_fullref(
    input_path: str, output_path: str | None, effect_type: str, params: dict
) -> tuple[Alignment, FrameSeries | None] | None:
    """(the alignment the packets' timestamps give, libvmaf's series on it), meant to run
    beside the decode: ``frames.packet_timeline`` demuxes without decoding. The series is None
    when ffmpeg fails on that graph; the whole result None when the packets do not tell (no
    output, an unreadable file, packets without timestamps)."""
    if not output_path:
        return None
    inp, out = packet_timeline(input_path), packet_timeline(output_path)
    if inp is None or out is None or not inp.frames or not out.frames:
        return None
    try:
        guess = plan(inp, out, effect_type, params)
    except ValueError:
        return None
    return guess, _measure(input_path, output_path, guess)


def _full_reference(
    early: Future[tuple[Alignment, FrameSeries | None] | None], input_path: str, output_path: str, alignment: Alignment
) -> FrameSeries | None:
    """libvmaf's per-frame series on ``alignment``: the early run's when it ran the same
    filter graph (always, for a file that decodes cleanly), else a run of its own."""
    guessed = early.result()
    if guessed is not None and guessed[0].same_graph(alignment):
        return guessed[1]
    return _measure(input_path, output_path, alignment)


def _measure(input_path: str, output_path: str, alignment: Alignment) -> FrameSeries | None:
    """``fullref.measure``, None when ffmpeg fails: the gate already holds the reason
    (integrity); fidelity is then unknown, not made up."""
    try:
        return fullref.measure(input_path, output_path, alignment)
    except (FFmpegError, ValueError):
        return None


def rank_outputs(composites: list[Any]) -> list[int]:
    """Competition ranks (1 = best composite) of outputs of one effect type.

    Args:
        composites: per output a composite (float or None), a ``QualityVector``, or its
            ``to_dict()``; None, NaN and status ``unknown`` mean unknown.

    Returns:
        Ranks in input order. Equal composites share the best of their ranks ("1224");
        unknowns all share the rank after the last scored output.
    """
    values = [_composite_of(c) for c in composites]
    known = sorted(v for v in values if v is not None)
    ranks = []
    for v in values:
        if v is None:
            ranks.append(len(known) + 1)
        else:
            ranks.append(1 + sum(1 for k in known if k > v))
    return ranks


def _composite_of(item: Any) -> float | None:
    if isinstance(item, QualityVector):
        item = item.to_dict()
    if isinstance(item, dict):
        if item.get("status") == "unknown":
            return None
        item = item.get("composite")
    if item is None:
        return None
    value = float(item)
    return None if math.isnan(value) else value


def composite(vector: dict[str, float | None], gate_passed: bool) -> float:
    """Weighted composite (module docstring) of fidelity/artifacts/style/temporal; 0 if the gate failed."""
    if not gate_passed:
        return 0.0
    parts = {
        "style_adherence": vector["style_adherence"],
        "fidelity": vector["fidelity"],
        "cleanliness": None if vector["artifacts"] is None else 1.0 - vector["artifacts"],
        "temporal_consistency": vector["temporal_consistency"],
    }
    used = {k: v for k, v in parts.items() if v is not None}
    total = sum(WEIGHTS[k] for k in used)
    return sum(WEIGHTS[k] * v for k, v in used.items()) / total if total else 0.0


def _decode_input(path: str, samples: int) -> DecodedVideo:
    try:
        stat = os.stat(path)
    except (OSError, TypeError, ValueError) as exc:
        raise QualityInputError(f"input {path}: {exc}") from exc
    return _decode_input_cached(path, stat.st_mtime_ns, stat.st_size, samples)


@lru_cache(maxsize=2)
def _decode_input_cached(path: str, mtime_ns: int, size: int, samples: int) -> DecodedVideo:
    # Keyed on mtime and size so a rewritten proxy is decoded again; small because a decoded
    # video holds its sampled frames (~6 MB for a 640x272 proxy at 16 samples).
    return decode_input_or_raise(path, samples)


def _matched_slots(inp: DecodedVideo, out: DecodedVideo) -> list[int]:
    """Sample slots present in both videos, one per distinct (input frame, output frame) pair."""
    seen: set[tuple[int, int]] = set()
    slots = []
    for slot in sorted(set(inp.samples) & set(out.samples)):
        key = (inp.samples[slot].index, out.samples[slot].index)
        if key not in seen:
            seen.add(key)
            slots.append(slot)
    return slots


@dataclass(frozen=True)
class _Content:
    """The vector's dimensions that do not need libvmaf's series (``_content``)."""

    artifacts: float
    style_adherence: float | None
    temporal_consistency: float
    perceptual_hash_distance: float


def _content(
    inp: DecodedVideo,
    out: DecodedVideo,
    slots: list[int],
    effect_type: str,
    params: dict,
    found: FrameArtifacts,
    m: dict[str, float],
    example_look: dict[str, float] | None = None,
) -> _Content:
    """Artifacts, temporal consistency, style adherence and pHash distance of a decoded pair
    (``slots``: matched sample slots); their statistics go into ``m``."""
    ins = [inp.samples[s] for s in slots]
    outs = [out.samples[s] for s in slots]
    hashes = [
        similarity.phash_distance(similarity.phash(_grey(a.rgb)), similarity.phash(_grey(b.rgb)))
        for a, b in zip(ins, outs, strict=True)
    ]
    phash_distance = float(np.mean(hashes))
    m["phash_mean"] = phash_distance

    cleanliness = pooling.harmonic_mean(1.0 - found.level, full_scale=1.0)
    artifact_score = min(1.0, max(0.0, 1.0 - cleanliness))
    m.update(found.measurements)
    for name in COMPONENTS:
        m[f"artifact_{name}"] = float(found.components[name].mean())

    flicker_in, flicker_out = temporal.flicker(inp.grid_means), temporal.flicker(out.grid_means)
    jitter_in, jitter_out = temporal.jitter(inp.frame_mad), temporal.jitter(out.frame_mad)
    temporal_score = temporal.consistency(flicker_in, flicker_out, jitter_in, jitter_out)
    m.update(flicker_in=flicker_in, flicker_out=flicker_out, jitter_in=jitter_in, jitter_out=jitter_out)

    style_score, style_m = style.adherence(effect_type, params, inp, out, slots)
    m.update(style_m)
    if example_look is not None:
        look_score, look_m = style.look_adherence(effect_type, example_look, [out.samples[s].rgb for s in slots])
        m.update(look_m)
        if look_score is not None:
            if style_score is not None:
                m["effect_adherence"] = style_score
            style_score = look_score
    m.update(
        dup_share_in=artifacts.frozen_share(inp.frame_mad),
        dup_share_out=artifacts.frozen_share(out.frame_mad),
        black_share_out=artifacts.black_share(out.black),
        duration_in_s=inp.duration_s,
        duration_out_s=out.duration_s,
        duration_ratio=out.duration_s / inp.duration_s if inp.duration_s else 0.0,
        fps_in=style.frame_rate(inp),
        fps_out=style.frame_rate(out),
        frames_in=float(inp.frames),
        frames_out=float(out.frames),
        pairs_scored=float(len(slots)),
    )
    return _Content(artifact_score, style_score, temporal_score, phash_distance)


def _vector(
    content: _Content,
    series: FrameSeries | None,
    effect_type: str,
    gate: GateResult,
    pairs: int,
    samples: int,
    started: float,
    found: FrameArtifacts,
    m: dict[str, float],
) -> QualityVector:
    """The scored vector: fidelity from ``series`` (None when libvmaf failed) beside the
    ``content`` dimensions, the composite, and every statistic of ``m``."""
    metric = FIDELITY_METRIC.get(effect_type, DEFAULT_FIDELITY_METRIC)
    fidelity = None
    if series is not None:
        m.update(pooling.summary("vmaf", series.vmaf))
        m.update(pooling.summary("psnr_y", series.psnr_y, full_scale=fullref.PSNR_MAX_DB))
        m.update(pooling.summary("ssim", series.ssim, full_scale=1.0))
        m["fidelity_metric_vmaf"] = float(metric == "vmaf")
        fidelity = m["vmaf_hmean"] / 100.0 if metric == "vmaf" else m["ssim_hmean"]
        fidelity = min(1.0, max(0.0, fidelity))
    m["pairs_requested"] = float(samples)
    vector = {
        "fidelity": fidelity,
        "artifacts": content.artifacts,
        "style_adherence": content.style_adherence,
        "temporal_consistency": content.temporal_consistency,
    }
    return QualityVector(
        status="scored",
        **vector,
        perceptual_hash_distance=content.perceptual_hash_distance,
        composite=composite(vector, gate.passed),
        confidence=min(1.0, pairs / samples),
        gate_passed=gate.passed,
        gate_failures=list(gate.failures),
        measurements={k: float(v) for k, v in m.items()},
        scoring_ms=_ms(started),
        frame_vmaf=_floats(series.vmaf) if series is not None else [],
        frame_psnr_y=_floats(series.psnr_y) if series is not None else [],
        frame_ssim=_floats(series.ssim) if series is not None else [],
        frame_artifacts=_floats(found.level),
        damaged_frames=list(found.damaged),
    )


def scoring_failed(exc: BaseException, started: float | None = None) -> QualityVector:
    """The vector of an output whose scoring itself raised (not an unreadable output): status
    ``unknown``, confidence 0, no numbers, the error in ``gate_failures``. The output may still
    be delivered, ranked after every scored one (economics/best.py)."""
    return _unknown([f"quality scoring failed: {type(exc).__name__}: {exc}"], started or time.perf_counter())


def with_judge(vector: QualityVector, score: float, confidence: float) -> QualityVector:
    """``vector`` with a vision judge's verdict (0..1, confidence 0..1) as one more dimension:
    composite = (composite + w·c·score) / (1 + w·c) with w = JUDGE_WEIGHT and c the judge's
    confidence, so the judge moves a composite by at most w/(1+w) (9 %) and never decides alone;
    a failed gate stays 0, an unknown vector is returned as it is. The verdict is kept in
    measurements (``judge_score``, ``judge_confidence``, ``judge_weight``)."""
    if vector.status != "scored" or vector.composite is None:
        return vector
    weight = JUDGE_WEIGHT * min(1.0, max(0.0, confidence))
    composite_ = vector.composite if not vector.gate_passed else (vector.composite + weight * score) / (1 + weight)
    measurements = {**vector.measurements, "judge_score": score, "judge_confidence": confidence, "judge_weight": weight}
    return replace(vector, composite=composite_, measurements=measurements)


def _floats(x: np.ndarray) -> list[float]:
    # Rounded: the series are stored per output in the lake; 4 decimals is far below any
    # metric's noise and keeps the rows compact.
    return [round(float(v), 4) for v in x]


def _grey(rgb: np.ndarray) -> np.ndarray:
    # ITU-R BT.601 weights, as PIL's convert("L") that imagehash applies before hashing.
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _unknown(failures: list[str], started: float) -> QualityVector:
    return QualityVector(
        status="unknown",
        fidelity=None,
        artifacts=None,
        style_adherence=None,
        temporal_consistency=None,
        perceptual_hash_distance=None,
        composite=None,
        confidence=0.0,
        gate_passed=False,
        gate_failures=list(failures),
        measurements={},
        scoring_ms=_ms(started),
    )


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
