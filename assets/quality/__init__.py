"""M7 quality evaluation as pure code: score provider outputs against their input video.

No Dagster and no lake I/O here: everything works on local mp4 paths, so the asset layer only
moves rows. Modules, one job each:

* ``frames``: decode a video once; per-frame temporal stats + frames sampled by relative time.
* ``similarity``: SSIM (Wang et al. 2004) and the DCT perceptual hash (``imagehash.phash``).
* ``artifacts``: blocking, noise, banding, frozen and black frames, as excess over the input.
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
