"""On-disk cache of Gemini analyses: one JSON file per (video, prompt version, model, inputs).

Why files and not a lake table: an entry is read by exact key before a paid call and written
once after it; a directory lookup does that with no table scan and no commit, and concurrent
runs never conflict (each entry is written to a temporary file and renamed into place, which
is atomic on one file system, so a reader sees a whole entry or none). The directory is
``Settings.gemini_cache_dir`` (default ``<data_dir>/gemini_cache``, git-ignored).

Key: the video's sha256, the prompt's ``id@vN``, the model id and a digest of the other
inputs that shape the answer (the uploader's description and the catalog names offered), so
a changed description or taxonomy is a new entry. Layout:
``<dir>/<model>/<prompt id@vN>/<video sha256>-<inputs digest>.json`` holding
``{"key": {...}, "result": {...}, "usage": {...}, "created_at": ISO-8601}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SAFE = str.maketrans(dict.fromkeys('/\\:*?"<>| ', "_"))


def inputs_digest(values: Any) -> str:
    """First 16 hex digits of the sha256 of ``values`` as canonical JSON (sorted keys)."""
    blob = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CacheKey:
    """Identity of a cached answer.

    Attributes:
        video_sha256: hex sha256 of the video file sent.
        prompt_version: the prompt's ``id@vN``.
        model: the model id.
        inputs: ``inputs_digest`` of the other request inputs.
    """

    video_sha256: str
    prompt_version: str
    model: str
    inputs: str

    def relative_path(self) -> Path:
        """``<model>/<prompt version>/<sha256>-<inputs>.json`` (path-unsafe characters → ``_``)."""
        return (
            Path(self.model.translate(_SAFE))
            / self.prompt_version.translate(_SAFE)
            / f"{self.video_sha256}-{self.inputs}.json"
        )


class ResultCache:
    """A directory of cached answers.

    Args:
        root: the cache directory (created on first write).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def get(self, key: CacheKey) -> dict | None:
        """The stored entry (``{"key", "result", "usage", "created_at"}``), or None when absent
        or unreadable (a corrupt entry is a miss, and the next write replaces it)."""
        path = self.root / key.relative_path()
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return entry if isinstance(entry, dict) and entry.get("key") == key.__dict__ else None

    def put(self, key: CacheKey, result: dict, usage: dict) -> Path:
        """Store an answer atomically (temporary file + rename); returns its path.

        Raises:
            OSError: the directory cannot be written.
        """
        path = self.root / key.relative_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"key": key.__dict__, "result": result, "usage": usage, "created_at": datetime.now(UTC).isoformat()}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, sort_keys=True, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
