"""Where the current routing manifest is published and read (DESIGN.md §6).

Backends: a local JSON file (embedded default) or Redis (``redis://…``). Readers only ever
see a whole manifest: the file is replaced atomically, Redis ``SET`` is atomic.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import dagster as dg

REDIS_KEY = "effectlake:routing_manifest:current"
REDIS_HISTORY_KEY = "effectlake:routing_manifest:history"


class ManifestStore(dg.ConfigurableResource):
    """The published routing manifest.

    Attributes:
        uri: a file path (``…/routing_manifest.json``) or ``redis://host:port/db``.
    """

    uri: str

    @property
    def is_redis(self) -> bool:
        return self.uri.startswith(("redis://", "rediss://", "unix://"))

    def _redis(self):
        import redis

        return redis.Redis.from_url(self.uri)

    def read(self) -> dict | None:
        """The current manifest, or None when none was ever published."""
        if self.is_redis:
            raw = self._redis().get(REDIS_KEY)
            return json.loads(raw) if raw else None
        path = Path(self.uri)
        if not path.is_file():
            return None
        return json.loads(path.read_bytes())

    def publish(self, manifest: dict) -> None:
        """Make ``manifest`` the current one (whole-or-nothing for readers)."""
        body = json.dumps(manifest, sort_keys=True)
        if self.is_redis:
            r = self._redis()
            with r.pipeline() as p:
                p.set(REDIS_KEY, body)
                p.lpush(REDIS_HISTORY_KEY, body)
                p.ltrim(REDIS_HISTORY_KEY, 0, 999)
                p.execute()
            return
        path = Path(self.uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        os.replace(tmp, path)
