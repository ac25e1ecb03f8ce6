"""M2 content analysis: scene cuts, motion, colour, texture, style, the looks a video shows and
the target effects a job builds from them.

Pure functions on local paths and parsed YAML dicts (no Dagster, no lake I/O).
"""

from assets.analysis.features import ContentAnalysis, analyze_video
from assets.analysis.targets import Target, target_effects

__all__ = ["ContentAnalysis", "Target", "analyze_video", "target_effects"]
