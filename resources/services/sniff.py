"""Recognize a video container from its first bytes, so upload intake can refuse what is
plainly not a video (a text file named .mp4, a still image) with a 4xx before any pipeline
work.

Signatures are the containers' own magic numbers (ISO/IEC 14496-12 ``ftyp`` box, RIFF/AVI,
EBML for Matroska/WebM, MPEG-TS sync byte, MPEG-PS pack header, FLV, Ogg, ASF GUID). Passing
the sniff only means "looks like a container": M1 still decodes every frame.
"""

from __future__ import annotations

SNIFF_BYTES = 512

# What each image signature is, as the refusal names it. A GIF may be animated, so it is not
# called a still image; an animation is still not a video container M1 can decode into one.
_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "a PNG still image",
    b"\xff\xd8\xff": "a JPEG still image",
    b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image",
    b"BM": "a BMP still image",
}


def sniff(head: bytes) -> tuple[str | None, str | None]:
    """Classify the first bytes of an upload.

    Args:
        head: at least the first ``SNIFF_BYTES`` bytes (fewer if the file is shorter).

    Returns:
        ``(container, None)`` for a recognized video container (``mp4``, ``avi``,
        ``matroska``, ``mpegts``, ``mpegps``, ``flv``, ``ogg``, ``asf``), or
        ``(None, reason)`` with a sentence a user can read.
    """
    if not head:
        return None, "The file is empty: nothing was uploaded."
    for magic, name in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return None, f"This is {name}, not a video."
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mp4", None
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi", None
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska", None
    # MPEG-TS: a 0x47 sync byte every 188-byte packet; three in a row rule out chance.
    if len(head) >= 377 and head[0] == head[188] == head[376] == 0x47:
        return "mpegts", None
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpegps", None
    if head[:3] == b"FLV":
        return "flv", None
    if head[:4] == b"OggS":
        return "ogg", None
    if head[:4] == b"\x30\x26\xb2\x75":
        return "asf", None
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return None, "This is a text file, not a video."
    return None, "This file is not in a video format we recognize (MP4, MOV, AVI, MKV, WebM…)."
