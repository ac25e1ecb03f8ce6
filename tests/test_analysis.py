"""M2 content analysis on real sample videos and ffmpeg-made clips with a known look."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from scenedetect import ContentDetector, detect
from scenedetect.common import FrameTimecode
from scipy.stats import trim_mean

from assets.analysis import analyze_video
from assets.analysis.color import SRGB_TO_XYZ, color_temperature_k, mccamy_cct
from assets.analysis.decode import decode_example
from assets.analysis.features import (
    SATURATION_MIN_VALUE,
    classify_motion,
    classify_temperature,
    color_metrics,
    dominant_style,
    frame_color,
    measure_sample,
    motion_level,
    motion_luma,
    pair_differences,
    pooled_color,
    repeat_share,
    score_styles,
    trapezoid,
    trimmed_mean,
)
from assets.analysis.look import luma_levels, mean_texture, palette_colours, texture_metrics
from assets.analysis.scenes import SceneCuts, _ContentScores
from assets.analysis.targets import described_effects, estimate_params, target_effects
from assets.analysis.worker import SerialWorker, SharedJobs
from assets.ingest import probe_video
from tests.clips import lavfi_clip
from tests.test_ingest import sample

pytestmark = pytest.mark.video

DATA = Path(__file__).resolve().parents[1] / "data"
TAXONOMY = yaml.safe_load((DATA / "style_taxonomy.yaml").read_text())
CATALOG = yaml.safe_load((DATA / "effects.yaml").read_text())


def analyze(path: str, description: str | None = None):
    """Analysis the way the pipeline runs it: fps from the decoding probe."""
    return analyze_video(path, probe_video(path).fps, TAXONOMY, CATALOG, description=description)


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


def test_orange_clip_shows_a_warm_grade_and_the_job_builds_one(clips):
    result = analyze(clips["orange"])
    assert result.color_temperature < 2500  # orange = (255, 165, 0): far warmer than tungsten
    assert result.temperature_class == "warm"
    assert result.dominant_style == "warm"
    assert "warm_grade" in result.detected_effects
    assert result.target_effect_types == ["warm_grade"]
    assert result.target_params["warm_grade"]["strength"] == 1.0  # far past the providers' range
    assert result.target_reasons["warm_grade"] == ["example:warm_grade"]


def test_cool_clip_shows_a_cool_grade(clips):
    result = analyze(clips["cool"])
    assert result.color_temperature > 9000
    assert result.temperature_class == "cool"
    assert result.dominant_style == "cool"
    # testsrc2's flat synthetic colour bars also read as posterized (few luma bands, outlines).
    assert result.target_effect_types == ["cool_grade", "cartoon"]


def test_gray_clip_is_monochrome_and_shows_no_grade(clips):
    result = analyze(clips["gray"])
    assert result.mean_saturation < 0.02
    assert result.dominant_style == "monochrome"
    assert "monochrome" in result.detected_effects
    assert result.target_effect_types == ["cartoon"]  # no colour, so no grade; flat bands


def test_still_color_clip_is_static_and_shows_no_slow_motion(clips):
    result = analyze(clips["static"])
    assert result.motion_level < 0.0015
    assert result.motion_class == "static"
    assert result.repeat_share == 1.0  # every pair repeats, but nothing moves: not slow motion
    assert "slow_motion" not in result.detected_effects + result.target_effect_types  # (it is blue: a cool look)
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


def test_neutral_bikes_shows_no_effect_to_build(bikes):
    # Ungraded street footage: no look of the catalog, so a job on it has no target.
    assert bikes.motion_class == "medium"
    assert bikes.dominant_style == "neutral"
    assert bikes.target_effect_types == [] and bikes.repeat_share < 0.1 and bikes.luma_levels > 25


def test_a_description_adds_its_effect_as_a_target(bikes):
    result = analyze(sample("bikes.mp4"), "Make it look like a cartoon, please")
    assert result.target_effect_types == ["cartoon"]
    assert result.target_reasons["cartoon"] == ["description:cartoon"]
    assert result.target_params["cartoon"] == CATALOG["effects"]["cartoon"]["params"]  # asked, not shown


@pytest.fixture(scope="module")
def shown(tmp_path_factory) -> dict[str, str]:
    """Real bikes.mp4 with an applied look (2 s, 320 px), made with ffmpeg as a user's example."""
    out = tmp_path_factory.mktemp("shown")
    looks = {
        "warm": "scale=320:-2,colortemperature=temperature=3500",
        "poster": "scale=320:-2,lutyuv=y='16+(floor((clip(val,16,235)-16)*6/220)+0.5)*220/6'",
        "slow": "scale=320:-2,setpts=2*PTS,fps=25",
    }
    src = sample("bikes.mp4")
    return {
        name: lavfi_clip(out / f"{name}.mp4", "nullsrc=s=16x16:d=0.04", "-i", str(src), "-map", "1:v", "-t", "2",
                         "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-an")
        for name, vf in looks.items()
    }  # fmt: skip


