"""M2 content analysis: scene cuts, motion, color, style and eligible effects of a video.

Pure functions on local paths and parsed YAML dicts (no Dagster, no lake I/O).
"""

from assets.analysis.features import (
    ContentAnalysis,
    analyze_video,
    eligible_effect_types,
)

__all__ = ["ContentAnalysis", "analyze_video", "eligible_effect_types"]
