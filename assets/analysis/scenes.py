"""PySceneDetect's ``ContentDetector`` fed frames that are decoded elsewhere.

PySceneDetect normally decodes the video itself (``scenedetect.detect`` with a backend). Here
the caller's decode pass hands each decoded frame to ``SceneCuts.feed``, which converts it for
the detector and scores it; the caller runs it on a worker thread (``analysis/worker.py``) so
the detector's work overlaps the decoding.

Frames come at the size PySceneDetect's ``SceneManager`` gives the detector: the longest side
downscaled to ``DEFAULT_MIN_WIDTH`` (256 px, ``compute_downscale_factor``, ``detector_size``).
The library converts every frame to BGR at the coded size and then shrinks it with bilinear
``cv2.resize``; here FFmpeg's swscale shrinks the decoded YUV planes to that size
(``SWS_FAST_BILINEAR``, ``DETECTOR_INTERPOLATION``) and converts the small frame to BGR, which
costs less than the conversion at the coded size alone. In two swscale steps when the
detector's size is even both ways (most sizes: 256x144 for 16:9, 256x188 for the Megamind.avi
proxy): a conversion that also scales goes through swscale's generic output path, ~130 us a
640x470 frame against ~95 us for the SIMD scaler plus the unscaled conversion, whose SIMD code
needs even sides (at 256x109, bikes.mp4's, it costs 48 instead of 13 us and one step is
cheaper). The two steps' BGR differs from the one step's by 0.7 of a level on average, at
chroma edges more. The detector's scores are not bit-identical to the library's (mean
absolute difference 0.3 of its 0-255 scale, 3 % relative, at most 3.3 near a cut peak, over
the 14 golden videos and their proxies, for the one-step conversion), and every cut of those
28 files came out the same, with one step and with two;
``tests/test_analysis.py`` holds a real MP4 and AVI to the library's own pass. The detector
keeps its defaults (threshold 27 on the weighted HSV frame difference, shots of at least 15
frames), the library's values for ordinary footage; frames of another size than the first are
skipped, as ``SceneManager`` skips them.

The frame score is the library's, computed with fewer passes (``_ContentScores``): the same
integer sums of absolute HSV differences, so bit-identical scores and cuts.
"""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter
from scenedetect import ContentDetector
from scenedetect.common import FrameTimecode, Timecode
from scenedetect.scene_manager import compute_downscale_factor

# swscale's filter for the detector's frames: of its bilinear, area and fast-bilinear filters,
# fast bilinear is the cheapest and the closest to the library's cv2.INTER_LINEAR resize (mean
# relative score difference 3 %, against 11 % for BILINEAR and 8 % for AREA, golden set).
DETECTOR_INTERPOLATION = "FAST_BILINEAR"


def detector_size(width: int, height: int) -> tuple[int, int]:
    """(w, h) of the frames ContentDetector gets: SceneManager's automatic downscale
    (``compute_downscale_factor`` of the longest side, sides ``max(1, round(side / factor))``),
    the scale its threshold is tuned at."""
    factor = compute_downscale_factor(max(width, height))
    if factor > 1.0:
        return max(1, round(width / factor)), max(1, round(height / factor))
    return width, height


class StreamClock:
    """The ``FrameTimecode`` of each decoded frame of one stream, as PySceneDetect's backends
    report positions: its ``pts`` from the stream's ``start_time`` (OpenCV's
    ``CAP_PROP_POS_MSEC`` and the PyAV backend's ``_normalized_pts`` alike), not below 0;
    frame ``index`` at ``rate`` when the frame has no timestamp.

    Cut times are therefore on the stream's clock, which can differ by a frame from times
    counted from the first decoded frame (an AVI whose first frame is stamped 1/fps): callers
    that compare both allow for it.

    The start offset in the frames' time base and the rate are worked out once, not per frame:
    ``Fraction`` arithmetic and PySceneDetect's validation of a rate were a tenth of a
    millisecond a frame, as much as converting the frame.

    Args:
        stream: the decoded stream.
        rate: its frame rate (frames per second).
    """

    def __init__(self, stream: av.video.stream.VideoStream, rate: Fraction):
        self._start = stream.start_time or 0
        self._stream_base = stream.time_base
        # A FrameTimecode passed as the rate lends its validated Fraction to the new one.
        self._rate = FrameTimecode(0, rate)
        self._frame_base: Fraction | None = None
        self._offset = 0

    def __call__(self, frame: av.VideoFrame, index: int) -> FrameTimecode:
        """The position of ``frame``, the ``index``-th frame decoded (from 0)."""
        pts, base = frame.pts, frame.time_base
        if pts is None or base is None:
            return FrameTimecode(index, self._rate)
        if base != self._frame_base:
            self._frame_base = base
            self._offset = self._start
            if self._start and self._stream_base is not None and self._stream_base != base:
                self._offset = int(self._start * self._stream_base / base)
        return FrameTimecode(Timecode(pts=max(0, pts - self._offset), time_base=base), self._rate)