@pytest.mark.parametrize(
    ("look", "target", "param", "expected"),
    [
        ("warm", "warm_grade", "strength", (0.8, 1.0)),
        ("poster", "cartoon", "levels", (4, 8)),
        ("slow", "slow_motion", "factor", (2.0, 2.0)),
    ],
)
def test_an_applied_look_is_the_target_with_parameters_from_the_example(shown, look, target, param, expected):
    result = analyze(shown[look])
    assert result.target_effect_types == [target]
    assert expected[0] <= result.target_params[target][param] <= expected[1]


def test_dark_real_clip_is_low_key():
    result = analyze(sample("Megamind.avi"))
    assert result.mean_luma < 50
    assert result.dominant_style == "low_key"
    assert "low_light" in result.detected_effects


def test_to_dict_is_json_ready(bikes):
    as_dict = bikes.to_dict()
    assert set(as_dict["style_scores"]) == set(TAXONOMY["styles"])
    assert all(0.0 <= v <= 1.0 for v in as_dict["style_scores"].values())
    assert json.loads(json.dumps(as_dict)) == as_dict


# --- rules as pure functions ----------------------------------------------------------------


def test_keywords_match_whole_words_only():
    effects = CATALOG["effects"]
    assert described_effects("a warm, golden-hour look", effects) == {"warm_grade": ["warm"]}
    assert described_effects("warmup footage of a blueberry", effects) == {}
    assert described_effects("slow-mo and cel-shaded", effects) == {
        "slow_motion": ["slow-mo"],
        "cartoon": ["cel-shaded"],
    }
    assert described_effects(None, effects) == {}


def test_targets_shown_and_asked_for_come_first():
    metrics = {"color_temperature": 3500.0, "luma_levels": 30.0, "edge_density": 0.1, "repeat_share": 0.0}
    targets = target_effects(["warm_grade"], "cartoon but warm", metrics, CATALOG["effects"], suggested=["cool_grade"])
    assert [t.effect_type for t in targets] == ["warm_grade", "cartoon", "cool_grade"]
    assert targets[0].reasons == ["example:warm_grade", "description:warm"]
    assert targets[2].reasons == ["gemini"] and targets[2].params == CATALOG["effects"]["cool_grade"]["params"]
    assert target_effects([], None, metrics, CATALOG["effects"]) == []


def _estimate(effect_type: str, metrics: dict, catalog: dict = CATALOG) -> dict:
    return estimate_params(effect_type, metrics, catalog["effects"][effect_type]["param_ranges"])


def test_parameter_estimates_follow_the_example():
    # A deeper warm cast asks for a stronger grade; a cool one for a cool grade's strength.
    assert (
        _estimate("warm_grade", {"color_temperature": 5000.0})["strength"]
        < _estimate("warm_grade", {"color_temperature": 4000.0})["strength"]
    )
    assert _estimate("warm_grade", {"color_temperature": 4100.0})["strength"] == pytest.approx(0.6, abs=0.02)
    assert _estimate("cool_grade", {"color_temperature": 10100.0})["strength"] == pytest.approx(0.6, abs=0.02)
    assert _estimate("cartoon", {"luma_levels": 15.3, "edge_density": 0.09})["levels"] == 6
    assert _estimate("slow_motion", {"repeat_share": 0.5}) == {"factor": 2.0}
    assert _estimate("slow_motion", {"repeat_share": 0.67}) == {"factor": 3.0}


def test_parameter_estimates_stay_in_the_ranges_a_user_may_set():
    """One declaration of each range (effects.yaml param_ranges): M2's estimates are clipped to
    it, as the API checks a run's parameters against it."""
    extreme = {"color_temperature": 1500.0, "luma_levels": 200.0, "edge_density": 0.1, "repeat_share": 0.9}
    for effect_type, spec in CATALOG["effects"].items():
        for name, value in _estimate(effect_type, extreme).items():
            if name in spec["param_ranges"]:
                low, high = spec["param_ranges"][name]
                # a 1500 K example is past the strongest warm grade and opposite to a cool one
                assert value == (low if effect_type == "cool_grade" else high), (effect_type, name)
    # Narrow a range in the catalog and the estimates follow it.
    narrowed = copy.deepcopy(CATALOG)
    narrowed["effects"]["slow_motion"]["param_ranges"]["factor"] = [1.5, 2.5]
    narrowed["effects"]["warm_grade"]["param_ranges"]["strength"] = [0.2, 0.5]
    assert _estimate("slow_motion", {"repeat_share": 0.67}, narrowed) == {"factor": 2.5}
    assert _estimate("warm_grade", {"color_temperature": 6400.0}, narrowed) == {"strength": 0.2}
    [target] = target_effects(["slow_motion"], None, {"repeat_share": 0.9}, narrowed["effects"])
    assert target.params["factor"] == 2.5


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
    black, white = np.zeros((8, 8), np.uint8), np.full((8, 8), 255, np.uint8)  # motion lumas
    still = (0.0, black, 0.04, black)
    across_cut = (1.00, black, 1.04, white)
    assert motion_level(pair_differences([still, across_cut], cuts_s=[])) == pytest.approx(0.5)
    assert motion_level(pair_differences([still, across_cut], cuts_s=[1.04])) == 0.0
    assert repeat_share(pair_differences([still, across_cut], cuts_s=[1.04])) == 1.0


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


