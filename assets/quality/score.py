"""The quality vector of one output, its composite, and the per-effect ranking.

``score_output`` decodes the input (cached: several providers' outputs are scored against the
same proxy) and the output once each, matches ``samples`` frame pairs by relative time
position, and assembles fidelity, artifacts, style adherence, temporal consistency and pHash
distance plus the technical gate.

Composite (0..1, higher is better), when the gate passes::

    0.35 style_adherence + 0.25 fidelity + 0.20 (1 - artifacts) + 0.20 temporal_consistency

Style weighs most because an output that does not apply the requested effect is useless
however clean it is; fidelity next because the effect must keep the uploaded content; clean
pixels and stable motion share the rest. When style is None (effect type with no defined
adherence) the other weights are renormalised to sum to 1. A failed gate sets composite 0 (the
vector is still reported); an output that cannot be scored at all gets status ``unknown``,
confidence 0 and None metrics - never a made-up number.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from . import artifacts, similarity, style, temporal
from .frames import DecodedVideo, SampledFrame, VideoUnreadable, decode
from .gate import GateResult, QualityInputError, decode_input_or_raise, evaluate

WEIGHTS = {"style_adherence": 0.35, "fidelity": 0.25, "cleanliness": 0.20, "temporal_consistency": 0.20}
DEFAULT_SAMPLES = 16


@dataclass(frozen=True)
class QualityVector:
    """Quality of one provider output against its input.

    Attributes:
        status: ``"scored"`` or ``"unknown"`` (output missing/undecodable, or input unreadable).
        fidelity: mean luma SSIM over matched pairs, clipped to 0..1 (1 = same structure).
        artifacts: 0 (clean) .. 1, noisy-OR of blocking/noise/banding/frozen/black excesses.
        style_adherence: 0..1 effect-specific, None for effect types without a definition.
        temporal_consistency: 0..1, 1 = as stable as the input.
        perceptual_hash_distance: mean pHash Hamming distance / 64 over pairs (0 = same).
        composite: 0..1 weighted score; 0 when the gate fails; None when unknown.
        confidence: distinct matched pairs / requested samples (0 when unknown).
        gate_passed: technical gate outcome.
        gate_failures: readable gate failure reasons.
        measurements: raw statistics used (names -> float; units in the module docstrings).
        scoring_ms: wall milliseconds spent scoring.
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

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready; lists and dicts are copies)."""
        return asdict(self)


def score_output(
    input_path: str,
    output_path: str | None,
    effect_type: str,
    params: dict,
    samples: int = DEFAULT_SAMPLES,
) -> QualityVector:
    """Score one provider output against its input.

    Args:
        input_path: normalized H.264 proxy (local mp4).
        output_path: provider output (local mp4); None when the provider produced nothing.
        effect_type: catalog effect type (``warm_grade``, ``cool_grade``, ``slow_motion``,
            ``cartoon``; others get style_adherence None).
        params: effect parameters (``strength``, ``factor``, ``levels``); may be empty.
        samples: frame pairs to compare (>= 1).

    Returns:
        QualityVector; status ``unknown`` when the output (or the input) cannot be decoded.

    Raises:
        ValueError: ``samples < 1``.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    started = time.perf_counter()
    params = params or {}
    try:
        inp = _decode_input(input_path, samples)
    except QualityInputError as exc:
        return _unknown([f"input unreadable: {exc}"], started)
    if not output_path:
        return _unknown(["output missing: no output path"], started)
    try:
        out = decode(output_path, samples=samples, work_size=inp.work_size)
    except VideoUnreadable as exc:
        return _unknown([f"integrity: output unreadable ({exc.reason})"], started)
    gate = evaluate(inp, out, effect_type, params)
    pairs = _matched_slots(inp, out)
    if out.frames == 0 or not pairs:
        return _unknown(gate.failures or ["no frame pairs could be matched"], started)
    return _score(inp, out, pairs, effect_type, params, gate, samples, started)


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


def _score(
    inp: DecodedVideo,
    out: DecodedVideo,
    slots: list[int],
    effect_type: str,
    params: dict,
    gate: GateResult,
    samples: int,
    started: float,
) -> QualityVector:
    ins = [inp.samples[s] for s in slots]
    outs = [out.samples[s] for s in slots]

    ssims = [max(0.0, similarity.ssim(a.luma, b.luma)) for a, b in zip(ins, outs, strict=True)]
    hashes = [
        similarity.phash_distance(similarity.phash(_grey(a.rgb)), similarity.phash(_grey(b.rgb)))
        for a, b in zip(ins, outs, strict=True)
    ]
    fidelity = float(np.mean(ssims))
    phash_distance = float(np.mean(hashes))

    m: dict[str, float] = {
        "ssim_mean": fidelity,
        "ssim_min": float(np.min(ssims)),
        "phash_mean": phash_distance,
    }
    stats: dict[str, tuple[float, float]] = {
        "blocking": (
            _mean_over(artifacts.blockiness, ins),
            _mean_over(artifacts.blockiness, outs),
        ),
        "noise": (
            _mean_over(artifacts.noise, ins),
            _mean_over(artifacts.noise, outs),
        ),
        "banding": (
            _mean_over(artifacts.banding, ins),
            _mean_over(artifacts.banding, outs),
        ),
        "frozen": (artifacts.frozen_share(inp.frame_mad), artifacts.frozen_share(out.frame_mad)),
        "black": (artifacts.black_share(inp.black), artifacts.black_share(out.black)),
    }
    artifact_score, components = artifacts.combine({k: float(o - i) for k, (i, o) in stats.items()})
    for name, (value_in, value_out) in stats.items():
        key = {"frozen": "dup_share", "black": "black_share"}.get(name, name)
        m[f"{key}_in"], m[f"{key}_out"] = float(value_in), float(value_out)
        m[f"artifact_{name}"] = components[name]

    flicker_in, flicker_out = temporal.flicker(inp.grid_means), temporal.flicker(out.grid_means)
    jitter_in, jitter_out = temporal.jitter(inp.frame_mad), temporal.jitter(out.frame_mad)
    temporal_score = temporal.consistency(flicker_in, flicker_out, jitter_in, jitter_out)
    m.update(flicker_in=flicker_in, flicker_out=flicker_out, jitter_in=jitter_in, jitter_out=jitter_out)

    style_score, style_m = style.adherence(effect_type, params, inp, out, slots)
    m.update(style_m)
    m.update(
        duration_in_s=inp.duration_s,
        duration_out_s=out.duration_s,
        duration_ratio=out.duration_s / inp.duration_s if inp.duration_s else 0.0,
        fps_in=style.frame_rate(inp),
        fps_out=style.frame_rate(out),
        frames_in=float(inp.frames),
        frames_out=float(out.frames),
        pairs_scored=float(len(slots)),
        pairs_requested=float(samples),
    )
    vector = {
        "fidelity": fidelity,
        "artifacts": artifact_score,
        "style_adherence": style_score,
        "temporal_consistency": temporal_score,
    }
    return QualityVector(
        status="scored",
        **vector,
        perceptual_hash_distance=phash_distance,
        composite=composite(vector, gate.passed),
        confidence=min(1.0, len(slots) / samples),
        gate_passed=gate.passed,
        gate_failures=list(gate.failures),
        measurements={k: float(v) for k, v in m.items()},
        scoring_ms=_ms(started),
    )


def _mean_over(measure: Callable[[np.ndarray], float], frames: Sequence[SampledFrame]) -> float:
    """Mean of ``measure`` over the frames' native-size luma."""
    return float(np.mean([measure(f.luma_native) for f in frames]))


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
