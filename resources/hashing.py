"""Content hashes: of a file's bytes and of a JSON value in canonical form (the same value
always hashes the same, whatever its key order)."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (read in ``chunk_bytes`` pieces)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=4096)
def _versioned_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def cached_file_sha256(path: str | Path) -> str:
    """``file_sha256`` remembered per file version (path, size, modification time): a file
    read again is not hashed again, a rewritten one is.

    Raises:
        OSError: the file cannot be read.
    """
    stat = os.stat(path)
    return _versioned_sha256(str(path), stat.st_size, stat.st_mtime_ns)


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and no whitespace (non-JSON values as ``str``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def json_sha256(value: Any) -> str:
    """Hex sha256 of ``canonical_json(value)``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
