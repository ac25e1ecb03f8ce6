"""A ComfyUI test double that speaks the recorded 0.3.64 protocol and really runs video graphs.

``FakeComfyUI(root)`` is a real HTTP server (FastAPI on uvicorn, ``127.0.0.1``, a free port,
in a background thread) with ComfyUI's routes, each also under ``/api``:

==========================  ==============================================================
``POST /upload/image``      multipart ``image``/``type``/``subfolder``/``overwrite`` → store
``POST /prompt``            validate like ComfyUI (400 bodies shaped as ``errors.json``),
                            queue; a non-JSON body gets the plain-text 500
``GET /prompt``             ``{"exec_info": {"queue_remaining"}}``
``GET /queue``              ``{"queue_running": [[number, id, prompt, extra, outputs]], ...}``
``POST /queue``             ``{"clear": true}`` / ``{"delete": [ids]}`` (pending only)
``GET /history[/{id}]``     ``{}`` until done, then the recorded success / error shapes
``POST /history``           ``{"clear": true}`` / ``{"delete": [ids]}``
``GET /view``               file bytes with their content type; 404 with an empty body
``GET /system_stats``       the recorded body (a CPU device)
``GET /object_info[/{c}]``  node definitions of the supported nodes
``POST /interrupt``         interrupt the running prompt (optionally only ``prompt_id``)
==========================  ==============================================================

Execution is real and asynchronous: one worker thread takes prompts in order (as ComfyUI's
single executor does), so history stays ``{}`` while a prompt waits or runs. Supported core
nodes (0.3.64 signatures): LoadVideo, GetVideoComponents, ImageQuantize, ImageSharpen,
ImageInvert, ImageBlur, CreateVideo, SaveVideo. IMAGE values are lazy ffmpeg filter chains; the
work happens in one ``run_ffmpeg`` call at SaveVideo, so an ffmpeg failure is reported at the
SaveVideo node (ComfyUI would name the filter node). Filter equivalents, working in planar RGB:

* ImageQuantize: per-frame median-cut palette (``palettegen stats_mode=single`` +
  ``paletteuse new=1``), like Pillow's per-frame ``quantize``; ``colors`` < 2 acts as 2.
* ImageBlur: ComfyUI's exact truncated Gaussian (pixel σ = ``sigma × blur_radius``, square
  support of ``blur_radius``) as separable ``convolution`` rows/columns (``gblur`` past r=24).
* ImageSharpen: ComfyUI's kernel ``δ + 10·alpha·(δ − G)`` as one ``convolution`` (r ≤ 3), or
  blur + ``blend`` beyond.
* ImageInvert: ``negate``. CreateVideo/SaveVideo: frames re-timed to ``fps``, libx264
  yuv420p (and AAC audio) in mp4; ``codec=auto`` on an untouched file remuxes.

Caching follows ComfyUI's classic cache: a node whose signature (class, literal inputs, linked
signatures; LoadVideo also the file's size and mtime) ran in the previous prompt is not run
again and is listed in ``execution_cached``; an identical resubmission writes no new file and
its history points at the earlier output (``img1_cached_history.json``).

Knobs for tests: :meth:`FakeComfyUI.fail_next` (next prompt fails at a node with a recorded-shape
``execution_error``), :meth:`pause` / :meth:`resume` (hold the queue), :meth:`wait_idle`,
``system_stats`` (the body GET /system_stats answers instead of the recorded one),
``node_delay_s`` (each executed node takes that much longer; an interrupt lands only between
nodes, as in ComfyUI), :meth:`restart` (queue and history forgotten), :meth:`refuse_next` (the
next ``POST /prompt`` answers 429/503 with ``Retry-After``, as a fleet's front would).
Not implemented: the ``/ws`` websocket, images (LoadImage/SaveImage), partial execution.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from resources.ffmpeg import ProcessStats, run_ffmpeg

# ---------------------------------------------------------------------------------------------
# Node catalogue: the 0.3.64 input/output signatures of the supported nodes
# ---------------------------------------------------------------------------------------------

DITHER_OPTIONS = ["none", "floyd-steinberg", "bayer-2", "bayer-4", "bayer-8", "bayer-16"]


@dataclass(frozen=True)
class NodeSpec:
    """``required``/``optional``: ``{name: (TYPE, options)}``; ``outputs``: output types.
    ``custom_validated``: inputs the node validates itself (skips the COMBO list check)."""

    required: dict[str, tuple[str, dict[str, Any]]]
    outputs: tuple[str, ...]
    output_names: tuple[str, ...]
    category: str
    python_module: str
    display_name: str
    optional: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    output_node: bool = False
    custom_validated: frozenset[str] = frozenset()


_RADIUS = {"default": 1, "min": 1, "max": 31, "step": 1}
_SIGMA = {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.1}

NODE_SPECS: dict[str, NodeSpec] = {
    "LoadVideo": NodeSpec(
        required={"file": ("COMBO", {"options": None, "video_upload": True})},
        outputs=("VIDEO",),
        output_names=("VIDEO",),
        category="image/video",
        python_module="comfy_extras.nodes_video",
        display_name="Load Video",
        custom_validated=frozenset({"file"}),
    ),
    "GetVideoComponents": NodeSpec(
        required={"video": ("VIDEO", {"tooltip": "The video to extract components from."})},
        outputs=("IMAGE", "AUDIO", "FLOAT"),
        output_names=("images", "audio", "fps"),
        category="image/video",
        python_module="comfy_extras.nodes_video",
        display_name="Get Video Components",
    ),
    "ImageQuantize": NodeSpec(
        required={
            "image": ("IMAGE", {}),
            "colors": ("INT", {"default": 256, "min": 1, "max": 256, "step": 1}),
            "dither": ("COMBO", {"options": DITHER_OPTIONS}),
        },
        outputs=("IMAGE",),
        output_names=("IMAGE",),
        category="image/postprocessing",
        python_module="comfy_extras.nodes_post_processing",
        display_name="Image Quantize",
    ),
    "ImageSharpen": NodeSpec(
        required={
            "image": ("IMAGE", {}),
            "sharpen_radius": ("INT", dict(_RADIUS)),
            "sigma": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 10.0, "step": 0.01}),
            "alpha": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 5.0, "step": 0.01}),
        },
        outputs=("IMAGE",),
        output_names=("IMAGE",),
        category="image/postprocessing",
        python_module="comfy_extras.nodes_post_processing",
        display_name="Image Sharpen",
    ),
    "ImageBlur": NodeSpec(
        required={"image": ("IMAGE", {}), "blur_radius": ("INT", dict(_RADIUS)), "sigma": ("FLOAT", dict(_SIGMA))},
        outputs=("IMAGE",),
        output_names=("IMAGE",),
        category="image/postprocessing",
        python_module="comfy_extras.nodes_post_processing",
        display_name="Image Blur",
    ),
    "ImageInvert": NodeSpec(
        required={"image": ("IMAGE", {})},
        outputs=("IMAGE",),
        output_names=("IMAGE",),
        category="image",
        python_module="nodes",
        display_name="Invert Image",
    ),
    "CreateVideo": NodeSpec(
        required={
            "images": ("IMAGE", {"tooltip": "The images to create a video from."}),
            "fps": ("FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0, "step": 1.0}),
        },
        optional={"audio": ("AUDIO", {"tooltip": "The audio to add to the video."})},
        outputs=("VIDEO",),
        output_names=("VIDEO",),
        category="image/video",
        python_module="comfy_extras.nodes_video",
        display_name="Create Video",
    ),
    "SaveVideo": NodeSpec(
        required={
            "video": ("VIDEO", {"tooltip": "The video to save."}),
            "filename_prefix": ("STRING", {"default": "video/ComfyUI"}),
            "format": ("COMBO", {"options": ["auto", "mp4"], "default": "auto"}),
            "codec": ("COMBO", {"options": ["auto", "h264"], "default": "auto"}),
        },
        outputs=(),
        output_names=(),
        category="image/video",
        python_module="comfy_extras.nodes_video",
        display_name="Save Video",
        output_node=True,
    ),
}

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".gif"}

# GET /system_stats as recorded (GET_system_stats.json), argv adjusted to this double.
SYSTEM_STATS: dict[str, Any] = {
    "system": {
        "os": "posix",
        "ram_total": 25325260800,
        "ram_free": 24049381376,
        "comfyui_version": "0.3.64",
        "required_frontend_version": "1.27.10",
        "installed_templates_version": "0.1.95",
        "required_templates_version": "0.1.95",
        "python_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
        "pytorch_version": "2.13.0+cpu",
        "embedded_python": False,
        "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--disable-auto-launch"],
    },
    "devices": [
        {
            "name": "cpu",
            "type": "cpu",
            "index": None,
            "vram_total": 25325260800,
            "vram_free": 24048906240,
            "torch_vram_total": 25325260800,
            "torch_vram_free": 24048906240,
        }
    ],
}

# ---------------------------------------------------------------------------------------------
# Validation (execution.validate_prompt, reduced to what the supported nodes need)
# ---------------------------------------------------------------------------------------------


def _err(type_: str, message: str, details: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": type_, "message": message, "details": details, "extra_info": extra}


def _is_link(value: Any) -> bool:
    return isinstance(value, list)


def _annotated_name(name: str) -> str:
    """``"clip.mp4 [input]"`` → ``"clip.mp4"`` (the frontend's annotated file names)."""
    return re.sub(r"\s*\[(input|output|temp)\]$", "", name)


def validate_prompt(prompt: Any, input_dir: Path) -> tuple[bool, dict[str, Any] | None, list[str], dict[str, Any]]:
    """``(ok, error, outputs_to_execute, node_errors)`` with ComfyUI's error shapes."""
    if not isinstance(prompt, dict):
        return False, _err("invalid_prompt", "Prompt is not a dict"), [], {}
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return (
                False,
                _err(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{node_id}'",
                ),
                [],
                {},
            )
        spec = NODE_SPECS.get(node["class_type"])
        if spec is None:
            return (
                False,
                _err(
                    "invalid_prompt",
                    f"Cannot execute because node {node['class_type']} does not exist.",
                    f"Node ID '#{node_id}'",
                ),
                [],
                {},
            )
        if spec.output_node:
            outputs.append(str(node_id))
    if not outputs:
        return False, _err("prompt_no_outputs", "Prompt has no outputs"), [], {}

    validated: dict[str, tuple[bool, list[dict[str, Any]]]] = {}

    def check(node_id: str) -> bool:
        if node_id in validated:
            return validated[node_id][0]
        validated[node_id] = (True, [])  # provisional: a link cycle must not recurse forever
        node = prompt[node_id]
        spec = NODE_SPECS[node["class_type"]]
        inputs = node.get("inputs") or {}
        errors: list[dict[str, Any]] = []
        valid = True
        declared = {
            **{k: (v, True) for k, v in spec.required.items()},
            **{k: (v, False) for k, v in spec.optional.items()},
        }
        for name, ((typ, opts), required) in declared.items():
            config = [typ, {k: v for k, v in opts.items() if v is not None}]
            if name not in inputs:
                if required:
                    errors.append(_err("required_input_missing", "Required input is missing", name, input_name=name))
                    valid = False
                continue
            value = inputs[name]
            if _is_link(value):
                if len(value) != 2:
                    errors.append(
                        _err(
                            "bad_linked_input",
                            "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                            name,
                            input_name=name,
                            input_config=config,
                            received_value=value,
                        )
                    )
                    valid = False
                    continue
                src_id, slot = str(value[0]), value[1]
                if src_id not in prompt:
                    errors.append(
                        _err(
                            "exception_during_inner_validation",
                            "Exception when validating inner node",
                            f"'{src_id}'",
                            input_name=name,
                            input_config=config,
                            exception_message=f"'{src_id}'",
                            exception_type="KeyError",
                        )
                    )
                    valid = False
                    continue
                src_outputs = NODE_SPECS[prompt[src_id]["class_type"]].outputs
                received = src_outputs[slot] if isinstance(slot, int) and 0 <= slot < len(src_outputs) else None
                if received != typ:
                    details = f"{name}, received_type({received}) mismatch input_type({typ})"
                    errors.append(
                        _err(
                            "return_type_mismatch",
                            "Return type mismatch between linked nodes",
                            details,
                            input_name=name,
                            input_config=config,
                            received_type=received,
                            linked_node=value,
                        )
                    )
                    valid = False
                    continue
                if not check(src_id):
                    valid = False  # the linked node carries the errors (as in ComfyUI)
                continue
            problem = _check_literal(name, value, typ, opts, config, spec, input_dir)
            if problem is not None:
                errors.append(problem)
                valid = False
        validated[node_id] = (valid, errors)
        return valid

    good: list[str] = []
    output_errors: list[str] = []
    node_errors: dict[str, Any] = {}
    for out in outputs:
        if check(out):
            good.append(out)
        else:
            output_errors += [f"{e['message']}: {e['details']}" for e in validated[out][1]]
            for node_id, (_, reasons) in validated.items():
                if reasons:
                    entry = node_errors.setdefault(
                        node_id,
                        {"errors": reasons, "dependent_outputs": [], "class_type": prompt[node_id]["class_type"]},
                    )
                    if out not in entry["dependent_outputs"]:
                        entry["dependent_outputs"].append(out)
    if not good:
        return (
            False,
            _err("prompt_outputs_failed_validation", "Prompt outputs failed validation", "\n".join(output_errors)),
            [],
            node_errors,
        )
    return True, None, good, node_errors


def _check_literal(
    name: str,
    value: Any,
    typ: str,
    opts: dict[str, Any],
    config: list[Any],
    spec: NodeSpec,
    input_dir: Path,
) -> dict[str, Any] | None:
    if typ in ("INT", "FLOAT", "STRING"):
        try:
            converted: Any = {"INT": int, "FLOAT": float, "STRING": str}[typ](value)
        except (TypeError, ValueError) as exc:
            return _err(
                "invalid_input_type",
                f"Failed to convert an input value to a {typ} value",
                f"{name}, {value}, {exc}",
                input_name=name,
                input_config=config,
                received_value=value,
                exception_message=str(exc),
            )
        if "min" in opts and converted < opts["min"]:
            return _err(
                "value_smaller_than_min",
                f"Value {converted} smaller than min of {opts['min']}",
                name,
                input_name=name,
                input_config=config,
                received_value=value,
            )
        if "max" in opts and converted > opts["max"]:
            return _err(
                "value_bigger_than_max",
                f"Value {converted} bigger than max of {opts['max']}",
                name,
                input_name=name,
                input_config=config,
                received_value=value,
            )
        return None
    if name in spec.custom_validated:  # LoadVideo.file: VALIDATE_INPUTS instead of the list
        path = input_dir / _annotated_name(str(value))
        if not path.is_file():
            return _err(
                "custom_validation_failed",
                "Custom validation failed for node",
                f"{name} - Invalid video file: {value}",
                input_name=name,
            )
        return None
    if typ == "COMBO" and value not in (opts.get("options") or []):
        return _err(
            "value_not_in_list",
            "Value not in list",
            f"{name}: '{value}' not in {opts.get('options')}",
            input_name=name,
            input_config=config,
            received_value=value,
        )
    if typ not in ("COMBO",):  # a literal where a link is required (IMAGE, VIDEO, ...)
        return _err(
            "invalid_input_type",
            f"Failed to convert an input value to a {typ} value",
            f"{name}, {value}",
            input_name=name,
            input_config=config,
            received_value=value,
        )
    return None


# ---------------------------------------------------------------------------------------------
# Values flowing between nodes and their ffmpeg equivalents
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoFile:
    """VIDEO straight from a file (LoadVideo): nothing decoded yet, like ComfyUI's
    ``VideoFromFile``."""

    path: Path

    def __str__(self) -> str:
        return f"<VIDEO {self.path.name}>"


@dataclass(frozen=True)
class ImageStream:
    """IMAGE: the frames of ``src`` after ``steps`` (filtergraph fragments with ``{i}``,
    ``{o}``, ``{u}`` for input label, output label and a unique prefix)."""

    src: Path
    steps: tuple[str, ...] = ()

    def then(self, step: str) -> ImageStream:
        return ImageStream(self.src, (*self.steps, step))

    def __str__(self) -> str:
        return f"<IMAGE {self.src.name} +{len(self.steps)} ops>"


@dataclass(frozen=True)
class AudioRef:
    """AUDIO: the first audio stream of ``src``."""

    src: Path


@dataclass(frozen=True)
class VideoComponents:
    """VIDEO built by CreateVideo: frames, a frame rate (fps) and optional audio."""

    images: ImageStream
    fps: float
    audio: AudioRef | None

    def __str__(self) -> str:
        return f"<VIDEO {self.images} @ {self.fps:g} fps>"


@dataclass(frozen=True)
class Probe:
    fps: float
    width: int
    height: int
    has_audio: bool
    codec: str


@lru_cache(maxsize=64)
def _probe_cached(path: str, mtime_ns: int, size: int) -> Probe:
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"No video stream found in {Path(path).name}")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 30
        return Probe(
            float(rate),
            stream.codec_context.width,
            stream.codec_context.height,
            bool(container.streams.audio),
            stream.codec_context.name,
        )


