"""Where the current routing manifest is published and read (docs/architecture.md, "Economics").

Backends: a local JSON file (embedded default) or Redis (``redis://…``). Readers only ever
see a whole manifest: the file is replaced atomically, Redis ``SET`` is atomic. A plain
pydantic model; ``resources.dagster_resources.ManifestStoreResource`` hands it to assets.
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

HISTORY_LIMIT = 1000  # versions kept in the store itself; every version is also in the lake


class ManifestUnreadable(ValueError):
    """The current manifest is there but is not a manifest (not JSON, or no ``version`` and
    ``effects`` mapping): a half-written or foreign value."""


def _parsed(raw: bytes | str) -> dict:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ManifestUnreadable(f"the current routing manifest is not JSON: {exc}") from None
    if not isinstance(doc, dict) or "version" not in doc or not isinstance(doc.get("effects"), dict):
        raise ManifestUnreadable("the current routing manifest has no version and effects mapping")
    return doc


@lru_cache(maxsize=8)
def _redis_client(uri: str):
    # One client (and its connection pool) per URI and process: building one per read costs
    # a TCP connect and put reads above a millisecond (bench/manifest_read.py).
    import redis

    return redis.Redis.from_url(uri)


class ManifestStore(BaseModel):
    """The published routing manifest.

    Attributes:
        uri: a file path (``…/routing_manifest.json``; history beside it as
            ``….history.jsonl``) or ``redis://host:port/db``.
        key_prefix: Redis keys ``<prefix>:current`` and ``<prefix>:history``.
    """

    model_config = ConfigDict(frozen=True)

    uri: str
    key_prefix: str = "effectlake:routing_manifest"

    @property
    def is_redis(self) -> bool:
        return self.uri.startswith(("redis://", "rediss://", "unix://"))

    def _redis(self):
        return _redis_client(self.uri)

    def read(self) -> dict | None:
        """The current manifest, or None when none was ever published.

        Raises:
            ManifestUnreadable: what is stored is not a manifest.
        """
        if self.is_redis:
            raw = self._redis().get(f"{self.key_prefix}:current")
            return _parsed(raw) if raw else None
        path = Path(self.uri)
        if not path.is_file():
            return None
        return _parsed(path.read_bytes())

    def publish(self, manifest: dict) -> None:
        """Make ``manifest`` the current one (whole-or-nothing for readers)."""
        body = json.dumps(manifest, sort_keys=True)
        if self.is_redis:
            r = self._redis()
            with r.pipeline() as p:  # MULTI/EXEC: current and history change together
                p.set(f"{self.key_prefix}:current", body)
                p.lpush(f"{self.key_prefix}:history", body)
                p.ltrim(f"{self.key_prefix}:history", 0, HISTORY_LIMIT - 1)
                p.execute()
            return
        path = Path(self.uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_atomic(path, body)
        history = self._history_path()
        lines = history.read_text(encoding="utf-8").splitlines() if history.exists() else []
        self._write_atomic(history, "\n".join([body, *lines[: HISTORY_LIMIT - 1]]) + "\n")

    def history(self, limit: int = 20) -> list[dict]:
        """Published manifests, newest first (at most ``limit``)."""
        if self.is_redis:
            return [json.loads(x) for x in self._redis().lrange(f"{self.key_prefix}:history", 0, limit - 1)]
        history = self._history_path()
        if not history.exists():
            return []
        return [json.loads(x) for x in history.read_text(encoding="utf-8").splitlines()[:limit]]

    def _history_path(self) -> Path:
        path = Path(self.uri)
        return path.with_name(path.stem + ".history.jsonl")

    @staticmethod
    def _write_atomic(path: Path, text: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
