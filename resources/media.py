"""The media store client: video bytes under one root URI (local dir or ``s3://``).

Keys are relative (``raw/<workspace>/<sha256>.mp4``, ``proxy/<video_id>.mp4``,
``outputs/<video_id>/<task_id>.mp4``, ``published/<sha256>.mp4``); only this module turns a
key into a location. ``raw/`` and ``published/`` keys are content-addressed (the bytes' sha256
is in the name), so what they hold never changes and caches may keep it forever. Video
tools need local files, so reads and writes go through ``local_file`` / ``writable_file``,
which are the files themselves on a local root and temporary copies on S3. A plain pydantic
model; ``resources.dagster_resources.MediaResource`` hands it to assets.
"""

from __future__ import annotations

import mimetypes
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from resources.hashing import file_sha256

# The intake API serves public media (proxies and outputs) under this path.
MEDIA_ROUTE = "/v1/media/"
# Published gallery media, copied under the sha256 of their bytes (``MediaStore.publish``).
PUBLISHED_PREFIX = "published/"
# Keys whose name is the sha256 of their bytes: a key never changes what it holds.
CONTENT_ADDRESSED_PREFIXES = ("raw/", PUBLISHED_PREFIX)
# max-age of content-addressed media: one year, the longest RFC 9111 caches are expected to
# honour; ``immutable`` (RFC 8246) also spares them revalidating on reload.
IMMUTABLE_MAX_AGE_S = 365 * 24 * 3600


def is_content_addressed(key: str) -> bool:
    """True when ``key``'s name is the sha256 of its bytes (``CONTENT_ADDRESSED_PREFIXES``)."""
    return key.startswith(CONTENT_ADDRESSED_PREFIXES)


def cache_control(key: str, max_age_s: int) -> str:
    """``Cache-Control`` of a public media key: ``public, max-age=<1 year>, immutable`` for a
    content-addressed key, else ``public, max-age=<max_age_s>`` (caches revalidate with the
    ETag after that)."""
    if is_content_addressed(key):
        return f"public, max-age={IMMUTABLE_MAX_AGE_S}, immutable"
    return f"public, max-age={max_age_s}"


def content_type(key: str) -> str:
    """The media type of a key by its extension (``video/mp4`` when unknown: every media
    object is a video)."""
    return mimetypes.guess_type(key)[0] or "video/mp4"


def media_url(api_base_url: str, key: str | None) -> str | None:
    """Public URL of a media key, served by the intake API (None for no key)."""
    return f"{api_base_url.rstrip('/')}{MEDIA_ROUTE}{key}" if key else None


