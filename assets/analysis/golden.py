"""Scoring an analyzer against the hand-labelled golden set (``data/golden/labels.yaml``).

Pure: takes parsed labels and predictions, returns numbers; decoding videos and calling an
analyzer (local or a remote model) is the caller's job (``pipelines/cli/golden.py``).

Scores:
- ``motion_class``, ``temperature_class``, ``dominant_style``: accuracy over the videos. A
  prediction is right when it equals the label or one of the field's ``<field>_also``
  alternatives (the labeller found the field ambiguous); ``strict`` counts the first label only.
- ``effects``: every (video, detected effect of the taxonomy) is a yes/no decision; accuracy,
  precision and recall over them, leaving out a video's ``effects_ambiguous``.
- ``scene_cuts``: precision and recall of cut times, a predicted cut matching at most one
  labelled cut within ``tolerance_ms`` (one-to-one, nearest first), the usual shot-boundary
  evaluation (TRECVID-style, with a time tolerance instead of a frame overlap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

CLASS_FIELDS = ("motion_class", "temperature_class", "dominant_style")

# 120 ms = 3 frames at 25 fps: a cut found one frame late (a frame-counting detector on a file
# with a timestamp gap, or a dissolve's midpoint) is still the same cut.
CUT_TOLERANCE_MS = 120


@dataclass(frozen=True)
class Prediction:
    """What an analyzer says about one video, in the golden set's terms.

    Attributes:
        scene_cuts_ms: cut times, ms from the first frame.
        motion_class: static | low | medium | high.
        temperature_class: warm | neutral | cool.
        dominant_style: a style of data/style_taxonomy.yaml.
        effects_present: detected effects of the taxonomy.
    """

    scene_cuts_ms: list[int]
    motion_class: str
    temperature_class: str
    dominant_style: str
    effects_present: list[str] = field(default_factory=list)


# An analyzer maps a video file to its Prediction (the local analysis, or a remote model).
Analyzer = Callable[[Path], Prediction]


@dataclass(frozen=True)
class Rate:
    """``hits`` of ``total``; ``value`` is hits / total (None when total is 0)."""

    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None


@dataclass
class GoldenReport:
    """Per-field scores of one analyzer over the golden set.

    Attributes:
        fields: field -> (lenient accuracy, strict accuracy) for CLASS_FIELDS.
        effects_accuracy, effects_precision, effects_recall: over (video, effect) decisions.
        cuts_precision, cuts_recall: over cut times within ``tolerance_ms``.
        misses: per video, the fields it got wrong (``field: predicted != label``).
    """

    fields: dict[str, tuple[Rate, Rate]]
    effects_accuracy: Rate
    effects_precision: Rate
    effects_recall: Rate
    cuts_precision: Rate
    cuts_recall: Rate
    tolerance_ms: int
    misses: dict[str, list[str]]

    def summary(self) -> dict[str, float | None]:
        """Flat name -> value (0..1, None when nothing was counted), the numbers docs quote."""
        out: dict[str, float | None] = {}
        for name, (lenient, strict) in self.fields.items():
            out[name] = lenient.value
            out[f"{name}_strict"] = strict.value
        out |= {
            "effects_accuracy": self.effects_accuracy.value,
            "effects_precision": self.effects_precision.value,
            "effects_recall": self.effects_recall.value,
            "scene_cuts_precision": self.cuts_precision.value,
            "scene_cuts_recall": self.cuts_recall.value,
        }
        return out

    def to_dict(self) -> dict:
        """JSON-ready: the summary, the raw counts and the misses."""
        return {
            "summary": self.summary(),
            "counts": {
                **{k: {"lenient": asdict(v[0]), "strict": asdict(v[1])} for k, v in self.fields.items()},
                "effects_accuracy": asdict(self.effects_accuracy),
                "effects_precision": asdict(self.effects_precision),
                "effects_recall": asdict(self.effects_recall),
                "scene_cuts_precision": asdict(self.cuts_precision),
                "scene_cuts_recall": asdict(self.cuts_recall),
            },
            "tolerance_ms": self.tolerance_ms,
            "misses": self.misses,
        }


def match_cuts(truth_ms: list[int], predicted_ms: list[int], tolerance_ms: int) -> int:
    """Number of one-to-one matches between labelled and predicted cuts within tolerance_ms,
    taking the closest pairs first."""
    candidates = sorted(
        (abs(t - p), i, j)
        for i, t in enumerate(truth_ms)
        for j, p in enumerate(predicted_ms)
        if abs(t - p) <= tolerance_ms
    )
    used_t, used_p = set(), set()
    for _, i, j in candidates:
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
    return len(used_t)


def evaluate(
    labels: list[dict],
    predictions: dict[str, Prediction],
    effect_names: list[str],
    tolerance_ms: int = CUT_TOLERANCE_MS,
) -> GoldenReport:
    """Score ``predictions`` (video id -> Prediction) against ``labels`` (the ``videos`` of
    labels.yaml). Videos without a prediction are skipped (e.g. a source not installed).

    Args:
        effect_names: the taxonomy's ``detected_effects`` names, every one a yes/no decision.

    Raises:
        ValueError: a label names an effect not in effect_names.
    """
    counts = {f: [0, 0, 0] for f in CLASS_FIELDS}  # lenient hits, strict hits, total
    eff = {"tp": 0, "fp": 0, "fn": 0, "right": 0, "total": 0}
    cut_hits = cut_pred = cut_true = 0
    misses: dict[str, list[str]] = {}
    for video in labels:
        pred = predictions.get(video["id"])
        if pred is None:
            continue
        wrong = []
        for f in CLASS_FIELDS:
            got = getattr(pred, f)
            accepted = [video[f], *video.get(f"{f}_also", [])]
            counts[f][0] += got in accepted
            counts[f][1] += got == video[f]
            counts[f][2] += 1
            if got not in accepted:
                wrong.append(f"{f}: {got} != {video[f]}")
        present, ambiguous = set(video.get("effects_present", [])), set(video.get("effects_ambiguous", []))
        unknown = (present | ambiguous) - set(effect_names)
        if unknown:
            raise ValueError(f"golden video {video['id']}: unknown effects {sorted(unknown)}")
        for name in effect_names:
            if name in ambiguous:
                continue
            said, true = name in pred.effects_present, name in present
            eff["total"] += 1
            eff["right"] += said == true
            eff["tp"] += said and true
            eff["fp"] += said and not true
            eff["fn"] += true and not said
            if said != true:
                wrong.append(f"effect {name}: {'present' if said else 'absent'} != {'present' if true else 'absent'}")
        hits = match_cuts(video["scene_cuts_ms"], pred.scene_cuts_ms, tolerance_ms)
        cut_hits += hits
        cut_pred += len(pred.scene_cuts_ms)
        cut_true += len(video["scene_cuts_ms"])
        if hits < max(len(pred.scene_cuts_ms), len(video["scene_cuts_ms"])):
            wrong.append(f"scene_cuts_ms: {pred.scene_cuts_ms} vs {video['scene_cuts_ms']}")
        if wrong:
            misses[video["id"]] = wrong
    return GoldenReport(
        fields={f: (Rate(c[0], c[2]), Rate(c[1], c[2])) for f, c in counts.items()},
        effects_accuracy=Rate(eff["right"], eff["total"]),
        effects_precision=Rate(eff["tp"], eff["tp"] + eff["fp"]),
        effects_recall=Rate(eff["tp"], eff["tp"] + eff["fn"]),
        cuts_precision=Rate(cut_hits, cut_pred),
        cuts_recall=Rate(cut_hits, cut_true),
        tolerance_ms=tolerance_ms,
        misses=misses,
    )
