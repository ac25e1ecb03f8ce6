"""PySceneDetect's ``ContentDetector`` fed frames that are decoded elsewhere, on its own thread.

PySceneDetect normally decodes the video itself (``scenedetect.detect`` with a backend). Here
the caller's decode pass hands each frame over (``SceneCuts.feed``) and the detector runs on a
worker thread, so its work (HSV conversion, frame differences: OpenCV and NumPy, which release
the GIL) overlaps the decoding instead of following it.

Frames come at the size PySceneDetect's ``SceneManager`` gives the detector: the longest side
downscaled to ``DEFAULT_MIN_WIDTH`` (256 px, ``compute_downscale_factor``, ``detector_size``).
The library converts every frame to BGR at the coded size and then shrinks it with bilinear
``cv2.resize``; here FFmpeg's swscale converts the decoded YUV straight to that size
(``SWS_FAST_BILINEAR``, ``DETECTOR_INTERPOLATION``), which costs less than the conversion at the
coded size alone. The detector's scores are not bit-identical to the library's (mean absolute
difference 0.3 of its 0-255 scale, 3 % relative, at most 3.3 near a cut peak, over the 14
golden videos and their proxies), and every cut of those 28 files came out the same;
``tests/test_analysis.py`` holds a real MP4 and AVI to the library's own pass. The detector
keeps its defaults (threshold 27 on the weighted HSV frame difference, shots of at least 15
frames), the library's values for ordinary footage; frames of another size than the first are
skipped, as ``SceneManager`` skips them.
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from scenedetect import ContentDetector
from scenedetect.common import FrameTimecode, Timecode
from scenedetect.scene_manager import compute_downscale_factor

# Frames waiting for the detector: enough to ride out a slow frame on either side (each is
# ~100 kB at the detector's size).
QUEUE_FRAMES = 8

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


class SceneCuts:
    """ContentDetector over the frames of one video, on a worker thread.

    ``feed`` every decoded frame in presentation order, then ``finish`` once; or ``close``
    (also on error) to stop the thread without results. Use as a context manager.

    Args:
        width, height: the video's coded size (``size`` is the detector's).
    """

    def __init__(self, width: int, height: int):
        self._coded = (width, height)
        self.size = detector_size(width, height)
        self._detector = ContentDetector()
        self._cuts: list[FrameTimecode] = []
        self._last: FrameTimecode | None = None
        self._error: BaseException | None = None
        self._queue: queue.Queue[tuple[FrameTimecode, np.ndarray] | None] = queue.Queue(QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._run, name="scene-cuts", daemon=True)
        self._thread.start()

    def feed(self, position: FrameTimecode, frame: av.VideoFrame, reformatter: VideoReformatter) -> None:
        """Queue one decoded frame, ``position`` its time (``StreamClock``): converted to BGR at
        ``size`` by ``reformatter`` on the calling thread (one swscale context for every frame,
        ``threads=1``: see ``analysis/decode.py``). Frames whose coded size differs from the
        first's are skipped. Blocks while QUEUE_FRAMES frames wait."""
        self._last = position
        if (frame.width, frame.height) != self._coded:
            return
        bgr = reformatter.reformat(
            frame,
            width=self.size[0],
            height=self.size[1],
            format="bgr24",
            interpolation=DETECTOR_INTERPOLATION,
            threads=1,
        ).to_ndarray()
        self._queue.put((position, bgr))

    def finish(self) -> list[float]:
        """Wait for the detector: cut times in s (start of every shot after the first), sorted.

        Raises:
            whatever the detector raised on the worker thread.
        """
        self.close()
        if self._error is not None:
            raise self._error
        if self._last is not None:
            self._cuts += self._detector.post_process(self._last)
        return [c.seconds for c in sorted(set(self._cuts))]

    def close(self) -> None:
        """Stop the worker thread (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def __enter__(self) -> SceneCuts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so the feeding thread never blocks
            position, bgr = item
            try:
                self._cuts += self._detector.process_frame(position, bgr)
            except BaseException as exc:  # noqa: BLE001 - re-raised by finish on the caller's thread
                self._error = exc