def probe(path: Path) -> Probe:
    """Frame rate, size, audio presence and codec (PyAV, as ComfyUI's video nodes use)."""
    st = path.stat()
    return _probe_cached(str(path), st.st_mtime_ns, st.st_size)


def _gauss_1d(radius: int, sigma: float) -> np.ndarray:
    # ComfyUI's gaussian_kernel samples linspace(-1, 1, 2r+1): pixel k sits at k/r, so the
    # pixel-space sigma is sigma*r. The 2-D kernel is the outer product of this one.
    xs = np.linspace(-1.0, 1.0, 2 * radius + 1)
    w = np.exp(-(xs * xs) / (2.0 * sigma * sigma))
    return w / w.sum()


def _conv_filter(matrix: np.ndarray, mode: str) -> str:
    """An ffmpeg ``convolution`` on the 3 planes with an integer version of ``matrix``."""
    ints = np.rint(matrix / np.abs(matrix).max() * 1024).astype(int).ravel()
    total = int(ints.sum())
    rdiv = 1.0 / total if total else 1.0
    text = " ".join(str(v) for v in ints)
    return ":".join(
        [f"{p}m='{text}'" for p in range(3)]
        + [f"{p}rdiv={rdiv:.10f}" for p in range(3)]
        + [f"{p}mode={mode}" for p in range(3)]
    )


