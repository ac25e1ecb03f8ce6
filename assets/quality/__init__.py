"""M7 quality evaluation as pure code: score provider outputs against their input video.

No Dagster and no lake I/O here: everything works on local mp4 paths, so the asset layer only
moves rows. Modules, one job each:

* ``frames``: decode a video once; per-frame statistics + frames sampled by relative time.
* ``align``: the output on the input's timeline (time scale, rate conversion, trim, scale).
* ``fullref``: per-frame VMAF, PSNR-Y (libvmaf) and SSIM from one ffmpeg pass.
* ``pooling``: per-frame series -> one number (libvmaf's harmonic mean).
* ``detectors``: per-frame artifacts and localized damage against the aligned input frame.
* ``audio``: the gate's soundtrack check (presence, sync, duration).
* ``similarity``: the DCT perceptual hash (``imagehash.phash``).
* ``artifacts``: per-frame blocking, noise and banding statistics; tolerances and severities.
* ``temporal``: flicker and jitter relative to the input.
* ``style``: effect-specific adherence (warm/cool grade, slow motion, cartoon).
* ``gate``: deterministic technical gate.
* ``score``: the quality vector, composite and ranking.

Public API::

    score_output(input_path, output_path, effect_type, params, samples=16) -> QualityVector
    technical_gate(input_path, output_path, effect_type, params) -> GateResult
    rank_outputs(composites) -> list[int]
"""

from .gate import GateResult, QualityInputError, technical_gate
from .score import QualityVector, composite, rank_outputs, score_output

__all__ = [
    "GateResult",
    "QualityInputError",
    "QualityVector",
    "composite",
    "rank_outputs",
    "score_output",
    "technical_gate",
]
