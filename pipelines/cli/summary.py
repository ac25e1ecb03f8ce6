"""Plain-text summary of a video's journey, from its ``GET /v1/videos/{id}`` document."""

from __future__ import annotations


def _f(x, fmt: str = ".3f") -> str:
    return "—" if x is None else format(x, fmt)


def format_video(status: dict, elapsed_s: float | None = None) -> str:
    """Human-readable block: metadata, analysis, providers tried (quality vector, cost,
    margin), the winner and the gallery URL."""
    lines = [
        f"■ {status['upload']['filename']}  video_id={status['video_id']}  stage={status['stage']}"
        + (f"  ({elapsed_s:.1f} s end to end)" if elapsed_s is not None else "")
    ]
    v = status.get("video")
    if v:
        if v["status"] == "rejected":
            lines.append(f"  rejected: {v['reject_reason']}")
            return "\n".join(lines)
        lines.append(
            f"  video: {v['codec']} {v['width']}x{v['height']} {v['fps']:.2f} fps, "
            f"{v['frame_count']} frames, {v['duration_ms'] / 1000:.2f} s, "
            f"{v['bitrate'] / 1000:.0f} kb/s, {v['bytes'] / 1e6:.2f} MB; proxy "
            f"{v['proxy_width']}x{v['proxy_height']}"
        )
    a = status.get("analysis")
    if a:
        lines.append(
            f"  analysis: {a['scene_count']} scene(s), motion {a['motion_class']} "
            f"({a['motion_level']:.3f}), style {a['dominant_style']}, detected "
            f"[{', '.join(a['detected_effects']) or '-'}], targets [{', '.join(a['target_effect_types'])}]"
        )
    if status.get("outputs"):
        lines.append(
            "  providers tried:          effect       status  composite fidel  artif  style  tempo  phash "
            "  cost_usd    margin  rank"
        )
        lines.extend(
            f"    {o['provider_id']:<22} {o['effect_type']:<12} {o['status']:<7} "
            f"{_f(o['composite']):>7} {_f(o['fidelity']):>6} {_f(o['artifacts']):>6} "
            f"{_f(o['style_adherence']):>6} {_f(o['temporal_consistency']):>6} "
            f"{_f(o['perceptual_hash_distance']):>6} {_f(o['cost_usd'], '.7f'):>10} "
            f"{_f(o['margin'], '.4%'):>9} {o['rank']:>5}"
            + ("" if o["gate_passed"] else f"  gate: {'; '.join(o['gate_failures'])}")
            for o in status["outputs"]
        )
    r = status.get("result")
    if r:
        if r["outcome"] == "selected":
            lines.append(
                f"  winner: {r['effect_type']} on {r['provider_id']} (score {r['score']:.3f}, "
                f"composite {r['composite']:.3f}, cost ${r['cost_usd']:.7f}, margin {r['margin']:.4%})"
            )
        else:
            lines.append(f"  no usable result ({r['outcome']}): tokens refunded")
    g = status.get("gallery")
    if g:
        lines.append(f"  gallery: {g['url']}  (revision {g['revision_id']}, preview {g['preview_url']})")
    return "\n".join(lines)
