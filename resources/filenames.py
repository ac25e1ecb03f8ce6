"""Client filenames made safe to store and show (pure; shared by the lake intake and the SQL store).

A filename is a label, never a path: only its last component is kept (``/`` and ``\\`` both
separate), Unicode is NFC-normalised, control characters (C0, DEL, C1, NUL included) and
bidirectional overrides are dropped, leading dots and surrounding blanks are stripped, and the
result is cut to ``MAX_FILENAME_BYTES`` of UTF-8 keeping the extension. Nothing left →
``FALLBACK``.
"""

from __future__ import annotations

import unicodedata

MAX_FILENAME_BYTES = 255
FALLBACK = "upload"
_BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f"}


def _cut(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def sanitize_filename(name: object) -> str:
    """A display-safe filename from a client-supplied ``name`` (rules: module docstring)."""
    if not isinstance(name, str):
        return FALLBACK
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) != "Cc" and c not in _BIDI)
    name = name.strip().lstrip(".").strip()
    if not name:
        return FALLBACK
    if len(name.encode("utf-8")) > MAX_FILENAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext.encode("utf-8")) <= 16:
            name = _cut(stem, MAX_FILENAME_BYTES - len(ext.encode("utf-8")) - 1) + "." + ext
        else:
            name = _cut(name, MAX_FILENAME_BYTES)
    return name or FALLBACK