def blur_filter(radius: int, sigma: float) -> str:
    """A linear filter chain equal to ComfyUI's ImageBlur (see module docstring)."""
    if 2 * radius + 1 <= 49:  # ffmpeg's row/column convolution limit
        w = _gauss_1d(radius, sigma)
        return f"convolution={_conv_filter(w, 'row')},convolution={_conv_filter(w, 'column')}"
    return f"gblur=sigma={sigma * radius:.4f}"


def sharpen_step(radius: int, sigma: float, alpha: float) -> str:
    """A fragment equal to ComfyUI's ImageSharpen: ``x + 10·alpha·(x − blur(x))``."""
    if alpha == 0:
        return "[{i}]null[{o}]"
    if radius <= 3:  # convolution's square mode takes 3x3, 5x5 or 7x7
        w = _gauss_1d(radius, sigma)
        kernel = np.outer(w, w) * -(alpha * 10)
        c = radius
        kernel[c, c] = kernel[c, c] - kernel.sum() + 1.0
        return "[{i}]convolution=" + _conv_filter(kernel, "square") + "[{o}]"
    k = alpha * 10
    return (
        "[{i}]split[{u}a][{u}b];[{u}b]" + blur_filter(radius, sigma) + "[{u}c];"
        f"[{{u}}a][{{u}}c]blend=all_expr='clip(A+{k:.4f}*(A-B),0,255)'[{{o}}]"
    )


