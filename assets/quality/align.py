"""Put an output on its input's timeline: which output frame stands for which input frame.

The decisions are explicit (and reported in ``measurements``) instead of a nearest-relative-
time guess:

* **time scale**: the duration ratio the effect asks for (``factor`` for slow motion, else 1).
  Output time ``t`` shows input time ``t / scale``; both timelines start at their first frame.
* **frame-rate conversion**: when the output's rate differs from the input's, or the time
  scale is not 1, the output is resampled to the input's rate (ffmpeg ``fps`` filter: at each
  input frame instant, the output frame shown then). A 2x slow motion is thus compared on
  every second output frame, the ones that carry the input's instants.
* **trimming**: only instants both videos cover are compared; frames of the input the output
  never reaches are counted (``tail_missing``), never matched to a neighbour.
* **scaling**: an output at another size is scaled to the input's (bicubic) for the
  full-reference metrics, as VMAF's usage notes prescribe (compare at the reference size).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .frames import VideoTiming
from .style import expected_duration_ratio, frame_rate

# Rate difference (relative) below which two rates are the same (container rounding:
# 30000/1001 stored as 29.97).
_SAME_RATE = 1e-3
# Slack on timestamps (s) so an output frame starting exactly at an instant is the one shown.
_EPS_S = 1e-6


@dataclass(frozen=True)
class Alignment:
    """How an output is compared with its input.

    Attributes:
        time_scale: output duration / input duration the effect asks for (1 = same timing).
        fps_in: the input's frame rate (frames/s) as an exact fraction; the common timeline.
        convert_rate: True when the output is resampled to ``fps_in`` (rates differ or
            ``time_scale`` != 1).
        size: (width, height) of the input in px; the output is scaled to it when it differs.
        scale_output: True when the output's size differs from the input's.
        to_input: (output frames,) int64 index of the input frame each output frame shows
            (the input frame whose interval contains the output instant / time_scale).
        compared: number of input frames the output covers (the full-reference series length).
        tail_missing: input frames past the output's end (not compared).
    """

    time_scale: float
    fps_in: Fraction
    convert_rate: bool
    size: tuple[int, int]
    scale_output: bool
    to_input: np.ndarray
    compared: int
    tail_missing: int

    def output_filter(self) -> str:
        """ffmpeg filter chain that puts the output on the input's timeline and size."""
        chain = [f"setpts=(PTS-STARTPTS)/{self.time_scale!r}"]
        if self.convert_rate:
            chain.append(f"fps={self.fps_in.numerator}/{self.fps_in.denominator}")
        if self.scale_output:
            chain.append(f"scale={self.size[0]}:{self.size[1]}:flags=bicubic")
        chain.append(f"trim=end_frame={self.compared}")
        chain.append("format=yuv420p")
        return ",".join(chain)

    def input_filter(self) -> str:
        """ffmpeg filter chain for the input (reference): same start, same frame count."""
        return f"setpts=PTS-STARTPTS,trim=end_frame={self.compared},format=yuv420p"

    def same_graph(self, other: Alignment) -> bool:
        """True when ``other`` gives ffmpeg the same filter chains (hence the same series)."""
        return (self.output_filter(), self.input_filter()) == (other.output_filter(), other.input_filter())

    def measurements(self) -> dict[str, float]:
        """The decisions as numbers for ``QualityVector.measurements``."""
        return {
            "align_time_scale": self.time_scale,
            "align_fps": float(self.fps_in),
            "align_rate_converted": float(self.convert_rate),
            "align_scaled": float(self.scale_output),
            "align_compared_frames": float(self.compared),
            "align_tail_missing": float(self.tail_missing),
        }


def plan(inp: VideoTiming, out: VideoTiming, effect_type: str, params: dict) -> Alignment:
    """Alignment of ``out`` onto ``inp`` (see module docstring), from their timelines (decoded,
    or read from the packets: ``frames.packet_timeline``).

    Raises:
        ValueError: either video has no frames or the input's rate is unknown.
    """
    if inp.frames == 0 or out.frames == 0:
        raise ValueError("cannot align a video without frames")
    fps_in_f = frame_rate(inp)
    if fps_in_f <= 0:
        raise ValueError("input frame rate unknown")
    fps_in = Fraction(fps_in_f).limit_denominator(1001)
    scale = expected_duration_ratio(effect_type, params)
    fps_out = frame_rate(out)
    convert = scale != 1.0 or fps_out <= 0 or abs(fps_out / fps_in_f - 1.0) > _SAME_RATE
    rel_in = inp.timestamps - inp.timestamps[0]
    rel_out = (out.timestamps - out.timestamps[0]) / scale
    to_input = np.clip(np.searchsorted(rel_in, rel_out + _EPS_S, side="right") - 1, 0, inp.frames - 1)
    # The output covers input instants up to its own end (last frame + one frame duration).
    end = rel_out[-1] + out.frame_duration_s / scale
    compared = int(np.count_nonzero(rel_in < end - _EPS_S)) if convert else min(inp.frames, out.frames)
    compared = max(1, min(compared, inp.frames))
    size = (inp.meta.width, inp.meta.height)
    return Alignment(
        time_scale=scale,
        fps_in=fps_in,
        convert_rate=convert,
        size=size,
        scale_output=(out.meta.width, out.meta.height) != size,
        to_input=to_input.astype(np.int64),
        compared=compared,
        tail_missing=inp.frames - compared,
    )