def test_near_black_pixels_do_not_count_as_saturated():
    # (3, 0, 0) is pure red in HSV terms (S = 1) but is codec noise on black, so it is left out.
    frame = np.full((4, 8, 3), 128, np.uint8)
    frame[:, :4] = (3, 0, 0)
    metrics = color_metrics([frame])
    assert metrics["mean_saturation"] == 0.0
    # ... and left out of the colour temperature too: only the gray half counts, D65-neutral.
    assert metrics["color_temperature"] == pytest.approx(6504, abs=10)


# --- one decode pass, the same numbers as the separate passes it replaced -----------------------


def _per_pixel_gray_world_cct(frames: list[np.ndarray]) -> float:
    """The colour temperature the way it was computed before (every usable pixel to linear
    light), to hold the histogram form to it."""
    total, count = np.zeros(3), 0
    for rgb in frames:
        px = rgb.reshape(-1, 3)
        usable = px[(px.min(axis=1) < 250) & (px.max(axis=1) >= 20)]
        c = usable.astype(np.float64) / 255.0
        total += np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).sum(axis=0)
        count += len(usable)
    xyz = SRGB_TO_XYZ @ (total / count)
    return mccamy_cct(xyz[0] / xyz.sum(), xyz[1] / xyz.sum())


def _bincount_palette(rgb: np.ndarray) -> int:
    """Dominant palette size the way it was computed before (a bincount of 15-bit codes)."""
    q = (rgb >> 3).astype(np.int32)
    counts = np.sort(np.bincount(((q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]).ravel()))[::-1]
    covered = np.cumsum(counts)
    return int(np.searchsorted(covered, 0.9 * covered[-1]) + 1)


@pytest.mark.parametrize("name", ["bikes.mp4", "Megamind.avi"])
def test_one_decode_pass_measures_what_the_separate_passes_did(name):
    # Before, PySceneDetect decoded the file again with its own OpenCV backend, and a second
    # PyAV pass converted the sampled frames; now one pass feeds both. On real clips (an MP4,
    # and an AVI whose frames are stamped out of order) the cuts, the sampled frames and the
    # features must come out as they did.
    path = sample(name)
    fps = probe_video(path).fps
    one = decode_example(path, 48, fps)
    library = detect(path, ContentDetector(), backend="opencv")
    assert one.cuts_s == pytest.approx([start.seconds for start, _ in library[1:]], abs=1e-3)
    assert len(one.cuts_s) == {"bikes.mp4": 5, "Megamind.avi": 3}[name]
    with av.open(path) as container:  # the sampled frames, converted by a pass of their own
        stream = container.streams.video[0]
        times = {t for t, _, t2, _ in one.pairs} | {t2 for _, _, t2, _ in one.pairs}
        shape = one.pairs[0][1].shape
        alone, t0 = {}, None
        for frame in container.decode(stream):
            t0 = frame.time if t0 is None else t0
            if frame.time - t0 in times:
                alone[frame.time - t0] = frame.to_ndarray(width=shape[1], height=shape[0], format="rgb24")
    for t, rgb, t2, partner in one.pairs:
        assert np.array_equal(rgb, alone[t]) and np.array_equal(partner, alone[t2])
    firsts = [rgb for _, rgb, _, _ in one.pairs]
    assert color_temperature_k(firsts) == pytest.approx(_per_pixel_gray_world_cct(firsts), rel=1e-9)
    assert [palette_colours(f) for f in firsts] == [_bincount_palette(f) for f in firsts]


