"""``effectlake rerender <output_id>``: re-run a provider output's render spec on the same input
and report whether the new render is bit-identical or, if not, its VMAF against the original
(``assets/execution/rerender.py``). Exit status 1 only when the output could not be
re-rendered (or compared); a render that differs is a finding, not a failure."""

from __future__ import annotations

import json
import sys

from assets.execution.rerender import RerenderFailed, RerenderReport, rerender
from resources.lake import Lake
from resources.media import MediaStore
from resources.settings import get_settings


def run_rerender(output_id: str, as_json: bool) -> int:
    """Re-render ``output_id`` with the current settings' lake and media; print the report
    (JSON with ``as_json``); 0 when re-rendered, 1 when it could not be."""
    settings = get_settings()
    try:
        report = rerender(Lake(uri=settings.lake_uri), MediaStore(uri=settings.media_uri), output_id)
    except RerenderFailed as exc:
        if as_json:
            print(json.dumps({"output_id": output_id, "error": str(exc)}))
        else:
            print(f"output {output_id}: could not re-render: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_dict(), indent=2, sort_keys=True) if as_json else describe(report))
    return 0


def describe(report: RerenderReport) -> str:
    """The report in words."""
    head = f"output {report.output_id} ({report.effect_type} on {report.provider_id})"
    lines = [f"{head} re-rendered in {report.rerender_ms} ms"]
    if report.identical:
        lines.append(f"  bit-identical: sha256 {report.rerender_sha256}")
    else:
        v = {"vmaf_hmean": float("nan"), "vmaf_mean": float("nan"), "vmaf_min": float("nan")}
        v |= {"psnr_y_mean": float("nan"), "frames": 0.0} | (report.vmaf or {})
        lines.append(f"  differs: sha256 {report.original_sha256} (original) vs {report.rerender_sha256} (re-render)")
        lines.append(
            f"  VMAF {v['vmaf_hmean']:.2f} (harmonic mean; mean {v['vmaf_mean']:.2f}, min {v['vmaf_min']:.2f}), "
            f"PSNR-Y {v['psnr_y_mean']:.1f} dB over {int(v['frames'])} frames"
        )
    if not report.workflow_hash_matches:
        lines.append("  the recipe run now differs from the recorded one (workflow hash)")
    if not report.original_matches_spec:
        lines.append("  the stored original no longer has the sha256 its spec recorded")
    for name, (was, now) in report.toolchain_changes.items():
        lines.append(f"  {name}: {was} when rendered, {now} now")
    return "\n".join(lines)
