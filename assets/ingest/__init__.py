"""M1 ingest: probe an upload by decoding it, reject unusable files, make the normalized proxy.

Pure functions on local paths (no Dagster, no lake I/O); the Dagster assets call these.
"""

from assets.ingest.probe import (
    IngestLimits,
    VideoProbe,
    VideoRejected,
    check_header,
    probe_video,
    validate,
)
from assets.ingest.proxy import make_proxy

__all__ = [
    "IngestLimits",
    "VideoProbe",
    "VideoRejected",
    "check_header",
    "make_proxy",
    "probe_video",
    "validate",
]