def quantize_step(colors: int, dither: str) -> str:
    """A fragment equal to ComfyUI's ImageQuantize (per-frame median-cut palette)."""
    mode = {"none": "none", "floyd-steinberg": "floyd_steinberg"}.get(dither)
    if mode is None:  # bayer-N: ffmpeg has one 8x8 Bayer matrix; the scale approximates N
        order = int(dither.split("-")[-1])
        mode = f"bayer:bayer_scale={ {2: 3, 4: 2, 8: 1, 16: 0}.get(order, 2) }"
    return (
        "[{i}]split[{u}a][{u}b];"
        f"[{{u}}a]palettegen=max_colors={max(2, colors)}:stats_mode=single:reserve_transparent=0[{{u}}p];"
        f"[{{u}}b][{{u}}p]paletteuse=dither={mode}:new=1,format=gbrp[{{o}}]"
    )


# ---------------------------------------------------------------------------------------------
# Node implementations: (ctx, **inputs) -> (outputs tuple, ui dict | None)
# ---------------------------------------------------------------------------------------------


@dataclass
class ExecContext:
    input_dir: Path
    output_dir: Path
    ffmpeg_stats: list[ProcessStats] = field(default_factory=list)


def _load_video(ctx: ExecContext, file: str) -> tuple[tuple[Any, ...], None]:
    path = ctx.input_dir / _annotated_name(file)
    if not path.is_file():
        raise FileNotFoundError(f"[Errno 2] No such file or directory: '{path}'")
    return (VideoFile(path),), None


def _get_video_components(ctx: ExecContext, video: Any) -> tuple[tuple[Any, ...], None]:
    if isinstance(video, VideoComponents):
        return (video.images, video.audio, video.fps), None
    info = probe(video.path)  # decoding starts here, as in ComfyUI: corrupt files fail here
    return (ImageStream(video.path), AudioRef(video.path) if info.has_audio else None, info.fps), None


def _image_quantize(ctx: ExecContext, image: ImageStream, colors: int, dither: str):
    return (image.then(quantize_step(int(colors), dither)),), None


def _image_sharpen(ctx: ExecContext, image: ImageStream, sharpen_radius: int, sigma: float, alpha: float):
    return (image.then(sharpen_step(int(sharpen_radius), float(sigma), float(alpha))),), None


def _image_blur(ctx: ExecContext, image: ImageStream, blur_radius: int, sigma: float):
    return (image.then("[{i}]" + blur_filter(int(blur_radius), float(sigma)) + "[{o}]"),), None


def _image_invert(ctx: ExecContext, image: ImageStream):
    return (image.then("[{i}]negate[{o}]"),), None


def _create_video(ctx: ExecContext, images: ImageStream, fps: float, audio: AudioRef | None = None):
    return (VideoComponents(images, float(fps), audio),), None


