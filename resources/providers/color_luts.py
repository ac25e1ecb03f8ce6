"""3D colour LUTs generated from effect params, written as Adobe/Resolve ``.cube`` text that
ffmpeg's ``lut3d`` filter reads.

The grade works in linear light (a 2.2 power law stands in for the BT.709/sRGB transfer; close
enough for a creative grade), applies white-balance gains and then restores each colour's
luminance, so a warm or cool grade shifts hue without brightening or clipping highlights — the
difference between this provider and ffmpeg's ``colortemperature``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Rec.709 luminance weights (ITU-R BT.709-6, item 3.2).
_LUMA = np.array([0.2126, 0.7152, 0.0722])
_GAMMA = 2.2


def grade_cube(
    warmth: float,
    size: int = 33,
    saturation: float = 1.0,
    red_gain: float = 0.30,
    green_gain: float = 0.06,
    blue_gain: float = 0.30,
) -> str:
    """A white-balance grade as ``.cube`` text.

    Args:
        warmth: -1 (fully cool) … +1 (fully warm); 0 is the identity (up to LUT sampling).
        size: grid points per axis (``LUT_3D_SIZE``, 2…65); 33 is the common editing size.
        saturation: chroma scale around each colour's luminance (1 = unchanged).
        red_gain / green_gain / blue_gain: linear-light gain change per unit of warmth: red
            and green go up and blue down when warming (a shift toward a lower colour
            temperature), the other way when cooling.

    Returns:
        The file text: header, then ``size**3`` lines ``r g b`` in 0…1 with red varying fastest
        (the .cube convention).

    Raises:
        ValueError: ``size`` outside 2…65 or ``warmth`` outside -1…1.
    """
    size = int(size)
    if not 2 <= size <= 65:
        raise ValueError(f"LUT size must be 2..65, got {size}")
    if not -1.0 <= warmth <= 1.0:
        raise ValueError(f"warmth must be in -1..1, got {warmth}")
    axis = np.linspace(0.0, 1.0, size)
    # indexing="ij" over (b, g, r) then flattening C-order makes red the fastest axis.
    b, g, r = np.meshgrid(axis, axis, axis, indexing="ij")
    rgb = np.stack([r, g, b], axis=-1).reshape(-1, 3)
    lin = rgb**_GAMMA
    gains = np.array([1 + red_gain * warmth, 1 + green_gain * warmth, 1 - blue_gain * warmth])
    out = lin * gains
    y_in = lin @ _LUMA
    y_out = out @ _LUMA
    # Restore luminance: the grade changes hue only (guard black, where both are 0).
    out *= np.divide(y_in, y_out, out=np.ones_like(y_in), where=y_out > 1e-9)[:, None]
    out = y_in[:, None] + (out - y_in[:, None]) * saturation
    out = np.clip(out, 0.0, 1.0) ** (1 / _GAMMA)
    header = (
        f'TITLE "effectlake grade warmth={warmth:.3f} saturation={saturation:.3f}"\n'
        f"LUT_3D_SIZE {size}\nDOMAIN_MIN 0.0 0.0 0.0\nDOMAIN_MAX 1.0 1.0 1.0\n"
    )
    body = "\n".join(f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in out.tolist())
    return header + body + "\n"


# generator name (as written in providers.yaml) → function(**args) -> .cube text
LUT_GENERATORS: dict[str, Callable[..., str]] = {"grade_cube": grade_cube}