class _ContentScores(ContentDetector):
    """``ContentDetector`` with its default weights, the frame score computed in two OpenCV
    calls instead of ~20 NumPy passes.

    The library's score is the weighted mean of three components, each ``sum(|a - b|) /
    pixels`` of one HSV plane of this frame and the last (``_mean_pixel_distance``: two int32
    copies, a subtraction, an absolute value and a sum per plane, ~0.15 ms a 256 px frame, as
    much as decoding it). ``cv2.absdiff`` of the two 3-plane HSV frames and ``cv2.sumElems``
    give the same integer sums (exact in float64 below 2^53), divided and weighted in the
    library's order, so the score is bit-identical (``tests/test_analysis.py`` holds it to the
    library's on real frames). Only the default weights (no edge component, no stats manager)
    are supported: the edge map is the one component this leaves out.
    """

    def __init__(self) -> None:
        super().__init__()
        assert self._weights.delta_edges == 0.0, "edge weights are not supported"
        self._last_hsv: np.ndarray | None = None

    def _calculate_frame_score(self, timecode: FrameTimecode, frame_img: np.ndarray) -> float:
        hsv = cv2.cvtColor(frame_img, cv2.COLOR_BGR2HSV)
        last, self._last_hsv = self._last_hsv, hsv
        if last is None:
            return 0.0
        pixels = float(hsv.shape[0] * hsv.shape[1])
        hue, sat, lum, _ = cv2.sumElems(cv2.absdiff(hsv, last))
        components = ContentDetector.Components(
            delta_hue=hue / pixels, delta_sat=sat / pixels, delta_lum=lum / pixels, delta_edges=0.0
        )
        return sum(c * w for c, w in zip(components, self._weights, strict=True)) / sum(abs(w) for w in self._weights)


class SceneCuts:
    """ContentDetector over the frames of one video.

    ``feed`` each decoded frame in presentation order (on any one thread), then ``finish`` once
    after the last.

    Args:
        width, height: the video's coded size (``size`` is the detector's).
    """

    def __init__(self, width: int, height: int):
        self._coded = (width, height)
        self.size = detector_size(width, height)
        # One swscale context per step for every frame (PyAV's to_ndarray sets one up per frame).
        self._shrink, self._to_bgr = VideoReformatter(), VideoReformatter()
        self._two_steps = self.size[0] % 2 == 0 and self.size[1] % 2 == 0
        self._detector = _ContentScores()
        self._cuts: list[FrameTimecode] = []
        self._last: FrameTimecode | None = None

    def convert(self, frame: av.VideoFrame) -> np.ndarray | None:
        """``frame`` as the detector reads it: BGR uint8 (h, w, 3) at ``size`` (module
        docstring; swscale with ``threads=1``: see ``analysis/decode.py``); None for a frame
        whose coded size differs from the first's (skipped, as ``SceneManager`` skips it)."""
        if (frame.width, frame.height) != self._coded:
            return None
        w, h = self.size
        if not self._two_steps:
            return self._to_bgr.reformat(
                frame, width=w, height=h, format="bgr24", interpolation=DETECTOR_INTERPOLATION, threads=1
            ).to_ndarray()
        small = self._shrink.reformat(
            frame, width=w, height=h, format="yuv420p", interpolation=DETECTOR_INTERPOLATION, threads=1
        )
        return self._to_bgr.reformat(small, format="bgr24", threads=1).to_ndarray()

    def feed(self, position: FrameTimecode, frame: av.VideoFrame) -> None:
        """Score one decoded frame, ``position`` its time (``StreamClock``), as ``convert``
        gives it; a skipped frame still moves the end of the last shot."""
        self._last = position
        bgr = self.convert(frame)
        if bgr is not None:
            self._cuts += self._detector.process_frame(position, bgr)

    def finish(self) -> list[float]:
        """Cut times in s (start of every shot after the first), sorted."""
        if self._last is not None:
            self._cuts += self._detector.post_process(self._last)
        return [c.seconds for c in sorted(set(self._cuts))]