def _save_path(output_dir: Path, prefix: str) -> tuple[Path, str, str]:
    """``(folder, file_name, subfolder)`` for ``prefix`` (folder_paths.get_save_image_path)."""
    norm = os.path.normpath(prefix)
    subfolder, stem = os.path.dirname(norm), os.path.basename(norm)
    folder = (output_dir / subfolder).resolve()
    if os.path.commonpath([output_dir.resolve(), folder]) != str(output_dir.resolve()):
        raise Exception(
            "**** ERROR: Saving image outside the output folder is not allowed.\n"
            f" full_output_folder: {folder}\n         output_dir: {output_dir}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{re.escape(stem)}_(\d+)_")
    counters = [int(m.group(1)) for f in os.listdir(folder) if (m := pattern.match(f))]
    counter = max(counters, default=0) + 1
    return folder, f"{stem}_{counter:05}_.mp4", subfolder


def _save_video(ctx: ExecContext, video: Any, filename_prefix: str, format: str, codec: str):
    folder, file, subfolder = _save_path(ctx.output_dir, filename_prefix)
    out = folder / file
    if isinstance(video, VideoFile):
        info = probe(video.path)
        if codec == "auto" and info.codec == "h264" and video.path.suffix.lower() in (".mp4", ".m4v", ".mov"):
            # ComfyUI remuxes an untouched compatible file instead of re-encoding it.
            args = ["-i", str(video.path), "-map", "0:v:0", "-map", "0:a?", "-c", "copy", str(out)]
            ctx.ffmpeg_stats.append(run_ffmpeg(args))
            return (), _video_ui(file, subfolder)
        video = VideoComponents(ImageStream(video.path), info.fps, AudioRef(video.path) if info.has_audio else None)
    inputs = [video.images.src]
    audio_index = None
    if video.audio is not None:
        if video.audio.src != video.images.src:
            inputs.append(video.audio.src)
        audio_index = inputs.index(video.audio.src)
    parts, label = ["[0:v]format=gbrp[s0]"], "s0"
    for k, step in enumerate(video.images.steps):
        parts.append(step.format(i=label, o=f"s{k + 1}", u=f"n{k}"))
        label = f"s{k + 1}"
    # CreateVideo forgets source timestamps: frame N is shown at N/fps.
    parts.append(f"[{label}]setpts=N/({video.fps!r}*TB),format=yuv420p[vout]")
    args: list[str] = []
    for src in inputs:
        args += ["-i", str(src)]
    args += ["-filter_complex", ";".join(parts), "-map", "[vout]"]
    if audio_index is not None:
        args += ["-map", f"{audio_index}:a:0", "-c:a", "aac", "-shortest"]
    args += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-fps_mode", "cfr", "-r", repr(video.fps), str(out)]
    ctx.ffmpeg_stats.append(run_ffmpeg(args))
    return (), _video_ui(file, subfolder)


def _video_ui(file: str, subfolder: str) -> dict[str, Any]:
    # SaveVideo lists its file under "images" with animated=[true] (vid1_history.json).
    return {"images": [{"filename": file, "subfolder": subfolder, "type": "output"}], "animated": [True]}


NODE_IMPLS: dict[str, Callable[..., tuple[tuple[Any, ...], dict[str, Any] | None]]] = {
    "LoadVideo": _load_video,
    "GetVideoComponents": _get_video_components,
    "ImageQuantize": _image_quantize,
    "ImageSharpen": _image_sharpen,
    "ImageBlur": _image_blur,
    "ImageInvert": _image_invert,
    "CreateVideo": _create_video,
    "SaveVideo": _save_video,
}

# ---------------------------------------------------------------------------------------------
# Executing one prompt
# ---------------------------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class InjectedFailure:
    """What :meth:`FakeComfyUI.fail_next` arms: fail at the first executed node matching
    ``node_id`` / ``class_type`` (any node when both are None)."""

    node_id: str | None
    class_type: str | None
    exception_type: str
    exception_message: str


class InjectedNodeError(Exception):
    """Raised inside a node by an armed failure; reported under ``reported_type``."""

    def __init__(self, reported_type: str, message: str):
        super().__init__(message)
        self.reported_type = reported_type


class _Interrupted(Exception):
    pass


class _NodeFailed(Exception):
    def __init__(self, node_id: str, error: BaseException, inputs: dict[str, Any]):
        super().__init__(str(error))
        self.node_id, self.error, self.inputs = node_id, error, inputs


def _full_type_name(exc: BaseException) -> str:
    reported = getattr(exc, "reported_type", None)
    if reported:
        return reported
    module = type(exc).__module__
    return type(exc).__qualname__ if module == "builtins" else f"{module}.{type(exc).__qualname__}"


def _format_value(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, float, bool, str)) else str(value)


