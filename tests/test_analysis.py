"""M2 content analysis on real sample videos and ffmpeg-made clips with a known look."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from assets.analysis import analyze_video, eligible_effect_types
from assets.analysis.color import color_temperature_k, mccamy_cct
from assets.analysis.features import (
    borderline_effects,
    classify_motion,
    classify_temperature,
    color_metrics,
    dominant_style,
    motion_level,
    score_styles,
    trapezoid,
)
from assets.ingest import probe_video
from tests.clips import lavfi_clip
from tests.test_ingest import sample

pytestmark = pytest.mark.video

DATA = Path(__file__).resolve().parents[1] / "data"
TAXONOMY = yaml.safe_load((DATA / "style_taxonomy.yaml").read_text())
CATALOG = yaml.safe_load((DATA / "effects.yaml").read_text())


def analyze(path: str):
    """Analysis the way the pipeline runs it: fps from the decoding probe."""
    return analyze_video(path, probe_video(path).fps, TAXONOMY, CATALOG)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    """2 s 25 fps 320x240 clips with a known look, rendered once for the module."""
    out = tmp_path_factory.mktemp("clips")
    sources = {
        "orange": ("color=c=orange:s=320x240:r=25:d=2", ()),
        "cool": ("testsrc2=s=320x240:r=25:d=2", ("-vf", "colortemperature=temperature=12000")),
        "gray": ("testsrc2=s=320x240:r=25:d=2", ("-vf", "hue=s=0")),
        "static": ("color=c=0x4a6b8a:s=320x240:r=25:d=2", ()),
    }
    return {
        name: lavfi_clip(out / f"{name}.mp4", src, *vf, "-c:v", "libx264", "-pix_fmt", "yuv420p")
        for name, (src, vf) in sources.items()
    }


# --- synthetic clips with a known look ----------------------------------------------------------


def test_orange_clip_is_warm_and_cannot_get_a_warm_grade(clips):
    result = analyze(clips["orange"])
    assert result.color_temperature < 2500  # orange = (255, 165, 0): far warmer than tungsten
    assert result.temperature_class == "warm"
    assert result.dominant_style == "warm"
    assert "warm_grade" in result.detected_effects
    assert "warm_grade" not in result.eligible_effect_types
    assert "cool_grade" in result.eligible_effect_types


def test_cool_clip_is_cool_and_cannot_get_a_cool_grade(clips):
    result = analyze(clips["cool"])
    assert result.color_temperature > 9000
    assert result.temperature_class == "cool"
    assert result.dominant_style == "cool"
    assert "cool_grade" not in result.eligible_effect_types
    assert "warm_grade" in result.eligible_effect_types


def test_gray_clip_is_monochrome_and_cannot_be_cartoonized(clips):
    result = analyze(clips["gray"])
    assert result.mean_saturation < 0.02
    assert result.dominant_style == "monochrome"
    assert "monochrome" in result.detected_effects
    assert "cartoon" not in result.eligible_effect_types


def test_still_color_clip_is_static_and_cannot_get_slow_motion(clips):
    result = analyze(clips["static"])
    assert result.motion_level < 0.0015
    assert result.motion_class == "static"
    assert "slow_motion" not in result.eligible_effect_types
    assert result.contrast < 0.01 and result.scene_count == 1 and result.scene_cuts_ms == []


# --- real videos ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bikes():
    return analyze(sample("bikes.mp4"))


def test_bikes_has_several_cuts(bikes):
    # Cuts found by PySceneDetect, checked by eye on the sample: 1.20, 3.04, 5.48, 7.48, 9.68 s.
    assert bikes.scene_count == 6
    assert np.allclose(bikes.scene_cuts_ms, [1200, 3040, 5480, 7480, 9680], atol=80)
    assert "fast_cuts" in bikes.detected_effects  # 30 cuts a minute


def test_bikes_moves_enough_for_slow_motion(bikes):
    assert bikes.motion_class == "medium"
    assert "slow_motion" in bikes.eligible_effect_types
    assert bikes.dominant_style == "neutral"
    assert bikes.eligible_effect_types == sorted(CATALOG["effects"])


def test_dark_real_clip_is_low_key():
    result = analyze(sample("Megamind.avi"))
    assert result.mean_luma < 50
    assert result.dominant_style == "low_key"
    assert "low_light" in result.detected_effects


def test_low_decoded_frame_rate_blocks_slow_motion():
    # tree.avi declares 15 fps but holds each picture ~0.44 s: 2.3 decoded fps < min_fps 15.
    fps = probe_video(sample("tree.avi")).fps
    assert fps < 15
    assert "slow_motion" not in eligible_effect_types("neutral", fps, 0.05, CATALOG)


def test_to_dict_is_json_ready(bikes):
    as_dict = bikes.to_dict()
    assert set(as_dict["style_scores"]) == set(TAXONOMY["styles"])
    assert all(0.0 <= v <= 1.0 for v in as_dict["style_scores"].values())
    assert json.loads(json.dumps(as_dict)) == as_dict


# --- rules as pure functions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "fps", "motion", "excluded"),
    [
        ("neutral", 25.0, 0.05, set()),
        ("warm", 25.0, 0.05, {"warm_grade"}),
        ("cool", 25.0, 0.05, {"cool_grade"}),
        ("monochrome", 25.0, 0.05, {"cartoon"}),
        ("neutral", 12.0, 0.05, {"slow_motion"}),
        ("neutral", 25.0, 0.005, {"slow_motion"}),
    ],
)
def test_eligibility_rules_of_the_catalog(style, fps, motion, excluded):
    expected = sorted(set(CATALOG["effects"]) - excluded)
    assert eligible_effect_types(style, fps, motion, CATALOG) == expected


def test_an_effect_already_detected_is_not_offered_again():
    # Megamind.avi: dominant style low_key, but its warm cast is detected as warm_grade.
    assert "warm_grade" not in eligible_effect_types("low_key", 24.0, 0.05, CATALOG, ["warm_grade", "low_light"])
    assert "warm_grade" in eligible_effect_types("low_key", 24.0, 0.05, CATALOG, ["low_light"])


def test_taxonomy_has_the_styles_and_scores_any_metrics():
    assert TAXONOMY["version"] == 1
    styles = {"warm", "cool", "monochrome", "vivid", "muted", "low_key", "neutral"}
    assert styles <= set(TAXONOMY["styles"])
    metrics = {"color_temperature": 6500.0, "mean_saturation": 0.2, "mean_luma": 110, "contrast": 0.2}
    assert dominant_style(score_styles(metrics, TAXONOMY)) == "neutral"


def test_ties_go_to_the_style_listed_first():
    # Pure orange is fully warm and fully vivid; warm is listed first as the more specific name.
    metrics = {"color_temperature": 2000.0, "mean_saturation": 1.0, "mean_luma": 170, "contrast": 0.0}
    scores = score_styles(metrics, TAXONOMY)
    assert scores["warm"] == scores["vivid"] == 1.0
    assert dominant_style(scores) == "warm"


def test_styles_are_scored_from_yaml_alone():
    rules = {"mean_luma": [100, 150, None, None], "contrast": [None, None, 0.1, 0.3]}
    taxonomy = {"styles": {"sepia_dream": {"rules": rules}}}
    scores = score_styles({"mean_luma": 125.0, "contrast": 0.25}, taxonomy)
    assert scores == {"sepia_dream": 0.25}  # min(0.5 rising, 0.25 falling)


def test_trapezoid_edges_and_bad_rules():
    xs = (-1, 0, 0.5, 1, 2, 3, 4, 5)
    assert [trapezoid(x, [0, 1, 2, 4]) for x in xs] == [0, 0, 0.5, 1, 1, 0.5, 0, 0]
    assert trapezoid(-50, [None, None, 0, 1]) == 1.0
    with pytest.raises(ValueError, match="a/b and c/d both set or both null"):
        trapezoid(0.5, [0, None, 1, 2])
    with pytest.raises(ValueError, match="bounds must ascend"):
        trapezoid(0.5, [2, 1, None, None])
    with pytest.raises(ValueError, match="x: unknown metric 'luma'"):
        score_styles({"mean_luma": 1.0}, {"styles": {"x": {"rules": {"luma": [0, 1, None, None]}}}})


def test_pairs_across_a_cut_are_not_motion():
    black, white = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    still = (0.0, black, 0.04, black)
    across_cut = (1.00, black, 1.04, white)
    assert motion_level([still, across_cut], cuts_s=[]) == pytest.approx(0.5)
    assert motion_level([still, across_cut], cuts_s=[1.04]) == 0.0


def test_motion_classes():
    levels = (0.0, 0.005, 0.02, 0.2)
    assert [classify_motion(x).name for x in levels] == ["static", "low", "medium", "high"]
    assert all(not classify_motion(x).borderline for x in levels)
    assert classify_motion(0.0105).borderline and classify_motion(0.0095).borderline


def test_temperature_classes_and_their_margin():
    assert [classify_temperature(k).name for k in (3000, 6504, 12000)] == ["warm", "neutral", "cool"]
    assert classify_temperature(4400).borderline and not classify_temperature(3000).borderline
    assert classify_temperature(4500).confidence == 0.0


def test_mccamy_cct_of_standard_illuminants():
    # CIE D65 is 6504 K, illuminant A 2856 K; McCamy's formula is within ~2 K of both.
    assert mccamy_cct(0.3127, 0.3290) == pytest.approx(6504, abs=5)
    assert mccamy_cct(0.44757, 0.40745) == pytest.approx(2856, abs=5)


def test_green_scene_is_not_warm_under_neutral_light():
    # Grass (sRGB ~ (90, 130, 60)) beside gray road and gray sky: mean R - B is positive (the
    # old "warm" reading) while the gray-world illuminant stays near daylight.
    frame = np.zeros((40, 40, 3), np.uint8)
    frame[:20] = (90, 130, 60)
    frame[20:30] = (120, 120, 120)
    frame[30:] = (200, 200, 200)
    assert float((frame[..., 0].astype(int) - frame[..., 2]).mean()) > 0
    assert classify_temperature(color_temperature_k([frame])).name == "neutral"


def test_a_borderline_motion_names_slow_motion_as_borderline():
    assert borderline_effects(0.0102, CATALOG) == ["slow_motion"]
    assert borderline_effects(0.05, CATALOG) == []


def test_near_black_pixels_do_not_count_as_saturated():
    # (3, 0, 0) is pure red in HSV terms (S = 1) but is codec noise on black, so it is left out.
    frame = np.full((4, 8, 3), 128, np.uint8)
    frame[:, :4] = (3, 0, 0)
    metrics = color_metrics([frame])
    assert metrics["mean_saturation"] == 0.0
    # ... and left out of the colour temperature too: only the gray half counts, D65-neutral.
    assert metrics["color_temperature"] == pytest.approx(6504, abs=10)
