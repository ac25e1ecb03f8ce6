"""Frame transforms the ``opencv`` adapter runs, registered by the names ``providers.yaml`` uses.

A transform factory takes the workflow's keyword params once per task and returns a function
``frame -> frame`` over ``HxWx3 uint8 BGR`` arrays (same shape out). Factories validate their
params (``ValueError``) so a bad registry entry fails before any frame is decoded, and
precompute what they can (LUTs), so per-frame work is only the image operations.

Retiming transforms (``RETIMING``) map the whole stream instead: their factory returns a
function from the decoded frames to the output frames (same shape, any number of them, at the
input's frame rate), for effects that change timing such as slow motion.

Threading: these run in the adapter's worker thread; the adapter pins OpenCV to the calling
thread (``cv2.setNumThreads(0)``) so ``time.thread_time()`` sees all of their CPU.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from resources.providers.opencv_flow import StreamTransform, flow_slow_motion

FrameTransform = Callable[[np.ndarray], np.ndarray]
TransformFactory = Callable[..., FrameTransform]

TRANSFORMS: dict[str, TransformFactory] = {}


def register(name: str) -> Callable[[TransformFactory], TransformFactory]:
    """Decorator: make a factory available to ``providers.yaml`` as ``transform: <name>``."""

    def deco(factory: TransformFactory) -> TransformFactory:
        TRANSFORMS[name] = factory
        return factory

    return deco


@dataclass(frozen=True)
class Retiming:
    """A retiming transform: ``factory(**params)`` returns frames in → frames out, over frames
    decoded as ``pixel_format`` (a PyAV ``to_ndarray`` format the encoder also takes raw:
    ``bgr24`` ``H x W x 3``, or ``yuv420p`` I420 ``(3H/2) x W``)."""

    factory: Callable[..., StreamTransform]
    pixel_format: str


# Retiming transforms by name (``providers.yaml`` ``transform: <name>`` too; module doc).
RETIMING: dict[str, Retiming] = {"flow_slow_motion": Retiming(flow_slow_motion, "yuv420p")}


def _odd(name: str, value: float, minimum: int = 3) -> int:
    v = int(value)
    if v != value or v < minimum or v % 2 == 0:
        raise ValueError(f"{name} must be an odd integer >= {minimum}, got {value}")
    return v


@register("channel_curves")
def channel_curves(r_gamma: float = 1.0, g_gamma: float = 1.0, b_gamma: float = 1.0) -> FrameTransform:
    """Per-channel power curves ``out = 255 * (in / 255) ** gamma`` applied with one ``cv2.LUT``.

    Gamma < 1 lifts a channel (mid-tones most, black and white stay put), > 1 lowers it; a warm
    grade lifts red and lowers blue, a cool grade the reverse.

    Raises:
        ValueError: a gamma <= 0.
    """
    gammas = {"r_gamma": r_gamma, "g_gamma": g_gamma, "b_gamma": b_gamma}
    for name, g in gammas.items():
        if not g > 0:
            raise ValueError(f"{name} must be > 0, got {g}")
    x = np.arange(256, dtype=np.float64) / 255.0
    # OpenCV frames are BGR: LUT channel 0 is blue.
    levels = np.stack([255.0 * x**b_gamma, 255.0 * x**g_gamma, 255.0 * x**r_gamma], axis=-1)
    lut = np.clip(np.rint(levels), 0, 255).astype(np.uint8).reshape(1, 256, 3)

    def apply(frame: np.ndarray) -> np.ndarray:
        return cv2.LUT(frame, lut)

    return apply


def toon_quantizer(levels: int, chroma_step: float, saturation: float = 1.0) -> FrameTransform:
    """Flat-shading quantizer: luma (YCrCb Y) into ``levels`` bands, each at its band centre,
    and chroma (Cr, Cb) scaled by ``saturation`` around neutral 128 then rounded to multiples
    of ``chroma_step`` (cartoons are more saturated than footage).

    Quantizing luma and chroma rather than R, G and B separately keeps greys grey: per-channel
    bins put the three channels of a near-grey pixel in different bins and paint false colours.

    Raises:
        ValueError: ``levels`` not an integer in 2…64, ``chroma_step`` outside 1…128 or
            ``saturation`` outside 0…4.
    """
    n = int(levels)
    if n != levels or not 2 <= n <= 64:
        raise ValueError(f"levels must be an integer in 2..64, got {levels}")
    if not 1 <= chroma_step <= 128:
        raise ValueError(f"chroma_step must be in 1..128, got {chroma_step}")
    if not 0 <= saturation <= 4:
        raise ValueError(f"saturation must be in 0..4, got {saturation}")
    x = np.arange(256, dtype=np.float64)
    band = 256.0 / n
    y_lut = (np.floor(x / band) + 0.5) * band
    c_lut = np.round((x - 128.0) * saturation / chroma_step) * chroma_step + 128.0
    lut = np.clip(np.rint(np.stack([y_lut, c_lut, c_lut], axis=-1)), 0, 255)
    lut = lut.astype(np.uint8).reshape(1, 256, 3)

    def apply(frame: np.ndarray) -> np.ndarray:
        ycc = cv2.cvtColor(frame, cv2.COLOR_BGR2YCrCb)
        return cv2.cvtColor(cv2.LUT(ycc, lut), cv2.COLOR_YCrCb2BGR)

    return apply


@register("cartoon")
def cartoon(
    levels: int = 6,
    chroma_step: float = 12,
    saturation: float = 1.0,
    smooth_passes: int = 4,
    diameter: int = 9,
    sigma_color: float = 30,
    sigma_space: float = 7,
    median_ksize: int = 5,
    edge_block: int = 9,
    edge_c: float = 6,
    smooth_scale: float = 0.5,
) -> FrameTransform:
    """Classic OpenCV cartoon: edge-preserving smoothing, flat colours, ink outlines.

    1. ``smooth_passes`` bilateral filters (``diameter``, ``sigma_color``, ``sigma_space``, in
       px at the reduced size) at ``smooth_scale`` of the frame's size — several small passes
       flatten regions like one huge filter at a fraction of the cost, and the reduced size
       divides it again by 1 / smooth_scale²;
    2. ``toon_quantizer(levels, chroma_step, saturation)`` of the smoothed frame brought back
       to full size;
    3. outlines: ``adaptiveThreshold`` (mean over ``edge_block``² minus ``edge_c``) of the
       median-blurred (``median_ksize``) grey frame at full size, multiplied in as black.

    Raises:
        ValueError: bad sizes (``diameter``, ``median_ksize``, ``edge_block`` odd ≥ 3),
            ``smooth_scale`` outside (0, 1], or quantizer params.
    """
    quantize = toon_quantizer(levels, chroma_step, saturation)
    diameter = _odd("diameter", diameter)
    median_ksize = _odd("median_ksize", median_ksize)
    edge_block = _odd("edge_block", edge_block)
    passes = int(smooth_passes)
    if passes < 0:
        raise ValueError(f"smooth_passes must be >= 0, got {smooth_passes}")
    if not 0 < smooth_scale <= 1:
        raise ValueError(f"smooth_scale must be in (0, 1], got {smooth_scale}")

    def apply(frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        size = (max(1, round(w * smooth_scale)), max(1, round(h * smooth_scale)))
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        for _ in range(passes):
            small = cv2.bilateralFilter(small, diameter, sigma_color, sigma_space)
        flat = quantize(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))
        gray = cv2.medianBlur(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), median_ksize)
        ink = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, edge_block, edge_c)
        return cv2.bitwise_and(flat, flat, mask=ink)

    return apply


_XIMGPROC_MISSING = (
    "cv2 has no ximgproc.dtFilter (the domain-transform filter): this OpenCV is not the "
    "opencv-contrib-python-headless build; `make install` reinstalls it last"
)


def _has_dt_filter() -> bool:
    """``cv2.ximgproc.dtFilter`` exists: only the contrib build's binary has it.

    Not just ``cv2.ximgproc``: another OpenCV wheel unpacked over contrib leaves contrib's
    ``cv2/ximgproc/`` stub folder behind, which imports as an empty namespace package.
    """
    return hasattr(getattr(cv2, "ximgproc", None), "dtFilter")


def _domain_transform(image: np.ndarray, sigma_s: float, sigma_r: float, white: float) -> np.ndarray:
    """Gastal & Oliveira's normalized-convolution domain-transform filter (SIGGRAPH 2011; 3
    iterations, as ``cv2.edgePreservingFilter`` / ``cv2.stylization`` run it) of ``image``
    guided by itself: ``cv2.ximgproc.dtFilter`` (OpenCV contrib), the same filter as the
    photo module's ``edgePreservingFilter(flags=NORMCONV_FILTER)`` to a level, at a fifth of
    its CPU (a 229x168 frame: 2.7 ms against 12.4).

    Args:
        image: ``HxWx3`` uint8 (``white`` 255) or float32 on [0, 1] (``white`` 1).
        sigma_s: spatial sigma, px.
        sigma_r: range sigma on OpenCV's [0, 1] scale; dtFilter takes it in the guide's
            units, hence ``sigma_r * white``.

    Returns:
        The filtered image, same shape and dtype.
    """
    # Keywords only: in OpenCV 5.0.0 a positional call raises "Incorrect DT filter mode".
    return cv2.ximgproc.dtFilter(
        guide=image,
        src=image,
        sigmaSpatial=float(sigma_s),
        sigmaColor=float(sigma_r * white),
        mode=cv2.ximgproc.DTF_NC,
        numIters=3,
    )


class _Scratch:
    """The arrays one transform instance reuses from frame to frame for its intermediates,
    by name (``scratch(name, shape, dtype)``: the same array while shape and dtype match).

    Why: a 654x480 frame's float intermediates are 3.7 MB each; allocated anew every frame,
    glibc serves them from fresh pages (mmap, or heap it has just trimmed back to the OS)
    whose first-touch page faults cost as much as the arithmetic (stylize on Megamind at 480
    lines: 11.3 ms a frame against 5.7 with reuse). Not thread-safe: each transform instance
    is built per task and runs on that task's one thread (``local_opencv``).
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def __call__(self, name: str, shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._arrays[name] = np.empty(shape, dtype)
        return array


@functools.cache
def _darkening_matrix(white: float) -> np.ndarray:
    """The 3x4 ``cv2.transform`` matrix of ``1 - channel sum / white`` in each of three output
    channels (the affine column is the 1); built once per ``white``, not once a frame."""
    return np.hstack([np.full((3, 3), -1 / white), np.ones((3, 1))]).astype(np.float32)


def _darken_by_gradient(image: np.ndarray, white: float, scratch: _Scratch) -> np.ndarray:
    """``cv2.stylization``'s outlines: ``image x (1 - sum over the three channels of the Sobel
    gradient magnitude of image / white)`` (OpenCV photo module, ``Domain_Filter::
    find_magnitude``: 3x3 Sobel, ``magnitude(gx, gy)``), in ``image``'s units, rounded and
    saturated to uint8 at 255 for ``white`` (negatives to 0).

    Args:
        image: ``HxWx3`` uint8 (``white`` 255) or float32 on [0, 1] (``white`` 1).
        scratch: where the intermediates live (the result is one of them: copy it to keep it
            past the next call).

    Returns:
        ``HxWx3`` uint8.
    """
    h, w = image.shape[:2]
    shape = (h, w, 3)
    # All three channels at once (the float Sobel is exact on 8-bit input); the magnitude
    # over the flattened rows is the per-channel one.
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, dst=scratch("gx", shape, np.float32), ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, dst=scratch("gy", shape, np.float32), ksize=3)
    magnitude = scratch("magnitude", shape, np.float32)
    cv2.magnitude(gx.reshape(h, -1), gy.reshape(h, -1), magnitude.reshape(h, -1))
    # One affine cv2.transform makes the darkening factor, 1 - channel sum / white, in each of
    # three output channels: no separate +1 and channel merge (0.5 ms a 480p frame).
    factor = cv2.transform(magnitude, _darkening_matrix(white), dst=scratch("factor", shape, np.float32))
    return cv2.multiply(image, factor, dst=scratch("darkened", shape, np.uint8), scale=255 / white, dtype=cv2.CV_8U)


