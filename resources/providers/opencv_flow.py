"""Motion-compensated slow motion from dense optical flow (DIS), a retiming transform of the
``opencv`` adapter.

Frames are I420 (``yuv420p``, as the adapter decodes them for this transform): a
``(3H/2) x W`` uint8 array, luma ``H x W`` then the two chroma planes ``H/2 x W/2``. Working on
the decoder's own planes keeps input frames bit-exact through to the encoder (no YUV → BGR →
YUV round trip, which alone costs 3-4 dB of luma PSNR with swscale's default conversions) and
halves the pixels to warp.

Flow: OpenCV's Dense Inverse Search (T. Kroeger, R. Timofte, D. Dai and L. Van Gool, "Fast
Optical Flow using Dense Inverse Search", ECCV 2016; ``cv2.DISOpticalFlow``) on the luma plane
reduced to ``flow_scale`` of its size, its vectors then resized to each plane's size and scaled
to its pixels. Each pair of neighbouring input frames gets its two flows (a→b, b→a) once,
shared by every output frame between them.

Timing: output frame ``k`` shows input position ``p = k / factor``, ``ceil(n · factor)``
frames in all for ``n`` input frames, at the input's frame rate: what the ffmpeg slow-motion
graphs (``tpad=stop_mode=clone,setpts={factor}*PTS,minterpolate=fps={fps},trim=duration=
{duration · factor}``) give — 239 frames → 478 at factor 2 and 598 at 2.5, measured. Positions
past the last input frame repeat it (tpad's ``stop_mode=clone``); integer positions are the
input frames, unchanged.

Interpolation at ``p = a + s`` (``0 < s < 1``), per pixel ``x`` of each plane::

    out(x) = (1 - s) · A(x - s · F_ab(x)) + s · B(x - (1 - s) · F_ba(x))

with ``F_ab`` the flow from frame A to frame B. Exact motion compensation would look the flow
up where the pixel comes *from* (forward warping, or the flow at time ``p``); taking it at
``x`` itself is the usual backward-warping approximation (H. Jiang et al., "Super SloMo",
CVPR 2018, section 3.1 approximates the intermediate flows from the end flows likewise). It is
exact for uniform motion and errs by the flow's change over ``s`` times the motion at moving
edges, where the blend of the two warps, each wrong on the other side of the edge, softens it
into a short ghost rather than a tear.

Cuts: across a scene cut no flow relates the two frames, and warping draws pieces of both
that M7's temporal-outlier check flags as corruption. A pair whose luma, B warped onto A by
``F_ab``, still differs from A by more than ``CUT_LEVELS`` on average is taken for a cut and
cross-faded instead (``(1 - s) · A + s · B``, what ffmpeg-slowmo-blend does everywhere).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction

import cv2
import numpy as np

StreamTransform = Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]]

# cv2.DISOpticalFlow presets by number (workflow params are numbers; OpenCV docs,
# DISOpticalFlow::create): patch size, stride, gradient-descent and variational-refinement
# iterations grow from ultrafast to medium.
PRESETS = {
    0: cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    1: cv2.DISOPTICAL_FLOW_PRESET_FAST,
    2: cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}

#: Mean |A - warped B| of the reduced luma (8-bit levels) above which a pair is a cut. Measured
#: (fast preset, half size): the 4 cuts of Megamind.avi's first 10 s at 27-40 and the 5 of
#: bikes.mp4 at 41-83; every other pair of both at most 11.3 (median 0.9 and 3.4). It holds for
#: the ultrafast and fast presets at half and full size; the medium preset's flow fits closer
#: across a cut and missed one of Megamind's (a temporal outlier, M7 gate failure).
CUT_LEVELS = 20.0


def output_frame_count(input_frames: int, factor: Fraction) -> int:
    """``ceil(input_frames · factor)``: the frames of a slow-motion output (see module doc)."""
    return math.ceil(input_frames * factor)


def _planes(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of an I420 ``(3H/2) x W`` array."""
    h, w = frame.shape[0] * 2 // 3, frame.shape[1]
    q = h // 4  # rows of W holding one (H/2 x W/2) chroma plane
    return frame[:h], frame[h : h + q].reshape(h // 2, w // 2), frame[h + q :].reshape(h // 2, w // 2)


def _grid(h: int, w: int) -> np.ndarray:
    """``H x W x 2`` float32 pixel coordinates (x, y): the identity map of ``cv2.remap``."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.dstack([xs, ys])


def _fit(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A flow (``h x w x 2``, pixels) as a flow of a plane of ``shape`` (H, W): vectors scaled
    per axis to that plane's pixels before resizing (fewer of them), bilinear resize."""
    h, w = flow.shape[:2]
    if (h, w) == shape:
        return flow
    gain = (shape[1] / w, shape[0] / h, 0.0, 0.0)
    return cv2.resize(cv2.multiply(flow, gain), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _warp(plane: np.ndarray, grid: np.ndarray, flow: np.ndarray, k: float, interpolation: int) -> np.ndarray:
    """``plane`` sampled at ``x - k · flow(x)`` (edges repeated)."""
    # One scaleAdd builds the 2-channel map (grid - k · flow) that remap takes as is.
    return cv2.remap(plane, cv2.scaleAdd(flow, -k, grid), None, interpolation, borderMode=cv2.BORDER_REPLICATE)


# Luma is sampled bicubic, chroma bilinear. Bilinear luma softens every new frame (a half-pixel
# shift is a [1/2 1/2] filter) between sharp input frames, and x264 then spends its quality on
# them: M7 fidelity of the *input* frames fell (bikes.mp4 10 s: VMAF 96.6 bilinear, 97.2
# bicubic; composite 0.985 against 0.988), for 10-20 % more transform CPU.
_INTERPOLATION = (cv2.INTER_CUBIC, cv2.INTER_LINEAR, cv2.INTER_LINEAR)  # Y, U, V


class _Pair:
    """Frames A and B with, per plane, the sampling grid and both flows fitted to it (none at
    a cut), for output frames at any ``s`` between them."""

    def __init__(
        self,
        a: np.ndarray,
        b: np.ndarray,
        flows: tuple[np.ndarray, np.ndarray] | None,
        grids: tuple[np.ndarray, np.ndarray],
    ):
        self.a, self.b, self.width = _planes(a), _planes(b), a.shape[1]
        self.warps = None
        if flows is not None:
            luma, chroma = ((g, _fit(flows[0], g.shape[:2]), _fit(flows[1], g.shape[:2])) for g in grids)
            self.warps = (luma, chroma, chroma)  # Y, U, V

    def at(self, s: float) -> np.ndarray:
        """The I420 frame at fraction ``s`` (0 < s < 1) from A to B (module doc's formula)."""
        out = []
        for n, (pa, pb) in enumerate(zip(self.a, self.b, strict=True)):
            if self.warps is not None:
                grid, f_ab, f_ba = self.warps[n]
                pa, pb = _warp(pa, grid, f_ab, s, _INTERPOLATION[n]), _warp(pb, grid, f_ba, 1.0 - s, _INTERPOLATION[n])
            out.append(cv2.addWeighted(pa, 1.0 - s, pb, s, 0.0).reshape(-1, self.width))
        return np.concatenate(out)


def flow_slow_motion(factor: float = 2.0, preset: int = 1, flow_scale: float = 0.5) -> StreamTransform:
    """Slow motion by ``factor`` with DIS-flow interpolated frames (module doc).

    Args:
        factor: output duration / input duration, 1…16 (the effect allows 1.5…4). Taken as an
            exact fraction (denominator ≤ 1000) so integer positions are hit exactly.
        preset: DIS preset, 0 ultrafast | 1 fast | 2 medium (see ``CUT_LEVELS`` for medium).
        flow_scale: size of the luma the flow is computed on, as a share of the input's
            (0, 1]; the flow is brought back to each plane's size.

    Returns:
        A function from the decoded I420 frames (``(3H/2) x W`` uint8, H and W even; any
        iterable, consumed once) to the output frames (same shape),
        ``output_frame_count(n, factor)`` of them.

    Raises:
        ValueError: a parameter out of range (when called, before any frame).
    """
    if not 1 <= factor <= 16:
        raise ValueError(f"factor must be in 1..16, got {factor}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be 0 (ultrafast), 1 (fast) or 2 (medium), got {preset!r}")
    if not 0 < flow_scale <= 1:
        raise ValueError(f"flow_scale must be in (0, 1], got {flow_scale}")
    ratio = Fraction(factor).limit_denominator(1000)

    def small_luma(frame: np.ndarray) -> np.ndarray:
        y = _planes(frame)[0]
        if flow_scale == 1:
            return y
        h, w = y.shape
        size = (max(8, round(w * flow_scale)), max(8, round(h * flow_scale)))
        return cv2.resize(y, size, interpolation=cv2.INTER_AREA)

    def run(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        # One DIS instance per stream: it keeps state between calls and is not thread-safe.
        dis = cv2.DISOpticalFlow_create(PRESETS[int(preset)])
        source = iter(frames)
        a = next(source, None)
        if a is None:
            return
        y, u, _ = _planes(a)
        ga = small_luma(a)
        grids = (_grid(*y.shape), _grid(*u.shape))
        small_grid = _grid(*ga.shape)

        def flows(ga: np.ndarray, gb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
            f_ab = dis.calc(ga, gb, None)
            warped_b = cv2.remap(gb, small_grid + f_ab, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            if cv2.norm(ga, warped_b, cv2.NORM_L1) / ga.size > CUT_LEVELS:
                return None
            return f_ab, dis.calc(gb, ga, None)

        i = k = 0  # index of frame a; next output frame
        for b in source:
            gb = small_luma(b)
            pair: _Pair | None = None
            while k < (i + 1) * ratio:  # output positions k / ratio in [i, i + 1)
                s = k / ratio - i
                if s == 0:
                    yield a
                else:
                    pair = pair or _Pair(a, b, flows(ga, gb), grids)
                    yield pair.at(float(s))
                k += 1
            a, ga, i = b, gb, i + 1
        for _ in range(k, output_frame_count(i + 1, ratio)):
            yield a

    return run
