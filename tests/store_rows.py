"""Store rows the tests need in more than one place, written the way the product writes them."""

from __future__ import annotations

from resources.store import Store


def pending_upload(store: Store, user_id: str, filename: str = "a.mp4") -> dict:
    """A presigned upload whose bytes have not arrived: the ``pending`` row ``POST
    /v1/uploads/presign`` writes."""
    return store.create_upload(
        user_id,
        filename=filename,
        content_type="video/mp4",
        sha256=None,
        bytes_=None,
        media_key=None,
        source="presign",
        status="pending",
    ).upload
