"""Where clients fetch media: a public, cache-friendly URL for a media key, so the bytes of
gallery previews and delivered outputs never flow through the API process (docs/gallery.md,
"Distribution").

* ``published/`` keys with ``Settings.media_public_base_url`` set: ``<base>/<key>`` — a CDN
  or a public bucket prefix in front of the media store; the objects are content-addressed
  and carry ``Cache-Control: immutable`` (``MediaStore.put_file``).
* any other key on an S3 media store: a presigned ``GET`` URL valid for
  ``media_url_ttl_s`` (7 days by default). The same URL is handed out again while at least
  half of its lifetime remains, so clients and caches keyed by URL see one URL for days
  instead of a new signature per request.
* a local media store: the API's media route, ``<api>/v1/media/<key>``, which answers with
  a strong ``ETag``, ``Cache-Control`` and ranges (``api/routers/media.py``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from resources.media import MEDIA_ROUTE, PUBLISHED_PREFIX, MediaStore

# Presigned URLs kept for reuse (oldest dropped first): a gallery page's worth many times over.
_CACHED_URLS = 10_000


class MediaLinks:
    """Public URLs of media keys (module docstring). Thread-safe.

    Args:
        media: the media store.
        api_base_url: public base URL of the API (local media stores).
        public_base_url: base URL serving ``published/`` keys publicly; empty = none.
        url_ttl_s: lifetime of a presigned URL, seconds.
        clock: seconds, for tests (default ``time.time``).
    """

    def __init__(
        self,
        media: MediaStore,
        api_base_url: str,
        public_base_url: str = "",
        url_ttl_s: int = 7 * 24 * 3600,
        clock=time.time,
    ):
        self.media = media
        self.api_base_url = api_base_url.rstrip("/")
        self.public_base_url = public_base_url.rstrip("/")
        self.url_ttl_s = url_ttl_s
        self._clock = clock
        self._signed: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def url(self, key: str | None) -> str | None:
        """The URL a client fetches ``key`` from (None for no key)."""
        if not key:
            return None
        if self.public_base_url and key.startswith(PUBLISHED_PREFIX):
            return f"{self.public_base_url}/{key}"
        if self.media.is_s3:
            return self._presigned(key)
        return f"{self.api_base_url}{MEDIA_ROUTE}{key}"

    def _presigned(self, key: str) -> str:
        now = self._clock()
        with self._lock:
            cached = self._signed.get(key)
            if cached is not None and now - cached[1] < self.url_ttl_s / 2:
                return cached[0]
        url = self.media.presigned_get_url(key, self.url_ttl_s)
        with self._lock:
            self._signed[key] = (url, now)
            self._signed.move_to_end(key)
            while len(self._signed) > _CACHED_URLS:
                self._signed.popitem(last=False)
        return url