@register("stylize")
def stylize(
    levels: int = 6,
    chroma_step: float = 12,
    saturation: float = 1.0,
    sigma_s: float = 60,
    sigma_r: float = 0.45,
    filter_scale: float = 0.5,
) -> FrameTransform:
    """``cv2.stylization`` (E. Gastal and M. Oliveira, "Domain Transform for Edge-Aware Image
    and Video Processing", SIGGRAPH 2011: the normalized-convolution edge-preserving filter,
    whose output is then darkened by its own gradient magnitude; OpenCV photo module) then
    ``toon_quantizer(levels, chroma_step, saturation)``.

    The filter is ``cv2.ximgproc.dtFilter`` (OpenCV contrib; ``_domain_transform``), the same
    filter as ``cv2.edgePreservingFilter`` at a fifth of its CPU: on Megamind.avi at 480
    lines, 1 pixel value in ~10,000 differs, by one level. At ``filter_scale`` 1 this is
    ``cv2.stylization`` itself, in float as it computes (within one level of it, on 1 pixel
    value in ~20,000; ``tests/test_providers.py``), at a quarter of its CPU.

    Below 1 the filter, which is most of the cost, runs at ``filter_scale`` of the frame's
    size on the 8-bit picture with ``sigma_s`` scaled alike, so it smooths over the same share
    of the picture, and is brought back to full size (bicubic) before the gradient darkening,
    which stays at full size so outlines keep their one-pixel weight (at the filter's size
    they come out thick: M7's style adherence fell from 1.0 to 0.66). A 654x480 frame at 0.35
    (what opencv-stylize runs): ~6 ms, 2.7 of them the filter (``edgePreservingFilter``
    took 12.4). At 0.35 against full-size ``cv2.stylization``, on Megamind.avi at 320 px /
    480 lines: M7 composite 0.879 / 0.848 against 0.888 / 0.840, fidelity (SSIM to the
    input) 0.027 / 0.026 lower, style adherence and artifacts no worse, the two outputs at
    SSIM 0.88 / 0.95 to each other (the 6-level quantizer turns small shifts into band flips:
    a CRF 18 re-encode of the input alone moves the full-size output to 0.97);
    ``tests/test_providers.py`` holds it to that. At 0.25 the blocking measure or the style
    adherence gave way (artifacts 0.26, style 0.73).

    Raises:
        ValueError: ``sigma_s`` outside 0…200, ``sigma_r`` outside 0…1 (OpenCV's ranges),
            ``filter_scale`` outside (0, 1], quantizer params, or ``cv2.ximgproc`` missing
            (an OpenCV build other than opencv-contrib-python-headless).
    """
    quantize = toon_quantizer(levels, chroma_step, saturation)
    if not 0 < sigma_s <= 200:
        raise ValueError(f"sigma_s must be in (0, 200], got {sigma_s}")
    if not 0 < sigma_r <= 1:
        raise ValueError(f"sigma_r must be in (0, 1], got {sigma_r}")
    if not 0 < filter_scale <= 1:
        raise ValueError(f"filter_scale must be in (0, 1], got {filter_scale}")
    if not _has_dt_filter():
        raise ValueError(_XIMGPROC_MISSING)
    scratch = _Scratch()
    if filter_scale == 1:

        def full(frame: np.ndarray) -> np.ndarray:
            # cv2.stylization's own steps: the picture as float on [0, 1], filtered and
            # darkened in float, stored as 8 bits once at the end.
            image = np.multiply(frame, np.float32(1 / 255), dtype=np.float32)
            return quantize(_darken_by_gradient(_domain_transform(image, sigma_s, sigma_r, 1.0), 1.0, scratch))

        return full

    def apply(frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        size = (max(1, round(w * filter_scale)), max(1, round(h * filter_scale)))
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        smooth = _domain_transform(small, sigma_s * filter_scale, sigma_r, 255.0)
        # Bicubic: bilinear 2x puts every edge's steepest step between an odd and an even
        # column, a 2-px lattice M7's blocking measure reads as blocks (0.22 against 0.10).
        up = cv2.resize(smooth, (w, h), dst=scratch("up", frame.shape, np.uint8), interpolation=cv2.INTER_CUBIC)
        # Darkened on the 8-bit picture: the same bytes as on its float copy but for float
        # rounding (1 pixel in 400,000 off by one level), at 0.8x the CPU.
        return quantize(_darken_by_gradient(up, 255.0, scratch))

    return apply
