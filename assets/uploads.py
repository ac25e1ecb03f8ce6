"""A video's upload row as the stages read it: from the transactional store, in the columns
of ``bronze/uploads``.

The store is the source of truth for an upload, and the intake run starts from it
(``upload_sensor``), while the landing run copies the same row into ``bronze/uploads`` in
parallel: a stage reading the bronze row could run before it is landed. The stages declare
the read as a dependency on ``store/uploads`` (``UPLOADS_TABLE``); ``bronze/uploads`` stays the
lake's record of uploads (lineage, economics, dashboards).
"""

from __future__ import annotations

import dagster as dg

from assets.landing.rows import BY_TARGET, to_bronze
from assets.lineage import store_table_key
from resources.schemas import UPLOADS
from resources.store.client import Store
from resources.store.errors import UploadNotFound

UPLOADS_TABLE: dg.AssetKey = store_table_key("uploads")


def upload_row(store: Store, video_id: str) -> dict:
    """The video's upload as a ``bronze/uploads`` row (the store row through the landing's
    own mapping, ``to_bronze``, so both read the same columns and types).

    Raises:
        UploadNotFound: the store has no upload ``video_id``.
    """
    return to_bronze(BY_TARGET[UPLOADS.name], [store.upload(video_id)]).row(0, named=True)


def upload_field(store: Store, video_id: str, column: str) -> str | None:
    """One column of the video's upload row; None when the row or its value is missing (the
    caller's default then applies)."""
    try:
        return upload_row(store, video_id).get(column)
    except UploadNotFound:
        return None