class MediaStore(BaseModel):
    """Video bytes by key.

    Attributes:
        uri: local directory or ``s3://bucket/prefix``.
        storage_options: for S3: ``endpoint_url``, ``region_name`` and credentials passed to
            ``boto3.client("s3", ...)``.
    """

    model_config = ConfigDict(frozen=True)

    uri: str
    storage_options: dict[str, str] = Field(default_factory=dict)

    # -- location -------------------------------------------------------------------------
    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    def _local(self, key: str) -> Path:
        return Path(self.uri).resolve() / key

    def _bucket_key(self, key: str) -> tuple[str, str]:
        bucket, _, prefix = self.uri[len("s3://") :].partition("/")
        return bucket, f"{prefix.strip('/')}/{key}".lstrip("/")

    def _s3(self):
        import boto3

        return boto3.client("s3", **self.storage_options)

    # -- API ------------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        """True when an object is stored under ``key``."""
        if not self.is_s3:
            return self._local(key).is_file()
        from botocore.exceptions import ClientError

        bucket, k = self._bucket_key(key)
        try:
            self._s3().head_object(Bucket=bucket, Key=k)
            return True
        except ClientError:
            # S3 answers 404 for a missing key (403 without ListBucket permission): absent.
            # Network and credential errors are not answers about the key and propagate.
            return False

    def put_file(self, key: str, path: str) -> None:
        """Store the local file ``path`` under ``key`` (overwriting). On S3 the object gets its
        ``Content-Type`` and, when content-addressed, an immutable ``Cache-Control``, which S3
        answers with every GET (presigned or public)."""
        if self.is_s3:
            bucket, k = self._bucket_key(key)
            extra = {"ContentType": content_type(key)}
            if is_content_addressed(key):
                extra["CacheControl"] = cache_control(key, IMMUTABLE_MAX_AGE_S)
            self._s3().upload_file(path, bucket, k, ExtraArgs=extra)
            return
        dst = self._local(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if Path(path).resolve() != dst:
            # A temporary name of this write's own: two writers of one key (the same bytes
            # uploaded at once) must not rename each other's part file away.
            tmp = dst.with_name(f"{dst.name}.{uuid.uuid4().hex}.part")
            try:
                shutil.copyfile(path, tmp)
                tmp.replace(dst)  # atomic: readers never see half a file
            finally:
                tmp.unlink(missing_ok=True)

    def put_stream(self, key: str, stream: BinaryIO) -> None:
        """Store the bytes of a readable binary stream under ``key``."""
        with tempfile.NamedTemporaryFile(delete=False) as tmp:
            shutil.copyfileobj(stream, tmp)
        try:
            self.put_file(key, tmp.name)
        finally:
            Path(tmp.name).unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        """Remove the object under ``key`` (nothing happens when there is none)."""
        if self.is_s3:
            bucket, k = self._bucket_key(key)
            self._s3().delete_object(Bucket=bucket, Key=k)
            return
        self._local(key).unlink(missing_ok=True)

    def presigned_put_url(self, key: str, *, content_type: str, content_length: int, expires_in: int) -> str:
        """A presigned S3 ``PUT`` URL for ``key`` (SigV4 query signature, boto3): valid for
        ``expires_in`` seconds, and only with exactly these ``Content-Type`` and
        ``Content-Length`` headers (both are signed, so S3 refuses another size).

        Raises:
            ValueError: the media store is not on S3 (a local store has no URL of its own:
                the API signs and serves one, ``resources.intake.signing``).
        """
        if not self.is_s3:
            raise ValueError("presigned URLs exist only for an s3:// media store")
        import boto3
        from botocore.config import Config

        bucket, k = self._bucket_key(key)
        # SigV4 signs the headers (boto3 may otherwise pick SigV2 query auth, which does not).
        s3 = boto3.client("s3", config=Config(signature_version="s3v4"), **self.storage_options)
        return s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": bucket, "Key": k, "ContentType": content_type, "ContentLength": content_length},
            ExpiresIn=expires_in,
            HttpMethod="PUT",
        )

    def presigned_get_url(self, key: str, expires_in: int) -> str:
        """A presigned S3 ``GET`` URL for ``key`` (SigV4 query signature), valid for
        ``expires_in`` seconds (SigV4 allows at most 604,800: 7 days).

        Raises:
            ValueError: the media store is not on S3.
        """
        if not self.is_s3:
            raise ValueError("presigned URLs exist only for an s3:// media store")
        import boto3
        from botocore.config import Config

        bucket, k = self._bucket_key(key)
        s3 = boto3.client("s3", config=Config(signature_version="s3v4"), **self.storage_options)
        return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": k}, ExpiresIn=expires_in)

    def path(self, key: str) -> Path:
        """The file of ``key`` in a local store (it may not exist).

        Raises:
            ValueError: the media store is on S3 (use ``local_file``).
        """
        if self.is_s3:
            raise ValueError("an s3:// media store has no local paths")
        return self._local(key)

    def publish(self, key: str) -> str:
        """Copy ``key``'s bytes to the content-addressed ``published/<sha256><ext>`` (once: an
        existing copy is kept) and return that key. Gallery media are served from there, so
        every cache may keep them forever.

        Raises:
            FileNotFoundError: nothing is stored under ``key``.
        """
        with self.local_file(key) as local:
            target = f"{PUBLISHED_PREFIX}{file_sha256(local)}{Path(key).suffix or '.mp4'}"
            if not self.exists(target):
                self.put_file(target, local)
        return target

    @contextmanager
    def local_file(self, key: str) -> Iterator[str]:
        """Yield a local path holding ``key``'s bytes (a temp copy on S3).

        Raises:
            FileNotFoundError: nothing is stored under ``key``.
        """
        if not self.is_s3:
            path = self._local(key)
            if not path.is_file():
                raise FileNotFoundError(f"media key not found: {key}")
            yield str(path)
            return
        bucket, k = self._bucket_key(key)
        with tempfile.TemporaryDirectory() as d:
            local = str(Path(d) / Path(key).name)
            self._s3().download_file(bucket, k, local)
            yield local

    @contextmanager
    def writable_file(self, key: str) -> Iterator[str]:
        """Yield a local path to write ``key`` to; stored when the block exits normally
        (nothing is stored if it raises or leaves no file)."""
        with tempfile.TemporaryDirectory() as d:
            local = str(Path(d) / Path(key).name)
            yield local
            if Path(local).is_file():
                self.put_file(key, local)

    def open(self, key: str) -> BinaryIO:
        """Open ``key`` for reading (for streaming to HTTP clients).

        Raises:
            FileNotFoundError: nothing is stored under ``key``.
        """
        if not self.is_s3:
            return open(self._local(key), "rb")
        bucket, k = self._bucket_key(key)
        try:
            return self._s3().get_object(Bucket=bucket, Key=k)["Body"]
        except Exception as exc:
            raise FileNotFoundError(f"media key not found: {key}") from exc
