"""``effectlake golden``: per-field accuracy of the content analysis on the hand-labelled
golden set (``data/golden/labels.yaml``), for the local analysis and, when ``GOOGLE_API_KEY``
is set, for Gemini too."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from assets.analysis.features import analyze_video
from assets.analysis.golden import Analyzer, GoldenReport, Prediction, evaluate
from assets.ingest import probe_video
from resources.catalog import Catalog, load_yaml
from resources.gemini import GeminiClient
from resources.samples import golden_video_path
from resources.settings import get_settings


def golden_videos(data_dir: str | Path) -> tuple[list[dict], dict[str, Path], list[str]]:
    """(labels, id -> path of the videos installed here, ids of the missing ones)."""
    labels = load_yaml(Path(data_dir) / "golden" / "labels.yaml")["videos"]
    paths, missing = {}, []
    for video in labels:
        path = golden_video_path(video["source"])
        if path.is_file():
            paths[video["id"]] = path
        else:
            missing.append(video["id"])
    return labels, paths, missing


def local_analyzer(catalog: Catalog) -> Analyzer:
    """The M2 analysis as an Analyzer: fps from the decoding probe, as the pipeline runs it."""
    taxonomy, effects = catalog.style_taxonomy(), catalog.effect_catalog()

    def analyze(path: Path) -> Prediction:
        result = analyze_video(str(path), probe_video(str(path)).fps, taxonomy, effects)
        return Prediction(
            scene_cuts_ms=result.scene_cuts_ms,
            motion_class=result.motion_class,
            temperature_class=result.temperature_class,
            dominant_style=result.dominant_style,
            effects_present=result.detected_effects,
        )

    return analyze


# Gemini names no temperature class; its detected grade stands for one.
GRADE_TEMPERATURE = {"warm_grade": "warm", "cool_grade": "cool"}


def gemini_analyzer(catalog: Catalog | None = None) -> Analyzer | None:
    """The Gemini column's analyzer (``resources.gemini.GeminiClient.analyze_video``), or
    None without ``GOOGLE_API_KEY``.

    Gemini's answer in the golden set's terms: cuts at each shot's start after the first,
    its motion class, dominant style and detected effects; the temperature class from a
    detected warm or cool grade (neutral otherwise).
    """
    if not os.environ.get("GOOGLE_API_KEY"):
        return None
    settings = get_settings()
    catalog = catalog or Catalog(data_dir=settings.data_dir)
    client = GeminiClient.from_settings(settings)
    taxonomy, effects = catalog.style_taxonomy(), catalog.effects()

    def analyze(path: Path) -> Prediction:
        result, _usage = client.analyze_video(path, None, taxonomy, effects)
        grades = [GRADE_TEMPERATURE[e] for e in result.detected_effects if e in GRADE_TEMPERATURE]
        return Prediction(
            scene_cuts_ms=[round(scene.start_s * 1000) for scene in result.scenes[1:]],
            motion_class=result.motion_class,
            temperature_class=grades[0] if len(grades) == 1 else "neutral",
            dominant_style=result.dominant_style,
            effects_present=list(result.detected_effects),
        )

    return analyze


def score(analyzer: Analyzer, labels: list[dict], paths: dict[str, Path], effect_names: list[str]) -> GoldenReport:
    """Run ``analyzer`` on every installed golden video and score it."""
    predictions = {vid: analyzer(path) for vid, path in paths.items()}
    return evaluate(labels, predictions, effect_names)


def run_golden(as_json: bool) -> int:
    """Print the golden-set scores of every available analyzer; 1 when no video is installed."""
    settings = get_settings()
    catalog = Catalog(data_dir=settings.data_dir)
    labels, paths, missing = golden_videos(settings.data_dir)
    if not paths:
        print("no golden video is installed (make install)", file=sys.stderr)
        return 1
    effect_names = list(catalog.style_taxonomy().get("detected_effects", {}))
    analyzers: dict[str, Analyzer] = {"local": local_analyzer(catalog)}
    if (gemini := gemini_analyzer()) is not None:
        analyzers["gemini"] = gemini
    reports = {name: score(a, labels, paths, effect_names) for name, a in analyzers.items()}
    if as_json:
        out = {"videos": sorted(paths), "missing": missing, **{k: r.to_dict() for k, r in reports.items()}}
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    absent = f" (missing: {', '.join(missing)})" if missing else ""
    print(f"golden set: {len(paths)} of {len(labels)} videos installed{absent}")
    print(f"{'field':<28}" + "".join(f"{name:>10}" for name in reports))
    summaries = {name: r.summary() for name, r in reports.items()}
    for key in next(iter(summaries.values())):
        cells = "".join(f"{'—' if s[key] is None else f'{s[key]:.2f}':>10}" for s in summaries.values())
        print(f"{key:<28}{cells}")
    first = next(iter(reports.values()))
    print(f"(scene cuts matched within {first.tolerance_ms} ms; *_strict ignores the labels' accepted alternatives)")
    for name, report in reports.items():
        for vid, wrong in report.misses.items():
            print(f"  {name} {vid}: " + "; ".join(wrong))
    return 0
