"""M7 against standard degradations of real clips, generated at test time with the real ffmpeg.

Each clip (tests/conftest.py: 2 s of bikes at 320 px, 1.5 s of carphone at 176x144) is
degraded by gaussian blur, x264 CRF, down/up-scaling, additive noise, dropped frames (every
fifth replaced by its predecessor) and localized glitches painted on a few frames. VMAF
(ffmpeg's libvmaf, run here on its own, mean-pooled) is the reference ordering:

* fidelity and composite order each clip's blur/CRF/scale variants as VMAF does
  (Spearman >= 0.9);
* every glitched variant fails the gate (or scores below every clean variant);
* the per-frame series locate the painted frames;
* blur does not raise banding, a static shot is not "frozen", dropped frames are counted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from scipy.stats import spearmanr

from assets.quality import score_output, technical_gate
from resources.ffmpeg import run_ffmpeg

pytestmark = [pytest.mark.video, pytest.mark.slow]

X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-an"]
# Glitched frames (output = input frame index): isolated ones, and a pair in a row (a
# two-frame glitch is not a two-sided outlier; the flat-block test must catch it).
GLITCH_A = (10, 27, 41)
GLITCH_B = (5, 6, 33)
RANKED = ("ref", "blur1", "blur2", "blur4", "crf30", "crf38", "crf45", "scale2", "scale4")


def _enable(frames: tuple[int, ...]) -> str:
    return "+".join(f"eq(n\\,{n})" for n in frames)


def variants() -> dict[str, list[str]]:
    """Variant name -> ffmpeg output args applied to the clip."""
    crf = lambda q: ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(q), "-pix_fmt", "yuv420p", "-an"]  # noqa: E731
    updown = lambda k: ["-vf", f"scale=trunc(iw/{k}/2)*2:-2,scale=iw*{k}:ih*{k}:flags=bicubic", *X264]  # noqa: E731
    return {
        "ref": X264,
        "blur1": ["-vf", "gblur=sigma=1", *X264],
        "blur2": ["-vf", "gblur=sigma=2", *X264],
        "blur4": ["-vf", "gblur=sigma=4", *X264],
        "crf30": crf(30),
        "crf38": crf(38),
        "crf45": crf(45),
        "scale2": updown(2),
        "scale4": updown(4),
        "noise": ["-vf", "noise=alls=20:allf=t", *X264],
        # Every fifth frame dropped and filled by repeating its predecessor (constant rate).
        "dropped": ["-vf", "select='not(eq(mod(n\\,5)\\,4))'", "-fps_mode", "cfr", *X264],
        "glitch_a": [
            "-vf",
            f"drawbox=x=iw/8:y=ih/4:w=iw/4:h=ih/3:color=0x30c040:t=fill:enable='{_enable(GLITCH_A)}'",
            *X264,
        ],
        "glitch_b": [
            "-vf",
            f"drawbox=x=iw/2:y=ih/2:w=iw/4:h=ih/3:color=0x808080:t=fill:enable='{_enable(GLITCH_B)}',gblur=sigma=1",
            *X264,
        ],
    }


def _vmaf_mean(dist: Path, ref: Path) -> float:
    log = dist.with_suffix(".ref-vmaf.json")
    run_ffmpeg(["-i", str(dist), "-i", str(ref), "-lavfi", f"libvmaf=log_fmt=json:log_path={log}", "-f", "null", "-"])
    return json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"]


@pytest.fixture(scope="module", params=["short_bikes", "short_carphone"])
def suite(request, tmp_path_factory):
    """(clip name, {variant: (QualityVector, reference VMAF mean)}) for one clip."""
    clip: Path = request.getfixturevalue(request.param)
    work = tmp_path_factory.mktemp(request.param)
    results = {}
    for name, args in variants().items():
        out = work / f"{name}.mp4"
        run_ffmpeg(["-i", str(clip), *args, str(out)])
        results[name] = (score_output(str(clip), str(out), "none", {}), _vmaf_mean(out, clip))
    return request.param, results


def test_fidelity_and_composite_order_as_vmaf(suite):
    clip, results = suite
    vmaf = [results[n][1] for n in RANKED]
    fidelity = [results[n][0].fidelity for n in RANKED]
    composite = [results[n][0].composite for n in RANKED]
    for name in RANKED:
        assert results[name][0].gate_passed, (clip, name, results[name][0].gate_failures)
    rho_f = spearmanr(fidelity, vmaf).statistic
    rho_c = spearmanr(composite, vmaf).statistic
    assert rho_f >= 0.9, (clip, rho_f, dict(zip(RANKED, zip(vmaf, fidelity, strict=True), strict=True)))
    assert rho_c >= 0.9, (clip, rho_c, dict(zip(RANKED, zip(vmaf, composite, strict=True), strict=True)))


def test_glitched_variants_fail_the_gate_and_are_located(suite):
    clip, results = suite
    clean = [v.composite for n, (v, _) in results.items() if not n.startswith("glitch")]
    for name, painted in (("glitch_a", GLITCH_A), ("glitch_b", GLITCH_B)):
        v = results[name][0]
        assert not v.gate_passed or v.composite < min(clean), (clip, name)
        assert any(f.startswith("localized corruption") for f in v.gate_failures), (clip, name, v.gate_failures)
        # The per-frame series locate exactly the painted frames ...
        assert v.damaged_frames == list(painted), (clip, name, v.damaged_frames)
        lowest = sorted(range(len(v.frame_psnr_y)), key=v.frame_psnr_y.__getitem__)[: len(painted)]
        assert sorted(lowest) == list(painted), (clip, name)
        assert all(v.frame_artifacts[t] == 1.0 for t in painted)
        assert v.measurements["vmaf_hmean"] < v.measurements["vmaf_mean"]
    # Three painted frames alone: the mean of VMAF barely sees them, the gate does.
    assert results["glitch_a"][1] > 80, (clip, results["glitch_a"][1])


def test_clean_variants_have_no_localized_damage(suite):
    clip, results = suite
    for name, (v, _) in results.items():
        if not name.startswith("glitch"):
            assert v.damaged_frames == [], (clip, name, v.damaged_frames)


def test_blur_raises_neither_banding_nor_frozen(suite):
    clip, results = suite
    for name in ("blur1", "blur2", "blur4", "scale2", "scale4"):
        v = results[name][0]
        assert v.measurements["artifact_banding"] == 0.0, (clip, name)
        assert v.measurements["repeated_frames"] == 0.0, (clip, name)
        assert v.artifacts < 0.2, (clip, name, v.artifacts)


def test_dropped_frames_are_counted_and_cost(suite):
    clip, results = suite
    v = results["dropped"][0]
    frames = v.measurements["frames_out"]
    # One in five frames repeats its predecessor (where the shot moves).
    assert 0.1 * frames <= v.measurements["dropped_frames"] <= 0.22 * frames, (clip, v.measurements)
    assert v.measurements["frozen_frames"] == 0.0
    assert v.measurements["artifact_repeat"] > 0.05
    assert v.measurements["vmaf_hmean"] < results["ref"][0].measurements["vmaf_hmean"]
    assert v.composite < results["ref"][0].composite


def test_static_shot_is_not_frozen(short_bikes, tmp_path):
    # The first frame held for 2 s: a still input and its still re-encode have no repeats to
    # blame, though every output step is below the repeat threshold.
    still = tmp_path / "still.mp4"
    run_ffmpeg(["-i", str(short_bikes), "-vf", "loop=loop=49:size=1:start=0", "-frames:v", "50", *X264, str(still)])
    blurred = tmp_path / "still_blur.mp4"
    run_ffmpeg(["-i", str(still), "-vf", "gblur=sigma=2", *X264, str(blurred)])
    v = score_output(str(still), str(blurred), "none", {})
    assert v.measurements["dup_share_out"] > 0.9  # the output does repeat ...
    assert v.measurements["repeated_frames"] == 0.0  # ... but the input did not move
    assert v.measurements["artifact_repeat"] == 0.0 and v.damaged_frames == []


def test_audio_presence_sync_and_duration(short_bikes, tmp_path):
    def mux(name: str, *args: str) -> str:
        out = tmp_path / name
        run_ffmpeg(["-i", str(short_bikes), *args, str(out)])
        return str(out)

    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=2"]
    with_audio = mux("with_audio.mp4", *tone, "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac")
    silent = mux("silent.mp4", "-c:v", "copy", "-an")
    late = mux("late.mp4", "-itsoffset", "0.3", *tone, "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac")
    short = mux(
        "short.mp4", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
        "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
    )  # fmt: skip
    assert technical_gate(with_audio, with_audio, "none", {}).passed
    assert technical_gate(silent, silent, "none", {}).passed
    assert technical_gate(with_audio, silent, "none", {}).failures == ["audio: missing (the input has a soundtrack)"]
    late_failures = technical_gate(with_audio, late, "none", {}).failures
    # 300 ms late, less the AAC encoder's priming (1024 samples, 23 ms at 44.1 kHz).
    assert any(re.match(r"audio: starts \+2[5-9]\d ms .*BT\.1359", f) for f in late_failures), late_failures
    short_failures = technical_gate(with_audio, short, "none", {}).failures
    assert any(f.startswith("audio: lasts 1.0") for f in short_failures), short_failures
