"""Technical gate: deterministic pass/fail checks an output must meet before its quality counts.

Checks (each failure is one readable string; all checks run, so every problem is reported):

============  ===========================================================================
integrity     every packet decodes and at least the declared number of frames come out
metadata      a video stream with a nonzero number of frames
container     MP4 (ISO-BMFF demuxer, not a QuickTime ``qt`` brand)
codec         h264
pixel format  yuv420p (what players and the proxy use)
resolution    equal to the input's
fps           > 0 and within 1 % of the input's
duration      within 10 % of input duration x expected ratio (``factor`` for slow_motion,
              else 1)
bitrate       > 0 and < 50 Mbit/s (above that an effect output is mis-encoded for delivery)
localized     no frame with localized corruption (``detectors``: temporal outlier, blocks
              of flat colour, macroblocking burst, unexpected black frame); needs the
              input-aligned detectors, so ``score_output`` runs it, ``technical_gate`` too
audio         soundtrack present when the input has one, in sync and as long as the video
              (``audio``)
============  ===========================================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from . import audio
from .align import plan
from .detectors import detect
from .frames import DecodedVideo, VideoUnreadable, decode
from .style import expected_duration_ratio, frame_rate

FPS_TOLERANCE = 0.01
DURATION_TOLERANCE = 0.10
MAX_BITRATE = 50_000_000  # bit/s
CODEC = "h264"
PIX_FMT = "yuv420p"
MAX_LISTED = 5  # damaged frames named in the failure text
_MP4_DEMUXER = "mp4"  # the ISO-BMFF demuxer is named "mov,mp4,m4a,3gp,3g2,mj2"
_QUICKTIME_BRAND = "qt"


class QualityInputError(ValueError):
    """The *input* (the proxy) cannot be read, so nothing can be judged against it."""


@dataclass(frozen=True)
class GateResult:
    """Outcome of the technical gate.

    Attributes:
        passed: True when no check failed.
        failures: readable reasons, e.g. ``"fps 12.5 differs from input 25.0 (tolerance 1%)"``.
    """

    passed: bool
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def technical_gate(input_path: str, output_path: str | None, effect_type: str, params: dict) -> GateResult:
    """Run the technical gate on ``output_path`` against ``input_path`` (decodes both fully).

    Args:
        input_path: the normalized proxy (H.264 mp4).
        output_path: the provider's output; None or a missing/unreadable file fails the gate.
        effect_type: catalog effect type (sets the expected duration).
        params: effect parameters (``factor`` for slow_motion).

    Returns:
        GateResult.

    Raises:
        QualityInputError: the input cannot be opened or decodes to no frames.
    """
    inp = decode_input_or_raise(input_path, samples=1)
    if not output_path:
        return GateResult(False, ["output missing: no output path"])
    try:
        out = decode(output_path, samples=1, work_size=inp.work_size)
    except VideoUnreadable as exc:
        return GateResult(False, [f"integrity: output unreadable ({exc.reason})"])
    return evaluate(inp, out, effect_type, params, damaged=localized_damage(inp, out, effect_type, params))


def localized_damage(inp: DecodedVideo, out: DecodedVideo, effect_type: str, params: dict) -> dict[int, list[str]]:
    """Output frame index -> damage tests that fired (``detectors``), on the aligned timeline."""
    if inp.frames == 0 or out.frames == 0:
        return {}
    return detect(inp, out, plan(inp, out, effect_type, params).to_input, effect_type).reasons


def decode_input_or_raise(input_path: str, samples: int) -> DecodedVideo:
    """Decode the input, turning 'unreadable' and 'no frames' into QualityInputError."""
    try:
        inp = decode(input_path, samples=samples)
    except VideoUnreadable as exc:
        raise QualityInputError(f"input {exc}") from exc
    if inp.frames == 0:
        raise QualityInputError(f"input {input_path}: no decodable frames ({inp.first_error})")
    return inp


def evaluate(
    inp: DecodedVideo,
    out: DecodedVideo,
    effect_type: str,
    params: dict,
    damaged: dict[int, list[str]] | None = None,
) -> GateResult:
    """Gate checks on already decoded input/output (see module table).

    Args:
        damaged: output frame index -> damage tests that fired (``detectors.FrameArtifacts.
            reasons``); None skips the localized-corruption check.
    """
    failures: list[str] = []
    meta, ref = out.meta, inp.meta
    if out.decode_errors:
        failures.append(
            f"integrity: {out.decode_errors} packet(s) failed to decode ({out.frames} frames decoded; "
            f"first error: {out.first_error})"
        )
    elif meta.declared_frames and out.frames < meta.declared_frames:
        failures.append(f"integrity: decoded {out.frames} of {meta.declared_frames} declared frames")
    if out.frames == 0:
        failures.append("metadata: video stream has no frames")
    if _MP4_DEMUXER not in meta.container.split(",") or meta.major_brand.strip() == _QUICKTIME_BRAND:
        brand = meta.major_brand.strip() or "none"
        failures.append(f"container {meta.container!r} (brand {brand}) is not mp4")
    if meta.codec != CODEC:
        failures.append(f"codec {meta.codec or 'unknown'} is not {CODEC}")
    if meta.pix_fmt != PIX_FMT:
        failures.append(f"pixel format {meta.pix_fmt or 'unknown'} is not {PIX_FMT}")
    if (meta.width, meta.height) != (ref.width, ref.height):
        failures.append(f"resolution {meta.width}x{meta.height} differs from input {ref.width}x{ref.height}")
    fps_in, fps_out = frame_rate(inp), frame_rate(out)
    if fps_out <= 0:
        failures.append("fps unknown (0)")
    elif abs(fps_out / fps_in - 1.0) > FPS_TOLERANCE:
        failures.append(
            f"fps {round(fps_out, 3)} differs from input {round(fps_in, 3)} (tolerance {FPS_TOLERANCE:.0%})"
        )
    ratio = expected_duration_ratio(effect_type, params)
    expected = inp.duration_s * ratio
    if out.frames and abs(out.duration_s / expected - 1.0) > DURATION_TOLERANCE:
        failures.append(
            f"duration {out.duration_s:.2f}s outside {expected:.2f}s ±{DURATION_TOLERANCE:.0%} "
            f"(input {inp.duration_s:.2f}s x {ratio:g})"
        )
    if meta.bit_rate <= 0:
        failures.append("bitrate unknown (0)")
    elif meta.bit_rate >= MAX_BITRATE:
        failures.append(f"bitrate {meta.bit_rate / 1e6:.1f} Mbit/s is not below {MAX_BITRATE / 1e6:.0f} Mbit/s")
    if damaged:
        shown = ", ".join(f"{t} ({'+'.join(why)})" for t, why in sorted(damaged.items())[:MAX_LISTED])
        more = f" and {len(damaged) - MAX_LISTED} more" if len(damaged) > MAX_LISTED else ""
        failures.append(f"localized corruption in {len(damaged)} frame(s): {shown}{more}")
    if out.frames:
        failures.extend(audio.failures(ref.path, meta.path, out.duration_s, DURATION_TOLERANCE))
    return GateResult(not failures, failures)
