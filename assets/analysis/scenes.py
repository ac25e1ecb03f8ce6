"""PySceneDetect's ``ContentDetector`` fed frames that are decoded elsewhere, on its own thread.

PySceneDetect normally decodes the video itself (``scenedetect.detect`` with a backend). Here
the caller's decode pass hands each frame over (``SceneCuts.feed``) and the detector runs on a
worker thread, so its work (downscale, HSV conversion, frame differences: OpenCV and NumPy,
which release the GIL) overlaps the decoding instead of following it.

Frames are prepared the way PySceneDetect's ``SceneManager`` prepares them: automatic
downscale of the longest side to ``DEFAULT_MIN_WIDTH`` (256 px, ``compute_downscale_factor``)
with bilinear ``cv2.resize`` (its default ``Interpolation.LINEAR``), frames of another size
than the first skipped; the detector keeps its defaults (threshold 27 on the weighted HSV
frame difference, shots of at least 15 frames), the library's values for ordinary footage.
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction

import av
import cv2
import numpy as np
from scenedetect import ContentDetector
from scenedetect.common import FrameTimecode, Timecode
from scenedetect.scene_manager import compute_downscale_factor

# Frames waiting for the detector: enough to ride out a slow frame on either side, few enough
# that a 640 px proxy holds ~10 MB at most.
QUEUE_FRAMES = 8


def detector_size(width: int, height: int) -> tuple[int, int]:
    """(w, h) of the frames ContentDetector gets: SceneManager's automatic downscale
    (``compute_downscale_factor`` of the longest side, sides ``max(1, round(side / factor))``),
    the scale its threshold is tuned at."""
    factor = compute_downscale_factor(max(width, height))
    if factor > 1.0:
        return max(1, round(width / factor)), max(1, round(height / factor))
    return width, height


def timecode(stream: av.video.stream.VideoStream, frame: av.VideoFrame, index: int, rate: Fraction) -> FrameTimecode:
    """The ``FrameTimecode`` of a decoded frame as PySceneDetect's backends report positions:
    its ``pts`` from the stream's ``start_time`` (OpenCV's ``CAP_PROP_POS_MSEC`` and the PyAV
    backend's ``_normalized_pts`` alike), not below 0; frame ``index`` at ``rate`` when the
    frame has no timestamp.

    Cut times are therefore on the stream's clock, which can differ by a frame from times
    counted from the first decoded frame (an AVI whose first frame is stamped 1/fps): callers
    that compare both allow for it.
    """
    if frame.pts is None or frame.time_base is None:
        return FrameTimecode(index, rate)
    start = stream.start_time or 0
    if start and stream.time_base is not None and stream.time_base != frame.time_base:
        start = int(start * stream.time_base / frame.time_base)
    return FrameTimecode(Timecode(pts=max(0, frame.pts - start), time_base=frame.time_base), rate)


class SceneCuts:
    """ContentDetector over the frames of one video, on a worker thread.

    ``feed`` every decoded frame in presentation order, then ``finish`` once; or ``close``
    (also on error) to stop the thread without results. Use as a context manager.

    Args:
        width, height: the video's coded size; frames of another size are skipped.
    """

    def __init__(self, width: int, height: int):
        self._coded = (width, height)
        self._size = detector_size(width, height)
        self._detector = ContentDetector()
        self._cuts: list[FrameTimecode] = []
        self._last: FrameTimecode | None = None
        self._error: BaseException | None = None
        self._queue: queue.Queue[tuple[FrameTimecode, np.ndarray] | None] = queue.Queue(QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._run, name="scene-cuts", daemon=True)
        self._thread.start()

    def feed(self, position: FrameTimecode, bgr: np.ndarray) -> None:
        """Queue one frame: ``bgr`` uint8 (height, width, 3) at the coded size, ``position`` its
        time (``timecode``). Blocks while QUEUE_FRAMES frames wait."""
        self._last = position
        if bgr.shape[1::-1] == self._coded:
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
                if self._size != self._coded:
                    bgr = cv2.resize(bgr, self._size, interpolation=cv2.INTER_LINEAR)
                self._cuts += self._detector.process_frame(position, bgr)
            except BaseException as exc:  # noqa: BLE001 - re-raised by finish on the caller's thread
                self._error = exc