class PromptRun:
    """Executes one validated prompt against the previous prompt's cache.

    ``run()`` returns the history entry (``prompt``, ``outputs``, ``status``, ``meta``) and
    the new cache (this prompt's signatures only: ComfyUI's classic cache drops the rest).
    """

    def __init__(
        self,
        item: list[Any],
        ctx: ExecContext,
        cache: dict[Any, Any],
        failure: InjectedFailure | None,
        interrupted: threading.Event,
        node_delay_s: float = 0.0,
    ):
        self.node_delay_s = node_delay_s
        self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs_to_run = item
        self.ctx, self.cache, self.failure, self.interrupted = ctx, cache, failure, interrupted
        self.results: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}
        self.executed: list[str] = []
        self.new_cache: dict[Any, Any] = {}
        self._sigs: dict[str, Any] = {}

    def signature(self, node_id: str) -> Any:
        if node_id not in self._sigs:
            node = self.prompt[node_id]
            items = []
            for name, value in sorted((node.get("inputs") or {}).items()):
                if _is_link(value):
                    items.append((name, ("link", self.signature(str(value[0])), value[1])))
                else:
                    items.append((name, json.dumps(value, sort_keys=True)))
            if node["class_type"] == "LoadVideo":  # IS_CHANGED: a re-uploaded file is new
                path = self.ctx.input_dir / _annotated_name(str(node["inputs"].get("file")))
                st = path.stat() if path.is_file() else None
                items.append(("__file__", (st.st_mtime_ns, st.st_size) if st else None))
            self._sigs[node_id] = (node["class_type"], tuple(items))
        return self._sigs[node_id]

    def _needed(self) -> list[str]:
        order: list[str] = []
        seen: set[str] = set()

        def visit(nid: str) -> None:
            if nid in seen:  # done, or a link cycle
                return
            seen.add(nid)
            for value in (self.prompt[nid].get("inputs") or {}).values():
                if _is_link(value):
                    visit(str(value[0]))
            order.append(nid)

        for out in self.outputs_to_run:
            visit(out)
        return order

    def run_node(self, node_id: str) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
        if node_id in self.results:
            return self.results[node_id]
        sig = self.signature(node_id)
        if sig in self.cache:
            self.results[node_id] = self.new_cache[sig] = self.cache[sig]
            self.executed.append(node_id)
            return self.results[node_id]
        node = self.prompt[node_id]
        spec = NODE_SPECS[node["class_type"]]
        kwargs: dict[str, Any] = {}
        for name, value in (node.get("inputs") or {}).items():
            if name not in spec.required and name not in spec.optional:
                continue  # ComfyUI ignores undeclared inputs
            if _is_link(value):
                kwargs[name] = self.run_node(str(value[0]))[0][value[1]]
            else:
                kwargs[name] = value
        if self.interrupted.is_set():
            raise _Interrupted(node_id)
        try:
            failure = self.failure
            if failure and (failure.node_id in (None, node_id)) and (failure.class_type in (None, node["class_type"])):
                self.failure = None
                raise InjectedNodeError(failure.exception_type, failure.exception_message)
            result = NODE_IMPLS[node["class_type"]](self.ctx, **kwargs)
            if self.node_delay_s:  # a slow GPU node: not interruptible inside, as in ComfyUI
                time.sleep(self.node_delay_s)
        except Exception as exc:
            raise _NodeFailed(node_id, exc, kwargs) from exc
        self.results[node_id] = self.new_cache[sig] = result
        self.executed.append(node_id)
        return result

    def run(self) -> tuple[dict[str, Any], dict[Any, Any]]:
        pid = self.prompt_id
        messages: list[list[Any]] = [["execution_start", {"prompt_id": pid, "timestamp": _now_ms()}]]
        needed = self._needed()
        cached = [nid for nid in needed if self.signature(nid) in self.cache]
        messages.append(["execution_cached", {"nodes": cached, "prompt_id": pid, "timestamp": _now_ms()}])
        status_str, completed = "success", True
        try:
            for out in self.outputs_to_run:
                self.run_node(out)
            messages.append(["execution_success", {"prompt_id": pid, "timestamp": _now_ms()}])
        except _Interrupted as exc:
            node_id = exc.args[0]
            status_str, completed = "error", False
            messages.append(
                [
                    "execution_interrupted",
                    {
                        "prompt_id": pid,
                        "node_id": node_id,
                        "node_type": self.prompt[node_id]["class_type"],
                        "executed": list(self.executed),
                        "timestamp": _now_ms(),
                    },
                ]
            )
        except _NodeFailed as exc:
            status_str, completed = "error", False
            err = exc.error
            messages.append(
                [
                    "execution_error",
                    {
                        "prompt_id": pid,
                        "node_id": exc.node_id,
                        "node_type": self.prompt[exc.node_id]["class_type"],
                        "executed": list(self.executed),
                        "exception_message": f"{err}\n" if not str(err).endswith("\n") else str(err),
                        "exception_type": _full_type_name(err),
                        "traceback": traceback.format_tb(err.__traceback__),
                        "current_inputs": {k: [_format_value(v)] for k, v in exc.inputs.items()},
                        "current_outputs": list(self.prompt),
                        "timestamp": _now_ms(),
                    },
                ]
            )
        outputs: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for nid in needed:
            ui = self.results.get(nid, ((), None))[1]
            if ui:
                outputs[nid] = ui
                meta[nid] = {"node_id": nid, "display_node": nid, "parent_node": None, "real_node_id": nid}
        entry = {
            "prompt": [self.number, pid, self.prompt, self.extra_data, list(self.outputs_to_run)],
            "outputs": outputs,
            "status": {"status_str": status_str, "completed": completed, "messages": messages},
            "meta": meta,
        }
        return entry, self.new_cache


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------

_TROUBLE = "500 Internal Server Error\n\nServer got itself in trouble"