@pytest.mark.parametrize("name", ["bikes.mp4", "Megamind.avi"])
def test_measures_taken_during_the_pass_pool_to_those_of_the_frames(name):
    # analyze_video measures each sampled frame on the worker thread as it is decoded and pools
    # the results; the same frames measured afterwards, all at once, give the same numbers.
    path = sample(name)
    fps = probe_video(path).fps
    frames = decode_example(path, 48, fps)
    measured = decode_example(path, 48, fps, measure_sample, motion_luma)
    firsts = [rgb for _, rgb, _, _ in frames.pairs]
    samples = [m for _, m, _, _ in measured.pairs]
    assert pooled_color([m.color for m in samples]) == color_metrics(firsts)
    assert mean_texture([m.texture for m in samples]) == texture_metrics(firsts)
    lumas = [(t, motion_luma(a), t2, motion_luma(b)) for t, a, t2, b in frames.pairs]
    during = [(t, m.motion_luma, t2, partner) for t, m, t2, partner in measured.pairs]
    assert pair_differences(during, measured.cuts_s) == pair_differences(lumas, frames.cuts_s)
    # ... and the OpenCV forms of two per-pixel measures equal their NumPy definitions.
    for rgb in firsts:
        luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        counts = np.sort(np.bincount((luma // 4).ravel()))[::-1]
        assert luma_levels(luma) == int(np.searchsorted(np.cumsum(counts), 0.9 * counts.sum()) + 1)
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        lit = hsv[..., 2] >= SATURATION_MIN_VALUE
        color = frame_color(rgb, luma)
        assert (color.saturation_sum, color.saturation_pixels) == (float(hsv[..., 1][lit].sum()), int(lit.sum()))


@pytest.mark.parametrize("name", ["bikes.mp4", "Megamind.avi"])
def test_content_scores_are_the_libraries_bit_for_bit(name):
    # The detector's frame score in two OpenCV calls against ContentDetector's own NumPy form,
    # frame by frame on the detector-size frames of a real clip (cuts included).
    path = sample(name)
    ours, library = _ContentScores(), ContentDetector()
    ours_cuts, library_cuts = [], []
    with av.open(path) as container:
        stream = container.streams.video[0]
        cuts = SceneCuts(stream.codec_context.width, stream.codec_context.height)
        for index, frame in enumerate(container.decode(stream)):
            bgr = cuts.convert(frame)
            position = FrameTimecode(index, 25.0)
            ours_cuts += ours.process_frame(position, bgr)
            library_cuts += library.process_frame(position, bgr)
            assert ours._frame_score == library._frame_score, index
    assert ours_cuts == library_cuts and len(ours_cuts) >= 3


def test_serial_worker_runs_calls_in_order_and_raises_the_first_error():
    done = []
    with SerialWorker("test", backlog=2) as worker:
        for i in range(20):
            worker.submit(done.append, i)
        worker.finish()
    assert done == list(range(20))

    def fail(i):
        raise ValueError(f"call {i}")

    with SerialWorker("test", backlog=2) as worker:
        worker.submit(fail, 1)
        worker.submit(fail, 2)
        worker.submit(done.append, "after")
        with pytest.raises(ValueError, match="call 1"):
            worker.finish()
    assert "after" not in done


def test_submitting_thread_takes_shared_jobs_while_the_worker_is_behind():
    # The worker is held on its first call; with its queue full, submit runs the shared jobs on
    # the submitting thread instead of waiting, each job once, then waits for room as before.
    release, ran = threading.Event(), []
    jobs = SharedJobs()
    for i in range(5):
        jobs.add(lambda i=i: ran.append((i, threading.current_thread().name)))
    with SerialWorker("worker", backlog=1) as worker:
        worker.submit(release.wait)  # running: the worker is busy
        worker.submit(jobs.run_one)  # waiting: the queue is full now
        threading.Timer(0.2, release.set).start()
        worker.submit(ran.append, ("ordered", "call"), spare=jobs.run_one)
        worker.finish()
    assert sorted(i for i, _ in ran[:5]) == [0, 1, 2, 3, 4]  # every job once, before the call
    assert ran[5] == ("ordered", "call")
    # All but the ticket's one ran here while the worker was held (the ticket found none left).
    assert {name for _, name in ran[:5]} == {threading.current_thread().name}
    assert not jobs.run_one()

    def fail():
        raise ValueError("job")

    jobs.add(fail)
    with pytest.raises(ValueError, match="job"):
        jobs.drain()


@pytest.mark.parametrize("n", [1, 2, 3, 9, 10, 11, 57, 300])
@pytest.mark.parametrize("proportion", [0.0, 0.1, 0.25, 0.49])
def test_trimmed_mean_is_scipys_trim_mean_to_the_bit(n, proportion):
    values = list(np.random.default_rng(n).gamma(2.0, 20.0, n))
    values[::4] = [v * 50 for v in values[::4]]  # outliers for the trim to cut
    assert trimmed_mean(values, proportion) == float(trim_mean(values, proportion))
