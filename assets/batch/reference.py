"""The neutral reference content a job's providers render its target effect on: the first
installed video of the reference suite (``data/reference_suite.yaml``), cut to
``Settings.reference_seconds`` and made a proxy at ``Settings.reference_max_side``, stored once
in the media store under a key naming those choices (every job reuses it)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from assets.ingest.proxy import make_proxy
from resources.ffmpeg import run_ffmpeg
from resources.media import MediaStore
from resources.samples import reference_videos


def cut_clip(src: str | Path, dst: str | Path, seconds: float) -> None:
    """The first ``seconds`` of ``src`` to ``dst``, video only, losslessly (x264 ``-qp 0``), so
    the cut adds no loss before the proxy is made."""
    run_ffmpeg(
        ["-i", str(src), "-t", f"{seconds:g}", "-an", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", str(dst)]
    )


def reference_key(name: str, seconds: float, max_side: int) -> str:
    """Media key of the reference clip ``name`` cut to ``seconds`` at ``max_side`` px."""
    return f"reference/{name}-{seconds:g}s-{max_side}px.mp4"


def reference_input(media: MediaStore, suite: dict, seconds: float, max_side: int) -> str:
    """Media key of the job's reference clip, made and stored on first use.

    Raises:
        FileNotFoundError: the suite has no installed video.
    """
    videos = reference_videos(suite)
    if not videos:
        raise FileNotFoundError("the reference suite has no installed video")
    name, path = videos[0]
    key = reference_key(name, seconds, max_side)
    if media.exists(key):
        return key
    with tempfile.TemporaryDirectory() as d:
        cut, proxy = Path(d) / "cut.mp4", Path(d) / "reference.mp4"
        cut_clip(path, cut, seconds)
        make_proxy(str(cut), str(proxy), max_side=max_side)
        media.put_file(key, str(proxy))
    return key