class FakeComfyUI:
    """The double. Use as a context manager or ``start()`` / ``stop()``.

    Args:
        root: directory for ``input/``, ``output/`` and ``temp/``.

    Attributes:
        base_url: ``http://127.0.0.1:<port>`` once started.
        ffmpeg_stats: ``{prompt_id: [ProcessStats]}`` of the ffmpeg runs each prompt made.
        accepted: the POST /prompt bodies that were queued (for assertions).
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.dirs = {t: self.root / t for t in ("input", "output", "temp")}
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self._cv = threading.Condition(threading.RLock())
        self._pending: list[list[Any]] = []
        self._running: list[Any] | None = None
        self._history: dict[str, Any] = {}
        self._number = 0
        self._cache: dict[Any, Any] = {}
        self._paused = False
        self._stopping = False
        self._failure: InjectedFailure | None = None
        self._interrupt = threading.Event()
        self._generation = 0  # bumped by restart(): a prompt running across it is forgotten
        self._refusals: list[tuple[int, float | None]] = []
        self.node_delay_s = 0.0
        # What GET /system_stats answers instead of the recorded body (None: the recorded one).
        self.system_stats: dict[str, Any] | None = None
        self.ffmpeg_stats: dict[str, list[ProcessStats]] = {}
        self.accepted: list[dict[str, Any]] = []
        self.base_url = ""
        self.app = self._build_app()
        self._server: Any = None
        self._threads: list[threading.Thread] = []

    # -- knobs ---------------------------------------------------------------------------------

    def fail_next(
        self,
        node_id: str | None = None,
        class_type: str | None = None,
        exception_type: str = "RuntimeError",
        exception_message: str = "injected failure",
    ) -> None:
        """The next prompt to execute fails at the first (non-cached) node matching
        ``node_id``/``class_type`` with an ``execution_error`` carrying ``exception_type``
        (any string, e.g. ``"torch.OutOfMemoryError"``) and ``exception_message``. The knob is
        used up by that prompt even if no node matched."""
        with self._cv:
            self._failure = InjectedFailure(node_id, class_type, exception_type, exception_message)

    def reset_knobs(self) -> None:
        """Disarm a pending :meth:`fail_next` and resume the queue."""
        with self._cv:
            self._failure = None
        self.resume()

    def restart(self) -> None:
        """Forget the queue, the history and the running prompt, as a restarted ComfyUI does
        (it keeps both in memory); files on disk stay."""
        with self._cv:
            self._generation += 1
            self._pending.clear()
            self._history.clear()
            self._cache = {}
            self._interrupt.set()  # the running prompt stops at its next node; its result is dropped
            self._cv.notify_all()

    def refuse_next(self, status_code: int = 503, retry_after_s: float | None = None) -> None:
        """The next ``POST /prompt`` is refused with ``status_code`` (and a ``Retry-After``
        header), as a fleet's front does when every server is busy."""
        with self._cv:
            self._refusals.append((status_code, retry_after_s))

    def pause(self) -> None:
        """Hold the queue: submitted prompts stay pending (history ``{}``) until resume()."""
        with self._cv:
            self._paused = True

    def resume(self) -> None:
        with self._cv:
            self._paused = False
            self._cv.notify_all()

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """Wait until nothing is pending or running (False on timeout)."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while self._pending or self._running is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> str:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        web = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-comfyui-http", daemon=True
        )
        worker = threading.Thread(target=self._worker, name="fake-comfyui-exec", daemon=True)
        self._threads = [web, worker]
        web.start()
        worker.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not web.is_alive():
                raise RuntimeError("fake ComfyUI did not start")
            time.sleep(0.02)
        return self.base_url

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._server is not None:
            self._server.should_exit = True
        for t in self._threads:
            t.join(timeout=30)

    def __enter__(self) -> FakeComfyUI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- executor ------------------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and (self._paused or not self._pending):
                    self._cv.wait()
                if self._stopping:
                    return
                item = self._pending.pop(0)
                self._running = item
                failure, self._failure = self._failure, None
                self._interrupt.clear()
                cache = self._cache
                generation = self._generation
            ctx = ExecContext(self.dirs["input"], self.dirs["output"])
            try:
                entry, new_cache = PromptRun(item, ctx, cache, failure, self._interrupt, self.node_delay_s).run()
            except Exception as exc:
                entry = {
                    "prompt": item,
                    "outputs": {},
                    "meta": {},
                    "status": {
                        "status_str": "error",
                        "completed": False,
                        "messages": [
                            [
                                "execution_error",
                                {
                                    "prompt_id": item[1],
                                    "node_id": None,
                                    "exception_type": _full_type_name(exc),
                                    "exception_message": str(exc),
                                    "timestamp": _now_ms(),
                                },
                            ]
                        ],
                    },
                }
                new_cache = {}
            with self._cv:
                if generation != self._generation:  # restarted meanwhile: nothing is remembered
                    self._running = None
                    self._cv.notify_all()
                    continue
                self._cache = new_cache
                self._history[item[1]] = entry
                self.ffmpeg_stats[item[1]] = ctx.ffmpeg_stats
                self._running = None
                self._cv.notify_all()

    # -- HTTP ----------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        router = APIRouter()

        @router.post("/upload/image")
        async def upload_image(request: Request) -> Response:
            form = await request.form()
            image = form.get("image")
            if image is None or not getattr(image, "filename", None):
                return Response(status_code=400)
            kind = str(form.get("type") or "input")
            if kind not in self.dirs:
                return Response(status_code=400)
            subfolder = str(form.get("subfolder") or "")
            base = self.dirs[kind].resolve()
            # normpath only rewrites the string; it does no I/O (the rule lists it anyway).
            folder = (base / os.path.normpath(subfolder)).resolve() if subfolder else base  # noqa: ASYNC240
            if os.path.commonpath([base, folder]) != str(base):
                return Response(status_code=400)
            folder.mkdir(parents=True, exist_ok=True)
            data = await image.read()
            name = os.path.basename(image.filename)
            if str(form.get("overwrite") or "").lower() not in ("true", "1"):
                stem, ext = os.path.splitext(name)
                i = 1
                while (folder / name).exists() and (folder / name).read_bytes() != data:
                    name = f"{stem} ({i}){ext}"
                    i += 1
            (folder / name).write_bytes(data)
            return JSONResponse({"name": name, "subfolder": subfolder, "type": kind})

        @router.post("/prompt")
        async def post_prompt(request: Request) -> Response:
            try:
                data = json.loads(await request.body())
            except ValueError:
                return PlainTextResponse(_TROUBLE, status_code=500)
            if not isinstance(data, dict):  # a JSON list or number makes ComfyUI fail the same way
                return PlainTextResponse(_TROUBLE, status_code=500)
            if "prompt" not in data:
                return JSONResponse(
                    {"error": _err("no_prompt", "No prompt provided", "No prompt provided"), "node_errors": {}},
                    status_code=400,
                )
            with self._cv:
                refusal = self._refusals.pop(0) if self._refusals else None
            if refusal is not None:
                status, after = refusal
                headers = {"Retry-After": f"{after:g}"} if after is not None else {}
                return PlainTextResponse("busy", status_code=status, headers=headers)
            prompt = data["prompt"]
            ok, error, outputs, node_errors = validate_prompt(prompt, self.dirs["input"])
            if not ok:
                return JSONResponse({"error": error, "node_errors": node_errors}, status_code=400)
            prompt_id = str(data.get("prompt_id") or uuid.uuid4())
            extra = dict(data.get("extra_data") or {})
            if "client_id" in data:
                extra["client_id"] = data["client_id"]
            with self._cv:
                number = self._number
                self._number += 1
                self._pending.append([number, prompt_id, prompt, extra, outputs])
                self.accepted.append(data)
                self._cv.notify_all()
            return JSONResponse({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

        @router.get("/prompt")
        def get_prompt() -> dict[str, Any]:
            with self._cv:
                remaining = len(self._pending) + (self._running is not None)
            return {"exec_info": {"queue_remaining": remaining}}

        @router.get("/queue")
        def get_queue() -> dict[str, Any]:
            with self._cv:
                running = [self._running] if self._running is not None else []
                return {"queue_running": running, "queue_pending": sorted(self._pending, key=lambda it: it[0])}

        @router.post("/queue")
        async def post_queue(request: Request) -> Response:
            body = await _json_or_empty(request)
            with self._cv:
                if body.get("clear"):
                    self._pending.clear()
                ids = set(body.get("delete") or [])
                self._pending = [it for it in self._pending if it[1] not in ids]
                self._cv.notify_all()
            return Response(status_code=200)

        @router.get("/history")
        def get_history_all(max_items: int | None = None) -> dict[str, Any]:
            with self._cv:
                items = list(self._history.items())
            return dict(items[-max_items:] if max_items else items)

        @router.get("/history/{prompt_id}")
        def get_history(prompt_id: str) -> dict[str, Any]:
            with self._cv:
                entry = self._history.get(prompt_id)
            return {prompt_id: entry} if entry is not None else {}

        @router.post("/history")
        async def post_history(request: Request) -> Response:
            body = await _json_or_empty(request)
            with self._cv:
                if body.get("clear"):
                    self._history.clear()
                for pid in body.get("delete") or []:
                    self._history.pop(pid, None)
            return Response(status_code=200)

        @router.post("/interrupt")
        async def interrupt(request: Request) -> Response:
            body = await _json_or_empty(request)
            with self._cv:
                target = body.get("prompt_id")
                if self._running is not None and target in (None, self._running[1]):
                    self._interrupt.set()
            return Response(status_code=200)

        @router.get("/view")
        def view(filename: str = "", subfolder: str = "", type: str = "output") -> Response:
            if not filename or filename.startswith("/") or ".." in filename:
                return Response(status_code=400)
            if type not in self.dirs:
                return Response(status_code=400)
            base = self.dirs[type].resolve()
            folder = (base / os.path.normpath(subfolder)).resolve() if subfolder else base
            if os.path.commonpath([base, folder]) != str(base):
                return Response(status_code=403)
            path = folder / os.path.basename(filename)
            if not path.is_file():
                return Response(status_code=404)
            media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return FileResponse(path, media_type=media, filename=path.name)

        @router.get("/system_stats")
        def system_stats() -> dict[str, Any]:
            return self.system_stats if self.system_stats is not None else SYSTEM_STATS

        @router.get("/object_info")
        def object_info_all() -> dict[str, Any]:
            return {name: self._object_info(name) for name in NODE_SPECS}

        @router.get("/object_info/{node_class}")
        def object_info(node_class: str) -> dict[str, Any]:
            return {node_class: self._object_info(node_class)} if node_class in NODE_SPECS else {}

        app = FastAPI(title="fake ComfyUI 0.3.64", docs_url=None, redoc_url=None, openapi_url=None)
        app.include_router(router)
        app.include_router(router, prefix="/api")
        return app

    def _object_info(self, name: str) -> dict[str, Any]:
        spec = NODE_SPECS[name]

        def inputs(decl: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
            out = {}
            for key, (typ, opts) in decl.items():
                opts = dict(opts)
                if name == "LoadVideo" and key == "file":
                    opts["options"] = sorted(
                        f.name
                        for f in self.dirs["input"].iterdir()
                        if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
                    )
                    opts = {"multiselect": False, **opts}
                out[key] = [typ, opts]
            return out

        info: dict[str, Any] = {
            "input": {"required": inputs(spec.required)},
            "input_order": {"required": list(spec.required)},
        }
        if spec.optional:
            info["input"]["optional"] = inputs(spec.optional)
            info["input_order"]["optional"] = list(spec.optional)
        info.update(
            {
                "output": list(spec.outputs),
                "output_is_list": [False] * len(spec.outputs),
                "output_name": list(spec.output_names),
                "output_tooltips": [None] * len(spec.outputs),
                "name": name,
                "display_name": spec.display_name,
                "description": "",
                "python_module": spec.python_module,
                "category": spec.category,
                "output_node": spec.output_node,
                "deprecated": False,
                "experimental": False,
                "api_node": False,
            }
        )
        return info


async def _json_or_empty(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
